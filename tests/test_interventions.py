"""Tests of the intervention API: do() on the structural equations, with common random numbers."""

import numpy as np
import pandas as pd
import pytest
import torch
from pyro import poutine

import pyro_personax.inference.interventions as interventions
from pyro_personax.data import MultiModalData
from pyro_personax.graph import is_dag
from pyro_personax.inference import local_params
from pyro_personax.inference.interventions import Interventional, intervene, structural_program
from pyro_personax.layout import LatentLayout
from pyro_personax.models import ModelSpec, PersonaXGuide, PersonaXModel

NAMES = ("a", "b", "c", "d")
# a -> b -> c <- d  ([i, j] = parent i -> child j)
GRAPH = np.array(
    [
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 1, 0],
    ]
)


def _model(names=NAMES, mechanism="mlp", latent_transform="identity", tabular=False, **kwargs):
    """One latent per modality (so every edge is free); modality ``m<k>`` reads latent ``names[k-1]``."""
    mods = [f"m{k + 1}" for k in range(len(names) - int(tabular))]
    rng = np.random.default_rng(0)
    measurements = {m: rng.normal(size=(10, 2, 3)) for m in mods}
    likelihoods = {mods[1]: "bernoulli"} if len(mods) > 1 else {}
    if likelihoods:
        measurements[mods[1]] = (measurements[mods[1]] > 0).astype(float)
    frame = None
    if tabular:
        frame = pd.DataFrame(
            {
                "height": rng.normal(size=10),
                "group": pd.Categorical(rng.choice(["x", "y", "z"], 10), categories=["x", "y", "z"]),
                "flag": rng.random(10) > 0.5,
            }
        )
    data = MultiModalData(measurements, likelihoods=likelihoods, tabular=frame)
    dims = {m: 1 for m in [*mods, *(["bio"] if tabular else [])]}
    layout = LatentLayout(0, dims, names=names)
    with local_params():
        model = PersonaXModel(
            layout, ModelSpec.from_data(data), mechanism=mechanism, latent_transform=latent_transform, **kwargs
        )
        with torch.no_grad():
            f = model.mechanisms
            f.weight.copy_(torch.randn_like(f.weight))
            if mechanism == "mlp":
                f.w2.copy_(torch.randn_like(f.w2))
                f.w3.copy_(0.3 * torch.randn_like(f.w3))
            if model.output_flow is not None:
                model.output_flow.spline.unnormalized_heights.copy_(
                    torch.randn_like(model.output_flow.spline.unnormalized_heights)
                )
    return model


def _linear_chain():
    """a -> b -> c with coefficients 2 and -3 (default spline noise flow, identity latent transform)."""
    model = _model(NAMES[:3], mechanism="linear")
    with torch.no_grad():
        model.mechanisms.weight.zero_()
        model.mechanisms.weight[0, 1] = 2.0
        model.mechanisms.weight[1, 2] = -3.0
    return model, GRAPH[:3, :3]


# ---------------------------------------------------------------------- semantics
@pytest.mark.parametrize("latent_transform", ["identity", "spline"])
def test_non_descendants_do_not_move_and_descendants_do(latent_transform):
    model = _model(latent_transform=latent_transform)
    out = intervene(model, None, {"b": 1.5}, graphs=GRAPH, num_samples=200)
    i, o = out.interventional, out.observational
    assert np.all(i[:, 1] == np.float32(1.5))  # the intervened latent holds its value
    np.testing.assert_array_equal(i[:, [0, 3]], o[:, [0, 3]])  # a (ancestor), d (co-parent): exactly unchanged
    assert np.all(i[:, 2] != o[:, 2])  # c (child) moves in every sample
    effect = out.effect()
    assert list(effect.index) == list(NAMES) and effect.index.name == "latent"
    assert effect["a"] == 0.0 and effect["d"] == 0.0 and effect["c"] != 0.0
    by_graph = out.effect_by_graph()
    assert by_graph.shape == (1, 4) and by_graph.index.name == "graph"
    np.testing.assert_allclose(by_graph.mean(axis=0).to_numpy(), effect.to_numpy())
    assert "do=['b']" in repr(out) and "num_samples=200" in repr(out)


def test_ancestry_is_per_graph_when_graphs_disagree_on_the_order():
    model = _model()
    reversed_graph = GRAPH.T.copy()  # b -> a, c -> b, c -> d: a is now a descendant of b, c an ancestor
    out = intervene(model, None, {"b": -1.0}, graphs=np.stack([GRAPH, reversed_graph]), num_samples=50)
    i = out.interventional.reshape(2, 50, 4)
    o = out.observational.reshape(2, 50, 4)
    np.testing.assert_array_equal(i[0][:, [0, 3]], o[0][:, [0, 3]])
    assert np.all(i[0][:, 2] != o[0][:, 2])
    np.testing.assert_array_equal(i[1][:, [2, 3]], o[1][:, [2, 3]])
    assert np.all(i[1][:, 0] != o[1][:, 0])
    np.testing.assert_array_equal(out.graphs, np.stack([GRAPH, reversed_graph]))


def test_linear_chain_effects_are_the_path_coefficient_products():
    model, graph = _linear_chain()
    low = intervene(model, None, {"a": 0.5}, graphs=graph, num_samples=500)
    high = intervene(model, None, {"a": 1.5}, graphs=graph, num_samples=500)
    per_unit = high.interventional.mean(0) - low.interventional.mean(0)
    np.testing.assert_allclose(per_unit, [1.0, 2.0, -6.0], atol=1e-4)
    # against the observational arm, sample by sample: c_do - c = -6 (a0 - a)
    a_obs = low.observational[:, 0].astype(np.float64)
    np.testing.assert_allclose(low.effect()["c"], -6.0 * (0.5 - a_obs.mean()), atol=1e-4)
    np.testing.assert_allclose(low.effect()["b"], 2.0 * (0.5 - a_obs.mean()), atol=1e-4)
    # an intervention on b does not reach its parent a
    on_b = intervene(model, None, {"b": 3.0}, graphs=graph, num_samples=500)
    assert on_b.effect()["a"] == 0.0
    np.testing.assert_allclose(on_b.effect()["c"], -3.0 * (3.0 - on_b.observational[:, 1].mean()), atol=1e-4)


def test_one_value_per_sample_and_two_intervened_latents():
    model, graph = _linear_chain()
    values = np.linspace(-1.0, 1.0, 40)
    out = intervene(model, None, {"a": values, "c": 0.0}, graphs=graph, num_samples=40)
    np.testing.assert_allclose(out.interventional[:, 0], values, atol=1e-6)
    assert np.all(out.interventional[:, 2] == 0.0)
    np.testing.assert_allclose(
        out.interventional[:, 1] - out.observational[:, 1], 2 * (values - out.observational[:, 0]), atol=1e-5
    )
    assert isinstance(out.intervention["a"], np.ndarray) and out.intervention["c"] == 0.0


def test_the_program_has_one_site_per_latent_in_topological_order_and_do_splits_the_site():
    model = _model()
    reversed_graph = torch.as_tensor(GRAPH.T.copy(), dtype=torch.float32)[None]
    with local_params():
        program = structural_program(model, reversed_graph)
        eps = torch.randn(1, 7, 4)
        trace = poutine.trace(program).get_trace(eps)
        sites = [n for n, s in trace.nodes.items() if s["type"] == "sample" and n.startswith("z_")]
        assert sites == ["z_c", "z_b", "z_d", "z_a"] or sites == ["z_c", "z_d", "z_b", "z_a"]
        assert trace.nodes["z_b"]["value"].shape == (1, 7)
        value = torch.full((1, 7), 2.0)
        done = poutine.trace(poutine.do(program, data={"z_b": value})).get_trace(eps)
        # do splits the site: the trace keeps the natural value of z_b, the program continues with the intervention
        assert torch.equal(done.nodes["z_b"]["value"], trace.nodes["z_b"]["value"])
        assert torch.equal(done.nodes["_RETURN"]["value"][..., 1], value)
        assert torch.equal(done.nodes["z_c"]["value"], trace.nodes["z_c"]["value"])  # c is b's parent here
        assert not torch.equal(done.nodes["z_a"]["value"], trace.nodes["z_a"]["value"])  # a is b's child here
        with pytest.raises(ValueError, match="union has a cycle"):
            structural_program(model, torch.stack([reversed_graph[0], reversed_graph[0].T]))


# ---------------------------------------------------------------------- measurements
def test_measurement_effect_shapes_and_zero_for_a_modality_that_reads_no_descendant():
    model = _model(NAMES[:3], tabular=True)  # m1 (Normal) reads a, m2 (Bernoulli) reads b, bio (tabular) reads c
    out = intervene(model, None, {"b": 2.0}, graphs=GRAPH[:3, :3], num_samples=100)
    effect = out.measurement_effect()
    assert set(effect) == {"m1", "m2", "bio"}
    assert effect["m1"].shape == (3,) and effect["m2"].shape == (3,)
    assert effect["bio"].shape == (1 + 3 + 1,)  # height loc, 3 category probabilities, P(flag)
    assert np.all(effect["m1"] == 0.0)  # a is no descendant of b
    assert np.all(effect["m2"] != 0.0) and np.any(effect["bio"] != 0.0)
    for arm in (out.interventional_measurements, out.observational_measurements):
        assert arm["bio"].shape == (1, 5)
        np.testing.assert_allclose(arm["bio"][:, 1:4].sum(-1), 1.0, atol=1e-5)
        assert np.all((arm["m2"] > 0) & (arm["m2"] < 1))


# ---------------------------------------------------------------------- graphs from q(G), randomness
def _with_guide(graph_posterior="order"):
    layout = LatentLayout(1, {"m1": 1, "m2": 1})
    data = MultiModalData({"m1": np.zeros((10, 2, 3)), "m2": np.zeros((10, 1, 2))})
    spec = ModelSpec.from_data(data)
    with local_params():
        model = PersonaXModel(layout, spec, graph_posterior=graph_posterior)
        guide = PersonaXGuide(layout, spec, graph_posterior=graph_posterior)
    return model, guide


def test_graphs_from_the_guide_are_dags_within_the_layout_and_the_seed_fixes_every_number():
    model, guide = _with_guide()
    state = torch.get_rng_state()
    first = intervene(model, guide, {"m1_1": 1.0}, num_graphs=12, num_samples=30, seed=3)
    again = intervene(model, guide, {"m1_1": 1.0}, num_graphs=12, num_samples=30, seed=3)
    other = intervene(model, guide, {"m1_1": 1.0}, num_graphs=12, num_samples=30, seed=4)
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is untouched
    assert first.graphs.shape == (12, 3, 3) and first.num_graphs == 12
    assert all(is_dag(g) for g in first.graphs)
    assert not first.graphs[:, 1:, 0].any()  # the shared block is a root block
    assert len({g.tobytes() for g in first.graphs}) > 1  # q(G) at its start is diffuse
    for name in ("interventional", "observational", "graphs"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    for mod in ("m1", "m2"):
        np.testing.assert_array_equal(first.interventional_measurements[mod], again.interventional_measurements[mod])
    assert not np.array_equal(first.observational, other.observational)


def test_results_do_not_depend_on_the_chunking(monkeypatch):
    model, guide = _with_guide()
    whole = intervene(model, guide, {"s1": -0.5}, num_graphs=6, num_samples=25, seed=1)
    monkeypatch.setattr(interventions, "_CHUNK_ELEMENTS", 7 * 9)  # 7 rows per chunk
    chunked = intervene(model, guide, {"s1": -0.5}, num_graphs=6, num_samples=25, seed=1)
    np.testing.assert_allclose(chunked.interventional, whole.interventional, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(chunked.observational, whole.observational, rtol=1e-6, atol=1e-6)
    for mod in ("m1", "m2"):
        np.testing.assert_allclose(
            chunked.interventional_measurements[mod], whole.interventional_measurements[mod], rtol=1e-5, atol=1e-6
        )


def test_follows_the_model_dtype():
    model, graph = _linear_chain()
    model = model.to(torch.float64)
    out = intervene(model, None, {"a": 1.0}, graphs=torch.as_tensor(graph), num_samples=10)
    assert out.interventional.dtype == np.float64
    assert out.interventional_measurements["m1"].dtype == np.float64


@pytest.mark.gpu
def test_runs_on_cuda_with_the_numbers_of_the_cpu():
    model, guide = _with_guide()
    cpu = intervene(model, guide, {"s1": 1.0}, num_graphs=4, num_samples=50, seed=2)
    with local_params():
        model, guide = model.to("cuda"), guide.to("cuda")
    gpu = intervene(model, guide, {"s1": 1.0}, num_graphs=4, num_samples=50, seed=2)
    np.testing.assert_array_equal(gpu.graphs, cpu.graphs)
    np.testing.assert_allclose(gpu.interventional, cpu.interventional, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gpu.observational, cpu.observational, rtol=1e-4, atol=1e-4)
    for mod in ("m1", "m2"):
        np.testing.assert_allclose(gpu.measurement_effect()[mod], cpu.measurement_effect()[mod], rtol=1e-3, atol=1e-4)


def test_the_result_is_read_only():
    model, graph = _linear_chain()
    out = intervene(model, None, {"a": 1.0}, graphs=graph, num_samples=5)
    assert isinstance(out, Interventional)
    with pytest.raises(ValueError, match="read-only"):
        out.interventional[0, 0] = 3.0
    with pytest.raises(AttributeError):
        out.seed = 2


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "do, error, match",
    [
        ({"zz": 1.0}, ValueError, r"unknown latent 'zz'; known latents are \['a', 'b', 'c'\]"),
        ({"a": float("nan")}, ValueError, r"do\['a'\]: expected finite values"),
        ({"a": [0.0, np.inf]}, ValueError, r"do\['a'\]: expected finite values"),
        ({"a": "high"}, TypeError, r"do\['a'\]: expected a number"),
        ({"a": np.zeros(7)}, ValueError, r"broadcastable to \(num_graphs, num_samples\) = \(1, 5\)"),
        ({}, ValueError, "non-empty mapping"),
        ([("a", 1.0)], ValueError, "non-empty mapping"),
    ],
)
def test_bad_interventions_are_refused_with_what_was_wrong(do, error, match):
    model, graph = _linear_chain()
    with pytest.raises(error, match=match):
        intervene(model, None, do, graphs=graph, num_samples=5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_samples": 0}, "num_samples: expected an int >= 1; found 0"),
        ({"num_samples": 2.5}, "num_samples: expected an int >= 1; found 2.5"),
        ({"num_graphs": True}, "num_graphs: expected an int >= 1; found True"),
        ({"graphs": np.zeros((2, 3))}, r"graphs: expected shape \(S, 3, 3\)"),
        ({"graphs": np.zeros((0, 3, 3))}, r"graphs: expected shape \(S, 3, 3\)"),
        ({"graphs": np.full((3, 3), 0.5)}, "expected 0/1 adjacencies"),
        ({"graphs": np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])}, r"graphs\[0\] has a directed cycle"),
        ({"graphs": np.eye(3)}, r"graphs\[0\] has a directed cycle"),
    ],
)
def test_bad_arguments_are_refused_with_what_was_wrong(kwargs, match):
    model, graph = _linear_chain()
    kwargs = {"graphs": graph, **kwargs}
    with pytest.raises(ValueError, match=match):
        intervene(model, None, {"a": 1.0}, **kwargs)


def test_graphs_must_respect_the_layout_and_a_guide_is_needed_without_graphs():
    model, _ = _with_guide()
    into_shared = np.zeros((3, 3))
    into_shared[1, 0] = 1  # m1_1 -> s1, forbidden by shared_is_root
    with pytest.raises(ValueError, match=r"graphs\[0\]: the layout forbids the edge m1_1 -> s1"):
        intervene(model, None, {"s1": 1.0}, graphs=into_shared)
    with pytest.raises(TypeError, match="guide: expected a guide with sample_graphs"):
        intervene(model, None, {"s1": 1.0})
    with pytest.raises(TypeError, match="model: expected a PersonaXModel"):
        intervene(object(), None, {"s1": 1.0})
    with pytest.raises(TypeError, match="seed: expected an int"):
        intervene(model, None, {"s1": 1.0}, graphs=np.zeros((3, 3)), seed=1.5)


def test_the_program_draws_each_latents_noise_with_its_parent_sets_shape():
    model = _model(noise_flow="parent_spline")
    with torch.no_grad():
        for offset in model.noise_flow.parent_offsets:
            offset.copy_(torch.randn_like(offset))
    edges = torch.as_tensor(GRAPH, dtype=torch.float32).unsqueeze(0)
    eps = torch.randn(1, 64, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = structural_program(model, edges)(eps)
        latent = model.latent_distribution(edges.unsqueeze(-3))
        shaped = model.noise_flow.forward(eps, latent.adjacency)
        torch.testing.assert_close(latent.noise(z), shaped, atol=1e-4, rtol=0)  # the structural equations hold
        assert (shaped - model.noise_flow(eps))[..., 2].abs().max() > 1e-2  # c's parents change its noise shape
