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


def test_every_output_reports_the_same_edge_probabilities(fitted, tmp_path):
    """API, sample_posterior, InferenceData, edges.csv and report.md agree; draws agree within MC error."""
    import pandas as pd

    from pyro_personax.inference.diagnostics import edge_summary

    px, data = fitted
    api = px.edge_probabilities()
    names = list(api.index)
    draws = px.sample_posterior(4000, seed=5)
    per_chain = np.stack([px.edge_probabilities(c).to_numpy() for c in range(px.num_chains)])
    np.testing.assert_array_equal(draws["edge_probabilities"].mean(0), api.to_numpy())
    np.testing.assert_array_equal(draws["edge_probabilities"], per_chain)
    se = np.sqrt(per_chain * (1 - per_chain) / 4000)
    assert np.all(np.abs(draws["edges"].mean(1) - per_chain) <= 4 * se + 1e-12)
    idata = px.to_inference_data(num_samples=50, seed=2)
    table = edge_summary(idata).set_index(["parent", "child"])
    for i, p in enumerate(names):
        for j, c in enumerate(names):
            if i != j:
                assert table.loc[(p, c), "p_edge"] == api.loc[p, c]
                for k in range(px.num_chains):
                    assert table.loc[(p, c), f"p_edge_chain_{k}"] == per_chain[k, i, j]
    out = edge_report(idata, tmp_path / "report")
    csv = pd.read_csv(out / "edges.csv").set_index(["parent", "child"])
    md = (out / "report.md").read_text()
    for (p, c), row in csv.iterrows():
        assert row["p_edge"] == pytest.approx(api.loc[p, c], abs=1e-15)
        if row["p_edge"] >= 0.05:
            assert f"| {p} | {c} |" in md and f"| {round(api.loc[p, c], 3)} |" in md
