"""One set of fit options, shared by ``PersonaX.fit``, the run configuration and the CLI.

:class:`FitOptions` holds every setting of a Level II fit with its default, checks them
together when it is built (an illegal value or combination is refused there, naming the
option), and turns them into the trainer's :class:`~pyro_personax.inference.TrainerConfig`.
``PersonaX.fit``'s keyword defaults are read from it, and the ``[fit]`` table of a run
configuration is read into it, so no entry point has defaults of its own.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields

import torch

from pyro_personax.checks import check_int
from pyro_personax.inference.devices import resolve_num_threads
from pyro_personax.inference.distributed import check_data_shards
from pyro_personax.inference.parallel_chains import check_num_workers
from pyro_personax.inference.refine import GraphRefinement
from pyro_personax.inference.schedule import AugLagConfig, KLWarmup, TemperatureSchedule
from pyro_personax.inference.trainer_config import DEFAULT_NUM_EPOCHS, TrainerConfig

__all__ = ["FitOptions", "DEVICES", "DEFAULT_GRAPH_REFINEMENT", "DEFAULT_NUM_EPOCHS", "MIN_DEFAULT_STEPS",
           "default_num_epochs"]

DEVICES = ("auto", "cpu", "cuda")

#: The fewest optimizer steps a fit whose ``num_epochs`` is ``None`` takes.
MIN_DEFAULT_STEPS = 3200


def default_num_epochs(num_train: int, batch_size: int) -> int:
    """The number of epochs a fit with ``num_epochs=None`` trains.

    :data:`DEFAULT_NUM_EPOCHS`, or more when an epoch has few minibatches: enough epochs
    for at least :data:`MIN_DEFAULT_STEPS` optimizer steps. An epoch of ``num_train`` rows
    takes ``ceil(num_train / batch_size)`` steps.

    Parameters
    ----------
    num_train
        Training rows (the entities left after the validation split).
    batch_size
        Entities per minibatch.

    Returns
    -------
    int

    Examples
    --------
    >>> default_num_epochs(9000, 256), default_num_epochs(1800, 256), default_num_epochs(100, 256)
    (100, 400, 3200)
    """
    num_train, batch_size = check_int("num_train", num_train), check_int("batch_size", batch_size)
    steps_per_epoch = -(-num_train // batch_size)
    return max(DEFAULT_NUM_EPOCHS, -(-MIN_DEFAULT_STEPS // steps_per_epoch))


#: The graph stage's settings when ``refine_graph=True``.
DEFAULT_GRAPH_REFINEMENT = GraphRefinement()


@dataclass(frozen=True)
class FitOptions:
    """Every setting of a Level II fit (:meth:`pyro_personax.PersonaX.fit`).

    Parameters
    ----------
    num_epochs
        Passes over the training rows. ``None`` (the default): :func:`default_num_epochs`,
        100 epochs or, when an epoch has fewer than 32 minibatches, enough epochs for 3,200
        optimizer steps (400 epochs on 1,800 training rows at the default batch size),
        since the latents of a short fit are imprecise.
    batch_size, learning_rate
        Entities per minibatch, ClippedAdam learning rate.
    graph_learning_rate
        Learning rate of the logits of ``q(G)`` (``None`` = ``learning_rate``; see
        :class:`~pyro_personax.inference.TrainerConfig`).
    num_chains, seed
        Independent restarts; chain ``c`` uses seed ``seed + c``, the validation split
        ``seed``. Two or more chains let the report check that the restarts agree.
    device
        ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"`` (or ``"cuda:<i>"``).
    progress
        Show progress bars.
    validation_fraction
        Held-out fraction for the validation ELBO; ``None`` or 0 = no split.
    patience, min_delta
        Early stopping on the validation ELBO (``None`` = off) and the smallest
        improvement that counts.
    sparsity
        Weight of the L1 edge factor, ``"bic"`` or ``None`` (the model's default, ``"bic"``).
    clip_norm, lr_decay
        ClippedAdam gradient clipping bound and per-step learning-rate decay.
    temperature, anneal_epochs
        Edge temperature annealed geometrically from ``temperature[0]`` to
        ``temperature[1]`` over ``anneal_epochs`` (``None``: ``num_epochs``).
    kl_warmup_epochs
        Linear KL warm-up length.
    graph_warmup_epochs
        Epochs during which ``q(G)`` stays at its initial value while the latents are
        learned (``None``: ``num_epochs // 10``).
    auglag
        Augmented-Lagrangian settings (pairwise graph posterior).
    graph_particles, mechanism_fit_weight, mechanisms_in_elbo
        Graphs drawn per step from the order posterior, the weight of the mechanisms'
        fit on random parent sets, and whether the ELBO trains them too.
    refine_graph
        The graph stage after SVI (:class:`~pyro_personax.inference.GraphRefinement`):
        ``True`` for its default settings, ``False`` to skip it, or its settings.
    checkpoint_every
        Epochs between checkpoints (when a checkpoint directory is given).
    num_threads
        Torch intra-op threads during the fit (``None``: 1,
        :data:`~pyro_personax.inference.DEFAULT_NUM_THREADS`); in every worker process
        when ``num_workers > 1``.
    num_workers
        Processes that train the chains side by side (1: one after another in this
        process). The result is the same for the same seeds
        (:mod:`~pyro_personax.inference.parallel_chains`).
    data_shards
        Data-parallel training (:mod:`~pyro_personax.inference.distributed`, started by
        ``torchrun``): shards of every minibatch, spread over the processes. ``None``: one
        per process (the one-process trainer without ``torchrun``). A fit with the same
        ``data_shards`` gives the same result on any number of processes that divides it,
        one included. Cannot be combined with ``num_workers > 1``.

    Examples
    --------
    >>> FitOptions(num_epochs=20).trainer_config().graph_warmup_epochs
    2
    >>> FitOptions(num_chains=0)
    Traceback (most recent call last):
    ...
    ValueError: num_chains: expected an int >= 1; found 0
    """

    num_epochs: int | None = None
    batch_size: int = 256
    learning_rate: float = 1e-2
    graph_learning_rate: float | None = 0.05
    num_chains: int = 4
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    validation_fraction: float | None = 0.1
    patience: int | None = None
    min_delta: float = 0.0
    sparsity: float | str | None = None
    clip_norm: float = 10.0
    lr_decay: float = 1.0
    temperature: tuple[float, float] = (1.0, 0.2)
    anneal_epochs: int | None = None
    kl_warmup_epochs: int = 0
    graph_warmup_epochs: int | None = None
    auglag: AugLagConfig = field(default_factory=AugLagConfig)
    graph_particles: int = 8
    mechanism_fit_weight: float = 1.0
    mechanisms_in_elbo: bool = False
    refine_graph: bool | GraphRefinement = True
    checkpoint_every: int = 1
    num_threads: int | None = None
    num_workers: int = 1
    data_shards: int | None = None

    def __post_init__(self):
        check_int("num_chains", self.num_chains)
        check_int("seed", self.seed, low=0)
        check_int("num_epochs", self.num_epochs, optional=True)
        resolve_num_threads(self.num_threads)  # the thread setting's own check
        check_num_workers(self.num_workers)
        if self.data_shards is not None:
            check_data_shards(self.data_shards, 1)
            if isinstance(self.batch_size, int) and self.data_shards > self.batch_size:
                raise ValueError(
                    f"data_shards: expected at most batch_size ({self.batch_size}) shards per minibatch; "
                    f"found {self.data_shards}"
                )
            if self.num_workers > 1:
                raise ValueError(
                    f"num_workers: chains in worker processes ({self.num_workers}) cannot be combined with "
                    f"data-parallel training (data_shards={self.data_shards}); use one of them"
                )
        if not isinstance(self.device, (str, torch.device)):
            raise ValueError(f"device: expected one of {DEVICES} (or 'cuda:<i>'); found {self.device!r}")
        vf = self.validation_fraction
        if vf is not None and (isinstance(vf, bool) or not isinstance(vf, numbers.Real) or not 0 <= vf < 1):
            raise ValueError(f"validation_fraction: expected None or a number in [0, 1); found {vf!r}")
        for name in ("progress", "mechanisms_in_elbo"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False; found {getattr(self, name)!r}")
        if not isinstance(self.refine_graph, (bool, GraphRefinement)):
            raise ValueError(
                f"refine_graph: expected True, False or a GraphRefinement; found {type(self.refine_graph).__name__}"
            )
        if not isinstance(self.auglag, AugLagConfig):
            raise ValueError(f"auglag: expected an AugLagConfig; found {type(self.auglag).__name__}")
        if not (isinstance(self.temperature, (tuple, list)) and len(self.temperature) == 2):
            raise ValueError(f"temperature: expected (initial, final); found {self.temperature!r}")
        object.__setattr__(self, "temperature", tuple(self.temperature))
        self.trainer_config()  # the trainer's own rules for everything else

    def trainer_config(self, num_train: int | None = None) -> TrainerConfig:
        """The :class:`~pyro_personax.inference.TrainerConfig` these options describe.

        ``num_train`` (training rows) sets the epochs when ``num_epochs`` is ``None``
        (:func:`default_num_epochs`; without it, :data:`DEFAULT_NUM_EPOCHS`).
        """
        refine = self.refine_graph
        epochs = self.num_epochs
        if epochs is None:
            epochs = DEFAULT_NUM_EPOCHS if num_train is None else default_num_epochs(num_train, self.batch_size)
        return TrainerConfig(
            num_epochs=epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            graph_learning_rate=self.graph_learning_rate,
            clip_norm=self.clip_norm,
            lr_decay=self.lr_decay,
            sparsity=self.sparsity,
            auglag=self.auglag,
            temperature=TemperatureSchedule(self.temperature[0], self.temperature[1], self.anneal_epochs),
            kl_warmup=KLWarmup(self.kl_warmup_epochs),
            graph_warmup_epochs=self.graph_warmup_epochs,
            patience=self.patience,
            min_delta=self.min_delta,
            graph_particles=self.graph_particles,
            mechanism_fit_weight=self.mechanism_fit_weight,
            mechanisms_in_elbo=self.mechanisms_in_elbo,
            graph_refinement=(DEFAULT_GRAPH_REFINEMENT if refine is True else None if refine is False else refine),
            checkpoint_every=self.checkpoint_every,
            progress=self.progress,
        )

    @classmethod
    def from_mapping(cls, table, where: str = "fit options") -> FitOptions:
        """Build from a plain mapping (a run configuration's ``[fit]`` table).

        ``auglag`` and ``refine_graph`` may be tables of their settings; an unknown key is
        refused, naming ``where`` and the allowed keys.
        """
        table = dict(table)
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; allowed keys are {sorted(allowed)}")
        for key, kind in (("auglag", AugLagConfig), ("refine_graph", GraphRefinement)):
            if isinstance(table.get(key), dict):
                sub = table[key]
                known = {f.name for f in fields(kind)}
                bad = sorted(set(sub) - known)
                if bad:
                    raise ValueError(f"{where} {key}: unknown keys {bad}; allowed keys are {sorted(known)}")
                try:
                    table[key] = kind(**sub)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{where} {key}: {err}") from None
        if "temperature" in table and isinstance(table["temperature"], list):
            table["temperature"] = tuple(table["temperature"])
        try:
            return cls(**table)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None
