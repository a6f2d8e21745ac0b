"""Sensitivity analyses: leave-one-measurement-out and the prior sweep (pyro_personax.sensitivity)."""

import json

import numpy as np
import pandas as pd
import pytest

from pyro_personax import PersonaX
from pyro_personax.cli import main
from pyro_personax.data import MultiModalData
from pyro_personax.inference import GraphRefinement
from pyro_personax.layout import LatentLayout
from pyro_personax.sensitivity import (
    adjacency_frame,
    leave_one_measurement_out,
    mask_measurements,
    prior_sweep,
    write_sensitivity_page,
)
from pyro_personax.sensitivity.measurements import _verdicts
from pyro_personax.synthetic import MeasurementEdge, observe_latents, persona

TINY = {"num_epochs": 1, "num_chains": 1, "device": "cpu", "refine_graph": False, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    data = MultiModalData({"face": rng.normal(size=(40, 1, 3)), "text": rng.normal(size=(40, 3, 3))})
    return data, PersonaX(data, latent_dims={"face": 1, "text": 1}, mechanism="linear")


# ---------------------------------------------------------------------------- bad input
def test_mask_measurements_masks_only_the_named_ones_and_refuses_bad_indices(tiny):
    data, _ = tiny
    masked = mask_measurements(data, "text", [0, 2])
    assert masked.masks["text"].any(axis=0).tolist() == [False, True, False]
    assert data.masks["text"].all()  # the input is not changed
    np.testing.assert_array_equal(masked.values["text"], data.values["text"])
    with pytest.raises(ValueError, match=r"drop: modality 'text' has measurements 0..2; found \[3\]"):
        mask_measurements(data, "text", [3])


def test_leave_one_out_refuses_bad_input_naming_the_argument(tiny):
    data, px = tiny
    with pytest.raises(ValueError, match=r"modality: expected one of the data's modalities \['face', 'text'\]; "
                                         r"found 'voice'"):
        leave_one_measurement_out(px, data, "voice", fit_options=TINY)
    with pytest.raises(ValueError, match="at least 2 measurements; 'face' has 1"):
        leave_one_measurement_out(px, data, "face", fit_options=TINY)
    with pytest.raises(ValueError, match=r"threshold: expected a number in \(0, 1\); found 1.5"):
        leave_one_measurement_out(px, data, "text", threshold=1.5, fit_options=TINY)
    with pytest.raises(TypeError, match="px: expected a PersonaX"):
        leave_one_measurement_out("model", data, "text", fit_options=TINY)
    with pytest.raises(ValueError, match="fit_options: unknown keys"):
        leave_one_measurement_out(px, data, "text", fit_options={"epochs": 1})


def test_prior_sweep_refuses_bad_grids_naming_the_argument(tiny):
    data, px = tiny
    with pytest.raises(ValueError, match=r"edge_prior: expected numbers in \(0, 1\); found 0"):
        prior_sweep(px, data, edge_prior=[0, 0.5], fit_options=TINY)
    with pytest.raises(ValueError, match="sparsity: expected finite numbers >= 0 or 'bic'; found -1"):
        prior_sweep(px, data, sparsity=[-1], fit_options=TINY)
    with pytest.raises(ValueError, match="sparsity: expected at least one value; found none"):
        prior_sweep(px, data, sparsity=[], fit_options=TINY)
    with pytest.raises(ValueError, match="grid: expected 'separate' or 'product'; found 'all'"):
        prior_sweep(px, data, grid="all", fit_options=TINY)


def test_measurement_edge_is_validated_naming_the_argument():
    layout = LatentLayout(0, {"face": 1, "text": 2})
    z = np.random.default_rng(0).normal(size=(30, 3))
    A = np.zeros((3, 3), dtype=int)
    K = {"num_measurements": {"face": 1, "text": 2}}
    with pytest.raises(ValueError, match=r"modality 'text' has measurements 0..1; found 2"):
        observe_latents(z, A, layout, measurement_edges=[MeasurementEdge("face_1", "text_1", "text", 2)], **K)
    with pytest.raises(ValueError, match="parent 'text_2' is read by modality 'text' itself"):
        observe_latents(z, A, layout, measurement_edges=[MeasurementEdge("text_2", "text_1", "text", 0)], **K)
    with pytest.raises(ValueError, match="child 'face_1' is not read by modality 'text'"):
        observe_latents(z, A, layout, measurement_edges=[MeasurementEdge("face_1", "face_1", "text", 0)], **K)
    with pytest.raises(ValueError, match="unknown parent latent 'age'"):
        observe_latents(z, A, layout, measurement_edges=[MeasurementEdge("age", "text_1", "text", 0)], **K)
    with pytest.raises(ValueError, match="MeasurementEdge weight: expected a finite number > 0; found 0"):
        MeasurementEdge("face_1", "text_1", "text", 0, weight=0)


def test_a_planted_measurement_edge_changes_that_measurement_only():
    plain, _ = persona(80, seed=2)
    planted, truth = persona(80, seed=2, measurement_edges=[MeasurementEdge("skin_tone", "openness", "text", 1)])
    llms = list(plain.text)
    changed = [not np.allclose(plain.text[m], planted.text[m], equal_nan=True) for m in llms]
    assert changed == [False, True, False]
    assert all(np.allclose(a, b, equal_nan=True) for a, b in zip(plain.face, planted.face))
    assert truth.info["measurement_edges"][0].child == "openness" and truth.adjacency.sum() == 12


# ---------------------------------------------------------------------------- links in either direction
def _edges(rows: dict, variants: list) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(list(rows), names=["parent", "child"])
    frame = pd.DataFrame(list(rows.values()), index=index, columns=variants)
    frame.insert(0, "edge_class", "cross-modal")
    return frame


def test_adjacency_frame_sums_the_two_directions_of_each_pair():
    edges = _edges({("a", "t"): [0.9, 0.2], ("b", "t"): [0.1, 0.0], ("t", "a"): [0.05, 0.75], ("t", "b"): [0.3, 0.1]},
                   ["all", "without llm_a"])
    links = adjacency_frame(edges)
    assert list(links.index) == [("a", "t"), ("b", "t")] and links.index.names == ["latent_a", "latent_b"]
    np.testing.assert_allclose(links[["all", "without llm_a"]].to_numpy(), [[0.95, 0.95], [0.4, 0.1]])
    assert links["edge_class"].tolist() == ["cross-modal", "cross-modal"]
    with pytest.raises(ValueError, match="edges: expected a DataFrame indexed by \\(parent, child\\)"):
        adjacency_frame(edges.drop(columns="edge_class"))


def test_a_link_whose_direction_flips_between_variants_is_stable_as_a_link_only():
    variants = ["all", "without llm_a", "without llm_b", "without llm_c"]
    kept = {"all": {"llm_a", "llm_b", "llm_c"}, "without llm_a": {"llm_b", "llm_c"},
            "without llm_b": {"llm_a", "llm_c"}, "without llm_c": {"llm_a", "llm_b"}}
    names = ["llm_a", "llm_b", "llm_c"]
    edges = _edges({("a", "t"): [0.36, 0.17, 1.00, 0.01], ("t", "a"): [0.64, 0.83, 0.00, 0.99],
                    ("b", "t"): [0.7, 0.01, 0.4, 0.2], ("t", "b"): [0.2, 0.02, 0.5, 0.6]}, variants)
    directed = _verdicts(edges, kept, names, 0.5)["verdict"]
    # directed, the stable link reads as resting on llm_b: the one variant that orients it the other way
    assert directed.to_dict() == {("a", "t"): "unstable", ("t", "a"): "rests on llm_b", ("b", "t"): "unstable",
                                  ("t", "b"): "rests on llm_a"}
    links = _verdicts(adjacency_frame(edges), kept, names, 0.5)
    assert links["verdict"].to_dict() == {("a", "t"): "stable", ("b", "t"): "rests on llm_a"}
    assert links.loc[("b", "t"), "rests_on"] == "llm_a"


def test_tiny_runs_give_one_column_per_variant_and_a_page(tiny, tmp_path):
    data, px = tiny
    loo = leave_one_measurement_out(px, data, "text", fit_options=TINY, seed=3)
    names = data.measurement_names["text"]
    assert list(loo.variants.index) == ["all", *(f"without {n}" for n in names), *(f"only {n}" for n in names)]
    assert list(loo.edges.columns) == ["edge_class", *loo.variants.index]
    assert set(loo.edges["edge_class"]) == {"cross-modal"} and len(loo.edges) == 2
    assert list(loo.latent_agreement.columns) == ["face", "text"]
    assert loo.latent_agreement.loc["all"].tolist() == [1.0, 1.0]
    assert set(loo.stability["verdict"]) <= {"stable", "unstable", "absent"} | {f"rests on {n}" for n in names}
    links = loo.adjacencies
    assert len(links) == 1 and len(loo.adjacency_stability) == 1  # face_1 - text_1, either direction
    np.testing.assert_allclose(links.iloc[0, 1:].to_numpy(dtype=float), loo.edges.iloc[:, 1:].sum().to_numpy())
    assert set(loo.stable_edges(directed=False)) <= set(links.index)
    sweep = prior_sweep(px, data, edge_prior=[0.05], sparsity=[0.0, 10.0], fit_options=TINY)
    assert sweep.settings["penalty"].tolist() == pytest.approx([0.5 * np.log(40) * 1.0, 0.0, 10.0], rel=0.2)
    page = write_sensitivity_page(tmp_path / "page", loo, sweep)
    assert "Leave one measurement" in page.read_text() and (tmp_path / "page" / "prior.png").stat().st_size > 0
    assert "links (either direction)" in page.read_text() and (tmp_path / "page" / "prior_adjacency.csv").is_file()
    assert list(sweep.adjacencies().columns) == ["edge_class", *sweep.settings.index]
    with pytest.raises(FileExistsError, match="not empty; pass overwrite=True"):
        write_sensitivity_page(tmp_path / "page", loo)
    write_sensitivity_page(tmp_path / "page", loo, overwrite=True)
    with pytest.raises(ValueError, match="at least one result"):
        write_sensitivity_page(tmp_path / "other")


def test_cli_sensitivity_on_a_run_folder(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "face.npy", rng.normal(size=(40, 1, 3)))
    np.save(tmp_path / "text.npy", rng.normal(size=(40, 2, 3)))
    config = {"data": {"measurements": {"face": "face.npy", "text": "text.npy"}},
              "model": {"latent_dims": {"face": 1, "text": 1}, "mechanism": "linear"},
              "fit": {"num_epochs": 1, "num_chains": 1, "device": "cpu", "refine_graph": False, "progress": False}}
    (tmp_path / "run.json").write_text(json.dumps(config))
    run = tmp_path / "run"
    assert main(["fit", str(tmp_path / "run.json"), "--out", str(run), "--num-samples", "5", "--no-progress"]) == 0
    assert json.loads((run / "run_config.json").read_text())["fit"]["num_epochs"] == 1
    capsys.readouterr()
    args = ["sensitivity", str(run), "--edge-prior", "0.1", "--sparsity", "1", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "leave one 'text' measurement out" in out and (run / "sensitivity" / "sensitivity.html").is_file()
    assert main(args) == 2  # the folder is not empty now
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--analysis", "prior", "--overwrite"]) == 0
    assert main(["sensitivity", str(run), "--modality", "face", "--out", str(tmp_path / "o")]) == 2
    assert "'face' has 1" in capsys.readouterr().err
    assert main(["sensitivity", str(tmp_path)]) == 2
    assert "RUN_DIR: expected" in capsys.readouterr().err


# ---------------------------------------------------------------------------- what the analyses find
# Three single-latent modalities, so every link is cross-modal (identified) and no block
# has a basis to find: a -> t in every measurement of t, and b -> t planted in the first
# LLM's measurement only (it reads standardise(t + 0.8 standardise(b))). With three
# measurements the planted edge is a minority in "all" and in every "without" variant, so
# only the variant with llm_a alone sees it: the test runs the default single=True.
LINKS = LatentLayout(0, {"a": 1, "b": 1, "t": 1}, names=("a", "b", "t"))
SMALL = {"num_epochs": 60, "num_chains": 1, "device": "cpu", "batch_size": 256, "progress": False,
         "refine_graph": GraphRefinement(mechanism_steps=100, graph_steps=200, num_restarts=2, num_particles=8)}


def _planted(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.laplace(size=n), rng.laplace(size=n)
    z = np.stack([a, b, np.tanh(a) + 0.3 * rng.laplace(size=n)], 1)
    A = np.zeros((3, 3), dtype=int)
    A[0, 2] = 1
    data, _ = observe_latents((z - z.mean(0)) / z.std(0), A, LINKS, num_measurements={"a": 1, "b": 1, "t": 3},
                              measurement_edges=[MeasurementEdge("b", "t", "t", 0, weight=0.8)], seed=seed)
    return MultiModalData({m: data.values[m] for m in data.modalities},
                          measurement_names={"t": ["llm_a", "llm_b", "llm_c"]})


@pytest.mark.slow
def test_leave_one_out_flags_the_link_one_llm_alone_carries():
    result = leave_one_measurement_out(PersonaX(LINKS, mechanism="mlp"), _planted(), "t", fit_options=SMALL, seed=0)
    links = result.adjacency_stability.join(result.adjacencies.drop(columns="edge_class")).round(2)
    P = result.adjacencies.drop(columns="edge_class")
    with_a = [v for v in P.columns if "llm_a" in result.variants.loc[v, "kept"].split(", ")]
    without_a = [v for v in P.columns if v not in with_a]
    # b - t rests on llm_a: hidden by the majority in "all", never a link without llm_a, a link with it
    assert P.loc[("b", "t"), "all"] < 0.5, links
    assert (P.loc[("b", "t"), without_a] < 0.5).all(), links
    assert (P.loc[("b", "t"), with_a] >= 0.5).any(), links
    # a - t, which every measurement carries, holds whatever single measurement is left out
    assert (P.loc[("a", "t"), ["all", "without llm_a", "without llm_b", "without llm_c"]] >= 0.5).all(), links


# a -> t across modalities (identified), and the chain u1 -> u2 -> u3 inside one block (undecided)
SWEPT = LatentLayout(0, {"a": 1, "t": 1, "u": 3}, names=("a", "t", "u1", "u2", "u3"))


@pytest.mark.slow
def test_prior_sweep_identified_links_hold_and_undecided_edges_follow_the_prior():
    rng = np.random.default_rng(0)
    n = 1000
    a, u1 = rng.laplace(size=n), rng.laplace(size=n)
    u2 = np.tanh(u1) + 0.5 * rng.laplace(size=n)
    z = np.stack([a, np.tanh(a) + 0.5 * rng.laplace(size=n), u1, u2, np.sin(u2) + 0.5 * rng.laplace(size=n)], 1)
    A = np.zeros((5, 5), dtype=int)
    A[0, 1] = A[2, 3] = A[3, 4] = 1
    data, _ = observe_latents((z - z.mean(0)) / z.std(0), A, SWEPT, num_measurements=2, seed=0)
    sweep = prior_sweep(PersonaX(SWEPT, mechanism="mlp"), data, edge_prior=None, sparsity=[0.0, 30.0],
                        fit_options=SMALL, seed=0)
    links = sweep.adjacencies()
    assert (links.loc[("a", "t")].drop("edge_class") >= 0.5).all(), links
    undecided = sweep.undecided.drop(columns="edge_class").sum()
    # no sparsity charge keeps far more of the undecided edges than a strong one
    assert undecided.filter(like="lambda=0").iloc[0] > undecided.filter(like="lambda=30").iloc[0] + 0.5, sweep.undecided
