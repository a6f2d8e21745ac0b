"""The supervised reading of latents (``benchmarks/supervised_reading.py``) and the demo's bound
(``benchmarks/persona_bound.py``)."""

import numpy as np
import pytest
from conftest import load_benchmark

from pyro_personax.synthetic import persona


@pytest.fixture(scope="module")
def reading():
    return load_benchmark("supervised_reading")


def test_observation_features_read_each_modality_and_the_shared_block_from_all():
    bench = load_benchmark("persona_bound")
    dataset, truth = persona(200, seed=0)
    data = dataset.to_multimodal()
    out = bench.observation_features(data, truth.layout)
    assert list(out) == ["shared", "face", "text"]
    face, text = np.asarray(data.values["face"]), np.asarray(data.values["text"])
    # the second face image and every LLM's text are missing for some people: one indicator each
    assert out["face"].shape == (200, 2 * 32 + 1) and out["text"].shape == (200, 3 * 32 + 3)
    np.testing.assert_array_equal(out["face"][:, -1], np.isnan(face[:, 1]).all(axis=1))
    np.testing.assert_array_equal(out["text"][:, -3:], np.isnan(text).all(axis=2))
    np.testing.assert_array_equal(out["face"][:, :64], face.reshape(200, -1))  # NaN kept for the reading
    np.testing.assert_array_equal(out["shared"], np.column_stack([out["face"], out["text"]]))


def test_read_latents_fill_a_missing_feature_and_read_each_block_from_its_own(reading):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1500, 2))
    X = {"a": np.column_stack([np.tanh(z[:, 0]), z[:, 0] ** 3, rng.normal(size=1500)]),
         "b": np.column_stack([np.sin(z[:, 1]), z[:, 1]])}
    X["a"][rng.random(1500) < 0.1, 0] = np.nan
    fit_rows = np.arange(1000)
    predicted = reading.read_latents(X, z, ["a", "b"], fit_rows, seed=0)
    assert np.isfinite(predicted).all()
    kept = [np.corrcoef(predicted[1000:, j], z[1000:, j])[0, 1] ** 2 for j in range(2)]
    assert min(kept) > 0.9, kept
    swapped = reading.read_latents({"a": X["b"], "b": X["a"]}, z, ["a", "b"], fit_rows, seed=0)
    assert max(np.corrcoef(swapped[1000:, j], z[1000:, j])[0, 1] ** 2 for j in range(2)) < 0.1  # no other block


def test_out_of_fold_reads_every_row_with_regressions_that_did_not_see_it(reading, monkeypatch):
    seen = []

    def recording(features, latents, blocks, fit_rows, seed):
        seen.append(np.asarray(fit_rows))
        return np.where(np.asarray(fit_rows)[:, None], np.nan, 1.0) * np.ones(latents.shape)

    monkeypatch.setattr(reading, "read_latents", recording)
    z = np.zeros((103, 2))
    out = reading.out_of_fold({"a": z}, z, ["a", "a"], folds=4, seed=0)
    assert len(seen) == 4 and np.isfinite(out).all()  # each row taken from a call that did not fit on it
    held_out = np.array([~rows for rows in seen])
    np.testing.assert_array_equal(held_out.sum(0), np.ones(103))  # each row held out exactly once


def test_reading_names_what_is_wrong(reading):
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"blocks: expected one name per latent \(2\); found 1"):
        reading.read_latents({"a": z}, z, ["a"], np.arange(5), seed=0)
    with pytest.raises(ValueError, match=r"features: no inputs for the block\(s\) \['b'\]"):
        reading.read_latents({"a": z}, z, ["a", "b"], np.arange(5), seed=0)
    with pytest.raises(ValueError, match="folds: expected an integer from 2 to the number of rows"):
        reading.out_of_fold({"a": z}, z, ["a", "a"], folds=1, seed=0)


def test_read_r2_versions_lose_precision_on_every_latent_and_only_selects_them(monkeypatch, capsys):
    bench = load_benchmark("persona_bound")
    scored = {}

    def recording(layout, spec, options, z, truth, *, steps, seed):
        scored[len(scored)] = z
        return {"map_shd": 0, "map_edges": 0, "map_wrong": [], "q_shd": 0, "q_auroc": 1.0, "q_ece": 0.0}

    monkeypatch.setattr(bench, "graph_bound", recording)
    bench.main(["--entities", "600", "--seeds", "0", "--folds", "2", "--read-r2", "0.5", "--only", "read R2"])
    out = capsys.readouterr().out
    assert len(scored) == 1 and "read R2 0.5" in out and out.count(" read") == 1 and "truth" not in out
    truth = persona(600, seed=0)[1].latents
    kept = [np.corrcoef(scored[0][:, j], truth[:, j])[0, 1] ** 2 for j in range(10)]
    np.testing.assert_allclose(kept, 0.5, atol=0.1)


def test_plane_rotation_turns_one_plane_by_the_angle_and_keeps_the_rest():
    bench = load_benchmark("persona_bound")
    R = bench.plane_rotation(5, 30.0, np.random.default_rng(0))
    np.testing.assert_allclose(R @ R.T, np.eye(5), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)
    eig = np.linalg.eigvals(R)
    np.testing.assert_allclose(np.sort(np.abs(np.angle(eig))), np.deg2rad([0, 0, 0, 30, 30]), atol=1e-9)
