"""The fitted restarts ("chains") of one model: modules, traces and label alignment.

:class:`FittedChains` is what :func:`~pyro_personax.inference.fit_chains` trains and what
every consumer reads: the facade (:class:`~pyro_personax.PersonaX`), the posterior draws
(:func:`~pyro_personax.inference.posterior.collect_posterior`), the diagnostics, the
report and the CLI. It holds one model and one guide per chain, the
:class:`~pyro_personax.inference.FitResult` traces and the
:class:`~pyro_personax.inference.ChainAlignment` that maps every chain's latent labels
onto chain 0's. Every output it gives is in chain 0's labels; :meth:`FittedChains.model`
and :meth:`FittedChains.guide` keep each chain's own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from pyro_personax.checks import check_int
from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.inference.alignment import ChainAlignment, align_chains, identity_alignment
from pyro_personax.inference.batches import index_batch
from pyro_personax.inference.devices import local_params
from pyro_personax.inference.interventions import Interventional, intervene
from pyro_personax.inference.result import FitResult
from pyro_personax.layout import LatentLayout
from pyro_personax.models.guide import draw_latents

__all__ = ["FittedChains", "subsample_rows", "ALIGNMENT_WARNING_BELOW"]

logger = logging.getLogger(__name__)

#: A matched pair of latents below this absolute Spearman correlation means the restarts
#: found different representations (logged by :meth:`FittedChains.align`).
ALIGNMENT_WARNING_BELOW = 0.5


def subsample_rows(n: int, max_entities: int | None, seed: int) -> np.ndarray:
    """Sorted random subset of ``range(n)`` of size ``min(n, max_entities)`` (all rows when ``None``).

    Examples
    --------
    >>> subsample_rows(5, None, 0).tolist()
    [0, 1, 2, 3, 4]
    >>> len(subsample_rows(100, 10, 0))
    10
    """
    if max_entities is None or n <= max_entities:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_entities, replace=False))


class FittedChains:
    """Independent restarts of one model, their traces and their label alignment.

    Parameters
    ----------
    layout
        The :class:`~pyro_personax.layout.LatentLayout` every chain shares (``D`` latents).
    models, guides
        One fitted model and one guide per chain (``C`` each).
    result
        Per-chain traces, or ``None`` (modules loaded without traces).
    alignment
        Label alignment of the chains, or ``None``: each chain keeps its own labels
        until :meth:`align` runs.
    device
        Device of the modules.

    Attributes
    ----------
    warnings
        The warnings logged while the chains were fitted (set by ``PersonaX.fit``; the
        report shows them).

    Examples
    --------
    >>> from pyro_personax.data import MultiModalData
    >>> from pyro_personax.models import ModelSpec, PersonaXGuide, PersonaXModel
    >>> data = MultiModalData({"face": np.random.default_rng(0).normal(size=(20, 2, 3))})
    >>> layout, spec = LatentLayout(0, {"face": 2}), ModelSpec.from_data(data)
    >>> chains = FittedChains(layout, [PersonaXModel(layout, spec)], [PersonaXGuide(layout, spec)])
    >>> chains.num_chains, chains.edge_probabilities().shape
    (1, (2, 2))
    >>> chains.latent_means(data).shape
    (20, 2)
    """

    def __init__(
        self,
        layout: LatentLayout,
        models: Sequence,
        guides: Sequence,
        result: FitResult | None = None,
        alignment: ChainAlignment | None = None,
        device: str | torch.device = "cpu",
    ):
        if not isinstance(layout, LatentLayout):
            raise TypeError(f"layout: expected a LatentLayout; found {type(layout).__name__}")
        models, guides = list(models), list(guides)
        if not guides or len(models) != len(guides):
            raise ValueError(
                f"models, guides: expected one model and one guide per chain (at least one); "
                f"found {len(models)} models and {len(guides)} guides"
            )
        if result is not None and len(result.chains) != len(guides):
            raise ValueError(f"result: expected traces of {len(guides)} chains; found {len(result.chains)}")
        self.layout = layout
        self.models = models
        self.guides = guides
        self.result = result
        self.device = torch.device(device)
        self.warnings: list[str] = []
        self._alignment: ChainAlignment | None = None
        self.alignment = alignment

    # ------------------------------------------------------------------ chains
    @property
    def num_chains(self) -> int:
        """``C``."""
        return len(self.guides)

    @property
    def alignment(self) -> ChainAlignment:
        """The label alignment; the identity when none was set or computed."""
        if self._alignment is None:
            return identity_alignment(self.num_chains, self.layout.latent_dim)
        return self._alignment

    @alignment.setter
    def alignment(self, value: ChainAlignment | None) -> None:
        if value is not None:
            if not isinstance(value, ChainAlignment):
                raise TypeError(f"alignment: expected a ChainAlignment or None; found {type(value).__name__}")
            expected = (self.num_chains, self.layout.latent_dim)
            if value.permutations.shape != expected:
                raise ValueError(
                    f"alignment: expected permutations of shape {expected}; found {value.permutations.shape}"
                )
        self._alignment = value

    @property
    def is_aligned(self) -> bool:
        """Whether an alignment was computed or set (otherwise every chain keeps its own labels)."""
        return self._alignment is not None

    def check_chain(self, chain, what: str = "chain") -> int:
        """``chain`` as an int, or a ``ValueError`` naming ``what`` when it is not in ``[0, C)``."""
        if isinstance(chain, bool) or not isinstance(chain, (int, np.integer)) or not 0 <= chain < self.num_chains:
            raise ValueError(f"{what}: chain must be an int in [0, {self.num_chains}); found {chain!r}")
        return int(chain)

    def model(self, chain: int = 0):
        """The model of ``chain`` (its own latent labels)."""
        return self.models[self.check_chain(chain, "model")]

    def guide(self, chain: int = 0):
        """The guide of ``chain`` (its own latent labels)."""
        return self.guides[self.check_chain(chain, "guide")]

    # ------------------------------------------------------------------ graph
    @torch.no_grad()
    def chain_edge_probabilities(self) -> np.ndarray:
        """``(C, D, D)`` float64: every chain's marginal edge probabilities, in chain 0's labels."""
        align = self.alignment
        return np.stack(
            [
                align.relabel_edges(c, g.edge_probabilities().detach().cpu().numpy().astype(np.float64))
                for c, g in enumerate(self.guides)
            ]
        )

    def edge_probabilities(self, chain: int | None = None) -> np.ndarray:
        """``(D, D)`` float64 ``P(i -> j)``: one chain's, or the mean over chains when ``chain`` is ``None``."""
        probs = self.chain_edge_probabilities()
        if chain is None:
            return probs.mean(0)
        return probs[self.check_chain(chain, "edge_probabilities")]

    @torch.no_grad()
    def sample_graphs(self, num_samples: int, generator: torch.Generator | None = None) -> np.ndarray:
        """``(C, S, D, D)`` 0/1 whole graphs drawn from each chain's ``q(G)``, in chain 0's labels."""
        check_int("num_samples", num_samples)
        align, edges = self.alignment, []
        with local_params():
            for c, guide in enumerate(self.guides):
                draws = guide.sample_graphs(int(num_samples), generator)["edges"].cpu().numpy()
                edges.append(align.relabel_edges(c, draws))
        return np.stack(edges)

    # ------------------------------------------------------------------ latents
    def _batches(self, data: MultiModalData, batch_size: int):
        tensors = data.to_tensors(fill=False)  # index_batch fills each batch
        for idx in torch.arange(data.num_entities).split(batch_size):
            yield index_batch(tensors, idx, self.device)

    @torch.no_grad()
    def own_latent_means(self, data: MultiModalData, chain: int, batch_size: int = 1024) -> np.ndarray:
        """``(N, D)`` float64 posterior means ``E_q[z | x]`` of ``chain`` in that chain's own labels."""
        guide = self.guides[self.check_chain(chain, "latent_means")]
        with local_params():
            locs = [guide.latent_posterior(b)[0].cpu() for b in self._batches(data, batch_size)]
        return torch.cat(locs).double().numpy()

    def latent_means(self, data: MultiModalData, chain: int = 0, batch_size: int = 1024) -> np.ndarray:
        """``(N, D)`` float64 posterior means ``E_q[z | x]`` of ``chain``, in chain 0's labels."""
        chain = self.check_chain(chain, "latent_means")
        return self.alignment.relabel_latents(chain, self.own_latent_means(data, chain, batch_size))

    @torch.no_grad()
    def sample_latents(
        self, data: MultiModalData, num_samples: int, generator: torch.Generator | None = None
    ) -> np.ndarray:
        """``(C, S, N, D)`` draws ``z ~ q(z | x)`` of every chain, in chain 0's labels."""
        align, z = self.alignment, []
        with local_params():
            for c, guide in enumerate(self.guides):
                dists = [guide.latent_posterior_distribution(b) for b in self._batches(data, 1024)]
                eps = torch.randn((num_samples, data.num_entities, self.layout.latent_dim), generator=generator,
                                  dtype=dists[0].mean.dtype)
                # one draw per row of noise drawn for all rows at once, whichever the batches
                parts = eps.split([d.batch_shape[0] for d in dists], dim=1)
                draws = torch.cat([draw_latents(d, e.to(d.mean)).cpu() for d, e in zip(dists, parts)], dim=1)
                z.append(torch.as_tensor(align.relabel_latents(c, draws)))
        return torch.stack(z).numpy()

    def align(self, data: MultiModalData, *, max_entities: int | None = 2000, seed: int = 0) -> ChainAlignment:
        """Match every chain's latent labels to chain 0's on (a subset of) ``data``; store and return it.

        Hungarian matching on the absolute Spearman correlation of the posterior means,
        within groups of exchangeable latents
        (:func:`~pyro_personax.inference.alignment.align_chains`). A warning is logged
        when a matched pair correlates below :data:`ALIGNMENT_WARNING_BELOW`.

        Parameters
        ----------
        data
            ``N`` rows to compare the chains on.
        max_entities
            Random subset of at most this many rows (``None`` = all).
        seed
            Seed of the subset.
        """
        rows = subsample_rows(data.num_entities, max_entities, seed)
        if len(rows) < data.num_entities:
            data = data.subset(rows)
        latents = [self.own_latent_means(data, c) for c in range(self.num_chains)]
        self.alignment = align_chains(latents, self.layout)
        corr = self.alignment.correlations
        if corr.min() < ALIGNMENT_WARNING_BELOW:
            c, j = np.unravel_index(np.argmin(corr), corr.shape)
            logger.warning(
                "chain %d's latents do not match chain 0's (latent %r: matched |Spearman| %.2f); the restarts found "
                "different representations and pooled edge probabilities mix them; see chain_alignment and the "
                "per-chain edge probabilities",
                c,
                self.layout.names[j],
                corr[c, j],
            )
        return self.alignment

    # ------------------------------------------------------------------ interventions
    def intervene(self, do, *, num_graphs: int = 100, num_samples: int = 1000, seed: int = 0) -> Interventional:
        """``do(z_a = v)`` on every chain, pooled, in chain 0's labels.

        Chain ``c`` runs :func:`~pyro_personax.inference.interventions.intervene` with its
        own model and ``q(G)`` and seed ``seed + c``, on the latents it matches to the
        named ones (:attr:`alignment`); its samples and graphs are relabelled to chain 0's
        names and stacked after the previous chains'.

        Parameters
        ----------
        do
            Latent name (chain 0's labels) -> value, as for
            :func:`~pyro_personax.inference.interventions.intervene`.
        num_graphs, num_samples, seed
            Graphs drawn from each chain's ``q(G)``, noise draws per graph, seed.

        Returns
        -------
        Interventional
            ``C * num_graphs`` graphs; latent samples ``(C * num_graphs * num_samples, D)``.
        """
        names, align = list(self.layout.names), self.alignment
        if not hasattr(do, "items"):
            raise ValueError(f"do: expected a mapping latent name -> value; found {type(do).__name__}")
        unknown = [k for k in do if k not in names]
        if unknown:
            raise ValueError(f"do: unknown latents {unknown}; known latents are {names}")
        parts = []
        for c in range(self.num_chains):
            own = {names[align.permutations[c, names.index(k)]]: v for k, v in do.items()}
            parts.append(
                intervene(
                    self.models[c], self.guides[c], own, num_graphs=num_graphs, num_samples=num_samples, seed=seed + c
                )
            )
        stack = np.concatenate
        mods = list(parts[0].interventional_measurements)
        return Interventional(
            latent_names=tuple(names),
            intervention=parts[0].intervention,
            interventional=stack([align.relabel_latents(c, p.interventional) for c, p in enumerate(parts)]),
            observational=stack([align.relabel_latents(c, p.observational) for c, p in enumerate(parts)]),
            interventional_measurements={m: stack([p.interventional_measurements[m] for p in parts]) for m in mods},
            observational_measurements={m: stack([p.observational_measurements[m] for p in parts]) for m in mods},
            graphs=stack([align.relabel_edges(c, p.graphs) for c, p in enumerate(parts)]),
            num_samples=parts[0].num_samples,
            seed=int(seed),
        )

    # ------------------------------------------------------------------ persistence
    def state_dicts(self) -> list[dict]:
        """``[{"model": state_dict, "guide": state_dict}, ...]``, one entry per chain."""
        return [{"model": m.state_dict(), "guide": g.state_dict()} for m, g in zip(self.models, self.guides)]

    @classmethod
    def from_state_dicts(
        cls,
        layout: LatentLayout,
        build,
        states: Sequence[dict],
        *,
        result: FitResult | None = None,
        alignment: ChainAlignment | None = None,
        device: str | torch.device = "cpu",
    ) -> FittedChains:
        """Rebuild chains from :meth:`state_dicts`.

        Parameters
        ----------
        layout
            The shared layout.
        build
            Callable returning a fresh ``(model, guide)`` pair of the saved kind.
        states
            What :meth:`state_dicts` returned.
        result, alignment, device
            As in the constructor.
        """
        device = torch.device(device)
        models, guides = [], []
        with local_params():
            for c, state in enumerate(states):
                model, guide = build()
                for name, module in (("model", model), ("guide", guide)):
                    try:
                        module.load_state_dict(state[name])
                    except (KeyError, RuntimeError) as err:
                        raise ValueError(f"states[{c}][{name!r}]: does not fit the {name} built here ({err})") from err
                models.append(model.to(device))
                guides.append(guide.to(device))
        return cls(layout, models, guides, result=result, alignment=alignment, device=device)

    def __repr__(self) -> str:
        aligned = "aligned" if self.is_aligned else "not aligned"
        return f"FittedChains({self.num_chains} chains, {self.layout.latent_dim} latents, {aligned})"
