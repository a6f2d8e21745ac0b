"""Posterior diagnostics with ArviZ: InferenceData, Pareto-k and the edge summary table.

This is the only part of the package that imports :mod:`arviz` (and :mod:`xarray`):
:mod:`.build` builds the InferenceData, :mod:`.read` reads, summarises, saves and loads
it. Every other module works on the numpy arrays and pandas tables returned here, so a
port to ArviZ 1.x touches this package only.

Chains are **independent restarts** of the variational fit, not MCMC chains. Draws
within a chain are i.i.d. draws of one variational posterior, so R-hat and ESS
computed over chains measure *run-to-run agreement*: R-hat near 1 means the restarts
found the same posterior; R-hat clearly above 1 means they disagree (for instance,
they found different graphs), whatever the within-chain mixing.

The layout of the InferenceData, group by group, is described in :mod:`.build`.
"""

from .build import build_inference_data, pareto_k, varying_edges
from .read import (
    config_of,
    edge_draws,
    edge_probability_array,
    edge_summary,
    elbo_traces,
    is_inference_data,
    layout_of,
    load_inference_data,
    pareto_k_of,
    posterior_summary,
    predictive_pairs,
    save_inference_data,
)

__all__ = [
    "build_inference_data",
    "pareto_k",
    "edge_summary",
    "posterior_summary",
    "save_inference_data",
    "load_inference_data",
    "is_inference_data",
    "layout_of",
    "edge_draws",
    "edge_probability_array",
    "elbo_traces",
    "predictive_pairs",
    "pareto_k_of",
    "config_of",
    "varying_edges",
]
