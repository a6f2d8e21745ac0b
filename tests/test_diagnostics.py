"""InferenceData layout, Pareto-k, edge summary, R-hat over restarts, netCDF round-trip."""

import json
import warnings

import arviz as az
import numpy as np
import pytest
import torch
import xarray as xr

from pyro_personax.inference import diagnostics as dg
from pyro_personax.inference.diagnostics.read import _chain_diagnostics
from pyro_personax.layout import LatentLayout

C, S, N = 3, 200, 12


@pytest.fixture
def layout():
    return LatentLayout(1, {"face": 2, "text": 2})


def _edges(layout, probs_per_chain, seed=0):
    rng = np.random.default_rng(seed)
    P = np.asarray(probs_per_chain)
    draws = rng.random((P.shape[0], S, layout.latent_dim, layout.latent_dim)) < P[:, None]
    return draws.astype(int)


def _probs(layout):
    P = np.zeros((layout.latent_dim,) * 2)
    P[0, 1], P[1, 2], P[3, 4] = 0.9, 0.6, 0.3
    return P


@pytest.fixture
def idata(layout):
    rng = np.random.default_rng(1)
    D = layout.latent_dim
    E = _edges(layout, [_probs(layout)] * C)
    return dg.build_inference_data(
        layout, E,
        edge_strengths=np.abs(rng.normal(size=(C, S, D, D))) * E,
        noise_params={"noise_scale": rng.random((C, S, D))},
        elbo=[np.arange(10.0), np.arange(7.0), np.arange(4.0)],
        latent_means=rng.normal(size=(C, N, D)),
        posterior_predictive={"face": rng.normal(size=(C, S, N, 3, 4))},
        observed={"face": rng.normal(size=(N, 3, 4))},
        log_weights=rng.normal(size=(C, S)),
        attrs={"learning_rate": 1e-3, "num_chains": C},
    )


def test_groups_dims_and_coords(idata, layout):
    assert set(idata.groups()) == {
        "posterior", "adjacency", "fit_trace", "sample_stats", "psis", "posterior_predictive", "observed_data",
        "latent_means",
    }
    post = idata.posterior
    assert post["edges"].dims == ("chain", "draw", "edge")
    assert post["edge_strength"].dims == ("chain", "draw", "edge")
    assert post["noise_scale"].dims == ("chain", "draw", "latent")
    # the free edges whose draws vary: three cells of _probs
    assert list(post["edge"].values) == ["s1->face_1", "face_1->face_2", "text_1->text_2"]
    assert list(post["edge_parent"].values) == ["s1", "face_1", "text_1"]
    assert list(post["edge_child"].values) == ["face_1", "face_2", "text_2"]
    assert list(post["edge_class"].values) == ["shared->modality", "within-block", "within-block"]
    full = idata.adjacency
    assert full["edges"].dims == ("chain", "draw", "parent", "child")
    assert full["edge_strength"].dims == ("chain", "draw", "parent", "child")
    assert list(full["parent"].values) == list(layout.names)
    assert list(full["child"].values) == list(layout.names)
    assert list(full["parent_block"].values) == list(layout.block_of)
    np.testing.assert_array_equal(post["edges"].sel(edge="face_1->face_2").values, full["edges"].values[:, :, 1, 2])
    assert idata.fit_trace["elbo"].dims == ("chain", "epoch")
    assert idata.psis["pareto_k"].dims == ("chain",)
    assert set(idata.sample_stats.data_vars) == {"log_weight"}
    assert idata.latent_means["z_mean"].dims == ("chain", "entity", "latent")
    assert idata.posterior_predictive["x_face"].dims == ("chain", "draw", "entity", "face_measurement", "face_feature")
    assert idata.observed_data["x_face"].dims == ("entity", "face_measurement", "face_feature")
    for group in idata.groups():
        assert "sample" not in idata[group].dims
    elbo = idata.fit_trace["elbo"].values
    assert elbo.shape == (C, 10)
    assert np.isnan(elbo[2, 4:]).all() and np.array_equal(elbo[2, :4], np.arange(4.0))
    assert list(idata.fit_trace["epoch"].values) == list(range(10))


def test_attrs_hold_layout_config_and_versions(idata, layout):
    assert dg.layout_of(idata).names == layout.names
    meta = dg.config_of(idata)
    assert meta["config"] == {"learning_rate": 1e-3, "num_chains": C}
    assert meta["version_arviz"] == az.__version__
    assert "version_torch" in meta and "version_pyro_ppl" in meta
    assert meta["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_strength_per_chain_is_repeated_over_draws(layout):
    D = layout.latent_dim
    E = _edges(layout, [_probs(layout)] * 2)
    W = np.arange(2 * D * D, dtype=float).reshape(2, 1, D, D)
    idata = dg.build_inference_data(layout, E, edge_strengths=W)
    got = idata.adjacency["edge_strength"].values
    assert got.shape == (2, S, D, D)
    assert np.array_equal(got[1, 17], W[1, 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"edges": np.zeros((2, 3, 4, 4))}, "edges: expected shape"),
        ({"edges": np.full((2, 3, 5, 5), 0.5)}, "0/1"),
        ({"edge_strengths": np.zeros((2, 3, 5, 5))}, "edge_strengths"),
        ({"noise_params": {"edges": np.zeros((2, 4, 5))}}, "reserved"),
        ({"elbo": [np.zeros(3)]}, "one trace per chain"),
        ({"log_weights": np.zeros((2, 3))}, "log_weights: expected shape"),
        ({"log_likelihood": {"face": np.zeros((2, 4))}}, "log_likelihood\\['face'\\]: expected a 3-d"),
        ({"log_likelihood": {"face": np.zeros((2, 3, 6))}}, "log_likelihood\\['face'\\]: expected shape"),
        ({"log_likelihood": {"face": np.full((2, 4, 6), np.nan)}}, "finite"),
        ({"observed": {"face": np.zeros((3, 2))}}, "observed"),
        ({"attrs": {"bad": object()}}, "JSON"),
    ],
)
def test_bad_input_names_the_argument(layout, kwargs, match):
    args = {"edges": np.zeros((2, 4, 5, 5), dtype=int), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        dg.build_inference_data(layout, **args)


def test_az_summary_runs(idata):
    summary = az.summary(idata, var_names=["noise_scale"])
    assert len(summary) == 5 and summary["r_hat"].notna().all()
    full = dg.posterior_summary(idata)
    # three non-constant edge cells, three strength cells, five noise parameters
    assert len(full) == 3 + 3 + 5
    assert "edges[s1->face_1]" in full.index


def test_netcdf_round_trip_preserves_values(idata, tmp_path):
    path = dg.save_inference_data(idata, tmp_path / "posterior.nc")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        dg.save_inference_data(idata, path)
    back = dg.load_inference_data(path)
    assert set(back.groups()) == set(idata.groups())
    for group in idata.groups():
        for var in idata[group].data_vars:
            np.testing.assert_array_equal(back[group][var].values, idata[group][var].values)
            assert back[group][var].dims == idata[group][var].dims
    assert list(back.adjacency["parent"].values) == list(idata.adjacency["parent"].values)
    assert list(back.posterior["edge"].values) == list(idata.posterior["edge"].values)
    assert json.loads(back.posterior.attrs["layout"]) == json.loads(idata.posterior.attrs["layout"])
    dg.save_inference_data(idata, path, overwrite=True)


def test_edge_summary_table(idata, layout):
    table = dg.edge_summary(idata)
    D = layout.latent_dim
    assert len(table) == D * (D - 1)
    expected = {"parent", "child", "absorbable", "p_edge", "strength_mean", "strength_hdi_low", "strength_hdi_high",
                "r_hat", "ess_bulk", *(f"p_edge_chain_{c}" for c in range(C))}
    assert expected <= set(table.columns)
    top = table.iloc[0]
    assert (top["parent"], top["child"]) == ("s1", "face_1")
    assert abs(top["p_edge"] - 0.9) < 0.04
    E = dg.edge_draws(idata)
    assert np.isclose(top["p_edge_chain_1"], E[1, :, 0, 1].mean())
    assert top["strength_hdi_low"] <= top["strength_mean"] <= top["strength_hdi_high"]
    constant = table[table["p_edge"] == 0]
    assert constant["r_hat"].isna().all() and len(constant) == D * (D - 1) - 3
    assert not table.loc[table["child"] == "s1", "allowed"].any()
    absorbable = layout.absorbable_mask()
    index = {name: i for i, name in enumerate(layout.names)}
    for row in table.itertuples():
        assert row.absorbable == absorbable[index[row.parent], index[row.child]]
    assert table["absorbable"].dtype == bool and table["absorbable"].any() and not table["absorbable"].all()


def test_rhat_near_one_for_agreeing_restarts(layout):
    E = _edges(layout, [_probs(layout)] * 4, seed=3)
    table = dg.edge_summary(dg.build_inference_data(layout, E))
    live = table[table["p_edge"] > 0]
    assert live["r_hat"].max() < 1.02, live[["parent", "child", "r_hat"]]
    assert live["ess_bulk"].min() > 300


def test_rhat_clearly_above_one_for_restarts_with_different_graphs(layout):
    P1 = _probs(layout)
    P2 = np.zeros_like(P1)
    P2[0, 3], P2[3, 4], P2[2, 4] = 0.9, 0.3, 0.8  # a different graph
    E = _edges(layout, [P1, P2, P1, P2], seed=4)
    table = dg.edge_summary(dg.build_inference_data(layout, E)).set_index(["parent", "child"])
    for edge in [("s1", "face_1"), ("face_1", "face_2"), ("s1", "text_1"), ("face_2", "text_2")]:
        assert table.loc[edge, "r_hat"] > 1.3, (edge, table.loc[edge, "r_hat"])
    assert table.loc[("text_1", "text_2"), "r_hat"] < 1.05  # same P in both graphs


def test_rhat_is_inf_when_chains_are_constant_but_different(layout):
    D = layout.latent_dim
    E = np.zeros((2, 50, D, D), dtype=int)
    E[0, :, 0, 1] = 1
    table = dg.edge_summary(dg.build_inference_data(layout, E)).set_index(["parent", "child"])
    assert np.isinf(table.loc[("s1", "face_1"), "r_hat"])


def test_pareto_k_flags_a_bad_guide():
    rng = np.random.default_rng(0)
    good = rng.normal(0.0, 0.3, size=1000)
    bad = np.log(np.abs(rng.standard_cauchy(1000))) * 3.0
    k = dg.pareto_k(np.stack([good, bad]))
    assert k.shape == (2,)
    assert k[0] < 0.5 and k[1] > 0.7, k
    with pytest.raises(ValueError, match="log_weights"):
        dg.pareto_k(np.array([[0.0, np.nan]]))


def test_per_entity_log_weights_give_pareto_k_per_chain_and_entity(layout):
    rng = np.random.default_rng(0)
    lw = rng.normal(0.0, 0.3, size=(2, 1000, 3))
    lw[1, :, 2] = np.log(np.abs(rng.standard_cauchy(1000))) * 3.0  # one badly fitted entity
    idata = dg.build_inference_data(
        layout, np.zeros((2, 1000, 5, 5), dtype=int), log_weights=lw, entity_ids=np.array([10, 11, 12])
    )
    k = idata.psis["pareto_k"]
    assert k.dims == ("chain", "entity")
    assert list(k["entity"].values) == [10, 11, 12]
    assert (k.values[0] < 0.5).all() and (k.values[1, :2] < 0.5).all()
    assert k.values[1, 2] > 0.7
    assert idata.sample_stats["log_weight"].dims == ("chain", "draw", "entity")


def test_predictive_draws_may_differ_from_posterior_draws(layout):
    rng = np.random.default_rng(0)
    idata = dg.build_inference_data(
        layout,
        np.zeros((2, 50, 5, 5), dtype=int),
        posterior_predictive={"face": rng.normal(size=(2, 7, 4, 3, 2))},
        observed={"face": rng.normal(size=(4, 3, 2))},
    )
    assert idata.posterior_predictive["x_face"].shape == (2, 7, 4, 3, 2)
    assert idata.posterior["edges"].sizes["draw"] == 50


def test_rhat_of_binary_draws_with_median_one_half_is_finite():
    """Rank-folded R-hat is 0/0 here; the split R-hat we use is defined and near 1."""
    rng = np.random.default_rng(0)
    draws = np.zeros((2, 30, 1))
    draws[0, rng.choice(30, 12, replace=False)] = 1
    draws[1, rng.choice(30, 18, replace=False)] = 1  # 30 of 60 ones: pooled median 0.5
    r_hat, ess = _chain_diagnostics(draws)
    assert np.isfinite(r_hat[0]) and 0.95 < r_hat[0] < 1.2
    assert np.isfinite(ess[0])


# --------------------------------------------------------------------------- edges ArviZ can summarise
def _mixed_edges(layout):
    """Draws with every kind of cell: varying, never drawn, required, and fixed per restart but disagreeing."""
    D = layout.latent_dim
    P = np.zeros((D, D))
    P[0, 1], P[1, 2], P[3, 4] = 0.9, 0.6, 0.3
    E = _edges(layout, [P] * 2, seed=5)
    E[:, :, 3, 1] = 1  # required text_1 -> face_1
    E[0, :, 1, 3] = 1  # face_1 -> text_1: always in restart 0, never in restart 1
    E[:, 7, 2, 3] = 1  # face_2 -> text_1: drawn once in each chain's first half
    return E


def test_posterior_edges_hold_the_cells_arviz_can_diagnose():
    layout = LatentLayout(1, {"face": 2, "text": 2}, required=[("text_1", "face_1")])
    E = _mixed_edges(layout)
    idata = dg.build_inference_data(layout, E)
    edges = idata.posterior["edge"].values.tolist()
    assert edges == ["s1->face_1", "face_1->face_2", "face_2->text_1", "text_1->text_2"]
    assert dg.varying_edges(layout, E).sum() == len(edges)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
        summary = az.summary(idata, var_names=["edges"])
    assert list(summary.index) == [f"edges[{e}]" for e in edges] and summary["r_hat"].notna().all()
    # every cell stays readable, and the edge table still reports the restarts' disagreement
    np.testing.assert_array_equal(dg.edge_draws(idata), E)
    table = dg.edge_summary(idata).set_index(["parent", "child"])
    assert np.isinf(table.loc[("face_1", "text_1"), "r_hat"])
    assert table.loc[("text_1", "face_1"), "p_edge"] == 1.0


def test_files_in_the_earlier_layout_are_still_read(layout):
    """posterior.edges over (parent, child), sample_stats.elbo over step and sample_stats.pareto_k."""
    E = _edges(layout, [_probs(layout)] * 2)
    D = layout.latent_dim
    names = list(layout.names)
    post = xr.Dataset(
        {"edges": (("chain", "draw", "parent", "child"), E),
         "edge_strength": (("chain", "draw", "parent", "child"), E * 2.0)},
        coords={"chain": [0, 1], "draw": np.arange(S), "parent": names, "child": names},
        attrs={"layout": json.dumps(layout.to_dict())},
    )
    stats = xr.Dataset({"elbo": (("chain", "step"), np.ones((2, 4))), "pareto_k": (("chain",), np.zeros(2))})
    old = az.InferenceData(posterior=post, sample_stats=stats)
    np.testing.assert_array_equal(dg.edge_draws(old), E)
    assert dg.elbo_traces(old).shape == (2, 4)
    assert dg.pareto_k_of(old).shape == (2,)
    table = dg.edge_summary(old).set_index(["parent", "child"])
    assert 0 < E[:, :, 0, 1].mean() < 1
    # strengths are summarised over the draws that hold the edge: 2 in each, not 2 * P(edge)
    row = table.loc[("s1", "face_1")]
    assert row["strength_mean"] == pytest.approx(2.0)
    assert row["strength_hdi_low"] == pytest.approx(2.0) and row["strength_hdi_high"] == pytest.approx(2.0)
    never = table[table["p_edge"] == 0]
    assert len(never) and never[["strength_mean", "strength_hdi_low", "strength_hdi_high"]].isna().all().all()
    assert len(table) == D * (D - 1)


# --------------------------------------------------------------------------- log-likelihood, ELBO
def test_log_likelihood_group_runs_loo(layout):
    rng = np.random.default_rng(0)
    ll = rng.normal(-3.0, 0.2, size=(C, S, N))
    idata = dg.build_inference_data(
        layout, _edges(layout, [_probs(layout)] * C), log_likelihood={"face": ll, "text": ll - 1.0},
        entity_ids=np.arange(100, 100 + N),
    )
    assert idata.log_likelihood["x_face"].dims == ("chain", "draw", "entity")
    assert list(idata.log_likelihood["entity"].values) == list(range(100, 100 + N))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
        loo = az.loo(idata, var_name="x_text", reff=1.0)
    assert loo["n_data_points"] == N and loo["n_samples"] == C * S
    assert loo["elpd_loo"] == pytest.approx((ll - 1.0).mean(axis=(0, 1)).sum(), rel=0.01)


def test_elbo_plot_axis_is_the_epoch(tmp_path, monkeypatch):
    from pyro_personax.inference import plots

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    path = plots.plot_elbo(np.array([[-5.0, -3.0, -2.0], [-6.0, -4.0, np.nan]]), tmp_path / "elbo.png")
    assert path.stat().st_size > 0
    assert figures[0].axes[0].get_xlabel() == "epoch"


def test_graph_labels_of_crossing_edges_do_not_sit_on_one_another(tmp_path, monkeypatch):
    from pyro_personax.inference import plots

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    # two diameters of the circle of 24 nodes, 15 degrees apart: their arcs' midpoints nearly coincide
    P = np.zeros((24, 24))
    P[0, 12], P[1, 13] = 0.9, 0.8
    plots.plot_graph(P, [f"z{k}" for k in range(24)], ["x"] * 12 + ["y"] * 12, tmp_path / "graph.png")
    fig = figures[0]
    fig.canvas.draw()
    texts = [t for t in fig.axes[0].texts if t.get_text() in ("0.90", "0.80")]
    assert len(texts) == 2
    boxes = [t.get_window_extent() for t in texts]
    assert not boxes[0].overlaps(boxes[1])
