"""Tests of PersonaXModel / PersonaXGuide: SVI, sites and shapes, masking, minibatch scaling, errors."""
import itertools
import json

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import Adam

from pyro_personax.data.multimodal import ModalityTensors, MultiModalData
from pyro_personax.layout import LatentLayout
from pyro_personax.models import ModelSpec, PersonaXGuide, PersonaXModel

N = 12


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    tab = pd.DataFrame(
        {
            "height": rng.normal(size=n),
            "group": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "flag": rng.random(n) > 0.5,
        }
    )
    tab.loc[2, "height"] = np.nan
    face_mask = np.ones((n, 3), dtype=bool)
    face_mask[1, 0] = face_mask[4, 2] = False
    text = (rng.random((n, 2, 3)) > 0.5).astype(float)
    return MultiModalData(
        {"face": rng.normal(size=(n, 3, 4)), "text": text},
        masks={"face": face_mask},
        likelihoods={"text": "bernoulli"},
        tabular=tab,
    )


def _layout(**kwargs):
    return LatentLayout(1, {"face": 2, "text": 1, "bio": 1}, **kwargs)


def _pair(data, layout=None, posterior_covariance="diagonal", graph_posterior="pairwise", **kwargs):
    spec = ModelSpec.from_data(data)
    layout = layout or _layout()
    model = PersonaXModel(layout, spec, graph_posterior=graph_posterior, **kwargs)
    guide = PersonaXGuide(layout, spec, posterior_covariance=posterior_covariance, graph_posterior=graph_posterior)
    return model, guide


def _rows(batch, idx):
    return {m: ModalityTensors(*(None if x is None else x[idx] for x in t)) for m, t in batch.items()}


def _elbo(model, guide, batch, seed=0, **kw):
    pyro.set_rng_seed(seed)
    return Trace_ELBO().loss(model, guide, batch, **kw)


@pytest.mark.parametrize("mechanism", ["mlp", "mlp_additive", "linear"])
def test_one_svi_step_with_validation(mechanism):
    data = _data()
    model, guide = _pair(data, mechanism=mechanism)
    batch = data.to_tensors()
    before = guide.pair_logits.detach().clone()
    svi = SVI(model, guide, Adam({"lr": 0.05}), TraceMeanField_ELBO())
    losses = [svi.step(batch, num_entities=N, alpha=0.5, rho=2.0, temperature=0.3) for _ in range(2)]
    assert all(np.isfinite(losses))
    assert not torch.equal(before, guide.pair_logits.detach())  # straight-through reaches the logits
    assert model.mechanisms.weight.grad is not None


def test_site_names_shapes_and_scales():
    data = _data()
    model, guide = _pair(data)
    batch = data.to_tensors()
    idx = torch.tensor([0, 3, 5, 7])
    kw = dict(num_entities=N, subsample=idx, kl_weight=0.5)
    gtr = poutine.trace(guide).get_trace(_rows(batch, idx), **kw)
    mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(_rows(batch, idx), **kw)
    D, B = 5, 4
    shapes = {
        n: tuple(s["value"].shape) for n, s in mtr.nodes.items() if s["type"] == "sample" and not n.startswith("_")
    }
    torch.testing.assert_close(mtr.nodes["entity"]["value"], idx)  # the subsample indices
    del shapes["entity"]
    assert shapes == {
        "edges": (D, D),
        "sparsity": (0,),
        "acyclicity": (0,),
        "z": (B, D),
        "eta_face": (B, 3, 2),
        "x_face": (B, 3, 4),
        "eta_text": (B, 2, 2),
        "x_text": (B, 2, 3),
        "x_bio": (B, 1, 3),
    }
    assert set(n for n, s in gtr.nodes.items() if s["type"] == "sample") == {
        "edges",
        "entity",
        "z",
        "eta_face",
        "eta_text",
    }
    scale = N / B
    assert mtr.nodes["x_face"]["scale"] == pytest.approx(scale)
    assert mtr.nodes["z"]["scale"] == pytest.approx(scale * 0.5)
    assert gtr.nodes["eta_face"]["scale"] == pytest.approx(scale * 0.5)
    assert mtr.nodes["edges"]["scale"] == 1.0 and mtr.nodes["acyclicity"]["scale"] == 1.0
    assert mtr.nodes["x_face"]["is_observed"]
    frames = {f.name: f.dim for f in mtr.nodes["z"]["cond_indep_stack"]}
    assert frames == {"entity": -1}


def test_bic_edge_penalty():
    data = _data()
    mlp, _ = _pair(data, mechanism="mlp", mechanism_hidden_dim=7)
    linear, _ = _pair(data, mechanism="linear")
    additive, _ = _pair(data, mechanism="mlp_additive", mechanism_hidden_dim=7)
    from pyro_personax.models.latent_flow import MLP_EFFECTIVE_EDGE_PARAMS

    assert mlp.mechanisms.params_per_edge == additive.mechanisms.params_per_edge == 1 + 2 * 7
    assert mlp.edge_penalty("bic", 1000) == pytest.approx(0.5 * MLP_EFFECTIVE_EDGE_PARAMS["mlp"] * np.log(1000))
    assert additive.edge_penalty("bic", 1000) == pytest.approx(
        0.5 * MLP_EFFECTIVE_EDGE_PARAMS["mlp_additive"] * np.log(1000))
    assert linear.edge_penalty("bic", 1000) == pytest.approx(0.5 * np.log(1000))
    assert linear.edge_penalty(2.5, 1000) == 2.5
    for bad in ("aic", -1.0, float("nan")):
        with pytest.raises(ValueError, match="sparsity"):
            linear.edge_penalty(bad, 10)


def test_forbidden_and_required_edges_are_fixed():
    data = _data()
    layout = _layout(required=[("face_1", "text_1")], forbidden=[("face_2", "bio_1")])
    model, guide = _pair(data, layout=layout)
    batch = data.to_tensors()
    allowed, required = layout.allowed_mask(), layout.required_mask()
    for seed in range(5):
        pyro.set_rng_seed(seed)
        tr = poutine.trace(guide).get_trace(batch, num_entities=N, temperature=2.0)
        e = tr.nodes["edges"]["value"].detach().numpy()
        assert set(np.unique(e)) <= {0.0, 1.0}
        assert (e[~allowed] == 0).all() and (e[required] == 1).all()
    probs = guide.edge_probabilities().numpy()
    assert (probs[~allowed] == 0).all() and (probs[required] == 1).all()
    # free pairs start with equally likely states: 1/3 with both directions allowed, else
    # 1/2; the reverse of a required edge is impossible (no two-cycles)
    free = allowed & ~required
    states = 1 + allowed.astype(int) + allowed.T.astype(int)
    expected = np.where(required.T, 0.0, 1.0 / states)
    np.testing.assert_allclose(probs[free], expected[free], rtol=1e-6)
    w = model.edge_weights(torch.ones(3, 1, 5, 5))
    assert w.shape == (3, 1, 5, 5)
    np.testing.assert_array_equal(w[0, 0].numpy(), allowed.astype(float))
    h = model.acyclicity(torch.ones(2, 5, 5))
    assert h.shape == (2,) and (h > 0).all()
    assert model.acyclicity(torch.zeros(5, 5)).item() == 0.0


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_masked_measurement_leaves_the_elbo_unchanged(covariance):
    data = _data()
    model, guide = _pair(data, posterior_covariance=covariance)
    batch = data.to_tensors()
    ref = _elbo(model, guide, batch, num_entities=N)
    changed = {m: ModalityTensors(t.values.clone(), t.mask, t.cell_mask) for m, t in batch.items()}
    changed["face"].values[1, 0] = 100.0  # masked measurement
    changed["face"].values[4, 2] = -7.0
    changed["bio"].values[2, 0, 0] = 55.0  # masked cell
    assert _elbo(model, guide, changed, num_entities=N) == pytest.approx(ref, abs=1e-9)
    # positive control: an observed value changes the ELBO
    changed["face"].values[1, 1] = 100.0
    assert abs(_elbo(model, guide, changed, num_entities=N) - ref) > 1.0


def _particle_elbos(model, guide, batch, num_particles, **kw):
    """Per-particle ELBO (num_particles,) from one vectorised trace."""

    def vec(fn):
        return pyro.plate("particles", num_particles, dim=-2)(fn)

    gtr = poutine.trace(vec(guide)).get_trace(batch, **kw)
    mtr = poutine.trace(poutine.replay(vec(model), trace=gtr)).get_trace(batch, **kw)
    total = torch.zeros(num_particles, dtype=torch.float64)
    for tr, sign in ((mtr, 1.0), (gtr, -1.0)):
        tr.compute_log_prob()
        for site in tr.nodes.values():
            if site["type"] == "sample":
                lp = site["log_prob"].double()
                total += sign * lp.expand(num_particles, *lp.shape[1:]).reshape(num_particles, -1).sum(-1)
    return total.detach()


def test_minibatch_elbo_is_scaled_to_the_full_data():
    n, b, P = 6, 2, 4000
    data = _data(n=n, seed=3)
    model, guide = _pair(data)
    batch = data.to_tensors()
    full = _particle_elbos(model, guide, batch, P, num_entities=n)
    means, variances = [], []
    for idx in itertools.combinations(range(n), b):
        idx = torch.tensor(idx)
        e = _particle_elbos(model, guide, _rows(batch, idx), P, num_entities=n, subsample=idx)
        means.append(e.mean())
        variances.append(e.var() / P)
    mini = torch.stack(means).mean()
    se = (full.var() / P + torch.stack(variances).sum() / len(means) ** 2).sqrt()
    assert abs(full.mean() - mini) < 4 * se
    assert 4 * se < 0.02 * abs(full.mean())  # sharp enough to see a wrong N / B factor


def test_posterior_predictive_shapes_and_latent_posterior():
    data = _data()
    model, guide = _pair(data)
    batch = data.to_tensors()
    out = Predictive(model, guide=guide, num_samples=3, parallel=True)(batch, num_entities=N, observe=False)
    assert out["edges"].shape == (3, 1, 5, 5)
    assert out["z"].shape == (3, N, 5)
    assert out["x_face"].shape == (3, N, 3, 4)
    assert out["x_bio"].shape == (3, N, 1, 3)
    codes = out["x_bio"][..., 1]
    assert set(codes.unique().tolist()) <= {0.0, 1.0, 2.0}
    loc, scale = guide.latent_posterior(batch)
    assert loc.shape == scale.shape == (N, 5) and (scale > 0).all() and (scale < 1).all()
    # the face block sees only face measurements; the shared block pools every modality
    changed = dict(batch)
    changed["text"] = ModalityTensors(1.0 - batch["text"].values, batch["text"].mask, None)
    loc2, _ = guide.latent_posterior(changed)
    torch.testing.assert_close(loc2[:, 1:3], loc[:, 1:3])
    assert (loc2[:, 0] - loc[:, 0]).abs().max() > 1e-4
    assert (loc2[:, 3] - loc[:, 3]).abs().max() > 1e-4
    strength = model.mechanism_strength(loc, torch.ones(5, 5))
    assert strength.shape == (5, 5) and (strength[:, 0] == 0).all()


def test_spec_roundtrip_json():
    spec = ModelSpec.from_data(_data())
    back = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert back["bio"].columns[1].categories == ("a", "b", "c")


@pytest.mark.parametrize(
    "layout, message",
    [
        (
            LatentLayout(1, {"face": 2, "text": 1, "bio": 1, "audio": 1}),
            r"layout modalities \['audio'\] are not in the data",
        ),
        (LatentLayout(1, {"face": 2, "text": 1}), r"data modalities \['bio'\] have no block"),
        (LatentLayout(1, {"face": 2, "text": 7, "bio": 1}), "block 'text' has 7 latents"),
    ],
)
def test_bad_configuration_raises(layout, message):
    spec = ModelSpec.from_data(_data())
    with pytest.raises(ValueError, match=message):
        PersonaXModel(layout, spec)
    with pytest.raises(ValueError, match=message):
        PersonaXGuide(layout, spec)


def test_bad_options_and_layout_conflicts_raise():
    spec = ModelSpec.from_data(_data())
    with pytest.raises(ValueError, match="nuisance_dim: unknown modalities"):
        PersonaXModel(_layout(), spec, nuisance_dim={"audio": 2})
    with pytest.raises(ValueError, match="edge_prior"):
        PersonaXModel(_layout(), spec, edge_prior=1.0)
    with pytest.raises(ValueError, match="mechanism"):
        PersonaXModel(_layout(), spec, mechanism="cubic")
    with pytest.raises(TypeError, match="spec"):
        PersonaXModel(_layout(), {"face": 1})
    with pytest.raises(ValueError, match="conflict with forbidden"):
        PersonaXModel(_layout(required=[("face_1", "s1")]), spec)
    with pytest.raises(ValueError, match="directed cycle"):
        PersonaXModel(_layout(required=[("face_1", "text_1"), ("text_1", "face_1")]), spec)


def test_bad_batches_raise():
    data = _data()
    model, guide = _pair(data)
    batch = data.to_tensors()
    wrong_k = dict(batch, face=ModalityTensors(batch["face"].values[:, :2], batch["face"].mask[:, :2], None))
    cases = [
        ({k: v for k, v in batch.items() if k != "text"}, dict(num_entities=N), ValueError, "missing"),
        (wrong_k, dict(num_entities=N), ValueError, r"batch\['face'\].values: expected shape \(B, 3, 4\)"),
        (batch, dict(num_entities=N + 1), ValueError, "num_entities=13"),
        (batch, dict(num_entities=N, subsample=torch.arange(3)), ValueError, "3 indices"),
        (batch, dict(num_entities=N, temperature=0.0), ValueError, "temperature"),
        (data.to_tensors(dtype=torch.float64), dict(num_entities=N), TypeError, "float64"),
    ]
    for b, kw, err, message in cases:
        for fn in (model, guide):
            with pytest.raises(err, match=message):
                fn(b, **kw)


def _copy_diagonal_part(full: PersonaXGuide, diagonal: PersonaXGuide) -> None:
    """Give ``full`` the parameters of ``diagonal`` and zero its off-diagonal outputs."""
    with torch.no_grad():
        full_params = dict(full.named_parameters())
        for name, p in diagonal.named_parameters():
            q = full_params[name]
            if q.shape == p.shape:
                q.copy_(p)
            else:  # the encoders' last layer: [loc, precision] outputs, then the lower triangle
                q.zero_()
                q[..., : p.shape[-1]] = p


def test_full_covariance_guide_with_zero_correlations_is_the_diagonal_guide():
    data = _data()
    spec, batch = ModelSpec.from_data(data), data.to_tensors()
    torch.manual_seed(0)
    diagonal = PersonaXGuide(_layout(), spec, posterior_covariance="diagonal")
    full = PersonaXGuide(_layout(), spec, posterior_covariance="full")
    _copy_diagonal_part(full, diagonal)
    loc_d, scale_d = diagonal.latent_posterior(batch)
    loc_f, scale_f = full.latent_posterior(batch)
    torch.testing.assert_close(loc_f, loc_d)
    torch.testing.assert_close(scale_f, scale_d)
    cov = full.latent_posterior_distribution(batch).covariance_matrix
    torch.testing.assert_close(cov, torch.diag_embed(scale_d**2))
    # the ELBO is the same too (the entropy of q(z | x) included)
    model = PersonaXModel(_layout(), spec)
    assert _elbo(model, full, batch, num_entities=N) == pytest.approx(
        _elbo(model, diagonal, batch, num_entities=N), rel=1e-5
    )


def test_full_covariance_guide_correlates_latents_within_the_experts_coordinates():
    data = _data()
    layout = LatentLayout(0, {"face": 2, "text": 2, "bio": 1})
    model, guide = _pair(data, layout, posterior_covariance="full")
    batch = data.to_tensors()
    q = guide.latent_posterior_distribution(batch)
    assert isinstance(q, pyro.distributions.MultivariateNormal) and q.event_shape == (5,) and q.batch_shape == (N,)
    cov = q.covariance_matrix
    assert cov[:, 0, 1].abs().min() > 1e-6  # within the face block
    assert (cov[:, :2, 2:] == 0).all()  # no shared block: face and text are independent
    loc, scale = guide.latent_posterior(batch)
    torch.testing.assert_close(scale, cov.diagonal(dim1=-2, dim2=-1).sqrt())
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    before = [p.detach().clone() for p in guide.encoders["face"].parameters()]
    assert np.isfinite(svi.step(batch, num_entities=N))
    assert all(not torch.equal(b, p) for b, p in zip(before, guide.encoders["face"].parameters()))
    tr = poutine.trace(guide).get_trace(batch, num_entities=N)
    assert tr.nodes["z"]["value"].shape == (N, 5)


def test_bad_posterior_covariance_raises():
    with pytest.raises(
        ValueError, match=r"posterior_covariance: expected one of \('diagonal', 'full'\); found 'dense'"
    ):
        PersonaXGuide(_layout(), ModelSpec.from_data(_data()), posterior_covariance="dense")


@pytest.mark.gpu
@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_one_svi_step_on_cuda(covariance):
    data = _data()
    model, guide = _pair(data, posterior_covariance=covariance)
    model, guide = model.cuda(), guide.cuda()
    batch = data.to_tensors(device="cuda")
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    assert np.isfinite(svi.step(batch, num_entities=N))
    assert guide.latent_posterior(batch)[0].device.type == "cuda"


class _ShiftedMechanisms(torch.nn.Module):
    """The mechanisms after ``z_j -> z_j - g(z_i)`` for each ``(i, j, g)``: ``f_j - g(z_i)``."""

    def __init__(self, inner, shifts):
        super().__init__()
        self.inner, self.shifts = inner, shifts

    @property
    def effective_params_per_edge(self):
        return self.inner.effective_params_per_edge

    def forward(self, z, adjacency):
        out = self.inner(z, adjacency)
        for i, j, g in self.shifts:
            out = out - torch.nn.functional.one_hot(torch.tensor(j), z.shape[-1]).to(z) * (
                adjacency[..., i, j].unsqueeze(-1) * g(z[..., i : i + 1])
            )
        return out


class _UnshiftedDecoder(torch.nn.Module):
    """A decoder composed with the inverse map: input column ``b`` gets ``g(column a)`` back."""

    def __init__(self, inner, a, b, g):
        super().__init__()
        self.inner, self.a, self.b, self.g = inner, a, b, g

    def forward(self, x):
        x = x.clone()
        x[..., self.b] = x[..., self.b] + self.g(x[..., self.a : self.a + 1])[..., 0]
        return self.inner(x)


def test_a_decoder_absorbs_an_edge_inside_a_block_or_from_the_shared_block():
    """``z_j -> z_j - g(z_i)`` with the mechanism ``f_j - g`` and the decoders composed with
    the inverse leaves the log joint unchanged, whatever ``g`` is, for edges whose parent
    every decoder of the child reads (``LatentLayout.absorbable_mask``)."""
    import copy

    torch.manual_seed(0)
    data = _data()
    layout = _layout()  # s1 | face_1 face_2 | text_1 | bio_1
    model, _ = _pair(data, layout, cyclic_logdet=False)
    with torch.no_grad():  # non-trivial mechanisms (their output weights start at 0)
        model.mechanisms.w2.normal_()
        model.mechanisms.weight.normal_()
        model.raw_scales["face"].fill_(-2.0)  # sharp face likelihood (scale 0.13)
    G = torch.zeros(5, 5)
    G[0, 1] = G[1, 2] = G[0, 3] = G[1, 4] = 1.0  # s1->face_1, face_1->face_2, s1->text_1, face_1->bio_1
    batch = data.to_tensors()
    kw = dict(num_entities=N)
    pyro.set_rng_seed(1)
    tr = poutine.trace(poutine.condition(model, {"edges": G})).get_trace(batch, **kw)
    sites = {k: tr.nodes[k]["value"] for k in ("edges", "z", "eta_face", "eta_text")}

    def log_joint(m, z):
        conditioned = poutine.condition(m, {**sites, "z": z})
        return poutine.trace(conditioned).get_trace(batch, **kw).log_prob_sum()

    g1, g2 = (lambda u: torch.sin(2 * u) + u**2), (lambda u: 3 * torch.tanh(u))
    absorbable = layout.absorbable_mask()
    assert absorbable[1, 2] and absorbable[0, 3] and not absorbable[1, 4]
    z = sites["z"]
    shifted = z.clone()
    shifted[:, 2] = z[:, 2] - g1(z[:, 1:2])[:, 0]  # face_2 (its parent face_1, one block)
    shifted[:, 3] = z[:, 3] - g2(z[:, 0:1])[:, 0]  # text_1 (its parent s1, the shared block)
    other = copy.deepcopy(model)
    other.mechanisms = _ShiftedMechanisms(model.mechanisms, [(1, 2, g1), (0, 3, g2)])
    other.decoders["face"] = _UnshiftedDecoder(model.decoders["face"], 1, 2, g1)  # input (s1, face_1, face_2, eta)
    other.decoders["text"] = _UnshiftedDecoder(model.decoders["text"], 0, 1, g2)  # input (s1, text_1, eta)
    before, after = log_joint(model, z), log_joint(other, shifted)
    assert torch.isfinite(before)
    torch.testing.assert_close(after, before, rtol=1e-6, atol=1e-2)
    # it is the decoder that absorbs the shift: without composing it, the log joint moves
    prior_only = copy.deepcopy(other)
    prior_only.decoders["face"] = model.decoders["face"]
    assert abs((log_joint(prior_only, shifted) - before).item()) > 10.0
    # the edge face_1 -> bio_1 crosses blocks: the bio decoder never reads face_1, so no
    # decoder can be composed with the inverse of bio_1 -> bio_1 - g(face_1)
    assert not absorbable[1, 4]


# ---------------------------------------------------------------------- order posterior
def test_order_posterior_sites_shapes_and_dag_draws():
    from pyro_personax.inference.graph_elbo import GraphParticleELBO

    data = _data()
    model, guide = _pair(data, graph_posterior="order")
    batch = data.to_tensors()
    idx = torch.tensor([0, 3, 5, 7])
    loss_fn = GraphParticleELBO(model, guide, num_particles=6)
    mtr, gtr = loss_fn.traces(_rows(batch, idx), num_entities=N, subsample=idx, kl_weight=0.5)
    D, B, K = 5, 4, 6
    assert tuple(gtr.nodes["order"]["value"].shape) == (K, 1, D)
    assert tuple(mtr.nodes["edges"]["value"].shape) == (K, 1, D, D)
    assert tuple(mtr.nodes["z"]["log_prob"].shape) == (K, B)  # one density per graph particle
    assert tuple(mtr.nodes["x_face"]["log_prob"].shape) == (B,)  # observations do not depend on the graph
    frames = {f.name: f.dim for f in mtr.nodes["z"]["cond_indep_stack"]}
    assert frames == {"graphs": -2, "entity": -1}
    assert {"order", "edges", "linear_extensions", "sparsity", "acyclicity"} <= set(mtr.nodes)
    assert float(mtr.nodes["acyclicity"]["fn"].log_factor.abs().max()) == 0.0  # h(G) = 0 on every draw
    draws = guide.sample_graphs(2000)["edges"]
    assert float(model.acyclicity(draws).abs().max()) == 0.0
    assert (draws[:, 1:, 0] == 0).all()  # the shared block is a root


def test_order_posterior_svi_step_trains_graph_encoders_and_only_fits_mechanisms_on_parent_sets():
    from pyro_personax.inference.graph_elbo import GraphParticleELBO

    data = _data()
    model, guide = _pair(data, graph_posterior="order")
    batch = data.to_tensors()
    loss_fn = GraphParticleELBO(model, guide, num_particles=4, mechanism_fit_weight=1.0)
    loss = loss_fn(batch, num_entities=N)
    loss.backward()
    assert torch.isfinite(loss)
    assert guide.order_logits.grad is not None and guide.edge_logits.grad.abs().sum() > 0
    assert model.mechanisms.w1.grad is not None  # from the random-parent-set fit
    for p in (
        *model.mechanisms.parameters(),
        *model.noise_flow.parameters(),
        *guide.parameters(),
        *model.decoders.parameters(),
    ):
        p.grad = None
    with torch.no_grad():
        model.mechanisms.w2.add_(0.5)  # non-zero mechanisms, so the ELBO depends on them
    no_fit = GraphParticleELBO(model, guide, num_particles=4, mechanism_fit_weight=0.0)
    no_fit(batch, num_entities=N).backward()
    assert model.mechanisms.w1.grad.abs().sum() > 0  # weight 0: the ELBO trains them
    model.zero_grad(set_to_none=True)
    guide.zero_grad(set_to_none=True)
    with model.mechanisms_held_fixed():
        pyro.set_rng_seed(0)
        gtr = poutine.trace(guide).get_trace(batch, num_entities=N)
        mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(batch, num_entities=N)
        mtr.nodes["z"]["fn"].log_prob(mtr.nodes["z"]["value"]).sum().backward()
    assert model.mechanisms.w1.grad is None and model.noise_flow.loc.grad is None
    assert guide.encoders["face"].parameters().__next__().grad is not None  # z's gradient reaches the encoder


def test_loo_score_surrogate_value_and_gradient():
    from pyro_personax.inference.graph_elbo import loo_score_surrogate

    log_q = torch.tensor([0.1, -0.3, 0.7], requires_grad=True)
    cost = torch.tensor([1.0, 4.0, -2.0])
    out = loo_score_surrogate(cost, log_q)
    assert float(out.detach()) == 0.0
    out.backward()
    baseline = torch.tensor([(4.0 - 2.0) / 2, (1.0 - 2.0) / 2, (1.0 + 4.0) / 2])
    torch.testing.assert_close(log_q.grad, (cost - baseline) / 3)
