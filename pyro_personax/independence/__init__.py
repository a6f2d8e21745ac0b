"""Level I of PersonaX: pairwise independence tests between traits and features.

:func:`test_battery` runs KCI, RCIT, HSIC, chi-square and G-square (and Fisher-z)
on every (trait, feature) pair and returns a tidy table with Benjamini-Hochberg
q-values; :func:`plot_pvalue_heatmap` and :func:`plot_significance_summary` draw it.
This subpackage imports neither torch nor pyro.
"""

from pyro_personax.independence.battery import DEFAULT_TESTS, RESULT_COLUMNS, test_battery
from pyro_personax.independence.fdr import benjamini_hochberg
from pyro_personax.independence.hsic import hsic_gamma_test
from pyro_personax.independence.pairwise import TESTS, TestSettings
from pyro_personax.independence.plots import (
    plot_pvalue_heatmap,
    plot_significance_summary,
    trait_groups_from_prefix,
)

__all__ = [
    "test_battery",
    "DEFAULT_TESTS",
    "RESULT_COLUMNS",
    "TESTS",
    "TestSettings",
    "benjamini_hochberg",
    "hsic_gamma_test",
    "plot_pvalue_heatmap",
    "plot_significance_summary",
    "trait_groups_from_prefix",
]
