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


def test_a_fits_saved_latents_are_read_through_the_matching(tmp_path, capsys):
    bench = load_benchmark("pair_direction")
    truth = sample_variant_mnist_latents(700, seed=1)
    learned = truth[:, [1, 0, 3, 2]] + 0.01 * np.random.default_rng(0).normal(size=truth.shape)  # blocks relabelled
    np.savez(tmp_path / "seed1.npz", latents=learned, true_latents=truth, train=np.arange(600),
             test=np.arange(600, 700), blocks=np.array(["colour", "colour", "fashion", "fashion"]),
             edge_probs=np.zeros((4, 4)))
    bench.main(["--seeds", "1", "--rows", "300", "--repeats", "2", "--latents", str(tmp_path)])
    out = capsys.readouterr().out
    assert "the learned latents 1 and 3 matched to Z11 and Z21" in out
    assert "forward preferred on 2 of 2 subsamples, neither direction kept on 0" in out


def test_a_pair_neither_direction_fits_is_reported_as_such():
    bench = load_benchmark("pair_direction")
    assert bench.preferred(0.0, 0.0, 0.01) == "neither"
    assert bench.preferred(0.2, 0.0, 0.01) == "forward" and bench.preferred(0.005, 0.009, 0.001) == "backward"
