"""SVI training of the Level II model: minibatches, schedules, early stopping, chains.

One *chain* is an independent restart: its own model and guide modules, built after
``pyro.set_rng_seed(seed + chain)``, trained by
:class:`~pyro_personax.inference.graph_elbo.GraphParticleELBO` for an order-based graph
posterior (``graph_particles`` graphs per step) or by ``TraceMeanField_ELBO`` for the
pairwise one (the exact KL divergence of the graph posterior from its prior, Monte
Carlo for the rest), with Pyro's
:class:`~pyro.optim.clipped_adam.ClippedAdam` (per-element gradient clipping and
learning-rate decay) over minibatches of the ``"entity"`` plate. Parameters stay local
to each chain's modules (``pyro.settings`` ``module_local_params``), so chains never
share Pyro's global parameter store.

Its options are a :class:`~pyro_personax.inference.trainer_config.TrainerConfig`.

Per epoch::

    for each minibatch idx:  loss = -ELBO(batch[idx]; subsample=idx, alpha, rho, T, kl_weight)
        pairwise posterior, every auglag.steps_per_round steps: h = E_q[h(G)]; alpha, rho updated
    h = E_q[h(G)] recorded; validation ELBO (no gradients) -> early stopping, best acyclic state kept
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import time
from collections.abc import Callable, Mapping

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO
from pyro.optim.clipped_adam import ClippedAdam

from pyro_personax.checks import check_int
from pyro_personax.inference.batches import Batch, index_batch, num_rows
from pyro_personax.inference.chains import FittedChains
from pyro_personax.inference.checkpoint import (
    check_fingerprint,
    checkpoint_path,
    fingerprint,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from pyro_personax.inference.devices import local_params
from pyro_personax.inference.graph_elbo import GraphParticleELBO
from pyro_personax.inference.nonfinite import (
    NonFiniteLossError,
    gradients_finite,
    nonfinite_loss_error,
    nonfinite_sites,
)
from pyro_personax.inference.refine import refine_graph
from pyro_personax.inference.result import ChainResult, FitResult
from pyro_personax.inference.schedule import AugmentedLagrangian
from pyro_personax.inference.trainer_config import TrainerConfig
from pyro_personax.layout import LatentLayout
from pyro_personax.models.common import DEFAULT_SPARSITY

__all__ = ["TrainerConfig", "local_params", "index_batch", "train_chain", "fit_chains"]

logger = logging.getLogger(__name__)


class _ChainTrainer:
    """Trains one chain; holds its modules, optimizer, schedules and traces.

    A subclass may change the epoch's minibatches (:meth:`_minibatches`), how a
    minibatch's gradient is computed (:meth:`_gradient`), the validation ELBO, whether
    this process writes checkpoints and shows progress (:attr:`writes_checkpoints`,
    :attr:`shows_progress`) and what happens once training and the graph stage are done
    (:meth:`finish`): the data-parallel trainer of
    :mod:`pyro_personax.inference.distributed` does.
    """

    #: Whether this process writes the chain's checkpoints.
    writes_checkpoints = True
    #: Whether this process shows progress bars.
    shows_progress = True
    #: Line of the progress bar (``None``: tqdm's choice; chains trained side by side keep one each).
    progress_position: int | None = None

    def __init__(
        self, build, train, validation, config: TrainerConfig, seed: int, chain: int, device, settings=None
    ):
        self.config, self.device, self.chain, self.seed = config, device, chain, seed + chain
        self.train, self.validation = train, validation
        self.num_train = num_rows(train)
        self.num_val = 0 if validation is None else num_rows(validation)
        pyro.set_rng_seed(self.seed)
        self.model, self.guide = build()
        self.fingerprint = (
            fingerprint(train, validation, self.model, self.guide, settings) if settings is not None else {}
        )
        self.model.to(device)
        self.guide.to(device)
        self.order_posterior = getattr(self.guide, "graph_posterior", "pairwise") == "order"
        if self.order_posterior:
            self.loss_fn = GraphParticleELBO(
                self.model, self.guide, config.graph_particles, config.mechanism_fit_weight, config.mechanisms_in_elbo
            )
        else:
            self.loss_fn = TraceMeanField_ELBO()(self.model, self.guide)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.auglag = AugmentedLagrangian(config.auglag)
        self.epoch, self.step, self.graph_step = 0, 0, 0
        graph_params = getattr(self.guide, "graph_parameters", None)
        self.graph_params = list(graph_params()) if callable(graph_params) else []
        with torch.no_grad():  # materialise lazily created parameters before the optimizer
            idx = torch.arange(min(self.num_train, config.batch_size))
            self._loss(index_batch(train, idx, device), self._kwargs(0, idx), step=0)
        graph_ids = {id(p) for p in self.graph_params}
        params = list(self.loss_fn.parameters())
        groups = [{"params": [p for p in params if id(p) not in graph_ids]}]
        graph_group = [p for p in params if id(p) in graph_ids]
        if graph_group:
            graph_lr = config.learning_rate if config.graph_learning_rate is None else config.graph_learning_rate
            groups.append({"params": graph_group, "lr": graph_lr})
        self.optimizer = ClippedAdam(groups, lr=config.learning_rate, clip_norm=config.clip_norm, lrd=config.lr_decay)
        self.result = ChainResult(chain=chain, seed=self.seed)
        self.epoch, self.best_value, self.wait, self.best_state = 0, -math.inf, 0, None
        self.acyclic = False

    def _kwargs(self, epoch: int, idx: torch.Tensor | None, num_entities: int | None = None) -> dict:
        cfg = self.config
        kw = {
            "num_entities": self.num_train if num_entities is None else num_entities,
            "subsample": None if idx is None else idx.to(self.device),
            "alpha": self.auglag.alpha,
            "rho": self.auglag.rho,
            "temperature": cfg.temperature(epoch, cfg.num_epochs),
            "kl_weight": cfg.kl_warmup(epoch),
        }
        if cfg.sparsity is not None:
            kw["sparsity"] = cfg.sparsity
        return kw

    def _loss(self, batch, kw: dict, step: int, loss_fn=None) -> torch.Tensor:
        """The ELBO loss (of ``loss_fn``, default :attr:`loss_fn`); a NaN/inf loss raises an error
        naming the epoch, step and sites."""
        try:
            loss = (self.loss_fn if loss_fn is None else loss_fn)(batch, **kw)
        except ValueError as err:  # validation rejected a non-finite parameter or factor
            sites = nonfinite_sites(self.model, self.guide, batch, **kw)
            if not sites or "invalid values" not in str(err):
                raise
            raise nonfinite_loss_error(float("nan"), self.epoch, step, sites) from err
        value = float(loss.detach())
        if not math.isfinite(value):
            raise nonfinite_loss_error(value, self.epoch, step, nonfinite_sites(self.model, self.guide, batch, **kw))
        return loss

    def _minibatches(self, perm: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The epoch's minibatches: ``perm`` (a permutation of the training rows) in ``batch_size`` pieces."""
        return perm.split(self.config.batch_size)

    def _gradient(self, idx: torch.Tensor, step: int) -> float:
        """Set the parameters' gradients for the minibatch ``idx``; return its loss (the negative ELBO)."""
        batch, kw = index_batch(self.train, idx, self.device), self._kwargs(self.epoch, idx)
        loss = self._loss(batch, kw, step)
        (loss / self.num_train).backward()  # per-entity scale: clip_norm bounds per-entity gradients
        return float(loss.detach())

    def finish(self) -> None:
        """Called once training and the graph stage are done (nothing to do in one process)."""

    def _run_epoch(self, bar) -> float:
        perm = torch.randperm(self.num_train, generator=self.generator)
        total, steps, skipped = 0.0, 0, 0
        for step, idx in enumerate(self._minibatches(perm)):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._gradient(idx, step)
            graph_learning = self.epoch >= self.config.graph_warmup_epochs
            if not graph_learning:
                for p in self.graph_params:
                    p.grad = None  # ClippedAdam skips parameters without a gradient
            if gradients_finite(p for group in self.optimizer.param_groups for p in group["params"]):
                self.optimizer.step()
            else:  # a finite loss with a NaN gradient: the step would turn the parameters NaN
                skipped += 1
            total, steps = total + loss, steps + 1
            self.step += 1
            if graph_learning:
                self.graph_step += 1
                if not self.order_posterior and self.graph_step % self.config.auglag.steps_per_round == 0:
                    self.auglag.update(self.expected_acyclicity())
            if bar is not None:
                bar.update(len(idx))
        if skipped == steps:
            raise NonFiniteLossError(
                f"every step of epoch {self.epoch} had a non-finite gradient (the loss was finite). "
                "Try a smaller learning_rate, a smaller clip_norm, or standardised data"
            )
        if skipped:
            logger.warning("epoch %d: skipped %d of %d steps with a non-finite gradient", self.epoch, skipped, steps)
        return -total / steps / self.num_train

    @torch.no_grad()
    def _validate(self) -> float:
        if self.validation is None:
            return float("nan")
        idx_all = torch.arange(self.num_val)
        total = 0.0
        for idx in idx_all.split(self.config.batch_size):
            batch = index_batch(self.validation, idx, self.device)
            kw = self._kwargs(self.epoch, idx, num_entities=self.num_val)
            total += float(self.loss_fn(batch, **kw)) * len(idx) / self.num_val
        return -total / self.num_val

    @torch.no_grad()
    def expected_acyclicity(self) -> float:
        """Monte Carlo ``E_q[h(G)]`` over ``auglag.num_graph_samples`` graphs from ``q(G)``."""
        graphs = self.guide.sample_graphs(self.config.auglag.num_graph_samples)["edges"]
        return float(self.model.acyclicity(graphs).mean())

    @torch.no_grad()
    def _end_epoch(self, train_elbo: float) -> bool:
        """Record traces after an epoch; return True to stop early."""
        probs = self.guide.edge_probabilities()
        h = self.expected_acyclicity()
        r, cfg = self.result, self.config
        r.train_elbo.append(train_elbo)
        r.temperature.append(cfg.temperature(self.epoch, cfg.num_epochs))
        r.kl_weight.append(cfg.kl_warmup(self.epoch))
        val = self._validate()
        r.validation_elbo.append(val)
        r.acyclicity.append(h)
        r.sparsity.append(float(probs.sum()))
        r.alpha.append(self.auglag.alpha)
        r.rho.append(self.auglag.rho)
        r.converged = self.acyclic = h < self.config.auglag.tolerance
        self.epoch += 1
        if cfg.patience is None:
            r.best_epoch = self.epoch - 1
            return False
        return self._early_stopping(val if math.isfinite(val) else train_elbo)

    def _early_stopping(self, value: float) -> bool:
        """Track the best state (acyclic states first); True when patience ran out."""
        acyclic_now = self.acyclic
        best_acyclic = self.best_state is not None and self.best_state["acyclic"]
        better = (
            self.best_state is None
            or (acyclic_now and not best_acyclic)
            or (acyclic_now == best_acyclic and value > self.best_value + self.config.min_delta)
        )
        if better:
            self.best_value, self.wait, self.result.best_epoch = value, 0, self.epoch - 1
            self.best_state = {"acyclic": acyclic_now, **self._module_state()}
        else:
            self.wait += 1
        return acyclic_now and self.wait >= self.config.patience

    def _module_state(self) -> dict:
        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "guide": copy.deepcopy(self.guide.state_dict()),
        }

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue exactly."""
        return {
            **self._module_state(),
            "optimizer": self.optimizer.state_dict(),
            "auglag": self.auglag.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "graph_step": self.graph_step,
            "acyclic": self.acyclic,
            "best_value": self.best_value,
            "wait": self.wait,
            "best_state": self.best_state,
            "generator": self.generator.get_state(),
            "rng": get_rng_state(),
            "result": self.result.to_dict(),
            "num_train": self.num_train,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
        }

    def load_state_dict(self, state: dict, where: str = "the checkpoint") -> None:
        """Restore a state written by :meth:`state_dict`, after checking its fingerprint."""
        check_fingerprint(state.get("fingerprint"), self.fingerprint, where)
        if state["num_train"] != self.num_train or state["seed"] != self.seed:
            raise ValueError(
                f"resume: the checkpoint of chain {self.chain} was written for {state['num_train']} training "
                f"entities and seed {state['seed']}; this fit has {self.num_train} and seed {self.seed}"
            )
        self.model.load_state_dict(state["model"])
        self.guide.load_state_dict(state["guide"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.auglag.load_state_dict(state["auglag"])
        self.epoch, self.best_value, self.wait = int(state["epoch"]), float(state["best_value"]), int(state["wait"])
        self.step, self.graph_step, self.acyclic = int(state["step"]), int(state["graph_step"]), bool(state["acyclic"])
        self.best_state = state["best_state"]
        self.generator.set_state(state["generator"])
        set_rng_state(state["rng"])
        self.result = ChainResult.from_dict(state["result"])

    def restore_best(self) -> None:
        """Load the kept (best acyclic, else best) module state."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state["model"])
            self.guide.load_state_dict(self.best_state["guide"])


def _progress_bar(enabled: bool, total: int, chain: int, position: int | None = None):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc=f"chain {chain}", unit="entity", leave=False, position=position)


def train_chain(
    build: Callable[[], tuple[torch.nn.Module, torch.nn.Module]],
    train: Batch,
    validation: Batch | None = None,
    *,
    config: TrainerConfig,
    seed: int = 0,
    chain: int = 0,
    device: torch.device | str = "cpu",
    checkpoint_dir=None,
    resume: bool = False,
    settings: Mapping | None = None,
    trainer_class: Callable[..., _ChainTrainer] | None = None,
):
    """Train one chain (an independent restart).

    Parameters
    ----------
    build
        Callable returning fresh ``(model, guide)`` PyroModules with the Level II call
        signature; called after ``pyro.set_rng_seed(seed + chain)``.
    train, validation
        Modality -> :class:`ModalityTensors` with ``N_train`` / ``N_val`` rows (CPU);
        batches are moved to ``device`` one at a time.
    config
        Trainer options.
    seed, chain
        The chain uses seed ``seed + chain`` for parameters, sampling and batch order.
    device
        Torch device of the modules.
    checkpoint_dir
        Directory for ``chain_<c>.pt`` checkpoints, or ``None``.
    resume
        Continue from the checkpoint in ``checkpoint_dir`` when there is one. A checkpoint
        carries a fingerprint of the data, of the modules' structure and buffers (prior
        knowledge) and of ``settings``; a resume whose fingerprint differs is refused,
        naming what differs (:func:`~pyro_personax.inference.checkpoint.check_fingerprint`).
    settings
        JSON-serialisable settings that shape the model (the facade passes the layout,
        the model options and the module classes), part of the fingerprint.
    trainer_class
        Builds the chain's trainer from the arguments of ``_ChainTrainer`` (``None``: the
        one-process trainer); :func:`fit_chains` passes the data-parallel
        :class:`~pyro_personax.inference.distributed.ShardedChainTrainer`.

    Returns
    -------
    (model, guide, ChainResult)
        The modules hold the final state, or with early stopping the best one.
    """
    device = torch.device(device)
    start = time.perf_counter()
    with local_params():
        path = None if checkpoint_dir is None else checkpoint_path(checkpoint_dir, chain)
        make = _ChainTrainer if trainer_class is None else trainer_class
        trainer = make(
            build, train, validation, config, seed, chain, device, settings=None if path is None else settings or {}
        )
        if path is not None and path.exists():
            if not resume:
                raise ValueError(
                    f"checkpoint_dir: {str(path)!r} already exists; pass resume=True to continue from it "
                    "or choose an empty directory"
                )
            trainer.load_state_dict(load_checkpoint(path, map_location=device), f"the checkpoint {str(path)!r}")
            logger.info("chain %d: resumed from %s at epoch %d", chain, path, trainer.epoch)
        elif resume and path is not None:
            logger.info("chain %d: no checkpoint at %s; starting from scratch", chain, path)
        wall_before = trainer.result.wall_time
        _epochs(trainer, path, config)
        trainer.restore_best()
        if config.graph_refinement is not None:
            sparsity = DEFAULT_SPARSITY if config.sparsity is None else config.sparsity
            trainer.result.graph_refined = refine_graph(
                trainer.model,
                trainer.guide,
                train,
                sparsity=sparsity,
                settings=config.graph_refinement,
                seed=seed + chain,
                device=device,
                progress=config.progress and trainer.shows_progress,
                progress_desc=f"chain {chain}: graph stage",
                progress_position=trainer.progress_position,
                result=trainer.result,
            )
        trainer.finish()
        trainer.result.wall_time = wall_before + time.perf_counter() - start
    return trainer.model, trainer.guide, trainer.result


def _epochs(trainer: _ChainTrainer, path, config: TrainerConfig) -> None:
    remaining = config.num_epochs - trainer.epoch
    if trainer.result.stopped_early or remaining <= 0:
        return
    show = config.progress and trainer.shows_progress
    with _progress_bar(show, remaining * trainer.num_train, trainer.chain, trainer.progress_position) as bar:
        while trainer.epoch < config.num_epochs:
            stop = trainer._end_epoch(trainer._run_epoch(bar))
            r = trainer.result
            logger.debug(
                "chain %d epoch %d: elbo %.4g h %.3g", trainer.chain, trainer.epoch, r.train_elbo[-1], r.acyclicity[-1]
            )
            if bar is not None:
                bar.set_postfix(elbo=f"{r.train_elbo[-1]:.4g}", h=f"{r.acyclicity[-1]:.2g}")
            r.stopped_early = bool(stop)
            last = stop or trainer.epoch == config.num_epochs
            due = trainer.epoch % config.checkpoint_every == 0 or last
            if path is not None and trainer.writes_checkpoints and due:
                save_checkpoint(path, trainer.state_dict())
            if stop:
                logger.info("chain %d: early stop at epoch %d", trainer.chain, trainer.epoch)
                break


def fit_chains(
    build: Callable[[], tuple[torch.nn.Module, torch.nn.Module]],
    train: Batch,
    validation: Batch | None = None,
    *,
    config: TrainerConfig,
    num_chains: int = 4,
    seed: int = 0,
    device: torch.device | str = "cpu",
    checkpoint_dir=None,
    resume: bool = False,
    layout: LatentLayout | None = None,
    settings: Mapping | None = None,
    num_workers: int = 1,
    data_shards: int | None = None,
) -> FittedChains:
    """Train ``num_chains`` independent restarts: one after another, in worker processes, or data-parallel.

    Parameters
    ----------
    build, train, validation, config, device, checkpoint_dir, resume, settings
        As for :func:`train_chain`.
    num_chains, seed
        ``C`` chains; chain ``c`` uses seed ``seed + c``.
    layout
        The :class:`~pyro_personax.layout.LatentLayout` the chains share (default: the
        built model's ``layout`` attribute).
    num_workers
        ``1``: the chains one after another in this process. More: the chains side by
        side in that many worker processes
        (:func:`~pyro_personax.inference.parallel_chains.train_chains_in_workers`; the same
        result for the same seeds; ``build`` must be picklable).
    data_shards
        Data-parallel training (:mod:`~pyro_personax.inference.distributed`): shards of
        every minibatch, spread over the processes of the ``torch.distributed`` group
        (:func:`~pyro_personax.inference.distributed.init_distributed`). ``None``: one
        per process, and the one-process trainer without a group. The result depends on
        ``data_shards``, not on the number of processes. Cannot be combined with
        ``num_workers > 1``.

    Returns
    -------
    FittedChains
        The per-chain modules and traces, not yet aligned
        (:meth:`~pyro_personax.inference.FittedChains.align`).
    """
    from pyro_personax.inference.distributed import (
        ShardedChainTrainer,
        check_data_shards,
        process_device,
        process_group,
    )
    from pyro_personax.inference.parallel_chains import check_num_workers, train_chains_in_workers

    check_int("num_chains", num_chains)
    check_num_workers(num_workers)
    group = process_group()
    trainer_class = None
    if group.world_size > 1 or data_shards is not None:
        if num_workers > 1:
            raise ValueError(
                f"num_workers: chains in worker processes ({num_workers}) cannot be combined with data-parallel "
                f"training (data_shards={data_shards!r}, {group.world_size} process(es)); use one of them"
            )
        shards = check_data_shards(data_shards, group.world_size)
        device = process_device(device, group)
        trainer_class = functools.partial(ShardedChainTrainer, num_shards=shards, group=group)
    start = time.perf_counter()
    common = dict(config=config, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume, settings=settings)
    if num_workers > 1 and num_chains > 1:
        fitted = train_chains_in_workers(
            build, train, validation, num_chains=num_chains, num_workers=num_workers, device=device, **common
        )
    else:
        fitted = [
            train_chain(build, train, validation, chain=c, device=device, trainer_class=trainer_class, **common)
            for c in range(num_chains)
        ]
    models, guides, chains = (list(x) for x in zip(*fitted))
    result = FitResult(chains, time.perf_counter() - start, str(torch.device(device)))
    layout = getattr(models[0], "layout", None) if layout is None else layout
    if not isinstance(layout, LatentLayout):
        raise TypeError(
            f"layout: expected a LatentLayout (or a model with a layout attribute); found {type(layout).__name__}"
        )
    return FittedChains(layout, models, guides, result=result, device=device)
