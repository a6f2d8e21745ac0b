"""Level II inference: SVI training with the augmented-Lagrangian schedule, chains, their label
alignment, results.

Importable as :mod:`pyro_personax.inference`.
"""

from pyro_personax.inference.alignment import (
    ChainAlignment,
    align_chains,
    exchangeable_groups,
    identity_alignment,
)
from pyro_personax.inference.basis import BlockBasis, search_block_basis
from pyro_personax.inference.batches import RowSubset, index_batch, num_rows
from pyro_personax.inference.chains import FittedChains
from pyro_personax.inference.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from pyro_personax.inference.devices import DEFAULT_NUM_THREADS, local_params, resolve_device, torch_threads
from pyro_personax.inference.distributed import init_distributed, is_main_process, shutdown_distributed
from pyro_personax.inference.graph_elbo import GraphParticleELBO
from pyro_personax.inference.interventions import Interventional, intervene, structural_program
from pyro_personax.inference.nonfinite import NonFiniteLossError
from pyro_personax.inference.options import DEFAULT_NUM_EPOCHS, FitOptions, default_num_epochs
from pyro_personax.inference.oracle import (
    ExactGraphPosterior,
    exact_graph_posterior,
    fit_graph_given_latents,
    fit_mechanisms_given_latents,
    node_table,
)
from pyro_personax.inference.refine import GraphRefinement, refine_graph
from pyro_personax.inference.result import ChainResult, FitResult
from pyro_personax.inference.schedule import (
    AugLagConfig,
    AugmentedLagrangian,
    KLWarmup,
    TemperatureSchedule,
)
from pyro_personax.inference.trainer import fit_chains, train_chain
from pyro_personax.inference.trainer_config import TrainerConfig

__all__ = [
    "AugLagConfig",
    "AugmentedLagrangian",
    "BlockBasis",
    "ChainAlignment",
    "ChainResult",
    "ExactGraphPosterior",
    "FitOptions",
    "FitResult",
    "FittedChains",
    "GraphRefinement",
    "GraphParticleELBO",
    "Interventional",
    "KLWarmup",
    "RowSubset",
    "NonFiniteLossError",
    "TemperatureSchedule",
    "TrainerConfig",
    "align_chains",
    "checkpoint_path",
    "exact_graph_posterior",
    "node_table",
    "exchangeable_groups",
    "fit_graph_given_latents",
    "fit_mechanisms_given_latents",
    "fit_chains",
    "identity_alignment",
    "intervene",
    "index_batch",
    "load_checkpoint",
    "num_rows",
    "refine_graph",
    "local_params",
    "resolve_device",
    "torch_threads",
    "DEFAULT_NUM_THREADS",
    "DEFAULT_NUM_EPOCHS",
    "default_num_epochs",
    "save_checkpoint",
    "search_block_basis",
    "init_distributed",
    "is_main_process",
    "shutdown_distributed",
    "structural_program",
    "train_chain",
]
