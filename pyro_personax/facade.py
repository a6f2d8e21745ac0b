"""The user-facing :class:`PersonaX` class: data in, ``fit``, posterior queries, save/load.

The facade builds one :class:`~pyro_personax.models.PersonaXModel` and
:class:`~pyro_personax.models.PersonaXGuide` per chain (independent restarts with
seeds ``seed + chain``), trains them with :func:`pyro_personax.inference.fit_chains`,
matches the restarts' latent labels (:meth:`PersonaX.align_chains`), and answers
queries in the names of the :class:`~pyro_personax.layout.LatentLayout`. Adjacencies
follow :mod:`pyro_personax.graph` (``[i, j]`` = parent i -> child j).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from pyro_personax import persistence
from pyro_personax.data.multimodal import MultiModalData, check_seed
from pyro_personax.identifiability import (
    measurement_map_note,
    unpinned_warning,
)
from pyro_personax.inference import (
    AugLagConfig,
    ChainAlignment,
    FitOptions,
    FitResult,
    FittedChains,
    GraphRefinement,
    RowSubset,
    fit_chains,
    num_rows,
    resolve_device,
    torch_threads,
)
from pyro_personax.layout import LatentLayout
from pyro_personax.models import ModelOptions, ModelSpec, PersonaXGuide, PersonaXModel
from pyro_personax.queries import PosteriorQueries

__all__ = ["PersonaX", "MIN_ENTITIES"]

_FIT = FitOptions()  # the defaults of every fit option
_MODEL = ModelOptions()  # the defaults of every model option

#: Fewest entities ``fit`` accepts: with fewer, no latent distribution or graph can be learned.
MIN_ENTITIES = 10

logger = logging.getLogger(__name__)


def _layout_from_data(
    data: MultiModalData, latent_dims, shared_dim: int, shared_is_root: bool, knowledge: dict
) -> LatentLayout:
    if latent_dims is None:
        raise ValueError("latent_dims: required with a MultiModalData (a mapping modality -> latent block size)")
    if not hasattr(latent_dims, "items"):
        raise TypeError(f"latent_dims: expected a mapping modality -> int; found {type(latent_dims).__name__}")
    missing = [m for m in data.modalities if m not in latent_dims]
    extra = [m for m in latent_dims if m not in data.modalities]
    if missing or extra:
        raise ValueError(
            f"latent_dims: expected one entry per data modality {list(data.modalities)}; "
            f"missing {missing}, unknown {extra}"
        )
    return LatentLayout(
        shared_dim, {m: latent_dims[m] for m in data.modalities}, shared_is_root=shared_is_root, **knowledge
    )


def _split_tensors(data: MultiModalData, validation_fraction, seed: int):
    """Train / validation tensors (CPU): row subsets of the data's tensors, with no copy of the data."""
    tensors = data.to_tensors(fill=False)  # index_batch fills each minibatch
    if not validation_fraction:
        return tensors, None
    train, validation = data.split_rows(validation_fraction, seed=seed)
    return RowSubset(tensors, train), RowSubset(tensors, validation)


@dataclass(frozen=True)
class _Builder:
    """Builds a fresh ``(model, guide)`` pair; picklable for worker processes."""

    model_cls: type
    guide_cls: type
    layout: LatentLayout
    spec: ModelSpec
    options: ModelOptions

    def __call__(self):
        model = self.model_cls(self.layout, self.spec, **self.options.model_kwargs())
        guide = self.guide_cls(self.layout, self.spec, **self.options.guide_kwargs())
        return model, guide


class _WarningLog(logging.Handler):
    """Collects the package's warnings while active (``with _WarningLog() as messages``)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> list[str]:
        logging.getLogger("pyro_personax").addHandler(self)
        return self.messages

    def __exit__(self, *exc) -> None:
        logging.getLogger("pyro_personax").removeHandler(self)


class PersonaX(PosteriorQueries):
    """Bayesian multimodal causal representation learning (PersonaX Level II).

    The generative story (see :class:`~pyro_personax.models.PersonaXModel`)::

        pi, G ~ p(pi) p(G | pi)        # causal order, then sparse edges it allows: a DAG
        z_n ~ p(z | G)                 # causal latents: shared block s, one block per modality
        x_nmk ~ p(x | s_n, z_nm, eta)  # measurement k of modality m

    Parameters
    ----------
    layout_or_data
        A :class:`~pyro_personax.layout.LatentLayout`, or a
        :class:`~pyro_personax.data.MultiModalData` together with ``latent_dims``.
    latent_dims
        With data: mapping modality -> size of its latent block (every modality).
    shared_dim
        With data: size of the shared block.
    shared_is_root
        With data: forbid edges from modality blocks into the shared block.
    forbidden, required
        With data: prior knowledge as ``(parent, child)`` latent-name pairs (see
        :class:`~pyro_personax.layout.LatentLayout`, which holds every kind of prior
        knowledge when more is needed).
    measurement_map
        With data: an optional assumption, off by default,
        ``{modality: [(feature_indices, latent_names), ...]}``: which features of a
        modality's measurement read which latents of its block (see
        :class:`~pyro_personax.layout.LatentLayout`). The within-block edges it makes
        decidable are classed ``"within-block (measurement map)"`` in every output.
    model_cls, guide_cls
        The model and guide classes (default :class:`~pyro_personax.models.PersonaXModel`
        and :class:`~pyro_personax.models.PersonaXGuide`): a subclass that overrides a
        factory hook (a decoder, an encoder) keeps chain alignment, InferenceData,
        :meth:`save` / :meth:`load` and the report. Both are built as
        ``cls(layout, spec, **options)``; :meth:`load` imports them by their module and
        name, so they must be importable.
    mechanism, mechanism_hidden_dim, noise_flow, latent_transform, spline_bins, spline_bound, \
    nuisance_dim, decoder_hidden_dim, decoder_layers, edge_prior, cyclic_logdet, graph_posterior, \
    encoder_hidden_dim, encoder_layers, init_edge_logit, posterior_covariance
        The model's and guide's options: the fields of
        :class:`~pyro_personax.models.ModelOptions`, with its defaults (stored as
        :attr:`options`); an illegal value is refused here, naming it.

    Attributes
    ----------
    options
        The :class:`~pyro_personax.models.ModelOptions` of the model and guide.
    chains
        The :class:`~pyro_personax.inference.FittedChains` of the last :meth:`fit` (or
        :meth:`load`), or ``None``: per-chain models, guides, traces and alignment.
    fit_result
        :class:`~pyro_personax.inference.FitResult` of the last :meth:`fit` (traces
        per chain), or ``None``.
    chain_alignment
        :class:`~pyro_personax.inference.ChainAlignment`: which latent of every chain
        plays each latent of chain 0 (:meth:`align_chains`, run by :meth:`fit`). Every
        per-chain and pooled output is in chain 0's labels; :meth:`model` and
        :meth:`guide` keep each chain's own.

    Examples
    --------
    >>> import numpy as np
    >>> from pyro_personax.data import MultiModalData
    >>> rng = np.random.default_rng(0)
    >>> data = MultiModalData({"face": rng.normal(size=(100, 2, 4)), "text": rng.normal(size=(100, 3, 4))})
    >>> px = PersonaX(data, latent_dims={"face": 2, "text": 1}, shared_dim=1, mechanism="linear")
    >>> result = px.fit(data, num_epochs=2, batch_size=50, progress=False, device="cpu")
    >>> px.edge_probabilities().shape
    (4, 4)
    >>> px.get_latent_representation(data).shape
    (100, 4)
    """

    def __init__(
        self,
        layout_or_data: LatentLayout | MultiModalData,
        *,
        latent_dims=None,
        shared_dim: int = 0,
        shared_is_root: bool = True,
        forbidden=None,
        required=None,
        measurement_map=None,
        model_cls: type = PersonaXModel,
        guide_cls: type = PersonaXGuide,
        mechanism: str = _MODEL.mechanism,
        mechanism_hidden_dim: int = _MODEL.mechanism_hidden_dim,
        noise_flow: str = _MODEL.noise_flow,
        latent_transform: str = _MODEL.latent_transform,
        spline_bins: int = _MODEL.spline_bins,
        spline_bound: float = _MODEL.spline_bound,
        nuisance_dim: int | dict = _MODEL.nuisance_dim,
        decoder_hidden_dim: int = _MODEL.decoder_hidden_dim,
        decoder_layers: int = _MODEL.decoder_layers,
        edge_prior: float = _MODEL.edge_prior,
        cyclic_logdet: bool = _MODEL.cyclic_logdet,
        graph_posterior: str = _MODEL.graph_posterior,
        encoder_hidden_dim: int = _MODEL.encoder_hidden_dim,
        encoder_layers: int = _MODEL.encoder_layers,
        init_edge_logit: float = _MODEL.init_edge_logit,
        posterior_covariance: str = _MODEL.posterior_covariance,
    ):
        self.spec: ModelSpec | None = None
        if isinstance(layout_or_data, LatentLayout):
            if any(a is not None for a in (latent_dims, forbidden, required, measurement_map)):
                raise ValueError(
                    "latent_dims, forbidden, required, measurement_map: give either a LatentLayout (which holds them) "
                    "or data with these arguments, not both"
                )
            self.layout = layout_or_data
        elif isinstance(layout_or_data, MultiModalData):
            knowledge = {"forbidden": forbidden, "required": required, "measurement_map": measurement_map}
            self.layout = _layout_from_data(layout_or_data, latent_dims, shared_dim, shared_is_root, knowledge)
            self.spec = ModelSpec.from_data(layout_or_data)
        else:
            raise TypeError(
                f"layout_or_data: expected a LatentLayout or a MultiModalData; found {type(layout_or_data).__name__}"
            )
        for what, cls, base in (("model_cls", model_cls, PersonaXModel), ("guide_cls", guide_cls, PersonaXGuide)):
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{what}: expected {base.__name__} or a subclass of it; found {cls!r}")
        self.model_cls, self.guide_cls = model_cls, guide_cls
        self.options = ModelOptions(
            mechanism=mechanism,
            mechanism_hidden_dim=mechanism_hidden_dim,
            noise_flow=noise_flow,
            latent_transform=latent_transform,
            spline_bins=spline_bins,
            spline_bound=spline_bound,
            nuisance_dim=nuisance_dim,
            decoder_hidden_dim=decoder_hidden_dim,
            decoder_layers=decoder_layers,
            edge_prior=edge_prior,
            cyclic_logdet=cyclic_logdet,
            graph_posterior=graph_posterior,
            encoder_hidden_dim=encoder_hidden_dim,
            encoder_layers=encoder_layers,
            init_edge_logit=init_edge_logit,
            posterior_covariance=posterior_covariance,
        )
        self.chains: FittedChains | None = None
        self._fit_data: MultiModalData | None = None  # the data of the last fit (not saved)
        if self.spec is not None:
            self._build()  # fail early on an inconsistent layout, spec or option

    def _build(self):
        return _Builder(self.model_cls, self.guide_cls, self.layout, self.spec, self.options)()

    def _settings(self) -> dict:
        """What shapes the model, for the checkpoints' fingerprint."""
        return {
            "layout": self.layout.to_dict(),
            "model options": asdict(self.options),
            "model and guide classes": [persistence.class_path(self.model_cls), persistence.class_path(self.guide_cls)],
        }

    @property
    def mechanism(self) -> str:
        """``"mlp"``, ``"mlp_additive"`` or ``"linear"`` (:attr:`options`)."""
        return self.options.mechanism

    @property
    def model_options(self) -> dict:
        """The options that differ from :class:`~pyro_personax.models.ModelOptions`' defaults."""
        return self.options.changed()

    @property
    def fit_result(self) -> FitResult | None:
        """Traces of the last :meth:`fit` (:attr:`chains`), or ``None``."""
        return None if self.chains is None else self.chains.result

    @property
    def chain_alignment(self) -> ChainAlignment | None:
        """The chains' label alignment (:meth:`align_chains`), or ``None`` before one is computed."""
        return self.chains.alignment if self.chains is not None and self.chains.is_aligned else None

    @chain_alignment.setter
    def chain_alignment(self, value: ChainAlignment | None) -> None:
        self._fitted("chain_alignment").alignment = value

    @property
    def device(self) -> torch.device:
        """Device of the fitted modules (CPU before :meth:`fit`)."""
        return torch.device("cpu") if self.chains is None else self.chains.device

    def _spec_of(self, data, what: str = "data") -> ModelSpec:
        if not isinstance(data, MultiModalData):
            raise TypeError(f"{what}: expected a MultiModalData; found {type(data).__name__}")
        spec = ModelSpec.from_data(data)
        if self.spec is not None and spec != self.spec:
            raise ValueError(
                f"{what}: its modalities/shapes {spec.to_dict()} differ from the model's {self.spec.to_dict()}"
            )
        return spec

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: MultiModalData,
        *,
        num_epochs: int | None = _FIT.num_epochs,
        batch_size: int = _FIT.batch_size,
        learning_rate: float = _FIT.learning_rate,
        graph_learning_rate: float | None = _FIT.graph_learning_rate,
        num_chains: int = _FIT.num_chains,
        seed: int = _FIT.seed,
        device: str | torch.device = _FIT.device,
        progress: bool = _FIT.progress,
        validation_fraction: float | None = _FIT.validation_fraction,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
        patience: int | None = _FIT.patience,
        min_delta: float = _FIT.min_delta,
        sparsity: float | str | None = _FIT.sparsity,
        clip_norm: float = _FIT.clip_norm,
        lr_decay: float = _FIT.lr_decay,
        temperature: tuple[float, float] = _FIT.temperature,
        anneal_epochs: int | None = _FIT.anneal_epochs,
        kl_warmup_epochs: int = _FIT.kl_warmup_epochs,
        graph_warmup_epochs: int | None = _FIT.graph_warmup_epochs,
        auglag: AugLagConfig = _FIT.auglag,
        graph_particles: int = _FIT.graph_particles,
        mechanism_fit_weight: float = _FIT.mechanism_fit_weight,
        mechanisms_in_elbo: bool = _FIT.mechanisms_in_elbo,
        refine_graph: bool | GraphRefinement = _FIT.refine_graph,
        checkpoint_every: int = _FIT.checkpoint_every,
        num_threads: int | None = _FIT.num_threads,
        num_workers: int = _FIT.num_workers,
        data_shards: int | None = _FIT.data_shards,
    ) -> FitResult:
        """Train ``num_chains`` independent restarts by SVI, then align their latent labels.

        Parameters
        ----------
        data
            The :class:`~pyro_personax.data.MultiModalData` (``N`` entities).
        checkpoint_dir, resume
            Per-chain checkpoints, and resuming from them.
        **options
            Every other keyword is a field of
            :class:`~pyro_personax.inference.FitOptions`, with its default and meaning
            (``num_epochs``, ``num_chains``, ``seed``, ``device``, ``refine_graph``,
            ``num_threads``, ``num_workers``, ``data_shards``, ...); an illegal value or
            combination is refused, naming it. The thread setting is restored afterwards.

        Returns
        -------
        FitResult
            Also stored as :attr:`fit_result`.
        """
        spec = self._spec_of(data)
        check_seed(seed)
        if data.num_entities < MIN_ENTITIES:
            raise ValueError(f"data: fit needs at least {MIN_ENTITIES} entities; found {data.num_entities}")
        options = FitOptions(
            num_epochs=num_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            graph_learning_rate=graph_learning_rate,
            num_chains=num_chains,
            seed=seed,
            device=device,
            progress=progress,
            validation_fraction=validation_fraction,
            patience=patience,
            min_delta=min_delta,
            sparsity=sparsity,
            clip_norm=clip_norm,
            lr_decay=lr_decay,
            temperature=temperature,
            anneal_epochs=anneal_epochs,
            kl_warmup_epochs=kl_warmup_epochs,
            graph_warmup_epochs=graph_warmup_epochs,
            auglag=AugLagConfig() if auglag is None else auglag,
            graph_particles=graph_particles,
            mechanism_fit_weight=mechanism_fit_weight,
            mechanisms_in_elbo=mechanisms_in_elbo,
            refine_graph=refine_graph,
            checkpoint_every=checkpoint_every,
            num_threads=num_threads,
            num_workers=num_workers,
            data_shards=data_shards,
        )
        dev = resolve_device(device)
        with torch_threads(num_threads), _WarningLog() as emitted:
            train_tensors, val_tensors = _split_tensors(data, validation_fraction, seed)
            config = options.trainer_config(num_train=num_rows(train_tensors))
            self.spec = spec
            build = self._build
            if num_workers > 1:  # worker processes get the builder's parts, not this object (its data, earlier fits)
                build = _Builder(self.model_cls, self.guide_cls, self.layout, spec, self.options)
            chains = fit_chains(
                build,
                train_tensors,
                val_tensors,
                config=config,
                num_chains=num_chains,
                seed=seed,
                device=dev,
                checkpoint_dir=checkpoint_dir,
                resume=resume,
                settings=self._settings(),
                num_workers=num_workers,
                data_shards=data_shards,
            )
            self.chains, self._fit_data = chains, data
            self.align_chains(data, seed=seed)
            result = chains.result
            not_converged = [c.chain for c in result.chains if not c.converged]
            if not_converged:
                logger.warning("chains %s ended with a cyclic expected graph (h >= tolerance)", not_converged)
            note = measurement_map_note(self.layout)
            if note:
                logger.info("%s", note)
            unpinned = self.unpinned_latents()
            if unpinned:
                logger.warning("%s", unpinned_warning(unpinned))
        chains.warnings = list(emitted)
        return result

    # ------------------------------------------------------------------ queries
    def _fitted(self, what: str) -> FittedChains:
        if self.chains is None:
            raise RuntimeError(f"PersonaX.{what}: the model is not fitted; call fit(data) (or PersonaX.load) first")
        return self.chains

    @property
    def graph_posterior(self) -> str:
        """``"order"`` (the default: causal order then edges) or ``"pairwise"``."""
        return self.options.graph_posterior

    @property
    def num_chains(self) -> int:
        """Number of fitted chains (0 before fit)."""
        return 0 if self.chains is None else self.chains.num_chains

    def model(self, chain: int = 0) -> PersonaXModel:
        """The fitted :class:`PersonaXModel` of ``chain``.

        Call it inside :func:`pyro_personax.inference.local_params` so its parameters
        stay local to the module. Its latents carry the chain's own labels; map them to
        chain 0's with :attr:`chain_alignment`.
        """
        return self._fitted("model").model(chain)

    def guide(self, chain: int = 0) -> PersonaXGuide:
        """The fitted :class:`PersonaXGuide` of ``chain`` (see :meth:`model`)."""
        return self._fitted("guide").guide(chain)

    def get_latent_representation(self, data: MultiModalData, chain: int = 0, batch_size: int = 1024) -> np.ndarray:
        """Posterior means ``E_q[z | x]`` of the latents.

        Parameters
        ----------
        data
            Data with the same modalities and shapes as the fitted data (``N`` rows).
        chain
            Which chain's encoder to use; its columns are in chain 0's labels
            (:meth:`align_chains`).
        batch_size
            Rows per forward pass.

        Returns
        -------
        numpy.ndarray
            ``(N, D)``, columns in :attr:`layout` order (``layout.names``).
        """
        chains = self._fitted("get_latent_representation")
        self._spec_of(data)
        return chains.latent_means(data, chain, batch_size)

    def align_chains(self, data: MultiModalData, *, max_entities: int | None = 2000, seed: int = 0) -> ChainAlignment:
        """Match every chain's latent labels to chain 0's (called by :meth:`fit`).

        The latents of one block are exchangeable in the model, so independent restarts
        may name the same factor differently; pooled edge probabilities, the
        :meth:`to_inference_data` chains (hence R-hat) and every per-chain output are
        reported in chain 0's labels after this matching
        (:func:`~pyro_personax.inference.alignment.align_chains`: Hungarian matching on
        absolute Spearman correlation of the posterior means, within groups of
        exchangeable latents). :meth:`model` and :meth:`guide` keep each chain's own
        labels.

        Parameters
        ----------
        data
            Rows to compare the chains on (:meth:`fit` uses its data).
        max_entities
            Random subset of at most this many rows (``None`` = all).
        seed
            Seed of the subset.

        Returns
        -------
        ChainAlignment
            Also stored as :attr:`chain_alignment`. A warning is logged when a matched
            pair correlates below 0.5: the restarts then found different
            representations, and their pooled graph mixes different variables.
        """
        chains = self._fitted("align_chains")
        self._spec_of(data)
        return chains.align(data, max_entities=max_entities, seed=seed)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Save the fitted model to the directory ``path``.

        Writes ``config.json`` (layout, data spec, options, the model and guide classes
        by module and name, fit traces) and ``chains.pt`` (per-chain model and guide
        state dicts); see :mod:`pyro_personax.persistence`.

        Parameters
        ----------
        path
            Target directory (created).
        overwrite
            Replace an existing path; otherwise an existing path is an error.
        """
        persistence.write(self, self._fitted("save"), path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> PersonaX:
        """Load a model written by :meth:`save` (a damaged or foreign folder is refused, naming the file).

        Parameters
        ----------
        path
            Directory written by :meth:`save`.
        device
            Device of the loaded modules.
        """
        saved = persistence.read(path, device)
        px = cls(saved.layout, model_cls=saved.model_cls, guide_cls=saved.guide_cls, **asdict(saved.options))
        px.spec = saved.spec
        px.chains = FittedChains.from_state_dicts(
            px.layout, px._build, saved.states, result=saved.result, alignment=saved.alignment, device=saved.device
        )
        px.chains.warnings = saved.warnings
        return px

    def __repr__(self) -> str:
        status = f"{self.num_chains} chains fitted" if self.num_chains else "not fitted"
        return f"PersonaX(latents={list(self.layout.names)}, mechanism={self.mechanism!r}, {status})"
