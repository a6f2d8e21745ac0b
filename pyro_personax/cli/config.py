"""Run configurations for ``personax fit``: a small TOML or JSON file.

Example (``run.toml``; relative paths are relative to the file)::

    [data]
    # either a released-layout dataset directory ...
    dataset = "celeb"            # "celeb" | "athle"
    path = "celebpersona/"
    tabular = ["Gender", "Height"]
    # ... or arrays (one .npy of shape (N, d) per measurement, or one (N, K, d))
    # [data.measurements]
    # face = ["face_0.npy", "face_1.npy"]
    # [data.masks]               # optional, boolean (N, K), True = observed
    # face = "face_mask.npy"
    # [data.likelihoods]         # optional, a registered likelihood name (default "normal")
    # face = "normal"

    [model]                       # the layout, and any field of pyro_personax.models.ModelOptions
    shared_dim = 2
    latent_dims = { face = 3, text = 5 }
    mechanism = "mlp"
    forbidden = [["text_1", "face_1"]]
    # latent_transform = "spline"  # post-nonlinear latents (default "identity")
    # optional assumption: which features of a modality read which latents of its block
    # measurement_map = { face = [[[0, 1, 2, 3], ["face_1"]], [[4, 5, 6, 7], ["face_2", "face_3"]]] }

    [fit]                         # any field of pyro_personax.inference.FitOptions
    num_epochs = 400              # default: 100, or 3,200 optimizer steps on small data
    num_chains = 4
    seed = 0
    # learning_rate = 0.01
    # graph_learning_rate = 0.05  # logits of q(G) (the default)
    # num_threads = 1             # torch threads (the default)
    # num_workers = 1             # processes training the chains side by side (the default: 1)
    # data_shards = 4             # data-parallel under torchrun: shards per minibatch (default: one per process)
    # [fit.refine_graph]          # the graph stage after SVI: true, false, or its settings
    # num_restarts = 3
    # [fit.auglag]                # augmented Lagrangian (pairwise graph posterior)
    # tolerance = 1e-6

Every ``[fit]`` key is a field of :class:`~pyro_personax.inference.FitOptions`, with the
same default as ``PersonaX.fit``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from pyro_personax.inference.options import FitOptions
from pyro_personax.models.options import ModelOptions

__all__ = ["RunConfig", "DataConfig", "ModelConfig", "read_run_config", "load_data", "run_config_dict"]


def _check_keys(section: str, given: dict, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"run configuration [{section}]: unknown keys {unknown}; allowed keys are {sorted(allowed)}")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from (see the module docstring)."""

    dataset: str | None = None
    path: Path | None = None
    tabular: tuple[str, ...] | None = None
    measurements: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)
    likelihoods: dict = field(default_factory=dict)

    def __post_init__(self):
        if (self.dataset is None) == (not self.measurements):
            raise ValueError(
                "run configuration [data]: give either 'dataset' (celeb | athle) with 'path', "
                "or a [data.measurements] table of .npy files, not both and not neither"
            )
        if not isinstance(self.likelihoods, dict):
            raise ValueError(
                f"run configuration [data.likelihoods]: expected a table modality -> likelihood name; "
                f"found {self.likelihoods!r}"
            )
        unknown = sorted(set(self.likelihoods) - set(self.measurements))
        if unknown:
            raise ValueError(
                f"run configuration [data.likelihoods]: modalities {unknown} are not in [data.measurements] "
                f"({sorted(self.measurements)})"
            )
        for mod, name in self.likelihoods.items():
            if not isinstance(name, str):
                raise ValueError(
                    f"run configuration [data.likelihoods] {mod}: expected a likelihood name; found {name!r}"
                )
        if self.dataset is not None:
            if self.dataset not in ("celeb", "athle"):
                raise ValueError(
                    f"run configuration [data] dataset: expected 'celeb' or 'athle'; found {self.dataset!r}"
                )
            if self.path is None:
                raise ValueError("run configuration [data]: 'dataset' needs a 'path' to the local copy")


#: ``[model]`` keys that describe the latent layout; every other key is a model option.
LAYOUT_KEYS = ("latent_dims", "shared_dim", "shared_is_root", "forbidden", "required", "measurement_map")


@dataclass(frozen=True)
class ModelConfig:
    """The layout arguments of :class:`pyro_personax.PersonaX` and its :class:`~pyro_personax.models.ModelOptions`."""

    latent_dims: dict
    shared_dim: int = 0
    shared_is_root: bool = True
    forbidden: tuple = ()
    required: tuple = ()
    measurement_map: dict | None = None
    options: ModelOptions = field(default_factory=ModelOptions)

    def __post_init__(self):
        if not isinstance(self.latent_dims, dict) or not self.latent_dims:
            raise ValueError("run configuration [model] latent_dims: expected a table modality -> block size")
        if self.measurement_map is not None and not isinstance(self.measurement_map, dict):
            raise ValueError(
                "run configuration [model] measurement_map: expected a table modality -> [[features, latents], ...]; "
                f"found {self.measurement_map!r}"
            )

    def persona_kwargs(self) -> dict:
        """Keyword arguments of ``PersonaX(data, ...)``."""
        return {
            "latent_dims": self.latent_dims,
            "shared_dim": self.shared_dim,
            "shared_is_root": self.shared_is_root,
            "forbidden": list(self.forbidden) or None,
            "required": list(self.required) or None,
            "measurement_map": self.measurement_map,
            **asdict(self.options),
        }


@dataclass(frozen=True)
class RunConfig:
    """A whole run configuration."""

    data: DataConfig
    model: ModelConfig
    fit: FitOptions
    source: Path | None = None


def _section(raw: dict, name: str, cls) -> dict:
    given = raw.get(name, {})
    if not isinstance(given, dict):
        raise ValueError(f"run configuration: [{name}] must be a table; found {type(given).__name__}")
    _check_keys(name, given, {f.name for f in fields(cls)} - {"source"})
    return dict(given)


def read_run_config(path) -> RunConfig:
    """Read and validate a TOML (``.toml``) or JSON (``.json``) run configuration.

    Parameters
    ----------
    path
        The configuration file; relative data paths inside it are resolved against
        its folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run configuration {str(path)!r} does not exist")
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            raw = json.loads(path.read_text())
        else:
            raise ValueError(f"run configuration {str(path)!r}: expected a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"run configuration {str(path)!r} is not valid: {err}") from None
    _check_keys("top level", raw, {"data", "model", "fit"})
    base = path.parent
    data = _section(raw, "data", DataConfig)
    if "path" in data:
        data["path"] = base / data["path"]
    if "tabular" in data:
        data["tabular"] = tuple(data["tabular"])
    for key in ("measurements", "masks"):
        data[key] = {
            mod: [base / f for f in files] if isinstance(files, list) else base / files
            for mod, files in data.get(key, {}).items()
        }
    model = raw.get("model", {})
    if not isinstance(model, dict):
        raise ValueError(f"run configuration: [model] must be a table; found {type(model).__name__}")
    if "latent_dims" not in model:
        raise ValueError("run configuration [model]: 'latent_dims' is required")
    options = ModelOptions.from_mapping(
        {k: v for k, v in model.items() if k not in LAYOUT_KEYS}, "run configuration [model]"
    )
    model = {k: v for k, v in model.items() if k in LAYOUT_KEYS}
    for key in ("forbidden", "required"):
        model[key] = tuple(tuple(p) for p in model.get(key, ()))
    model["options"] = options
    fit = raw.get("fit", {})
    if not isinstance(fit, dict):
        raise ValueError(f"run configuration: [fit] must be a table; found {type(fit).__name__}")
    fit_options = FitOptions.from_mapping(fit, "run configuration [fit]")
    return RunConfig(DataConfig(**data), ModelConfig(**model), fit_options, source=path)


def _absolute(value):
    """Paths (alone, in lists or in mappings) as absolute strings."""
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(v) for k, v in value.items()}
    return value


def run_config_dict(config: RunConfig) -> dict:
    """``config`` as the JSON object :func:`read_run_config` reads back (data paths made absolute).

    ``personax fit`` writes it into its run folder as ``run_config.json`` (with the fit
    options it actually used), so that later commands can refit the run's model on the
    run's data.
    """
    data = {k: _absolute(v) for k, v in asdict(config.data).items() if v not in (None, {}, ())}
    if "tabular" in data:
        data["tabular"] = list(data["tabular"])
    model = {k: getattr(config.model, k) for k in LAYOUT_KEYS if getattr(config.model, k) not in (None, ())}
    for key in ("forbidden", "required"):
        if key in model:
            model[key] = [list(p) for p in model[key]]
    model.update(config.model.options.changed())
    fit = asdict(config.fit)
    fit["temperature"] = list(fit["temperature"])
    return json.loads(json.dumps({"data": data, "model": model, "fit": fit}))


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file {str(path)!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{what}: {str(path)!r} is not a numeric .npy array ({err})") from None


def load_data(config: DataConfig):
    """Build the :class:`~pyro_personax.data.MultiModalData` a configuration names."""
    from pyro_personax.data import MultiModalData

    if config.dataset is not None:
        from pyro_personax import data as data_module

        loader = data_module.load_celebpersona if config.dataset == "celeb" else data_module.load_athlepersona
        dataset = loader(config.path)
        kwargs = {} if config.tabular is None else {"tabular": list(config.tabular)}
        return dataset.to_multimodal(**kwargs)
    measurements = {}
    for mod, files in config.measurements.items():
        if isinstance(files, list):
            measurements[mod] = [_load_npy(f, f"measurements {mod!r}") for f in files]
        else:
            measurements[mod] = _load_npy(files, f"measurements {mod!r}")
    masks = {mod: _load_npy(f, f"masks {mod!r}") for mod, f in config.masks.items()}
    return MultiModalData(measurements, masks=masks, likelihoods=dict(config.likelihoods))
