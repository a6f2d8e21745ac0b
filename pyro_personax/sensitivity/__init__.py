"""Sensitivity of the fitted graph to the measurements and to the prior.

Two refit analyses answer what a reader of an edge report asks next:

- :func:`leave_one_measurement_out`: refit with each measurement of one modality
  removed in turn (each LLM's text, each face image) and, optionally, with each
  measurement alone. A removed measurement is a masked one
  (:func:`mask_measurements`): no new data set is made, and the guide's product of
  experts drops it. For every edge the result gives ``P(edge)`` under every variant,
  the agreement of each variant's latents with the reference fit (matched absolute
  Spearman correlation per block), and a stability verdict
  (:data:`STABILITY_VERDICTS`): an edge that holds in every variant is ``"stable"``;
  one that holds in no variant without measurement ``k`` and in some variant with it
  ``"rests on k"``. The same verdicts are given for each pair of latents, whichever the
  direction (:attr:`MeasurementSensitivity.adjacency_stability`): a link that holds in
  every variant while its direction flips between them is stable as a link, and its
  direction is not decided (a lone cross-modal cause -> effect pair is oriented by the
  additive-noise asymmetry only).
- :func:`prior_sweep`: refit over a grid of edge-prior probabilities
  (:class:`~pyro_personax.models.ModelOptions` ``edge_prior``) and sparsity weights
  (:class:`~pyro_personax.inference.FitOptions` ``sparsity``) spanning orders of
  magnitude, and report ``P(edge)`` per setting with the training and held-out
  (validation) ELBO of each. The identified (cross-modal) edges should not move with the
  prior; the undecided ones are expected to follow it, and are shown apart.

Every variant and setting is fitted with the same fit options and seed (chain ``c`` of
every fit uses ``seed + c``, as :meth:`pyro_personax.PersonaX.fit`), so the fits differ
only in what is varied. Each fit's latent labels are matched to the reference fit's
(:func:`~pyro_personax.inference.alignment.align_chains`, within exchangeable groups)
before its edge probabilities are compared. Adjacencies follow
:mod:`pyro_personax.graph` (``[i, j]`` = parent i -> child j).

:func:`write_sensitivity_page` writes the tables, figures and an HTML page of either
result or both; ``personax sensitivity RUN_DIR`` runs both on a run folder.
"""

from pyro_personax.sensitivity._common import adjacency_frame, mask_measurements
from pyro_personax.sensitivity.measurements import (
    STABILITY_VERDICTS,
    MeasurementSensitivity,
    leave_one_measurement_out,
)
from pyro_personax.sensitivity.page import SENSITIVITY_FILES, write_sensitivity_page
from pyro_personax.sensitivity.prior import PriorSensitivity, prior_sweep

__all__ = [
    "MeasurementSensitivity",
    "PriorSensitivity",
    "STABILITY_VERDICTS",
    "SENSITIVITY_FILES",
    "adjacency_frame",
    "leave_one_measurement_out",
    "mask_measurements",
    "prior_sweep",
    "write_sensitivity_page",
]

