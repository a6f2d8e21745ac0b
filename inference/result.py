"""Results of a Level II fit: per-chain traces and summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = ["ChainResult", "FitResult"]

_TRACES = ("train_elbo", "validation_elbo", "acyclicity", "sparsity", "alpha", "rho", "temperature", "kl_weight")


@dataclass
class ChainResult:
    """Traces and outcome of one chain (one independent restart).

    All traces have one value per completed epoch. ELBOs are per entity (the loss
    estimate of the whole split divided by its number of entities, negated).

    Attributes
    ----------
    chain, seed
        Chain index and the seed it was run with (``seed + chain``).
    train_elbo, validation_elbo
        Mean training ELBO over the epoch's minibatches; validation ELBO after the epoch
        (``NaN`` when there is no validation split).
    acyclicity
        ``E_q[h(G)]`` (Monte Carlo over graphs drawn from ``q(G)``) after each epoch.
    sparsity
        Expected number of edges, ``sum(P(edge))``, after each epoch.
    alpha, rho, temperature, kl_weight
        Schedule values used during each epoch (``alpha``/``rho`` after its update).
    converged
        Whether the final ``E_q[h(G)]`` is below the augmented-Lagrangian tolerance.
    best_epoch
        Epoch whose state was kept (best validation ELBO among acyclic states).
    stopped_early
        Whether early stopping ended the chain.
    wall_time
        Seconds spent training this chain (summed over resumed runs).
    graph_refined
        Whether the graph stage after SVI ran
        (:func:`~pyro_personax.inference.refine.refine_graph`).
    basis_scores
        LiNGAM score per entity of the optimum reached from each start of that stage's
        search for the basis inside modality blocks (the first from the basis SVI left;
        :func:`~pyro_personax.inference.basis.search_block_basis`); the highest was
        kept. Empty when the search did not run.
    basis_identity_score
        The same score of the basis SVI left (``None`` when the search did not run).
    basis_polish_rounds
        Rounds of :func:`~pyro_personax.inference.refine.polish_block_basis` run after
        the search (``0`` when the basis was not polished).
    graph_moves_taken
        Moves between graphs taken after the polish
        (:func:`~pyro_personax.inference.graph_moves.switch_graph`; ``None`` when the
        search between graphs did not run).
    """

    chain: int
    seed: int
    train_elbo: list[float] = field(default_factory=list)
    validation_elbo: list[float] = field(default_factory=list)
    acyclicity: list[float] = field(default_factory=list)
    sparsity: list[float] = field(default_factory=list)
    alpha: list[float] = field(default_factory=list)
    rho: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    kl_weight: list[float] = field(default_factory=list)
    converged: bool = False
    best_epoch: int = -1
    stopped_early: bool = False
    wall_time: float = 0.0
    graph_refined: bool = False
    basis_scores: list[float] = field(default_factory=list)
    basis_identity_score: float | None = None
    basis_polish_rounds: int = 0
    graph_moves_taken: int | None = None

    @property
    def num_epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.train_elbo)

    @property
    def final_alpha(self) -> float:
        """``alpha`` at the end of training (``NaN`` before the first epoch)."""
        return self.alpha[-1] if self.alpha else float("nan")

    @property
    def final_rho(self) -> float:
        """``rho`` at the end of training (``NaN`` before the first epoch)."""
        return self.rho[-1] if self.rho else float("nan")

    def to_dict(self) -> dict:
        """JSON-serialisable dict (lists of floats)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ChainResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: (list(v) if k in _TRACES else v) for k, v in d.items()})


@dataclass
class FitResult:
    """Outcome of :meth:`pyro_personax.PersonaX.fit`: one :class:`ChainResult` per chain.

    Attributes
    ----------
    chains
        Per-chain results.
    wall_time
        Seconds of the whole fit.
    device
        Device the chains were trained on.

    Examples
    --------
    >>> result = FitResult([ChainResult(0, 0, train_elbo=[-3.0, -2.0], alpha=[0.0, 0.1], rho=[1.0, 1.0])])
    >>> result.elbo[0].tolist(), result.final_alpha, result.converged
    ([-3.0, -2.0], [0.1], [False])
    """

    chains: list[ChainResult]
    wall_time: float = 0.0
    device: str = "cpu"

    @property
    def num_chains(self) -> int:
        """Number of chains."""
        return len(self.chains)

    @property
    def elbo(self) -> list[np.ndarray]:
        """Training ELBO trace per chain, each ``(num_epochs_c,)``."""
        return [np.asarray(c.train_elbo, dtype=float) for c in self.chains]

    @property
    def validation_elbo(self) -> list[np.ndarray]:
        """Validation ELBO trace per chain, each ``(num_epochs_c,)``."""
        return [np.asarray(c.validation_elbo, dtype=float) for c in self.chains]

    @property
    def acyclicity(self) -> list[np.ndarray]:
        """Acyclicity ``h`` trace per chain."""
        return [np.asarray(c.acyclicity, dtype=float) for c in self.chains]

    @property
    def sparsity(self) -> list[np.ndarray]:
        """Expected-number-of-edges trace per chain."""
        return [np.asarray(c.sparsity, dtype=float) for c in self.chains]

    @property
    def final_alpha(self) -> list[float]:
        """Final ``alpha`` per chain."""
        return [c.final_alpha for c in self.chains]

    @property
    def final_rho(self) -> list[float]:
        """Final ``rho`` per chain."""
        return [c.final_rho for c in self.chains]

    @property
    def converged(self) -> list[bool]:
        """Whether each chain ended with an acyclic expected graph."""
        return [bool(c.converged) for c in self.chains]

    def to_dataframe(self) -> pd.DataFrame:
        """Tidy table: one row per (chain, epoch) with every trace as a column."""
        frames = []
        for c in self.chains:
            cols = {k: getattr(c, k) for k in _TRACES}
            frame = pd.DataFrame(cols)
            frame.insert(0, "epoch", np.arange(len(frame)))
            frame.insert(0, "chain", c.chain)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["chain", "epoch", *_TRACES])

    def to_dict(self) -> dict:
        """JSON-serialisable dict."""
        return {"chains": [c.to_dict() for c in self.chains], "wall_time": self.wall_time, "device": self.device}

    @classmethod
    def from_dict(cls, d: dict) -> FitResult:
        """Inverse of :meth:`to_dict`."""
        return cls([ChainResult.from_dict(c) for c in d["chains"]], float(d["wall_time"]), str(d["device"]))
