"""End-to-end tests of the PersonaX facade with the real Level II model (tiny data)."""

import html

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.facade import PersonaX
from pyro_personax.graph import is_dag
from pyro_personax.inference import ChainAlignment, FitResult, intervene, local_params
from pyro_personax.layout import LatentLayout

OPTIONS = dict(mechanism="linear", noise_flow="affine", decoder_hidden_dim=8, encoder_hidden_dim=8, nuisance_dim=1)
FIT = dict(num_epochs=2, batch_size=64, progress=False, device="cpu", learning_rate=0.02)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 120
    z = rng.normal(size=(n, 2))
    face = np.stack([z @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(n, 4)) for _ in range(2)], axis=1)
    text = np.stack([z[:, :1] @ rng.normal(size=(1, 3)) + 0.1 * rng.normal(size=(n, 3)) for _ in range(3)], axis=1)
    mask = np.ones((n, 3), dtype=bool)
    mask[::7, 1] = False
    bio = pd.DataFrame({"height": rng.normal(size=n), "male": rng.random(n) > 0.5})
    return MultiModalData(
        {"face": face.astype(np.float32), "text": text.astype(np.float32)}, masks={"text": mask}, tabular=bio
    )


def _px(data, **kw):
    return PersonaX(data, latent_dims={"face": 1, "text": 1, "bio": 0}, shared_dim=1, **{**OPTIONS, **kw})


def test_queries_before_fit_raise(data):
    px = _px(data)
    for call in (
        px.edge_probabilities,
        px.graph,
        lambda: px.get_latent_representation(data),
        lambda: px.sample_posterior(2),
        lambda: px.save("unused"),
        lambda: px.cross_modal_reading(data),
        lambda: px.reading_graph(data),
        px.model,
    ):
        with pytest.raises(RuntimeError, match="not fitted; call fit"):
            call()


def test_constructor_validation(data):
    with pytest.raises(ValueError, match="latent_dims: required"):
        PersonaX(data)
    with pytest.raises(ValueError, match=r"missing \['bio'\]"):
        PersonaX(data, latent_dims={"face": 1, "text": 1})
    with pytest.raises(TypeError, match="unexpected keyword argument 'hidden'"):
        _px(data, hidden=3)
    with pytest.raises(ValueError, match="edge_prior: expected a number in"):
        _px(data, edge_prior=1.5)
    with pytest.raises(TypeError, match="layout_or_data"):
        PersonaX({"face": 1})
    with pytest.raises(ValueError, match="graph_learning_rate"):
        _px(data).fit(data, num_chains=1, graph_learning_rate=-1.0, progress=False, device="cpu")


def test_same_seed_identical_and_different_seeds_differ(data):
    a, b, c = _px(data), _px(data), _px(data)
    a.fit(data, num_chains=1, seed=1, **FIT)
    b.fit(data, num_chains=1, seed=1, **FIT)
    c.fit(data, num_chains=1, seed=2, **FIT)
    pd.testing.assert_frame_equal(a.edge_probabilities(), b.edge_probabilities(), check_exact=True)
    assert not np.allclose(a.edge_probabilities().to_numpy(), c.edge_probabilities().to_numpy())


def test_fit_and_queries(data):
    px = _px(data)
    result = px.fit(data, num_chains=2, seed=0, **FIT)
    assert isinstance(result, FitResult) and px.fit_result is result and result.num_chains == 2
    assert all(len(t) == 2 and np.isfinite(t).all() for t in result.elbo)
    assert all(np.isfinite(t).all() for t in result.validation_elbo)
    names = ["s1", "face_1", "text_1"]
    probs = px.edge_probabilities()
    assert list(probs.index) == names and list(probs.columns) == names
    assert probs.index.name == "parent" and probs.columns.name == "child"
    per_chain = [px.edge_probabilities(c).to_numpy() for c in range(2)]
    np.testing.assert_allclose(probs.to_numpy(), np.mean(per_chain, axis=0))
    assert not np.allclose(per_chain[0], per_chain[1])  # chains are independent restarts
    assert probs.loc["face_1", "s1"] == 0.0  # shared block is a root
    g = px.graph(threshold=0.3)
    assert isinstance(g, nx.DiGraph) and set(g.nodes) == set(names)
    assert nx.is_directed_acyclic_graph(g)
    assert all(probs.loc[u, v] == pytest.approx(d["p_edge"]) for u, v, d in g.edges(data=True))
    z = px.get_latent_representation(data, chain=1)
    assert z.shape == (120, 3) and np.isfinite(z).all()
    draws = px.sample_posterior(5, data=data, seed=0)
    assert draws["edges"].shape == (2, 5, 3, 3) and set(np.unique(draws["edges"])) <= {0.0, 1.0}
    assert draws["z"].shape == (2, 5, 120, 3)
    assert is_dag(nx.to_numpy_array(g, nodelist=names))
    with pytest.raises(ValueError, match="chain must be an int in"):
        px.edge_probabilities(chain=2)


def test_sample_posterior_edges_match_probabilities(data):
    px = _px(data)
    px.fit(data, num_chains=1, seed=0, **FIT)
    draws = px.sample_posterior(4000, seed=3)["edges"][0]
    np.testing.assert_allclose(draws.mean(0), px.edge_probabilities(0).to_numpy(), atol=0.03)
    same = px.sample_posterior(10, seed=3)["edges"]
    np.testing.assert_array_equal(same, px.sample_posterior(10, seed=3)["edges"])


def test_full_covariance_posterior_draws_follow_the_guide_covariance(data, tmp_path):
    # the pairwise fit of this fixture gives guide correlations well above the draws' SE
    px = _px(data, posterior_covariance="full", graph_posterior="pairwise")
    px.fit(data, num_chains=1, seed=0, **FIT)
    q = px.guide(0).latent_posterior_distribution(data.to_tensors())
    z = px.sample_posterior(20000, data=data, seed=1)["z"][0]  # (S, N, D)
    cov = q.covariance_matrix.double().numpy()
    sd = np.sqrt(cov.diagonal(axis1=1, axis2=2))
    corr = cov / sd[:, :, None] / sd[:, None, :]
    for n in (0, 7):
        # guide correlations of 0.04 - 0.06 here; the draws' correlations have SE 0.007
        assert np.abs(corr[n][np.triu_indices(3, 1)]).max() > 0.04
        np.testing.assert_allclose(np.corrcoef(z[:, n].T), corr[n], atol=0.03)
        np.testing.assert_allclose(z[:, n].std(0), sd[n], rtol=0.03)
        np.testing.assert_allclose(z[:, n].mean(0), q.mean[n].numpy(), atol=0.03)
    again = [px.sample_posterior(50, data=data, seed=2)["z"] for _ in range(2)]
    np.testing.assert_array_equal(*again)
    px.save(tmp_path / "px")
    loaded = PersonaX.load(tmp_path / "px")
    assert loaded.guide(0).posterior_covariance == "full"
    np.testing.assert_array_equal(px.get_latent_representation(data), loaded.get_latent_representation(data))


def test_save_load_round_trip(data, tmp_path):
    px = _px(data)
    px.fit(data, num_chains=2, seed=0, **FIT)
    px.save(tmp_path / "px")
    loaded = PersonaX.load(tmp_path / "px")
    pd.testing.assert_frame_equal(px.edge_probabilities(), loaded.edge_probabilities(), check_exact=True)
    np.testing.assert_array_equal(
        px.get_latent_representation(data, chain=1), loaded.get_latent_representation(data, chain=1)
    )
    assert loaded.fit_result.to_dict() == px.fit_result.to_dict()
    assert loaded.layout.names == px.layout.names
    with pytest.raises(ValueError, match="overwrite=True"):
        px.save(tmp_path / "px")
    px.save(tmp_path / "px", overwrite=True)
    with pytest.raises(ValueError, match="expected config.json"):
        PersonaX.load(tmp_path / "missing")
    import json

    config = json.loads((tmp_path / "px" / "config.json").read_text())
    assert config["model_options"]["graph_posterior"] == "order"  # the default is recorded
    assert config["model_options"]["posterior_covariance"] == "full"  # every option is, defaults included
    (tmp_path / "px" / "config.json").write_text(json.dumps({**config, "format": 2}))
    with pytest.raises(ValueError, match="unsupported format 2.*refit"):
        PersonaX.load(tmp_path / "px")


def test_a_model_saved_in_format_3_loads_with_that_format_s_defaults(data, tmp_path):
    """Format 3 wrote only the options that differed from the defaults of its time, when
    ``q(z | x)`` was diagonal by default: such a save loads as the diagonal model it was."""
    import json

    px = _px(data, posterior_covariance="diagonal")
    px.fit(data, num_chains=1, seed=0, **{**FIT, "num_epochs": 1})
    px.save(tmp_path / "px")
    path = tmp_path / "px" / "config.json"
    config = json.loads(path.read_text())
    config["model_options"] = {k: v for k, v in config["model_options"].items() if k != "posterior_covariance"}
    path.write_text(json.dumps({**config, "format": 3}))
    loaded = PersonaX.load(tmp_path / "px")
    assert loaded.guide(0).posterior_covariance == "diagonal"
    np.testing.assert_array_equal(px.get_latent_representation(data), loaded.get_latent_representation(data))
    path.write_text(json.dumps({**config, "format": 4}))  # format 4 without the key means today's default (full)
    with pytest.raises(ValueError, match="does not fit the guide built here"):
        PersonaX.load(tmp_path / "px")


def test_resume_continues_from_checkpoint(data, tmp_path):
    fit = {**FIT, "anneal_epochs": 4}
    straight = _px(data)
    straight.fit(data, num_chains=1, seed=4, **{**fit, "num_epochs": 4})
    first = _px(data)
    first.fit(data, num_chains=1, seed=4, checkpoint_dir=tmp_path, **{**fit, "num_epochs": 2})
    resumed = _px(data)
    resumed.fit(data, num_chains=1, seed=4, checkpoint_dir=tmp_path, resume=True, **{**fit, "num_epochs": 4})
    pd.testing.assert_frame_equal(straight.edge_probabilities(), resumed.edge_probabilities(), check_exact=True)
    assert straight.fit_result.chains[0].train_elbo == resumed.fit_result.chains[0].train_elbo


def test_layout_construction_and_data_mismatch(data):
    layout = LatentLayout(1, {"face": 1, "text": 1, "bio": 0})
    px = PersonaX(layout, **OPTIONS)
    px.fit(data, num_chains=1, validation_fraction=None, **FIT)
    assert np.isnan(px.fit_result.validation_elbo[0]).all()
    bio = pd.DataFrame({"height": np.zeros(10), "male": np.zeros(10, dtype=bool)})
    other = MultiModalData({"face": np.zeros((10, 2, 4)), "text": np.zeros((10, 3, 3))}, tabular=bio)
    wrong = MultiModalData({"face": np.zeros((10, 2, 5)), "text": np.zeros((10, 3, 3))}, tabular=bio)
    with pytest.raises(ValueError, match="differ from the model's"):
        px.get_latent_representation(wrong)
    assert px.get_latent_representation(other).shape == (10, 3)


def test_modules_of_a_chain_are_usable(data):
    px = _px(data)
    px.fit(data, num_chains=1, seed=0, **FIT)
    batch = data.to_tensors()
    with local_params(), torch.no_grad():
        h = px.model(0).acyclicity(px.guide(0).edge_probabilities())
        loc, _ = px.guide(0).latent_posterior(batch)
    assert torch.isfinite(h) and loc.shape == (120, 3)


def _px_two_face(data):
    return PersonaX(data, latent_dims={"face": 2, "text": 1, "bio": 1}, shared_dim=0, **OPTIONS)


@pytest.fixture(scope="module")
def two_chains(data):
    px = _px_two_face(data)
    px.fit(data, num_chains=2, seed=0, **FIT)
    return px


def test_cross_modal_reading_reads_the_posterior_means_of_a_chain(two_chains, data):
    from pyro_personax.reading import cross_modal_reading, spread_readings

    px = two_chains
    r = px.cross_modal_reading(data, chain=1, seed=2, steps=30)
    z = px.get_latent_representation(data, chain=1)
    direct = cross_modal_reading(z, px.layout, seed=2, steps=30)
    np.testing.assert_array_equal(r.readings, direct.readings)
    assert set(r.dims) == {"face", "text", "bio"}
    assert r.readings.shape == (len(z), sum(r.dims.values()))
    assert r.spread == spread_readings(r, px.layout, px.edge_probabilities().to_numpy())


def test_reading_graph_fits_the_graph_to_the_latents_in_the_reading_basis(two_chains, data):
    from pyro_personax.inference import GraphRefinement
    from pyro_personax.reading import reading_basis

    px = two_chains
    reading = px.cross_modal_reading(data, chain=1, seed=2, steps=30)
    settings = GraphRefinement(mechanism_steps=20, graph_steps=20, num_restarts=2)
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    g = px.reading_graph(data, chain=1, seed=2, reading=reading, settings=settings, progress=False)
    assert torch.equal(torch.rand(1), before)  # the global random state is left alone
    basis = reading_basis(px.get_latent_representation(data, chain=1), px.layout, reading, seed=2)
    np.testing.assert_array_equal(g.basis.latents, basis.latents)
    assert list(g.edge_probabilities.index) == list(g.edge_probabilities.columns) == basis.names
    P = g.edge_probabilities.to_numpy()
    assert P.shape == (px.layout.latent_dim,) * 2 and np.all((P >= 0) & (P <= 1)) and np.all(np.diag(P) == 0)
    np.testing.assert_array_equal(g.edge_classes.to_numpy(), px.layout.edge_classes())
    cross = g.cross_modal()
    assert len(cross) == int((px.layout.edge_classes() == "cross-modal").sum())
    assert cross["probability"].is_monotonic_decreasing
    again = px.reading_graph(data, chain=1, seed=2, reading=reading, settings=settings, progress=False)
    pd.testing.assert_frame_equal(again.edge_probabilities, g.edge_probabilities, check_exact=True)
    assert g.fit_probabilities.shape == (1, *P.shape)
    np.testing.assert_array_equal(g.fit_probabilities[0], P)
    with pytest.raises(TypeError, match="settings: expected a GraphRefinement"):
        px.reading_graph(data, settings={"graph_steps": 2})


def test_reading_graph_pools_fits_of_the_mechanisms_from_different_starts(two_chains, data):
    from pyro_personax.inference import GraphRefinement

    px = two_chains
    reading = px.cross_modal_reading(data, chain=1, seed=2, steps=30)
    settings = GraphRefinement(mechanism_steps=20, graph_steps=20, num_restarts=2)
    one = px.reading_graph(data, chain=1, seed=2, reading=reading, settings=settings, progress=False)
    pooled = px.reading_graph(data, chain=1, seed=2, reading=reading, settings=settings, num_fits=2, progress=False)
    fits = pooled.fit_probabilities
    assert fits.shape == (2, px.layout.latent_dim, px.layout.latent_dim)
    np.testing.assert_array_equal(fits[0], one.edge_probabilities.to_numpy())  # fit 0 is the one-fit graph
    assert not np.array_equal(fits[0], fits[1])  # fit 1 starts from seed 3
    np.testing.assert_allclose(pooled.edge_probabilities.to_numpy(), fits.mean(0), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="num_fits: expected an int >= 1; found 0"):
        px.reading_graph(data, reading=reading, settings=settings, num_fits=0)


def test_align_chains_finds_swapped_labels_and_warns_on_disagreement(two_chains, data, monkeypatch, caplog):
    px = two_chains
    assert px.chain_alignment is not None and px.chain_alignment.num_chains == 2
    own = px.chains.own_latent_means(data, 0)
    # chain 1 reporting chain 0's latents with the two face latents swapped (one flipped)
    swapped = np.column_stack([-own[:, 1], own[:, 0], own[:, 2:]])
    monkeypatch.setattr(px.chains, "own_latent_means", lambda d, c, batch_size=1024: own if c == 0 else swapped)
    with caplog.at_level("WARNING", logger="pyro_personax.inference.chains"):
        al = px.align_chains(data)
    assert al is px.chain_alignment
    assert al.permutations.tolist() == [[0, 1, 2, 3], [1, 0, 2, 3]]
    np.testing.assert_allclose(al.correlations, 1.0)
    assert "do not match" not in caplog.text
    noise = np.random.default_rng(0).normal(size=own.shape)
    monkeypatch.setattr(px.chains, "own_latent_means", lambda d, c, batch_size=1024: own if c == 0 else noise)
    with caplog.at_level("WARNING", logger="pyro_personax.inference.chains"):
        px.align_chains(data)
    assert "chain 1's latents do not match chain 0's" in caplog.text


def test_every_output_is_in_chain_0_labels(two_chains, data, tmp_path):
    px = two_chains
    saved = px.chain_alignment
    try:
        px.chain_alignment = ChainAlignment(np.array([[0, 1, 2, 3], [1, 0, 2, 3]]), np.ones((2, 4)))
        perm = [1, 0, 2, 3]
        raw = [px.guide(c).edge_probabilities().detach().double().numpy() for c in range(2)]
        chain1 = raw[1][np.ix_(perm, perm)]
        np.testing.assert_allclose(px.edge_probabilities(chain=1).to_numpy(), chain1)
        np.testing.assert_allclose(px.edge_probabilities(chain=0).to_numpy(), raw[0])
        np.testing.assert_allclose(px.edge_probabilities().to_numpy(), (raw[0] + chain1) / 2)
        own = px.chains.own_latent_means(data, 1)
        np.testing.assert_array_equal(px.get_latent_representation(data, chain=1), own[:, perm])
        draws = px.sample_posterior(3, data=data)
        np.testing.assert_allclose(draws["edge_probabilities"][1], chain1, rtol=1e-6)
        idata = px.to_inference_data(data, num_samples=4, max_entities=None)
        z_mean = idata.latent_means["z_mean"].sel(chain=1).to_numpy()
        np.testing.assert_allclose(z_mean, own[:, perm], rtol=1e-5, atol=1e-6)
        pooled = px.do({"face_1": 1.0}, num_graphs=3, num_samples=4, seed=5)
        alone = intervene(px.model(1), px.guide(1), {"face_2": 1.0}, num_graphs=3, num_samples=4, seed=6)
        np.testing.assert_array_equal(pooled.interventional[12:], alone.interventional[:, perm])
        np.testing.assert_array_equal(pooled.graphs[3:], alone.graphs[:, perm][:, :, perm])
        assert (pooled.interventional[:, 0] == 1.0).all() and pooled.num_graphs == 6
        px.save(tmp_path / "px")
        loaded = PersonaX.load(tmp_path / "px")
        np.testing.assert_array_equal(loaded.chain_alignment.permutations, px.chain_alignment.permutations)
        np.testing.assert_allclose(loaded.edge_probabilities().to_numpy(), px.edge_probabilities().to_numpy())
    finally:
        px.chain_alignment = saved


def test_the_report_opens_with_the_verdict_and_holds_every_warning_the_fit_logged(two_chains, data, tmp_path, caplog):
    from pyro_personax.inference.report import edge_report

    px = two_chains
    assert px.chains.warnings, "this small fit logs warnings (unpinned latents at least)"
    out = edge_report(px.to_inference_data(data, num_samples=20, max_entities=50), tmp_path / "report")
    page = (out / "report.html").read_text()
    text = (out / "report.md").read_text()
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Summary</h2>")
    assert text.index("## Verdict") < text.index("## Summary")
    for warning in px.chains.warnings:
        assert html.escape(warning) in page and warning in text
    px.save(tmp_path / "px")
    assert PersonaX.load(tmp_path / "px").chains.warnings == px.chains.warnings


def test_a_resume_that_is_not_the_same_fit_is_refused_naming_what_differs(data, tmp_path):
    fit = {**FIT, "num_epochs": 1, "num_chains": 1, "seed": 4, "checkpoint_dir": tmp_path}
    _px(data).fit(data, **fit)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = MultiModalData(
        {m: data.values[m][::-1].copy() for m in ("face", "text")},
        masks={"text": data.masks["text"][::-1].copy()},
        tabular=pd.DataFrame({"height": np.zeros(120), "male": np.zeros(120, dtype=bool)}),
    )
    cases = [
        (lambda: (_px(data), other), "training data"),
        (lambda: (_px(data, forbidden=[("s1", "face_1")]), data), "model structure and prior knowledge"),
        (lambda: (_px(data, spline_bound=2.0), data), "model options"),
        (
            lambda: (
                PersonaX(data, latent_dims={"face": 2, "text": 1, "bio": 0}, shared_dim=1, **OPTIONS),
                data,
            ),
            "layout",
        ),
    ]
    for make, part in cases:
        px, d = make()
        expected = rf"resume: the checkpoint .* was written for another fit; what differs: .*{part}"
        with pytest.raises(ValueError, match=expected):
            px.fit(d, resume=True, **{**fit, "num_epochs": 2})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing on disk changed


def test_load_refuses_damaged_or_foreign_folders_naming_the_file(data, tmp_path):
    px = _px(data)
    px.fit(data, num_chains=1, seed=0, **{**FIT, "num_epochs": 1})
    px.save(tmp_path / "good")
    config, states = (tmp_path / "good" / "config.json"), (tmp_path / "good" / "chains.pt")
    cases = {
        "not json": ("config.json", b"{not json", r"config.json' is not JSON"),
        "no keys": ("config.json", b'{"format": 3}', r"lacks the keys \['layout', 'spec'"),
        "truncated states": ("chains.pt", states.read_bytes()[:100], "cannot be read as saved chain states"),
        "foreign pickle": ("chains.pt", b"\x80\x04\x95\x00cos\nsystem\n.", "not a model this library saved"),
    }
    for name, (file, content, message) in cases.items():
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        (folder / "config.json").write_bytes(config.read_bytes())
        (folder / "chains.pt").write_bytes(states.read_bytes())
        (folder / file).write_bytes(content)
        with pytest.raises(ValueError, match=message):
            PersonaX.load(folder)


def test_unsafe_names_and_float32_overflow_are_refused_before_anything_runs(tmp_path):
    rng = np.random.default_rng(0)
    for bad in ("../../x", "a/b", "face.1", "", "1face"):
        with pytest.raises(ValueError, match=r"modality name: .* is not a safe name"):
            MultiModalData({bad: rng.normal(size=(20, 1, 2))})
    with pytest.raises(ValueError, match=r"modality 'face': values up to 1e\+39 in magnitude exceed float32"):
        MultiModalData({"face": np.full((20, 1, 2), 1e39)})
    from pyro_personax.data import write_persona
    from pyro_personax.synthetic import persona

    dataset, _ = persona(30, seed=0)
    dataset.text["../../evil"] = dataset.text.pop(next(iter(dataset.text)))
    with pytest.raises(ValueError, match=r"LLM key\): '../../evil' is not a safe name"):
        write_persona(dataset, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil").exists()
