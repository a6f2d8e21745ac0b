"""One rule for the integer settings (counts, seeds, epochs) that every entry point checks.

An integer setting is a Python or NumPy integer at or above its bound; ``True`` and
``False`` are refused although Python counts them as ints, since a flag passed where a
count belongs is a mistake. The error names the setting, what was expected and what was
found, the project's convention for bad input.
"""

from __future__ import annotations

import numbers

__all__ = ["check_int"]


def check_int(name: str, value, *, low: int = 1, optional: bool = False) -> int | None:
    """``value`` as an ``int`` when it is an integer ``>= low`` (or ``None`` with ``optional``).

    Parameters
    ----------
    name
        The setting's name, the start of the error message.
    value
        What the user gave.
    low
        The smallest value allowed.
    optional
        Whether ``None`` is allowed (it is then returned as it is).

    Returns
    -------
    int or None

    Raises
    ------
    ValueError
        ``"<name>: expected [None or ]an int >= <low>; found <value!r>"`` for anything else,
        ``True`` and ``False`` included.

    Examples
    --------
    >>> check_int("num_chains", 4)
    4
    >>> check_int("patience", None, optional=True) is None
    True
    >>> check_int("seed", -1, low=0)
    Traceback (most recent call last):
    ...
    ValueError: seed: expected an int >= 0; found -1
    >>> check_int("num_epochs", True, optional=True)
    Traceback (most recent call last):
    ...
    ValueError: num_epochs: expected None or an int >= 1; found True
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        expected = f"None or an int >= {low}" if optional else f"an int >= {low}"
        raise ValueError(f"{name}: expected {expected}; found {value!r}")
    return int(value)
