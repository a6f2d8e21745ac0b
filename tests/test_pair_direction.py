"""``benchmarks/pair_direction.py``: the additive-noise test of the lone cross-modal pair."""

import numpy as np
import pytest
from conftest import load_benchmark

from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents


def test_the_true_pair_is_oriented_forward_and_a_swapped_pair_backward():
    bench = load_benchmark("pair_direction")
    z = sample_variant_mnist_latents(600, seed=0)
    pf, pb = bench.pair_p_values(z, 300, 1, seed=0)[0]
    assert pf > 0.01 > pb
    swapped = z[:, [2, 1, 0, 3]]  # Z21 in Z11's column: the test must now prefer the other direction
    pf, pb = bench.pair_p_values(swapped, 300, 1, seed=0)[0]
    assert pb > 0.01 > pf


def test_more_rows_than_drawn_is_an_error_naming_the_arguments():
    bench = load_benchmark("pair_direction")
    with pytest.raises(ValueError, match="rows \\* repeats"):
        bench.pair_p_values(np.zeros((10, 4)), 6, 2, seed=0)
