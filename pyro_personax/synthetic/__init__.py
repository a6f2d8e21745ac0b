"""Synthetic data with ground truth: persona data, variant MNIST, random DAGs."""

from pyro_personax.synthetic.graphs import (
    EXAMPLE_MEASUREMENT_MAP,
    erdos_renyi_dag,
    measurement_map_example,
    observe_latents,
    scale_free_dag,
    simulate_sem,
)
from pyro_personax.synthetic.idx import read_idx, write_idx
from pyro_personax.synthetic.persona import PERSONA_EDGES, PERSONA_LATENTS, persona, persona_layout
from pyro_personax.synthetic.truth import GroundTruth, MeasurementEdge
from pyro_personax.synthetic.variant_mnist import (
    generating_factors,
    render_latent_sweep,
    sparsest_equivalent,
    structural_noise,
    variant_mnist,
    variant_mnist_layout,
)

__all__ = [
    "GroundTruth",
    "MeasurementEdge",
    "persona",
    "persona_layout",
    "PERSONA_EDGES",
    "PERSONA_LATENTS",
    "variant_mnist",
    "variant_mnist_layout",
    "render_latent_sweep",
    "generating_factors",
    "structural_noise",
    "sparsest_equivalent",
    "erdos_renyi_dag",
    "scale_free_dag",
    "simulate_sem",
    "observe_latents",
    "measurement_map_example",
    "EXAMPLE_MEASUREMENT_MAP",
    "read_idx",
    "write_idx",
]
