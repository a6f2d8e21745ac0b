"""The graph stage after SVI: q(G) refitted, with restarts, to the learned latents."""

import numpy as np
import pytest
import torch

from pyro_personax import PersonaX
from pyro_personax.inference import GraphRefinement, TrainerConfig, refine_graph
from pyro_personax.inference.oracle import exact_graph_posterior, fit_mechanisms_given_latents
from pyro_personax.inference.refine import applies, posterior_summaries
from pyro_personax.layout import LatentLayout
from pyro_personax.models import ModelSpec, PersonaXModel
from pyro_personax.synthetic.graphs import erdos_renyi_dag, observe_latents, simulate_sem

N = 400


@pytest.fixture(scope="module")
def problem():
    layout = LatentLayout(0, {f"m{k + 1}": 1 for k in range(4)})
    A = erdos_renyi_dag(layout, expected_degree=1.5, seed=3)
    z = simulate_sem(A, N, mechanism="mlp", noise="laplace", seed=3)
    data, truth = observe_latents(z, A, layout, num_measurements=2, measurement_dim=4, seed=3)
    return data, truth


def _fit(data, **kw):
    px = PersonaX(data, latent_dims={m: 1 for m in data.modalities}, shared_dim=0)
    px.fit(data, num_chains=1, num_epochs=4, seed=0, progress=False, validation_fraction=None, **kw)
    return px


def test_settings_are_checked():
    with pytest.raises(ValueError, match="num_restarts: expected an int >= 1; found 0"):
        GraphRefinement(num_restarts=0)
    with pytest.raises(ValueError, match="num_particles"):
        GraphRefinement(num_particles=1)
    assert TrainerConfig().graph_refinement == GraphRefinement()
    with pytest.raises(ValueError, match=r"latents: expected one of \('draws', 'means'\); found 'mean'"):
        GraphRefinement(latents="mean")
    with pytest.raises(ValueError, match="best_dag_start: expected True or False; found 1"):
        GraphRefinement(best_dag_start=1)


@pytest.mark.parametrize("latents", ["draws", "means"])
def test_the_stage_fits_one_draw_per_entity_or_the_means(problem, monkeypatch, latents):
    """The mechanisms and q(G) are fitted to the means of q(z | x) (default) or to its seeded draws."""
    data, _ = problem
    px = _fit(data, refine_graph=False)
    model, guide = px.model(0), px.guide(0)
    train = data.to_tensors()
    seen = {}

    def mechanisms(model, z, **kwargs):
        seen["mechanisms"] = z.clone()

    def graph(model, guide, z, **kwargs):
        seen["graph"], seen["best_dag_start"] = z.clone(), kwargs["best_dag_start"]

    monkeypatch.setattr("pyro_personax.inference.refine.fit_mechanisms_given_latents", mechanisms)
    monkeypatch.setattr("pyro_personax.inference.refine.fit_graph_given_latents", graph)
    settings = GraphRefinement(mechanism_steps=1, graph_steps=1, num_restarts=1, basis_restarts=0, latents=latents)
    assert refine_graph(model, guide, train, settings=settings, seed=5)
    means, draws = posterior_summaries(guide, train, settings.batch_size, torch.device("cpu"), seed=5)
    expected = draws if latents == "draws" else means
    assert torch.equal(seen["mechanisms"], expected) and torch.equal(seen["graph"], expected)
    assert seen["best_dag_start"] is True  # the setting reaches the q(G) fit
    assert not torch.allclose(draws, means)


@pytest.mark.slow
@pytest.mark.graph_stage
def test_refined_posterior_is_the_exact_posterior_given_the_learned_latents(problem):
    """After the stage, q(G)'s marginals match p(G | posterior means) under the refitted mechanisms."""
    data, _ = problem
    px = _fit(data)
    assert px.fit_result.chains[0].graph_refined
    model, guide = px.model(0), px.guide(0)
    train = data.to_tensors()
    z = posterior_summaries(guide, train, GraphRefinement().batch_size, torch.device("cpu"))[0]
    exact = exact_graph_posterior(model, z).edge_probabilities()
    fitted = guide.edge_probabilities().detach().numpy()
    off = ~np.eye(4, dtype=bool)
    assert np.abs(exact - fitted)[off].mean() < 0.05


@pytest.mark.slow
def test_the_stage_can_be_turned_off(problem):
    data, _ = problem
    assert not _fit(data, refine_graph=False).fit_result.chains[0].graph_refined


def test_the_stage_applies_to_the_order_posterior_only(problem):
    data, _ = problem
    dims = {m: 1 for m in data.modalities}
    assert applies(*PersonaX(data, latent_dims=dims, shared_dim=0)._build())
    model, guide = PersonaX(data, latent_dims=dims, shared_dim=0, graph_posterior="pairwise")._build()
    assert not applies(model, guide)
    assert not refine_graph(model, guide, data.to_tensors())


def test_a_latent_of_tiny_scale_keeps_its_edges_once_the_latents_are_standardised(problem):
    """The ELBO leaves each latent's scale free; one shrunk to 1e-4 hides its edges from unit-scale mechanisms."""
    data, _ = problem
    rng = np.random.default_rng(0)
    a = rng.laplace(size=1000)
    z = np.stack([a, np.tanh(a) + 0.3 * rng.laplace(size=1000), rng.laplace(size=1000), rng.laplace(size=1000)], 1)
    z = torch.tensor((z - z.mean(0)) / z.std(0) * np.array([2.0, 1e-4, 1.0, 1.0]), dtype=torch.float32)
    linked = {}
    for standardise in (False, True):
        torch.manual_seed(0)
        model = PersonaXModel(LatentLayout(0, {m: 1 for m in data.modalities}), ModelSpec.from_data(data))
        if standardise:
            model.standardise_latents(z)
        fit_mechanisms_given_latents(model, z, num_steps=200, seed=0)
        P = exact_graph_posterior(model, z).edge_probabilities()
        linked[standardise] = P[0, 1] + P[1, 0]
    assert linked[True] > 0.99 and linked[False] < 0.5, linked
    with pytest.raises(ValueError, match=r"z: latents \['m3_1'\] have no spread"):
        model.standardise_latents(torch.cat([z[:, :2], torch.zeros(1000, 1), z[:, 3:]], 1))
    with pytest.raises(ValueError, match=r"z: expected shape \(N >= 2, 4\); found \(1, 4\)"):
        model.standardise_latents(z[:1])


def test_a_model_state_saved_without_the_standardisation_loads_as_unit_scale(problem):
    data, _ = problem
    model = PersonaXModel(LatentLayout(0, {m: 1 for m in data.modalities}), ModelSpec.from_data(data))
    model.standardise_latents(torch.randn(50, 4) * 3)
    old = {k: v for k, v in model.state_dict().items() if k not in ("latent_loc", "latent_scale")}
    model.load_state_dict(old)
    assert model.latent_loc.eq(0).all() and model.latent_scale.eq(1).all()


def test_the_stage_shows_its_progress_on_its_chains_line(problem, capsys):
    """The graph stage's bar names its chain, so chains trained side by side can be told apart."""
    data, _ = problem
    px = PersonaX(data, latent_dims={m: 1 for m in data.modalities}, shared_dim=0)
    px.fit(data, num_chains=1, num_epochs=1, seed=0, progress=True, validation_fraction=None,
           refine_graph=GraphRefinement(mechanism_steps=5, graph_steps=5, num_restarts=1))
    err = capsys.readouterr().err
    assert "chain 0: graph stage" in err
    px.fit(data, num_chains=1, num_epochs=1, seed=0, progress=False, validation_fraction=None,
           refine_graph=GraphRefinement(mechanism_steps=5, graph_steps=5, num_restarts=1))
    assert "graph stage" not in capsys.readouterr().err
