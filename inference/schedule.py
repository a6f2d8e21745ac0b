"""Schedules of the Level II trainer: augmented Lagrangian, edge temperature, KL warm-up.

The augmented-Lagrangian schedule follows NOTEARS / DECI: the model carries the factor
``-(alpha * h(G) + rho / 2 * h(G)^2)`` on each sampled graph ``G``; after every round of
``steps_per_round`` optimisation steps the trainer measures ``h = E_q[h(G)]`` (a Monte
Carlo mean over ``num_graph_samples`` graphs drawn from ``q(G)``) and updates ``alpha``
and ``rho``::

    if h > gamma * h_prev:  rho = min(rho * factor, rho_max)
    alpha = alpha + rho * h

until ``h < tolerance``. ``alpha`` and ``rho`` are passed to the model and guide as call
arguments at every step; nothing here is global.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyro_personax.checks import check_int

__all__ = ["AugLagConfig", "AugmentedLagrangian", "TemperatureSchedule", "KLWarmup"]


@dataclass(frozen=True)
class AugLagConfig:
    """Configuration of the augmented-Lagrangian acyclicity schedule.

    Parameters
    ----------
    alpha_init
        Initial Lagrange multiplier ``alpha >= 0``.
    rho_init
        Initial penalty weight ``rho > 0``.
    rho_factor
        Multiplier of ``rho`` when ``h`` did not shrink enough (``> 1``).
    rho_max
        Upper bound of ``rho``.
    gamma
        Required shrink ratio of ``h`` between rounds, in ``(0, 1)``.
    tolerance
        The graph counts as acyclic when ``h < tolerance``.
    steps_per_round
        Optimisation steps between two updates (the inner problem of each round gets
        this many steps, whatever the number of minibatches per epoch).
    num_graph_samples
        Graphs drawn from ``q(G)`` to estimate ``h = E_q[h(G)]``.
    """

    alpha_init: float = 0.0
    rho_init: float = 1.0
    rho_factor: float = 10.0
    rho_max: float = 1e6
    gamma: float = 0.25
    tolerance: float = 1e-6
    steps_per_round: int = 200
    num_graph_samples: int = 256

    def __post_init__(self):
        checks = (
            ("alpha_init", self.alpha_init >= 0),
            ("rho_init", self.rho_init > 0),
            ("rho_factor", self.rho_factor > 1),
            ("rho_max", self.rho_max >= self.rho_init),
            ("gamma", 0 < self.gamma < 1),
            ("tolerance", self.tolerance > 0),
        )
        for name in ("steps_per_round", "num_graph_samples"):
            check_int(f"AugLagConfig.{name}", getattr(self, name))
        for name, ok in checks:
            if not ok or not math.isfinite(getattr(self, name)):
                raise ValueError(
                    f"AugLagConfig.{name}: invalid value {getattr(self, name)!r} "
                    "(expected alpha_init >= 0, rho_init > 0, rho_factor > 1, rho_max >= rho_init, "
                    "0 < gamma < 1, tolerance > 0, all finite)"
                )


class AugmentedLagrangian:
    """State of the augmented-Lagrangian schedule (``alpha``, ``rho``, last ``h``).

    Parameters
    ----------
    config
        The :class:`AugLagConfig`.

    Examples
    --------
    >>> schedule = AugmentedLagrangian(AugLagConfig(rho_init=1.0, rho_factor=10.0))
    >>> schedule.update(0.5)
    >>> schedule.alpha, schedule.rho
    (0.5, 1.0)
    >>> schedule.update(0.4)  # 0.4 > 0.25 * 0.5: rho grows, then alpha += rho * h
    >>> schedule.alpha, schedule.rho
    (4.5, 10.0)
    """

    def __init__(self, config: AugLagConfig | None = None):
        self.config = AugLagConfig() if config is None else config
        if not isinstance(self.config, AugLagConfig):
            raise TypeError(f"config: expected an AugLagConfig; found {type(self.config).__name__}")
        self.alpha = float(self.config.alpha_init)
        self.rho = float(self.config.rho_init)
        self.h_prev = math.inf
        self.h = math.inf

    @property
    def converged(self) -> bool:
        """Whether the last measured ``h`` is below the tolerance."""
        return self.h < self.config.tolerance

    def update(self, h: float) -> None:
        """Record the acyclicity ``h`` of one round and update ``rho`` then ``alpha``.

        Parameters
        ----------
        h
            Acyclicity ``h = E_q[h(G)] >= 0`` after the round (a float).
        """
        h = float(h)
        if not math.isfinite(h) or h < 0:
            raise RuntimeError(f"AugmentedLagrangian.update: acyclicity h must be finite and >= 0; found {h}")
        cfg = self.config
        if h >= cfg.tolerance:
            if math.isfinite(self.h_prev) and h > cfg.gamma * self.h_prev:
                self.rho = min(self.rho * cfg.rho_factor, cfg.rho_max)
            self.alpha += self.rho * h
        self.h_prev, self.h = h, h

    def state_dict(self) -> dict:
        """The mutable state (for checkpoints)."""
        return {"alpha": self.alpha, "rho": self.rho, "h_prev": self.h_prev, "h": self.h}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state written by :meth:`state_dict`."""
        for key in ("alpha", "rho", "h_prev", "h"):
            if key not in state:
                raise ValueError(f"AugmentedLagrangian.load_state_dict: missing key {key!r}; found {sorted(state)}")
            setattr(self, key, float(state[key]))


@dataclass(frozen=True)
class TemperatureSchedule:
    """Geometric annealing of the Gumbel-softmax temperature of the edge relaxation.

    ``T(epoch) = initial * (final / initial) ** min(epoch / (num_epochs - 1), 1)``.

    Parameters
    ----------
    initial, final
        Temperatures at the first and the last annealed epoch (``> 0``).
    num_epochs
        Length of the annealing in epochs; ``None`` = the length of the fit.

    Examples
    --------
    >>> TemperatureSchedule(1.0, 0.25, num_epochs=3)(1, total_epochs=10)
    0.5
    """

    initial: float = 1.0
    final: float = 0.2
    num_epochs: int | None = None

    def __post_init__(self):
        if not (self.initial > 0 and self.final > 0 and math.isfinite(self.initial) and math.isfinite(self.final)):
            raise ValueError(
                f"TemperatureSchedule: initial and final must be finite and > 0; found {self.initial}, {self.final}"
            )
        if self.num_epochs is not None and self.num_epochs < 1:
            raise ValueError(f"TemperatureSchedule.num_epochs must be >= 1 or None; found {self.num_epochs}")

    def __call__(self, epoch: int, total_epochs: int) -> float:
        """Temperature at ``epoch`` (0-based) of a fit of ``total_epochs`` epochs."""
        length = self.num_epochs if self.num_epochs is not None else total_epochs
        frac = 1.0 if length <= 1 else min(epoch / (length - 1), 1.0)
        return float(self.initial * (self.final / self.initial) ** frac)


@dataclass(frozen=True)
class KLWarmup:
    """Linear warm-up of the KL weight from ``initial`` to 1 over ``num_epochs`` epochs.

    Parameters
    ----------
    num_epochs
        Length of the warm-up; 0 = weight 1 from the start.
    initial
        Weight at epoch 0, in ``[0, 1]``.

    Examples
    --------
    >>> KLWarmup(num_epochs=4, initial=0.0)(2)
    0.5
    """

    num_epochs: int = 0
    initial: float = 0.0

    def __post_init__(self):
        if self.num_epochs < 0:
            raise ValueError(f"KLWarmup.num_epochs must be >= 0; found {self.num_epochs}")
        if not 0.0 <= self.initial <= 1.0:
            raise ValueError(f"KLWarmup.initial must be in [0, 1]; found {self.initial}")

    def __call__(self, epoch: int) -> float:
        """KL weight at ``epoch`` (0-based)."""
        if self.num_epochs == 0 or epoch >= self.num_epochs:
            return 1.0
        return float(self.initial + (1.0 - self.initial) * epoch / self.num_epochs)
