"""The versions of the variant-MNIST latents that ``benchmarks/equivalent_representations.py`` scores."""

import numpy as np
from conftest import load_benchmark

from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents, structural_noise


def test_noisy_truth_keeps_the_asked_share_of_each_latents_variance():
    bench = load_benchmark("equivalent_representations")
    z = sample_variant_mnist_latents(20000, seed=0)
    out = bench.versions(z, structural_noise(z), scales=[], noise_r2=[0.9, 0.5], seed=0)
    assert list(out) == ["truth", "sparsest", "truth R2 0.9", "truth R2 0.5"]
    for r2 in (0.9, 0.5):
        noisy = out[f"truth R2 {r2:g}"]
        kept = np.array([np.corrcoef(noisy[:, j], z[:, j])[0, 1] ** 2 for j in range(4)])
        np.testing.assert_allclose(kept, r2, atol=0.02)
    again = bench.versions(z, structural_noise(z), scales=[], noise_r2=[0.9], seed=0)["truth R2 0.9"]
    np.testing.assert_array_equal(again, out["truth R2 0.9"])
