"""Options of the SVI trainer (:class:`TrainerConfig`), checked when they are built.

:mod:`pyro_personax.inference.trainer` runs the training they describe;
:class:`~pyro_personax.inference.options.FitOptions` builds them from a fit's settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real

from pyro_personax.checks import check_int
from pyro_personax.inference.refine import GraphRefinement, check_int_fields
from pyro_personax.inference.schedule import AugLagConfig, KLWarmup, TemperatureSchedule
from pyro_personax.models.common import check_sparsity

__all__ = ["TrainerConfig", "DEFAULT_NUM_EPOCHS"]

#: Epochs of a fit unless told otherwise (``FitOptions`` trains more on small data sets:
#: :func:`~pyro_personax.inference.default_num_epochs`).
DEFAULT_NUM_EPOCHS = 100


@dataclass(frozen=True)
class TrainerConfig:
    """Options of the SVI trainer.

    Examples
    --------
    >>> config = TrainerConfig(num_epochs=20, batch_size=128, patience=5)
    >>> config.temperature(0, config.num_epochs), config.kl_warmup(0)
    (1.0, 1.0)

    Parameters
    ----------
    num_epochs
        Maximum number of epochs (passes over the training entities).
    batch_size
        Entities per minibatch (``>= 1``).
    learning_rate
        ClippedAdam learning rate.
    graph_learning_rate
        Learning rate of the guide's ``graph_parameters()`` (the order and edge logits
        of ``q(G)``), or ``None`` = ``learning_rate``. The logits must travel several units
        from their prior value to express a confident edge, while Adam moves a
        parameter by about one learning rate per step; a small ``learning_rate`` that
        suits the networks can leave ``q(G)`` near its prior after a short fit.
    clip_norm
        ClippedAdam per-element gradient clipping bound. The optimised loss is the
        negative ELBO divided by the number of training entities (Adam is invariant to
        that scale), so the bound applies to per-entity gradients and only clips
        outliers; on the summed ELBO it would clip nearly every gradient of a large
        dataset and distort the balance between the data and the graph prior.
    lr_decay
        ClippedAdam per-step learning-rate decay factor in ``(0, 1]``.
    sparsity
        Weight of the L1 edge factor, ``"bic"`` (``k/2 log N``), or ``None`` = the model's default (``"bic"``).
    auglag
        Augmented-Lagrangian configuration.
    temperature
        Edge-temperature annealing.
    kl_warmup
        KL-weight warm-up.
    graph_warmup_epochs
        Epochs during which the graph posterior ``q(G)`` is held at its initial value
        (the guide's ``graph_parameters()`` get no updates) and the augmented Lagrangian
        is not updated: the encoders, decoders and mechanisms first learn the latents
        under graphs drawn from the initial ``q(G)``, then the graph is learned. Edge
        orientations otherwise lock in while the latents are still meaningless.
        ``None``: ``num_epochs // 10``.
    patience
        Early stopping after this many epochs without a better validation ELBO (and an
        acyclic graph); the best state (acyclic ones first) is then kept. ``None``
        disables it and the final state is kept.
    min_delta
        Smallest improvement of the per-entity validation ELBO that counts.
    graph_particles
        Graphs drawn from an order-based ``q(G)`` per step (``>= 2``; the leave-one-out
        baseline of the score-function gradient, see
        :class:`~pyro_personax.inference.graph_elbo.GraphParticleELBO`). The pairwise
        posterior draws one graph per step and ignores it.
    mechanism_fit_weight
        Weight of the mechanisms' fit on random parent sets (order posterior; 0 = off;
        see :class:`~pyro_personax.inference.graph_elbo.GraphParticleELBO`).
    mechanisms_in_elbo
        Order posterior: train the mechanisms by the ELBO as well as on random parent
        sets. Off by default: the graph posterior is better calibrated; on, the latents
        are recovered more sharply (see ``benchmarks/RESULTS.md``).
    graph_refinement
        Settings of the graph stage after SVI
        (:class:`~pyro_personax.inference.refine.GraphRefinement`; order posterior with
        at most 12 latents): the mechanisms and ``q(G)`` fitted again, with restarts, to
        the learned latents. ``None`` turns it off.
    checkpoint_every
        Write a checkpoint every this many epochs (when a directory is given).
    progress
        Show a tqdm progress bar.
    """

    num_epochs: int = DEFAULT_NUM_EPOCHS
    batch_size: int = 256
    learning_rate: float = 1e-2
    graph_learning_rate: float | None = 0.05
    clip_norm: float = 10.0
    lr_decay: float = 1.0
    sparsity: float | str | None = None
    auglag: AugLagConfig = field(default_factory=AugLagConfig)
    temperature: TemperatureSchedule = field(default_factory=TemperatureSchedule)
    kl_warmup: KLWarmup = field(default_factory=KLWarmup)
    graph_warmup_epochs: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    graph_particles: int = 8
    mechanism_fit_weight: float = 1.0
    mechanisms_in_elbo: bool = False
    graph_refinement: GraphRefinement | None = field(default_factory=GraphRefinement)
    checkpoint_every: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.graph_warmup_epochs is None and isinstance(self.num_epochs, int):
            object.__setattr__(self, "graph_warmup_epochs", self.num_epochs // 10)
        check_int_fields(
            self,
            {"num_epochs": 1, "batch_size": 1, "checkpoint_every": 1, "graph_warmup_epochs": 0, "graph_particles": 2},
        )
        check_int("patience", self.patience, optional=True)
        for name in ("learning_rate", "clip_norm", "graph_learning_rate"):
            value = getattr(self, name)
            if name == "graph_learning_rate" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, Real) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a finite value > 0; found {value!r}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay: expected a value in (0, 1]; found {self.lr_decay!r}")
        if self.sparsity is not None:
            check_sparsity(self.sparsity)
        w = self.mechanism_fit_weight
        if isinstance(w, bool) or not isinstance(w, Real) or not (math.isfinite(w) and w >= 0):
            raise ValueError(f"mechanism_fit_weight: expected a finite value >= 0; found {w!r}")
