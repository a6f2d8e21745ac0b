"""The basis inside modality blocks: the LiNGAM score, its search, and the map on the model and the guide."""

import copy

import numpy as np
import pytest
import torch

from pyro_personax import PersonaX
from pyro_personax.inference import GraphRefinement
from pyro_personax.inference.basis import (
    best_dag,
    linear_node_table,
    lingam_score,
    neg_entropy,
    search_block_basis,
    search_gain,
    searched_blocks,
)
from pyro_personax.layout import LatentLayout
from pyro_personax.metrics import mcc
from pyro_personax.synthetic import persona


def _mixed(z, layout, scale, seed):
    """``z`` mixed inside every modality block by ``I + scale * W``, W standard normal."""
    rng = np.random.default_rng(seed)
    W = np.eye(layout.latent_dim)
    for block in layout.modalities:
        sl = layout.block_slice(block)
        W[sl, sl] += scale * rng.normal(size=(sl.stop - sl.start,) * 2)
    return z @ W.T, W


def test_entropy_approximation_is_largest_for_a_gaussian():
    rng = np.random.default_rng(0)
    gauss, laplace = rng.normal(size=(20000, 1)), rng.laplace(size=(20000, 1)) / np.sqrt(2)
    assert neg_entropy(gauss)[0] == pytest.approx(-0.5 * (1 + np.log(2 * np.pi)), abs=0.01)
    assert neg_entropy(laplace)[0] > neg_entropy(gauss)[0] + 0.02
    assert float(neg_entropy(torch.as_tensor(laplace))[0]) == pytest.approx(neg_entropy(laplace)[0])


def test_node_table_entries_are_the_residual_entropies_of_least_squares_fits():
    rng = np.random.default_rng(1)
    z = rng.laplace(size=(500, 4))
    z[:, 1] += 0.8 * z[:, 0]
    z -= z.mean(0)
    allowed = ~np.eye(4, dtype=bool)
    allowed[3, 0] = False
    table = linear_node_table(z, allowed)
    coef, *_ = np.linalg.lstsq(z[:, [0, 2]], z[:, 1], rcond=None)
    resid = z[:, 1] - z[:, [0, 2]] @ coef
    expected = 500 * (neg_entropy(resid[:, None] / resid.std())[0] - np.log(resid.std()))
    assert table[0b0101, 1] == pytest.approx(expected, rel=1e-9)
    assert table[0b0010, 1] == -np.inf  # a latent is not its own parent
    assert table[0b1000, 0] == -np.inf  # 3 -> 0 is not allowed
    score, graph = best_dag(table, 0.5 * np.log(500), allowed)
    assert graph[0, 1] + graph[1, 0] == 1 and graph.sum() <= 3


def test_the_score_ranks_the_demo_latents_above_a_mix_inside_blocks():
    """In the same coordinates, the true latents score higher than the same latents mixed inside the
    face and the text block (the Jacobian counted)."""
    _, truth = persona(1000, seed=0)
    layout, z = truth.layout, truth.latents - truth.latents.mean(0)
    mixed, W = _mixed(z, layout, 0.8, seed=0)
    allowed = layout.allowed_mask()
    true_score = lingam_score(z, np.eye(10), allowed)[0]
    mixed_score = lingam_score(mixed, np.eye(10), allowed)[0] + len(z) * np.linalg.slogdet(W)[1]
    assert true_score - mixed_score > 0.2 * len(z)
    # scoring the mixed latents through the exact unmixing gives the truth's score
    assert lingam_score(mixed, np.linalg.inv(W), allowed)[0] + len(z) * np.linalg.slogdet(W)[1] == pytest.approx(
        true_score, rel=1e-6)


@pytest.mark.parametrize("penalty", [None, 27.7])
def test_a_latent_without_cross_modal_children_is_not_pinned_against_its_block_parent(penalty):
    """Adding a multiple of ``attractiveness`` to its child ``expression`` (same face block; expression
    has no cross-modal child) leaves the score unchanged: the within-block edge absorbs the mix and
    no cross-modal edge changes. Mixing ``neuroticism`` with its block parent ``conscientiousness``
    adds a cross-modal edge (into ``expression``) and scores lower."""
    _, truth = persona(2000, seed=0)
    layout, names = truth.layout, list(truth.names)
    z = truth.latents - truth.latents.mean(0)
    allowed = layout.allowed_mask()
    cross = layout.edge_classes() == "cross-modal"
    true_score, true_graph = lingam_score(z, np.eye(10), allowed, penalty)

    def sheared(child, parent, amount):
        U = np.eye(10)
        U[names.index(child), names.index(parent)] = amount
        return lingam_score(z, U, allowed, penalty)

    for amount in (0.3, -1.0):
        score, graph = sheared("expression", "attractiveness", amount)
        assert score == pytest.approx(true_score, rel=1e-9)
        np.testing.assert_array_equal(graph, true_graph)
        score, graph = sheared("neuroticism", "conscientiousness", amount)
        assert score < true_score - 2.0
        assert graph[cross].sum() > true_graph[cross].sum()


@pytest.mark.slow
def test_the_search_moves_mixed_demo_latents_toward_their_true_basis():
    _, truth = persona(2000, seed=1)
    layout, z = truth.layout, truth.latents
    labels = np.array(layout.block_of)
    mixed, _ = _mixed(z, layout, 0.8, seed=1)
    found = search_block_basis(mixed, layout, num_restarts=4, seed=0)
    before = mcc(mixed, z, learned_blocks=labels, true_blocks=labels).value
    after = mcc(mixed @ found.map.T, z, learned_blocks=labels, true_blocks=labels).value
    assert found.score >= max(found.restart_scores) - 1e-12 and found.score > found.identity_score
    assert after > before + 0.05, (before, after)
    shared = layout.block_slice("shared")
    np.testing.assert_array_equal(found.map[shared, shared], np.eye(2))
    np.testing.assert_allclose((mixed @ found.map.T).std(0), mixed.std(0), rtol=1e-6)  # each latent keeps its spread


def test_search_checks_its_input_and_leaves_blocks_of_one_latent_alone():
    layout = LatentLayout(0, {"a": 1, "b": 1})
    z = np.random.default_rng(0).laplace(size=(100, 2))
    found = search_block_basis(z, layout)
    np.testing.assert_array_equal(found.map, np.eye(2))
    with pytest.raises(ValueError, match=r"z: expected shape \(N >= 4, 2\)"):
        search_block_basis(z[:3], layout)
    with pytest.raises(ValueError, match="num_restarts"):
        search_block_basis(z, layout, num_restarts=0)
    with pytest.raises(ValueError, match="basis_restarts: the basis search needs mechanism_steps >= 1"):
        GraphRefinement(mechanism_steps=0, basis_restarts=2)


def test_a_block_under_a_measurement_map_keeps_its_basis():
    """The map pins which latent each group of features reads, so only the other blocks are searched."""
    mapped = LatentLayout(0, {"a": 2, "b": 2}, measurement_map={"a": [([0, 1], ["a_1"]), ([2, 3], ["a_2"])]})
    assert searched_blocks(mapped) == [mapped.block_slice("b")]
    z = np.random.default_rng(0).laplace(size=(300, 4)) @ np.array(
        [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.7], [0, 0, 0.2, 1.0]]).T
    found = search_block_basis(z, mapped, num_restarts=2, steps=50, seed=0)
    np.testing.assert_array_equal(found.map[:2, :2], np.eye(2))
    assert not np.allclose(found.map[2:, 2:], np.eye(2))


@pytest.fixture(scope="module")
def fitted():
    dataset, truth = persona(120, seed=0)
    data, layout = dataset.to_multimodal(), truth.layout
    fits = {}
    for cov in ("full", "diagonal"):
        px = PersonaX(data, latent_dims=dict(layout.modality_dims), shared_dim=layout.shared_dim,
                      posterior_covariance=cov)
        px.fit(data, num_epochs=1, seed=0, device="cpu", progress=False, refine_graph=False, num_chains=1)
        fits[cov] = px
    return data, fits


@pytest.mark.parametrize("cov", ["full", "diagonal"])
def test_a_latent_basis_maps_the_posterior_and_leaves_the_likelihood_unchanged(fitted, cov):
    data, fits = fitted
    px = fits[cov]
    model, guide = px.model(0), px.guide(0)
    T = np.eye(10)
    T[2:5, 2:5] += np.random.default_rng(2).normal(size=(3, 3))
    batch = data.to_tensors()
    before_mean = px.get_latent_representation(data)
    before_q = guide.latent_posterior_distribution(batch)
    z_before = before_q.sample(torch.Size([3]))
    decoded_before = model.decoded_mean("face", z_before)
    try:
        model.set_latent_basis(T)
        guide.set_latent_basis(T)
        after_q = guide.latent_posterior_distribution(batch)
        Tt = torch.as_tensor(T, dtype=z_before.dtype)
        np.testing.assert_allclose(px.get_latent_representation(data), before_mean @ T.T, atol=1e-4)
        z_after = z_before @ Tt.T
        torch.testing.assert_close(model.decoded_mean("face", z_after), decoded_before, atol=1e-4, rtol=1e-4)
        # q is the same distribution in the new coordinates: densities differ by log |det T|
        shift = float(np.linalg.slogdet(T)[1])
        torch.testing.assert_close(after_q.log_prob(z_after), before_q.log_prob(z_before) - shift,
                                   atol=1e-3, rtol=1e-4)
        # the map travels with the state and is the identity in a state saved without it
        state = model.state_dict()
        twin = px._build()[0]
        twin.load_state_dict(state)
        torch.testing.assert_close(twin.decoded_mean("face", z_after), decoded_before, atol=1e-4, rtol=1e-4)
        old = {k: v for k, v in state.items() if not k.startswith("latent_basis")}
        twin.load_state_dict(old)
        torch.testing.assert_close(twin.decoded_mean("face", z_before), decoded_before, atol=1e-4, rtol=1e-4)
    finally:
        model.set_latent_basis(np.eye(10))
        guide.set_latent_basis(np.eye(10))
    with pytest.raises(ValueError, match="not invertible"):
        guide.set_latent_basis(np.zeros((10, 10)))
    with pytest.raises(ValueError, match=r"T: expected a finite \(10, 10\) matrix"):
        model.set_latent_basis(np.eye(3))


def test_the_posterior_stays_a_distribution_under_an_ill_conditioned_basis(fitted):
    """A map with large entries (a difference of two nearly equal latents, rescaled) leaves
    T cov T^T ill-conditioned in single precision; q(z | x) is still built and its draws,
    densities and the graph stage's posterior draws are finite."""
    from pyro_personax.inference.refine import posterior_summaries

    data, fits = fitted
    guide = fits["full"].guide(0)
    T = np.eye(10)
    T[2:4, 2:4] = [[300.0, -299.0], [0.0, 1.0]]
    try:
        guide.set_latent_basis(T)
        q = guide.latent_posterior_distribution(data.to_tensors())
        assert torch.isfinite(q.log_prob(q.sample())).all()
        draws = posterior_summaries(guide, data.to_tensors(), 64, torch.device("cpu"), seed=0)[1]
        assert draws.shape == (120, 10) and torch.isfinite(draws).all()
        again = posterior_summaries(guide, data.to_tensors(), 64, torch.device("cpu"), seed=0)[1]
        torch.testing.assert_close(draws, again)
    finally:
        guide.set_latent_basis(np.eye(10))


def test_one_encoder_pass_gives_the_graph_stage_its_means_and_draws(fitted):
    """The graph stage's latents: the means are those of ``q(z | x)``, and the draws come
    with them only when seeded, the same for the same seed."""
    from pyro_personax.inference.refine import posterior_summaries

    data, fits = fitted
    guide, rows, cpu = fits["full"].guide(0), data.to_tensors(), torch.device("cpu")
    means, draws = posterior_summaries(guide, rows, 64, cpu, seed=0)
    torch.testing.assert_close(means, guide.latent_posterior(rows)[0])
    assert draws.shape == means.shape and not torch.allclose(draws, means)
    torch.testing.assert_close(posterior_summaries(guide, rows, 64, cpu, seed=0)[1], draws)
    assert not torch.allclose(posterior_summaries(guide, rows, 64, cpu, seed=1)[1], draws)
    assert posterior_summaries(guide, rows, 64, cpu)[1] is None


def test_search_gain_is_the_best_start_over_the_basis_it_started_from():
    assert search_gain([-12.5, -12.1, -12.3], -12.4) == pytest.approx(0.3)
    assert search_gain((-3.0,), -2.0) == -1.0


@pytest.mark.parametrize("cov", ["full", "diagonal"])
def test_posterior_draws_follow_the_mapped_posterior(fitted, cov):
    """Draws of ``z`` (``sample_posterior``) under a latent basis are draws of the mapped
    ``q(z | x)``, also where a diagonal posterior becomes a full one."""
    data, fits = fitted
    px = fits[cov]
    T = np.eye(10)
    T[2:5, 2:5] += np.random.default_rng(3).normal(size=(3, 3))
    try:
        px.model(0).set_latent_basis(T)
        px.guide(0).set_latent_basis(T)
        q = px.guide(0).latent_posterior_distribution(data.to_tensors())
        z = px.sample_posterior(4000, data=data, seed=1)["z"][0]  # (S, N, D)
        sd = q.stddev.detach().numpy()
        np.testing.assert_allclose(z.mean(0), q.mean.detach().numpy(), atol=float(5 * sd.max() / np.sqrt(4000)))
        np.testing.assert_allclose(z.std(0), sd, rtol=0.06)
        cov_0 = q.covariance_matrix[0].detach().double().numpy()
        np.testing.assert_allclose(np.cov(z[:, 0].T), cov_0, atol=0.06 * float(np.abs(cov_0).max()))
    finally:
        px.model(0).set_latent_basis(np.eye(10))
        px.guide(0).set_latent_basis(np.eye(10))


def test_the_fit_records_the_search_and_the_report_says_what_it_chose(fitted, tmp_path):
    """Each chain's result keeps the score of every start and of the basis SVI left; the
    InferenceData carries them and the report's summary names the step; a fit without
    the graph stage records nothing."""
    from pyro_personax.inference.diagnostics import config_of
    from pyro_personax.inference.report import edge_report

    data, fits = fitted
    assert fits["full"].fit_result.chains[0].basis_scores == []
    assert fits["full"].fit_result.chains[0].basis_identity_score is None
    px = PersonaX(data, latent_dims={"face": 3, "text": 5}, shared_dim=2)
    px.fit(data, num_epochs=1, seed=0, device="cpu", progress=False, num_chains=1)  # the suite's short stage: 1 start
    result = px.fit_result.chains[0]
    assert result.graph_refined and len(result.basis_scores) == 1
    assert result.basis_scores[0] >= result.basis_identity_score  # the local search only climbs
    idata = px.to_inference_data(num_samples=20, max_entities=30, seed=0)
    assert config_of(idata)["config"]["basis_search"] == [
        {"scores": result.basis_scores, "identity_score": result.basis_identity_score, "polish_rounds": 1,
         "graph_moves_taken": None}]
    summary = (edge_report(idata, tmp_path / "report") / "report.md").read_text()
    gain = result.basis_scores[0] - result.basis_identity_score
    assert "Basis inside the modality blocks" in summary and f"{gain:+.4f} nats per entity" in summary
    assert "most probable DAG (1 round; GraphRefinement.basis_polish)" in summary  # the suite's short stage
    plain = (edge_report(fits["full"].to_inference_data(num_samples=20, max_entities=30, seed=0),
                         tmp_path / "plain") / "report.md").read_text()
    assert "Basis inside the modality blocks" not in plain


def test_the_report_says_when_the_basis_was_polished():
    from pyro_personax.inference.report import _basis_lines

    search = {"scores": [1.0, 0.5], "identity_score": 0.9}
    assert "polished" not in _basis_lines({"basis_search": [search]})[0]  # a fit saved before the option
    line = _basis_lines({"basis_search": [{**search, "polish_rounds": 5}, {**search, "polish_rounds": 5}]})[0]
    assert "own density and most probable DAG (5 rounds; GraphRefinement.basis_polish" in line
    assert "moved between graphs" not in line
    moved = _basis_lines({"basis_search": [{**search, "polish_rounds": 5, "graph_moves_taken": 2},
                                           {**search, "polish_rounds": 5, "graph_moves_taken": 0}]})[0]
    assert "GraphRefinement.graph_moves; moves taken per chain: 2, 0)." in moved


def _sheared_pair(seed, shear_size=0.1):
    """Two blocks of two latents, ``text_1 -> face_1`` and ``text_2 -> face_2`` nonlinear, and the
    model to score them; the text block sheared by ``text_1 + shear_size * text_2``, so that
    ``face_1`` reads both text latents."""
    from pyro_personax.models import ModelSpec, PersonaXModel
    from pyro_personax.synthetic.graphs import observe_latents

    layout = LatentLayout(0, {"face": 2, "text": 2})
    rng = np.random.default_rng(seed)
    n = 1500
    t = rng.laplace(size=(n, 2))
    f = np.stack([np.tanh(2 * t[:, 0]), np.abs(t[:, 1])], 1) + 0.3 * rng.laplace(size=(n, 2))
    z = np.concatenate([f, t], 1)
    z = (z - z.mean(0)) / z.std(0)
    A = np.zeros((4, 4))
    A[2, 0] = A[3, 1] = 1
    data, _ = observe_latents(z, A, layout, num_measurements=1, measurement_dim=4, seed=seed)
    torch.manual_seed(seed)
    model = PersonaXModel(layout, ModelSpec.from_data(data))
    shear = np.eye(4)
    shear[2, 3] = shear_size
    return z, z @ shear.T, model


@pytest.mark.slow
def test_the_polish_undoes_a_shear_the_sparse_graph_does_not_absorb():
    """A shear that the MAP DAG does not absorb (it has no edge between the two text latents, which
    the shear makes dependent) is visible to the model's density: the polish takes most of it back,
    with a block-diagonal map. (Where a within-block edge absorbs a shear, no map under that DAG
    sees it: ``test_a_latent_without_cross_modal_children_is_not_pinned_against_its_block_parent``.)"""
    from pyro_personax.inference.oracle import fit_mechanisms_given_latents
    from pyro_personax.inference.refine import map_dag, polish_block_basis

    z, sheared, model = _sheared_pair(0)
    x = torch.as_tensor(sheared, dtype=torch.float32)
    model.standardise_latents(x)
    fit_mechanisms_given_latents(model, x, seed=0)
    graph = map_dag(model, x, "bic", len(x))
    assert not graph[2, 3] and not graph[3, 2]  # the shear is not absorbed by a within-block edge
    T = polish_block_basis(model, x, rounds=3, sparsity="bic")
    assert T.shape == (4, 4) and torch.all(T[:2, 2:] == 0) and torch.all(T[2:, :2] == 0)
    assert abs(float(T[2, 3] / T[2, 2]) + 0.1) < 0.05  # the unshearing map is [[1, -0.1], [0, 1]] up to scale
    assert mcc((x @ T.T).numpy(), z).value > mcc(sheared, z).value + 0.001


def test_the_polish_keeps_the_last_finite_basis_when_its_objective_fails(monkeypatch, caplog):
    """A non-finite objective stops the polish at the blocks of the last finite step, with a warning."""
    from pyro_personax.inference import refine

    _, sheared, model = _sheared_pair(0)
    x = torch.as_tensor(sheared, dtype=torch.float32)
    model.standardise_latents(x)
    monkeypatch.setattr(refine, "map_dag", lambda model, z, sparsity, n: torch.zeros(4, 4))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    clean = refine.polish_block_basis(model, x, rounds=1, steps=4)
    model.load_state_dict(state)
    original, calls = model.latent_distribution, [0]

    def failing_after_five(graph):
        dist = original(graph)
        calls[0] += 1
        if calls[0] > 5:
            finite = dist.node_log_prob
            dist.node_log_prob = lambda u: finite(u) * float("nan")
        return dist

    monkeypatch.setattr(model, "latent_distribution", failing_after_five)
    with caplog.at_level("WARNING", logger="pyro_personax.inference.refine"):
        T = refine.polish_block_basis(model, x, rounds=2, steps=10)
    assert "non-finite in round 1; the last finite basis is kept" in caplog.text
    torch.testing.assert_close(T, clean)  # the blocks after the 4 steps whose successor was still finite


def test_the_graph_stage_sets_the_polished_basis_on_the_model_and_the_guide(fitted, monkeypatch):
    """``basis_polish`` composes the polish's map with the searched basis on both modules."""
    from pyro_personax.inference import refine

    data, fits = fitted
    model, guide = copy.deepcopy(fits["full"].model(0)), copy.deepcopy(fits["full"].guide(0))
    maps = {}

    def polish(model, z, *, rounds, sparsity):
        maps["searched"] = model.latent_basis.clone()
        maps["rounds"] = rounds
        maps["T"] = torch.eye(z.shape[1])
        for b in searched_blocks(model.layout):
            maps["T"][b, b] += 0.1
        return maps["T"]

    monkeypatch.setattr(refine, "polish_block_basis", polish)
    settings = GraphRefinement(mechanism_steps=1, graph_steps=1, num_restarts=1, basis_restarts=1, basis_polish=2)
    assert refine.refine_graph(model, guide, data.to_tensors(), settings=settings, seed=0)
    assert maps["rounds"] == 2
    expected = maps["T"] @ maps["searched"]
    assert torch.allclose(model.latent_basis, expected) and torch.allclose(guide.latent_basis, expected)

    maps.clear()  # without the search there is no polish: the basis SVI left is kept
    model, guide = copy.deepcopy(fits["full"].model(0)), copy.deepcopy(fits["full"].guide(0))
    kept = model.latent_basis.clone()
    unsearched = GraphRefinement(mechanism_steps=1, graph_steps=1, num_restarts=1, basis_restarts=0, basis_polish=2)
    assert refine.refine_graph(model, guide, data.to_tensors(), settings=unsearched, seed=0)
    assert not maps and torch.equal(model.latent_basis, kept)


def test_graph_moves_compose_their_map_after_the_polish_and_start_at_the_most_probable_dag(fitted, monkeypatch):
    """``graph_moves`` runs the moves on the polished draws, from the most probable DAG given them, and composes
    their map after the polish's; the mechanisms are put back as their fit before the polish left them."""
    from pyro_personax.inference import refine
    from pyro_personax.inference.result import ChainResult

    data, fits = fitted
    model, guide = copy.deepcopy(fits["full"].model(0)), copy.deepcopy(fits["full"].guide(0))
    seen = {}
    D = model.layout.latent_dim
    T_polish = torch.eye(D) * 2.0
    T_moves = torch.eye(D)
    T_moves[2, 3] = 0.3

    def polish(model, z, *, rounds, sparsity):
        seen["fitted"] = [p.detach().clone() for p in model.mechanism_parameters()]
        return T_polish

    def switch(model, z, graph, *, max_moves, sparsity, seed):
        seen.update(graph=graph, max_moves=max_moves, z=z.clone())
        with torch.no_grad():
            for p in model.mechanism_parameters():
                p.add_(1.0)  # the moves' own fits: undone by the stage
        return T_moves, graph, [{"graph": [], "score": 0.0, "candidates": 3, "moved": True},
                                {"graph": [], "score": 0.0, "candidates": 1, "moved": False}]

    monkeypatch.setattr(refine, "polish_block_basis", polish)
    monkeypatch.setattr(refine, "switch_graph", switch)
    monkeypatch.setattr(refine, "map_dag", lambda model, z, sparsity, n: torch.zeros(D, D))
    monkeypatch.setattr(refine, "POLISH_REFIT_STEPS", 0)
    searched = {}
    original = refine.set_block_basis

    def search(*args, **kwargs):
        z, found = original(*args, **kwargs)
        searched["basis"] = args[0].latent_basis.clone()
        return z, found

    monkeypatch.setattr(refine, "set_block_basis", search)
    settings = GraphRefinement(mechanism_steps=1, graph_steps=1, num_restarts=1, basis_restarts=1, basis_polish=1,
                               graph_moves=2)
    result = ChainResult(chain=0, seed=0)
    assert refine.refine_graph(model, guide, data.to_tensors(), settings=settings, seed=0, result=result)
    assert seen["max_moves"] == 2 and not seen["graph"].any()
    assert result.graph_moves_taken == 1 and result.basis_polish_rounds == 1
    expected = T_moves @ T_polish @ searched["basis"]
    assert torch.allclose(model.latent_basis, expected) and torch.allclose(guide.latent_basis, expected)
    for p, value in zip(model.mechanism_parameters(), seen["fitted"]):
        assert torch.equal(p.detach(), value)


def test_the_polished_stage_fits_the_mechanisms_once_then_refits_them_briefly(fitted, monkeypatch):
    """With ``basis_polish`` the mechanisms are fitted in full once, to the draws before the polish;
    the polish's own changes to them are undone and the last fit starts from that fit, with
    ``POLISH_REFIT_STEPS`` steps."""
    from pyro_personax.inference import refine

    data, fits = fitted
    model, guide = copy.deepcopy(fits["full"].model(0)), copy.deepcopy(fits["full"].guide(0))
    calls = []

    def fit(model, z, *, num_steps, seed):
        start = [p.detach().clone() for p in model.mechanism_parameters()]
        with torch.no_grad():
            for p in model.mechanism_parameters():
                p.add_(0.01 * (len(calls) + 1))
        end = [p.detach().clone() for p in model.mechanism_parameters()]
        calls.append({"steps": num_steps, "start": start, "end": end})

    def polish(model, z, *, rounds, sparsity):
        with torch.no_grad():
            for p in model.mechanism_parameters():
                p.mul_(-3.0)
        return torch.eye(z.shape[1])

    monkeypatch.setattr(refine, "fit_mechanisms_given_latents", fit)
    monkeypatch.setattr(refine, "polish_block_basis", polish)
    settings = GraphRefinement(mechanism_steps=200, graph_steps=1, num_restarts=1, basis_restarts=1, basis_polish=1)
    assert refine.refine_graph(model, guide, data.to_tensors(), settings=settings, seed=0)
    assert [c["steps"] for c in calls] == [200, min(200, refine.POLISH_REFIT_STEPS)]
    assert all(torch.equal(a, b) for a, b in zip(calls[1]["start"], calls[0]["end"]))
    calls.clear()
    unpolished = GraphRefinement(mechanism_steps=200, graph_steps=1, num_restarts=1, basis_restarts=1, basis_polish=0)
    assert refine.refine_graph(model, guide, data.to_tensors(), settings=unpolished, seed=0)
    assert [c["steps"] for c in calls] == [200]
