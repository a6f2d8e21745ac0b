"""Recovery on variant MNIST (2,000 entities, short training) against the PCA baseline.

Both methods are scored on the same 90/10 split: R^2 by kernel ridge fitted on the
training rows and scored on the held-out rows, MCC (Spearman) on the held-out rows.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pyro_personax.synthetic.variant_mnist import variant_mnist

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "recovery_variant_mnist.py"
NUM_ENTITIES = 2000
EPOCHS = 40

# "Clearly above PCA": margins over the baseline measured on this very data set
# (seed 0, N = 2,000): PCA reaches held-out R^2 0.873 and MCC 0.503. The R^2 margin is
# small because PCA + kernel ridge already recovers most of the latent information
# (the images are smooth, injective functions of the latents); MCC is where
# component-wise recovery shows.
R2_MARGIN = 0.03
MCC_MARGIN = 0.15


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("recovery_variant_mnist", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def problem(bench):
    data, truth = variant_mnist(NUM_ENTITIES, seed=0)
    train, test = bench.split_indices(NUM_ENTITIES, 0.1, seed=0)
    return data, truth, train, test


def test_pca_baseline_recovers_information_but_not_components(bench, problem):
    data, truth, train, test = problem
    pca = bench.run_pca(data, truth, train, test, seed=0)
    assert pca["R2"] > 0.8
    assert pca["MCC"] < 0.65
    assert np.isnan(pca["SHD"])


@pytest.mark.slow
@pytest.mark.xfail(
    reason=(
        "the default model does not yet beat PCA on variant MNIST: at N=2,000, seed 0, "
        "40 epochs, held-out R^2 0.778 vs PCA 0.873 and MCC 0.453 vs PCA 0.503, edge "
        "AUROC 0.59, SHD 3; the fashion latents are not separated from the nuisance"
    ),
    strict=False,
)
def test_personax_recovers_clearly_above_pca(bench, problem):
    pytest.importorskip("pyro_personax.facade")
    from pyro_personax import PersonaX

    data, truth, train, test = problem
    pca = bench.run_pca(data, truth, train, test, seed=0)
    train_data = data.subset(train)
    model = PersonaX(train_data, latent_dims=bench.LATENT_DIMS, shared_dim=0)
    model.fit(train_data, num_epochs=EPOCHS, batch_size=256, seed=0, progress=False, device="cpu")
    latents = model.get_latent_representation(data)
    probs = model.edge_probabilities().to_numpy(dtype=float)
    ours = bench.score(latents, truth, train, test, edge_probs=probs, seed=0)
    assert ours["R2"] > pca["R2"] + R2_MARGIN
    assert ours["MCC"] > pca["MCC"] + MCC_MARGIN
    assert ours["AUROC"] > 0.5
