"""One rule for the names that become file, column, variable or module names.

Modality names name Pyro sites (``x_<modality>``), torch modules and netCDF variables;
LLM keys name files (``text_emb_<llm>.npy``) and columns. A name is safe when it starts with
a letter and holds only letters, digits, ``_`` and ``-``: it can then never leave its
folder (no ``/``, ``\\`` or ``..``) nor break a module or variable name (no ``.``).
"""

from __future__ import annotations

import re

__all__ = ["check_name", "SAFE_NAME"]

#: What a safe name looks like.
SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


def check_name(what: str, name) -> str:
    """``name`` when it is safe (:data:`SAFE_NAME`); otherwise a ``ValueError`` naming ``what``.

    Examples
    --------
    >>> check_name("modality", "face")
    'face'
    >>> check_name("modality", "../x")
    Traceback (most recent call last):
    ...
    ValueError: modality: '../x' is not a safe name; use letters, digits, '_' and '-', ...
    """
    if not isinstance(name, str) or SAFE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"{what}: {name!r} is not a safe name; use letters, digits, '_' and '-', starting with a letter "
            "(it names files, columns and modules)"
        )
    return name
