"""Prior sensitivity: refit over a grid of edge-prior and sparsity settings."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.inference.options import FitOptions
from pyro_personax.sensitivity._common import (
    _check_px,
    _clone,
    _edge_frame,
    _edge_heatmaps,
    _fit,
    _fit_options,
    _progress,
    _Reference,
    adjacency_frame,
)

_REFERENCE = "reference"


@dataclass(frozen=True, eq=False)
class PriorSensitivity:
    """What :func:`prior_sweep` found.

    Attributes
    ----------
    settings
        ``DataFrame`` indexed by setting label: ``edge_prior``, ``sparsity`` (as given;
        ``"bic"`` is the model's default), ``penalty`` (the L1 weight it gives,
        ``lambda``), ``seconds``, ``train_elbo``, ``validation_elbo`` (per entity, at each
        chain's kept epoch, mean over chains), ``expected_identified`` and
        ``expected_undecided`` (sums of ``P(edge)`` over each class), and
        ``latent_agreement`` (mean matched ``|Spearman|`` with the reference fit). The ELBO
        contains the prior's own terms, so a setting's ELBO moves with the prior as
        well as with the fit; the held-out ELBO is the one to compare.
    identified
        ``DataFrame``: index ``(parent, child)`` of the identified edges, ``edge_class``,
        then ``P(edge)`` per setting (columns = setting labels), in the reference fit's
        latent labels.
    undecided
        The same for the undecided edges, which are expected to follow the prior.
    reference
        Label of the setting every fit's latents were matched to.
    """

    settings: pd.DataFrame
    identified: pd.DataFrame
    undecided: pd.DataFrame
    reference: str

    def adjacencies(self, which: str = "identified") -> pd.DataFrame:
        """``P`` that two latents are adjacent, either direction, per setting (:func:`adjacency_frame`).

        Parameters
        ----------
        which
            ``"identified"`` or ``"undecided"``: which edges to collapse.

        Returns
        -------
        pandas.DataFrame
            One row per pair ``(latent_a, latent_b)``: ``edge_class``, then one column per
            setting.
        """
        if which not in ("identified", "undecided"):
            raise ValueError(f"which: expected 'identified' or 'undecided'; found {which!r}")
        return adjacency_frame(self.identified if which == "identified" else self.undecided)

    def plot(self) -> Figure:
        """Heat maps of ``P`` x setting (identified edges, as links, undecided edges) and the ELBOs per setting.

        Returns
        -------
        matplotlib.figure.Figure
            Four panels (not shown; save it with ``fig.savefig``).
        """
        labels = list(self.settings.index)
        fig, ax = _edge_heatmaps(self.identified, self.undecided, labels, "setting")
        xs = np.arange(len(labels))
        for column, marker in (("train_elbo", "o"), ("validation_elbo", "s")):
            ax.plot(xs, self.settings[column].astype(float), marker=marker, label=column.replace("_", " "))
        ax.set_xticks(xs, labels, rotation=30, ha="right")
        ax.set_ylabel("ELBO per entity")
        ax.set_title("ELBO per setting (held-out: the validation split)")
        ax.legend(fontsize=8)
        fig.suptitle("Prior sensitivity: edge prior and sparsity weight")
        return fig


def _setting_label(edge_prior, sparsity) -> str:
    return f"p0={edge_prior:g}, lambda={sparsity if isinstance(sparsity, str) else format(sparsity, 'g')}"


def _check_grid(values, name: str, check) -> tuple:
    if isinstance(values, (str, numbers.Real)):
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"{name}: expected at least one value; found none")
    for v in values:
        check(v)
    return values


def _check_edge_prior(v) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < 1:
        raise ValueError(f"edge_prior: expected numbers in (0, 1); found {v!r}")


def _check_sparsity(v) -> None:
    if v == "bic":
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
        raise ValueError(f"sparsity: expected finite numbers >= 0 or 'bic'; found {v!r}")


def prior_sweep(
    px,
    data: MultiModalData,
    *,
    edge_prior: Sequence[float] | float | None = (0.01, 0.1, 0.5),
    sparsity: Sequence[float | str] | float | str | None = (0.1, 1.0, 10.0, 100.0),
    grid: str = "separate",
    fit_options: FitOptions | Mapping | None = None,
    seed: int | None = None,
    progress: bool | None = None,
) -> PriorSensitivity:
    """Refit over a grid of edge-prior and sparsity settings.

    Parameters
    ----------
    px
        A :class:`~pyro_personax.PersonaX` whose layout, classes and options every refit
        uses (``edge_prior`` replaced per setting). When it is fitted, its latents are
        the reference every setting's latents are matched to; otherwise the first
        setting's fit is.
    data
        The data (``N`` entities).
    edge_prior
        Prior probability of a free edge (``ModelOptions.edge_prior``) per setting;
        ``None``: ``px``'s only.
    sparsity
        Weight of the L1 edge factor (``FitOptions.sparsity``: numbers ``>= 0`` or
        ``"bic"``) per setting; ``None``: ``fit_options``' only.
    grid
        ``"separate"``: each edge prior at the fit options' sparsity, then each sparsity
        at ``px``'s edge prior (``len(edge_prior) + len(sparsity)`` fits, each axis
        swept on its own); ``"product"``: every pair.
    fit_options
        :class:`~pyro_personax.inference.FitOptions` (or a mapping) of every refit.
    seed
        Seed of every refit (overrides ``fit_options.seed``).
    progress
        Show progress; ``None``: ``fit_options.progress``.

    Returns
    -------
    PriorSensitivity
        ``P(edge)`` per setting for identified and undecided edges, and the ELBOs.

    Examples
    --------
    >>> from pyro_personax import PersonaX
    >>> rng = np.random.default_rng(0)
    >>> data = MultiModalData({"face": rng.normal(size=(40, 1, 3)), "text": rng.normal(size=(40, 2, 3))})
    >>> px = PersonaX(data, latent_dims={"face": 1, "text": 1}, mechanism="linear")
    >>> fit = {"num_epochs": 1, "num_chains": 1, "device": "cpu", "refine_graph": False}
    >>> sweep = prior_sweep(px, data, edge_prior=[0.1], sparsity=[0.0, 10.0], fit_options=fit, progress=False)
    >>> list(sweep.settings.index)
    ['p0=0.1, lambda=bic', 'p0=0.2, lambda=0', 'p0=0.2, lambda=10']
    """
    px = _check_px(px)
    if not isinstance(data, MultiModalData):
        raise TypeError(f"data: expected a MultiModalData; found {type(data).__name__}")
    options = _fit_options(fit_options, seed, progress)
    base_sparsity = "bic" if options.sparsity is None else options.sparsity
    priors = (px.options.edge_prior,)
    if edge_prior is not None:
        priors = _check_grid(edge_prior, "edge_prior", _check_edge_prior)
    sparsities = (base_sparsity,) if sparsity is None else _check_grid(sparsity, "sparsity", _check_sparsity)
    if grid == "product":
        pairs = [(p, s) for p in priors for s in sparsities]
    elif grid == "separate":
        pairs = [(p, base_sparsity) for p in priors] + [(px.options.edge_prior, s) for s in sparsities]
    else:
        raise ValueError(f"grid: expected 'separate' or 'product'; found {grid!r}")
    pairs = list(dict.fromkeys(pairs))  # a setting on both axes is fitted once
    bar = _progress(len(pairs), options.progress, "prior sweep")
    reference = _Reference(px, data) if px.chains is not None else None
    reference_label = _REFERENCE if reference is not None else _setting_label(*pairs[0])
    rows, probs = {}, {}
    try:
        for p0, lam in pairs:
            label = _setting_label(p0, lam)
            fitted = _clone(px, edge_prior=float(p0))
            seconds, train, valid = _fit(fitted, data, replace(options, sparsity=lam))
            if reference is None:
                reference = _Reference(fitted, data)
            P, corr = reference.compare(fitted, data)
            probs[label] = P
            penalty = fitted.model(0).edge_penalty(lam, data.num_entities)
            rows[label] = {"edge_prior": float(p0), "sparsity": lam, "penalty": penalty, "seconds": seconds,
                           "train_elbo": train, "validation_elbo": valid,
                           "expected_identified": float(P[px.layout.identified_mask()].sum()),
                           "expected_undecided": float(P[~px.layout.identified_mask()].sum()),
                           "latent_agreement": float(corr.mean())}
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return PriorSensitivity(
        settings=pd.DataFrame(rows).T.rename_axis("setting"),
        identified=_edge_frame(px.layout, probs, "identified"),
        undecided=_edge_frame(px.layout, probs, "undecided"),
        reference=reference_label,
    )
