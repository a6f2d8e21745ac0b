"""``benchmarks/noise_shape.py``: the model's density of the true variant-MNIST latents against their true density."""

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("noise_shape")


def test_the_gap_is_per_latent_and_shrinks_with_the_fit(bench):
    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    z = sample_variant_mnist_latents(2000, seed=0)
    short, _ = bench.fitted_gap(z, "spline", "truth's graph", steps=5, seed=0, learning_rate=0.005)
    longer, _ = bench.fitted_gap(z, "spline", "truth's graph", steps=200, seed=0, learning_rate=0.005)
    assert short.shape == longer.shape == (4,) and np.isfinite(short).all() and np.isfinite(longer).all()
    assert longer.sum() < short.sum()


def test_a_learning_rate_that_is_not_positive_is_an_error(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--learning-rate", "0"])
    assert "--learning-rate 0.0: expected a positive number" in capsys.readouterr().err
