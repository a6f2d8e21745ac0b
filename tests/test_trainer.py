"""Tests of the Level II trainer with a tiny model/guide that follows the Level II call signature."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.nn import PyroModule, PyroParam

from pyro_personax.data.multimodal import ModalityTensors
from pyro_personax.graph import acyclicity
from pyro_personax.inference import (
    AugLagConfig,
    AugmentedLagrangian,
    FittedChains,
    KLWarmup,
    NonFiniteLossError,
    TemperatureSchedule,
    TrainerConfig,
    fit_chains,
    resolve_device,
    train_chain,
)
from pyro_personax.layout import LatentLayout

D, K, DIM = 3, 2, 4


def _offdiag(like):
    return 1.0 - torch.eye(D, dtype=like.dtype, device=like.device)


class TinyModel(PyroModule):
    """z ~ N(0, I); x_k ~ N(z @ B, sigma); edges with a Bernoulli(0.3) prior."""

    def __init__(self, poison_step=None):
        super().__init__()
        self.poison_step, self.calls = poison_step, 0
        self.weights = PyroParam(0.1 * torch.randn(D, D))
        self.decoder = torch.nn.Linear(D, DIM)
        self.log_sigma = PyroParam(torch.zeros(()))

    def edge_weights(self, edges):
        return edges * self.weights * _offdiag(self.weights)

    def acyclicity(self, edges):
        return acyclicity(self.edge_weights(edges))

    def forward(
        self,
        batch,
        *,
        num_entities,
        subsample=None,
        alpha=0.0,
        rho=1.0,
        sparsity=0.1,
        temperature=0.5,
        kl_weight=1.0,
        observe=True,
    ):
        t = batch["x"]
        prior = torch.full((D, D), 0.3) * _offdiag(self.weights) + 1e-4
        edges = pyro.sample(
            "edges", dist.RelaxedBernoulliStraightThrough(torch.tensor(temperature), probs=prior).to_event(2)
        )
        w = self.edge_weights(edges)
        pyro.factor("sparsity", -sparsity * w.abs().sum())
        h = acyclicity(w)
        pyro.factor("acyclicity", -(alpha * h + rho / 2 * h**2))
        with pyro.plate("entity", num_entities, subsample=subsample, dim=-1):
            with poutine.scale(scale=kl_weight):
                z = pyro.sample("z", dist.Normal(torch.zeros(len(t.values), D), 1.0).to_event(1))
            loc = self.decoder(z)[:, None, :].expand(-1, K, -1)
            obs = t.values if observe else None
            pyro.sample("x", dist.Normal(loc, self.log_sigma.exp()).mask(t.mask[..., None]).to_event(2), obs=obs)
        self.calls += 1
        if self.poison_step is not None and self.calls > self.poison_step:
            pyro.factor("bad_term", torch.tensor(float("nan")))


class TinyGuide(PyroModule):
    def __init__(self):
        super().__init__()
        self.logits = PyroParam(torch.zeros(D, D))
        self.encoder = torch.nn.Linear(DIM, D)
        self.log_scale = PyroParam(torch.full((D,), -1.0))

    def edge_probabilities(self):
        return torch.sigmoid(self.logits) * _offdiag(self.logits)

    def sample_graphs(self, num_samples, generator=None):
        return {"edges": dist.Bernoulli(probs=self.edge_probabilities()).sample((num_samples,))}

    def graph_parameters(self):
        return [self.logits]

    def latent_posterior(self, batch):
        t = batch["x"]
        mean_x = (t.values * t.mask[..., None]).sum(1) / t.mask.sum(1, keepdim=True).clamp(min=1)
        loc = self.encoder(mean_x)
        return loc, self.log_scale.exp().expand_as(loc)

    def forward(
        self,
        batch,
        *,
        num_entities,
        subsample=None,
        alpha=0.0,
        rho=1.0,
        sparsity=0.1,
        temperature=0.5,
        kl_weight=1.0,
        observe=True,
    ):
        logits = self.logits - 1e4 * torch.eye(D)
        pyro.sample("edges", dist.RelaxedBernoulliStraightThrough(torch.tensor(temperature), logits=logits).to_event(2))
        loc, scale = self.latent_posterior(batch)
        with pyro.plate("entity", num_entities, subsample=subsample, dim=-1):
            with poutine.scale(scale=kl_weight):
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))


def build():
    return TinyModel(), TinyGuide()


def _tensors(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n, K, DIM, generator=g)
    mask = torch.rand(n, K, generator=g) > 0.2
    values = torch.where(mask[..., None], values, torch.zeros(()))
    return {"x": ModalityTensors(values, mask, None)}


def _config(**kw):
    base = dict(num_epochs=3, batch_size=32, learning_rate=0.05, progress=False)
    base.update(kw)
    return TrainerConfig(**base)


# ----------------------------------------------------------------------------- schedules
def test_auglag_updates_rho_only_without_progress_and_converges():
    s = AugmentedLagrangian(AugLagConfig(rho_init=2.0, rho_factor=10.0, gamma=0.5, tolerance=1e-3))
    s.update(1.0)
    assert (s.alpha, s.rho) == (2.0, 2.0)
    s.update(0.4)  # 0.4 <= 0.5 * 1.0: enough progress, rho kept
    assert s.rho == 2.0 and s.alpha == pytest.approx(2.8)
    s.update(0.3)  # 0.3 > 0.5 * 0.4: rho grows
    assert s.rho == 20.0 and s.alpha == pytest.approx(2.8 + 6.0)
    assert not s.converged
    s.update(1e-4)
    assert s.converged and s.alpha == pytest.approx(8.8)
    other = AugmentedLagrangian(s.config)
    other.load_state_dict(s.state_dict())
    assert other.state_dict() == s.state_dict()


def test_auglag_rho_is_capped_and_rejects_bad_h():
    s = AugmentedLagrangian(AugLagConfig(rho_init=1.0, rho_factor=10.0, rho_max=50.0))
    for _ in range(4):
        s.update(1.0)
    assert s.rho == 50.0
    with pytest.raises(RuntimeError, match="acyclicity h"):
        s.update(float("nan"))


@pytest.mark.parametrize("kw", [{"rho_init": 0.0}, {"gamma": 1.5}, {"rho_factor": 1.0}, {"tolerance": -1.0}])
def test_auglag_config_validation(kw):
    with pytest.raises(ValueError, match="AugLagConfig"):
        AugLagConfig(**kw)


def test_temperature_and_kl_schedules():
    t = TemperatureSchedule(1.0, 0.2)
    assert t(0, 5) == 1.0 and t(4, 5) == pytest.approx(0.2) and t(9, 5) == pytest.approx(0.2)
    assert t(2, 5) == pytest.approx(math.sqrt(0.2))
    assert TemperatureSchedule(1.0, 0.2, num_epochs=3)(2, 100) == pytest.approx(0.2)
    w = KLWarmup(num_epochs=4, initial=0.2)
    assert [w(e) for e in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    with pytest.raises(ValueError, match="initial"):
        TemperatureSchedule(0.0, 0.2)


@pytest.mark.parametrize(
    "kw",
    [
        {"num_epochs": 0},
        {"batch_size": 0},
        {"learning_rate": -1.0},
        {"patience": 0},
        {"lr_decay": 1.5},
        {"sparsity": -1.0},
        {"graph_learning_rate": 0.0},
        {"graph_learning_rate": float("nan")},
        {"graph_learning_rate": True},
    ],
)
def test_trainer_config_validation(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        TrainerConfig(**kw)


# ----------------------------------------------------------------------------- device
def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device: expected"):
        resolve_device("gpu")
    with pytest.raises(TypeError, match="device"):
        resolve_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


# ----------------------------------------------------------------------------- training
def test_same_seed_same_chain_and_different_seeds_differ():
    train, val = _tensors(120), _tensors(30, seed=1)
    _, g1, r1 = train_chain(build, train, val, config=_config(), seed=5)
    _, g2, r2 = train_chain(build, train, val, config=_config(), seed=5)
    _, g3, _ = train_chain(build, train, val, config=_config(), seed=6)
    assert torch.equal(g1.edge_probabilities(), g2.edge_probabilities())
    assert r1.train_elbo == r2.train_elbo
    assert not torch.allclose(g1.edge_probabilities(), g3.edge_probabilities())
    assert len(pyro.get_param_store()) == 0  # parameters stay local to the modules


def test_fit_chains_are_independent_restarts_with_traces():
    train, val = _tensors(120), _tensors(30, seed=1)
    config = _config(auglag=AugLagConfig(steps_per_round=2, tolerance=1e-12))
    chains = fit_chains(build, train, val, config=config, num_chains=2, seed=3, layout=LatentLayout(0, {"m": D}))
    guides, result = chains.guides, chains.result
    assert isinstance(chains, FittedChains) and not chains.is_aligned
    _, alone, _ = train_chain(build, train, val, config=config, seed=3, chain=1)
    assert torch.equal(guides[1].edge_probabilities(), alone.edge_probabilities())
    assert not torch.allclose(guides[0].edge_probabilities(), guides[1].edge_probabilities())
    assert result.num_chains == 2 and [c.seed for c in result.chains] == [3, 4]
    for name in ("elbo", "validation_elbo", "acyclicity", "sparsity"):
        assert all(len(t) == 3 and torch.isfinite(torch.as_tensor(t)).all() for t in getattr(result, name))
    assert result.wall_time > 0 and all(c.wall_time > 0 for c in result.chains)
    assert len(result.final_alpha) == 2 and len(result.converged) == 2
    assert result.chains[0].alpha[-1] > 0  # h > 0 on a dense initial graph drives alpha up
    assert len(result.to_dataframe()) == 6


def test_training_improves_the_elbo():
    train = _tensors(200)
    _, _, r = train_chain(build, train, None, config=_config(num_epochs=8), seed=0)
    assert r.train_elbo[-1] > r.train_elbo[0] + 0.5
    assert all(math.isnan(v) for v in r.validation_elbo)


def test_resume_continues_exactly_from_the_checkpoint(tmp_path):
    train, val = _tensors(100), _tensors(20, seed=1)
    temp = TemperatureSchedule(1.0, 0.2, num_epochs=4)
    # 4 steps per epoch, rounds of 3 steps: the checkpoint falls in the middle of a round
    kw = dict(temperature=temp, graph_warmup_epochs=1, auglag=AugLagConfig(steps_per_round=3))
    _, straight, r_straight = train_chain(build, train, val, config=_config(num_epochs=4, **kw), seed=2)
    train_chain(build, train, val, config=_config(num_epochs=2, **kw), seed=2, checkpoint_dir=tmp_path)
    assert (tmp_path / "chain_0.pt").is_file()
    _, resumed, r_resumed = train_chain(
        build, train, val, config=_config(num_epochs=4, **kw), seed=2, checkpoint_dir=tmp_path, resume=True
    )
    assert torch.equal(straight.edge_probabilities(), resumed.edge_probabilities())
    assert r_straight.train_elbo == r_resumed.train_elbo
    assert r_straight.alpha == r_resumed.alpha and r_straight.rho == r_resumed.rho


def test_graph_warmup_holds_q_of_g_and_the_schedule_then_learns_the_graph():
    train = _tensors(100)
    config = _config(num_epochs=2, graph_warmup_epochs=2, auglag=AugLagConfig(steps_per_round=1, tolerance=1e-12))
    model, guide, r = train_chain(build, train, None, config=config, seed=0)
    assert torch.equal(guide.logits.detach(), torch.zeros(D, D))  # never updated
    assert r.alpha == [0.0, 0.0] and r.rho == [1.0, 1.0]
    assert model.decoder.weight.grad is not None  # the rest was trained
    config = _config(num_epochs=3, graph_warmup_epochs=2, auglag=AugLagConfig(steps_per_round=1, tolerance=1e-12))
    _, guide, r = train_chain(build, train, None, config=config, seed=0)
    assert not torch.equal(guide.logits.detach(), torch.zeros(D, D))
    assert r.alpha[-1] > 0


def test_graph_learning_rate_applies_to_the_edge_logits_only():
    train = _tensors(32)
    # one Adam step: |update| = lr; graph_learning_rate None = the networks' rate
    config = _config(num_epochs=1, batch_size=32, learning_rate=0.01, graph_learning_rate=None)
    model_a, guide_a, _ = train_chain(build, train, None, config=config, seed=0)
    config = _config(num_epochs=1, batch_size=32, learning_rate=0.01, graph_learning_rate=0.5)
    model_b, guide_b, _ = train_chain(build, train, None, config=config, seed=0)
    assert guide_a.logits.detach().abs().max().item() == pytest.approx(0.01, rel=1e-3)
    assert guide_b.logits.detach().abs().max().item() == pytest.approx(0.5, rel=1e-3)
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(a, b)  # the networks took the same first step


def test_existing_checkpoint_without_resume_is_not_overwritten(tmp_path):
    train = _tensors(60)
    train_chain(build, train, None, config=_config(num_epochs=1), checkpoint_dir=tmp_path)
    before = (tmp_path / "chain_0.pt").read_bytes()
    with pytest.raises(ValueError, match="resume=True"):
        train_chain(build, train, None, config=_config(num_epochs=1), checkpoint_dir=tmp_path)
    assert (tmp_path / "chain_0.pt").read_bytes() == before


def test_resume_with_other_data_is_refused(tmp_path):
    train_chain(build, _tensors(60), None, config=_config(num_epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"training entities \(checkpoint: 60, now: 70\)"):
        train_chain(build, _tensors(70), None, config=_config(num_epochs=2), checkpoint_dir=tmp_path, resume=True)


def test_nonfinite_loss_names_epoch_step_and_site():
    # call 1 initialises parameters; calls 2..5 are epoch 0 (4 batches); call 7 is epoch 1, step 1
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1; non-finite terms: model:bad_term") as info:
        train_chain(
            lambda: (TinyModel(poison_step=6), TinyGuide()), _tensors(64), None, config=_config(batch_size=16), seed=0
        )
    assert isinstance(info.value, RuntimeError)


def test_a_step_with_a_nan_gradient_is_skipped(caplog):
    """A finite loss whose gradient is NaN (Pyro's spline inverse can give one) skips that step; the
    parameters stay finite. When every step of an epoch does, the fit stops with an error."""
    calls = {"n": 0}

    def poisoned_once():
        model, guide = build()

        def hook(grad):
            calls["n"] += 1
            return grad * float("nan") if calls["n"] == 3 else grad

        guide.encoder.weight.register_hook(hook)
        return model, guide

    with caplog.at_level("WARNING", logger="pyro_personax.inference.trainer"):
        _, guide, _ = train_chain(poisoned_once, _tensors(64), None, config=_config(batch_size=16), seed=0)
    assert all(torch.isfinite(p).all() for p in guide.parameters())
    assert "skipped 1 of 4 steps with a non-finite gradient" in caplog.text

    def poisoned_always():
        model, guide = build()
        guide.encoder.weight.register_hook(lambda grad: grad * float("nan"))
        return model, guide

    with pytest.raises(NonFiniteLossError, match="every step of epoch 0 had a non-finite gradient"):
        train_chain(poisoned_always, _tensors(64), None, config=_config(batch_size=16), seed=0)


def test_nonfinite_parameter_is_reported():
    def poisoned():
        model, guide = build()
        with torch.no_grad():
            guide.encoder.weight[0, 0] = float("nan")
        return model, guide

    with pytest.raises(NonFiniteLossError, match=r"epoch 0, step 0.*param:guide.encoder.weight"):
        train_chain(poisoned, _tensors(32), None, config=_config(batch_size=16), seed=0)


def test_early_stopping_keeps_the_best_state():
    train, val = _tensors(80), _tensors(20, seed=1)
    cfg = _config(num_epochs=20, learning_rate=1e-9, patience=2, min_delta=10.0, auglag=AugLagConfig(tolerance=1e3))
    _, _, r = train_chain(build, train, val, config=cfg, seed=0)
    assert r.stopped_early and r.num_epochs == 3 and r.best_epoch == 0
    assert r.converged


def test_progress_bar_runs(capsys):
    train_chain(build, _tensors(40), None, config=_config(num_epochs=1, progress=True))
    assert "chain 0" in capsys.readouterr().err
