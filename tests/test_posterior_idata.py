"""A fitted PersonaX -> InferenceData -> netCDF and edge report (the real path, small)."""

import numpy as np
import pytest

from pyro_personax import PersonaX, edge_report
from pyro_personax.inference.diagnostics import load_inference_data, save_inference_data


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    z = rng.laplace(size=(120, 3))
    z[:, 2] += 0.8 * z[:, 0]
    face = np.stack([z[:, :2] @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(120, 4)) for _ in range(2)], 1)
    text = np.stack([z[:, 2:] @ rng.normal(size=(1, 3)) + 0.1 * rng.normal(size=(120, 3)) for _ in range(3)], 1)
    mask = np.ones((120, 3), dtype=bool)
    mask[:10, 1] = False
    text[:10, 1] = np.nan  # missing measurement, masked
    from pyro_personax.data import MultiModalData

    data = MultiModalData({"face": face, "text": text}, masks={"text": mask})
    px = PersonaX(data, latent_dims={"face": 2, "text": 1}, shared_dim=0, mechanism="linear")
    px.fit(data, num_epochs=2, batch_size=60, num_chains=2, seed=0, progress=False, device="cpu")
    return px, data


def test_inference_data_groups_and_shapes(fitted):
    px, data = fitted
    idata = px.to_inference_data(num_samples=300, num_predictive=5, max_entities=30, seed=1)
    assert set(idata.groups()) >= {"posterior", "sample_stats", "posterior_predictive", "observed_data", "latent_means"}
    assert idata.posterior["edges"].shape == (2, 300, 3, 3)
    assert list(idata.posterior["parent"].values) == list(px.layout.names)
    assert idata.posterior_predictive["x_text"].shape == (2, 5, 30, 3, 3)
    assert idata.sample_stats["pareto_k"].dims == ("chain", "entity")
    assert idata.latent_means["z_mean"].shape == (2, 30, 3)
    # the edge draws follow the guide's edge probabilities, chain by chain
    for c in range(2):
        freq = idata.posterior["edges"].values[c].mean(0)
        np.testing.assert_allclose(freq, px.edge_probabilities(chain=c).values, atol=0.1)
    # masked measurements are NaN in observed_data; the user's array is untouched
    obs = idata.observed_data["x_text"].values
    rows = px.to_inference_data(num_samples=2, num_predictive=1, max_entities=30, seed=1)
    assert np.isnan(obs).any() == np.isin(np.arange(10), rows.observed_data["entity"].values).any()
    assert np.isnan(data.values["text"][:10, 1]).all()


def test_same_seed_same_draws(fitted):
    px, _ = fitted
    a = px.to_inference_data(num_samples=20, num_predictive=2, max_entities=10, seed=3)
    b = px.to_inference_data(num_samples=20, num_predictive=2, max_entities=10, seed=3)
    np.testing.assert_array_equal(a.posterior["edges"].values, b.posterior["edges"].values)
    np.testing.assert_array_equal(a.sample_stats["log_weight"].values, b.sample_stats["log_weight"].values)


def test_netcdf_round_trip_and_report(fitted, tmp_path):
    px, _ = fitted
    idata = px.to_inference_data(num_samples=50, num_predictive=3, max_entities=20)
    path = tmp_path / "posterior.nc"
    save_inference_data(idata, path)
    back = load_inference_data(path)
    np.testing.assert_array_equal(back.posterior["edges"].values, idata.posterior["edges"].values)
    out = edge_report(back, tmp_path / "report")
    for name in ("report.md", "report.html", "edges.csv", "heatmap.png", "graph.png", "elbo.png"):
        assert (out / name).stat().st_size > 0, name
    with pytest.raises(FileExistsError):
        edge_report(back, tmp_path / "report")


def test_loaded_model_without_data_gives_the_graph_posterior(fitted, tmp_path):
    px, _ = fitted
    px.save(tmp_path / "model")
    loaded = PersonaX.load(tmp_path / "model")
    idata = loaded.to_inference_data(num_samples=10)
    assert "posterior_predictive" not in idata.groups()
    assert idata.posterior["edges"].shape == (2, 10, 3, 3)
