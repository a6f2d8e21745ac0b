"""Level I of PersonaX: pairwise independence tests between traits and features.

:func:`test_battery` runs KCI, RCIT, HSIC, chi-square and G-square (and Fisher-z)
on every (trait, feature) pair and returns a tidy table with Benjamini-Hochberg
q-values; :func:`default_features` says which columns it tests when none are named;
:func:`plot_pvalue_heatmap` and :func:`plot_significance_summary` draw the table.
This subpackage imports neither torch nor pyro, and its names are imported on first
use, so that ``import pyro_personax.independence.catalog`` (the command line's test
names) stays free of pandas and scipy.
"""

__all__ = [
    "test_battery",
    "battery_summary",
    "DEFAULT_TESTS",
    "RESULT_COLUMNS",
    "TESTS",
    "TEST_NAMES",
    "P_VALUE_FLOOR",
    "TestSettings",
    "FeatureSelection",
    "default_features",
    "benjamini_hochberg",
    "hsic_gamma_test",
    "plot_pvalue_heatmap",
    "plot_significance_summary",
    "plot_conditional_graph",
    "trait_groups_from_prefix",
    "conditional_graph",
    "ConditionalResult",
]

_LAZY = {
    "test_battery": "battery",
    "battery_summary": "battery",
    "RESULT_COLUMNS": "battery",
    "DEFAULT_TESTS": "catalog",
    "TEST_NAMES": "catalog",
    "TESTS": "pairwise",
    "P_VALUE_FLOOR": "pairwise",
    "TestSettings": "pairwise",
    "FeatureSelection": "features",
    "default_features": "features",
    "benjamini_hochberg": "fdr",
    "hsic_gamma_test": "hsic",
    "plot_pvalue_heatmap": "plots",
    "plot_significance_summary": "plots",
    "plot_conditional_graph": "plots",
    "trait_groups_from_prefix": "plots",
    "conditional_graph": "conditional",
    "ConditionalResult": "conditional",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
