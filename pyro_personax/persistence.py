"""The on-disk form of a fitted :class:`~pyro_personax.PersonaX`: what ``save`` writes and ``load`` reads.

A saved model is a directory with ``config.json`` (format version, layout, data spec,
model options, the model and guide classes as ``"module:qualname"``, fit traces, chain
alignment, fit warnings) and ``chains.pt`` (per-chain model and guide state dicts, read
with ``weights_only=True``). :func:`read` refuses a damaged or foreign directory with an
error naming the file and what is wrong, never torch's or json's own message alone.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from pyro_personax.inference import ChainAlignment, FitResult, resolve_device
from pyro_personax.layout import LatentLayout
from pyro_personax.models import ModelOptions, ModelSpec, PersonaXGuide, PersonaXModel

__all__ = ["FORMAT", "CONFIG", "STATES", "Saved", "class_path", "import_class", "model_config", "write", "read"]

#: Version of the saved form (3: order / pairwise graph posterior, mechanisms with mask input and scale head;
#: 4: every model option is written, so that a later change of a default does not change a saved model).
FORMAT = 4
#: Formats :func:`read` accepts, with the defaults of options a format wrote only when changed.
_READABLE = {3: {"posterior_covariance": "diagonal"}, 4: {}}
CONFIG = "config.json"
STATES = "chains.pt"
_FOREIGN = "it is not a model this library saved"


def class_path(cls: type) -> str:
    """``"module:qualname"`` of ``cls``, the name :func:`import_class` reads."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str | None, default: type, where) -> type:
    """The class named ``"module:qualname"`` (``None``: ``default``), or a clear error naming ``where``."""
    if path is None:
        return default
    module, _, name = path.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"load: the class {path!r} named in {str(where)!r} cannot be imported ({err}); "
            "import or install the module that defines it first"
        ) from err
    return obj


def model_config(px) -> dict:
    """The JSON content of ``config.json`` for the fitted ``px`` (a ``PersonaX``)."""
    for what, cls in (("model_cls", px.model_cls), ("guide_cls", px.guide_cls)):
        try:
            found = import_class(class_path(cls), None, "the model")
        except ValueError:
            found = None
        if found is not cls:
            raise ValueError(
                f"save: {what} {cls.__qualname__!r} cannot be imported by its name {class_path(cls)!r} "
                "(defined inside a function?); define it at the top level of a module so load can find it"
            )
    config = {
        "format": FORMAT,
        "layout": px.layout.to_dict(),
        "spec": px.spec.to_dict(),
        "mechanism": px.mechanism,
        "model_options": {**px.options.as_dict(), "graph_posterior": px.graph_posterior},
        "model_cls": class_path(px.model_cls),
        "guide_cls": class_path(px.guide_cls),
        "fit_result": px.fit_result.to_dict() if px.fit_result is not None else None,
        "chain_alignment": px.chain_alignment.to_dict() if px.chain_alignment is not None else None,
        "fit_warnings": list(px.chains.warnings) if px.chains is not None else [],
    }
    try:
        return json.loads(json.dumps(config))
    except TypeError as err:
        raise TypeError(f"save: model options must be JSON-serialisable; found {px.model_options!r} ({err})") from err


def write(px, chains, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write the fitted ``px`` and its :class:`~pyro_personax.inference.FittedChains` to the directory ``path``.

    An existing ``path`` is an error unless ``overwrite``; nothing is written when the
    configuration cannot be (an unimportable class, options that are not JSON).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"save: {str(path)!r} already exists; pass overwrite=True to replace it")
    config = model_config(px)
    if path.is_file():
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    torch.save(chains.state_dicts(), path / STATES)
    (path / CONFIG).write_text(json.dumps(config, indent=2))


@dataclass
class Saved:
    """What :func:`read` found: the arguments of a ``PersonaX`` and its chains' states."""

    layout: LatentLayout
    spec: ModelSpec
    model_cls: type
    guide_cls: type
    options: ModelOptions
    states: list[dict]
    result: FitResult | None
    alignment: ChainAlignment | None
    warnings: list[str]
    device: torch.device


def read(path: str | os.PathLike, device: str | torch.device = "cpu") -> Saved:
    """Read a directory written by :func:`write`, with the chain states on ``device``."""
    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / STATES).is_file():
        raise ValueError(
            f"load: expected {CONFIG} and {STATES} in {str(path)!r}; "
            f"found {sorted(p.name for p in path.glob('*')) if path.is_dir() else 'no directory'}"
        )
    try:
        config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"load: {str(path / CONFIG)!r} is not JSON ({err}); {_FOREIGN}") from None
    if not isinstance(config, dict):
        raise ValueError(f"load: {str(path / CONFIG)!r} holds no JSON object; {_FOREIGN}")
    if config.get("format") not in _READABLE:
        raise ValueError(
            f"load: unsupported format {config.get('format')!r} in {str(path / CONFIG)!r}; expected one of "
            f"{sorted(_READABLE)} (a model saved by an earlier version of the package: refit it)"
        )
    missing = [k for k in ("layout", "spec", "mechanism", "model_options", "fit_result") if k not in config]
    if missing:
        raise ValueError(f"load: {str(path / CONFIG)!r} lacks the keys {missing}; {_FOREIGN}")
    model_cls = import_class(config.get("model_cls"), PersonaXModel, path / CONFIG)
    guide_cls = import_class(config.get("guide_cls"), PersonaXGuide, path / CONFIG)
    try:
        written = {**_READABLE[config["format"]], **config["model_options"]}
        options = ModelOptions.from_mapping(
            {"mechanism": config["mechanism"], **written}, f"load: {str(path / CONFIG)!r}"
        )
    except ValueError as err:
        raise ValueError(f"{err} (a model saved by another version of the package: refit it)") from None
    dev = resolve_device(device)
    try:
        states = torch.load(path / STATES, map_location=dev, weights_only=True)
    except Exception as err:  # torch raises several kinds for truncated or foreign files
        raise ValueError(
            f"load: {str(path / STATES)!r} cannot be read as saved chain states ({type(err).__name__}); "
            f"{_FOREIGN}, or it is damaged. Do not load it with weights_only=False unless you trust its source"
        ) from None
    keys = {"model", "guide"}
    if not (isinstance(states, list) and all(isinstance(st, dict) and keys <= set(st) for st in states)):
        raise ValueError(f"load: {str(path / STATES)!r} does not hold per-chain model and guide states")
    alignment = config.get("chain_alignment")
    return Saved(
        layout=LatentLayout.from_dict(config["layout"]),
        spec=ModelSpec.from_dict(config["spec"]),
        model_cls=model_cls,
        guide_cls=guide_cls,
        options=options,
        states=states,
        result=FitResult.from_dict(config["fit_result"]) if config["fit_result"] is not None else None,
        alignment=None if alignment is None else ChainAlignment.from_dict(alignment),
        warnings=[str(w) for w in config.get("fit_warnings", [])],
        device=dev,
    )
