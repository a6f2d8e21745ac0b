"""The names of the pairwise tests and of the default battery.

Kept apart from :mod:`~pyro_personax.independence.pairwise` (numpy, scipy) so that the
command line lists them without importing the numerical stack.
"""

from __future__ import annotations

__all__ = ["TEST_NAMES", "DEFAULT_TESTS", "CONDITIONAL_TESTS"]

#: Every pairwise test, in the order of :data:`pyro_personax.independence.pairwise.TESTS`.
TEST_NAMES = ("kci", "rcit", "hsic", "fisherz", "chisq", "gsq")

#: The tests a battery runs unless told otherwise.
DEFAULT_TESTS = ("kci", "rcit", "hsic", "chisq", "gsq")

#: The conditional-independence tests PC and FCI can use (:func:`~pyro_personax.independence.conditional_graph`).
CONDITIONAL_TESTS = ("fisherz", "kci", "rcit", "chisq", "gsq")
