"""The cross-modal reading: exact constructions where the identified part of each block is known."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from pyro_personax.layout import LatentLayout
from pyro_personax.reading import cross_modal_reading
from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents


def _rho(a, b):
    return abs(spearmanr(a, b).statistic)


def _mix(block: np.ndarray, degrees: float) -> np.ndarray:
    """An invertible nonlinear map inside a block: a rotation, then ``v + 0.5 tanh(2 v)`` per coordinate."""
    t = np.deg2rad(degrees)
    rot = np.eye(block.shape[1])
    rot[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    v = block @ rot.T
    return v + 0.5 * np.tanh(2 * v)


@pytest.fixture(scope="module")
def mixed():
    """Variant-MNIST latents, each block turned and bent; the fashion block has two extra, independent coordinates."""
    rng = np.random.default_rng(0)
    truth = sample_variant_mnist_latents(3000, seed=0)
    truth = (truth - truth.mean(0)) / truth.std(0)
    colour = _mix(truth[:, :2], 35)
    fashion = _mix(np.column_stack([truth[:, 2:], rng.normal(size=(3000, 2))]), 35)
    fashion[:, 1:] = _mix(fashion[:, 1:], 50)  # Z21 spread over three coordinates
    layout = LatentLayout(0, {"colour": 2, "fashion": 4})
    return truth, np.column_stack([colour, fashion]), layout


def test_reading_finds_the_pinned_latent_of_each_block_in_a_mixed_basis(mixed):
    truth, z, layout = mixed
    r = cross_modal_reading(z, layout, seed=0)
    assert r.dims == {"colour": 1, "fashion": 1}
    assert r.names == ["colour_reading_0", "fashion_reading_0"]
    assert r.readings.shape == (3000, 2)
    np.testing.assert_allclose(r.readings.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(r.readings.std(0), 1, atol=1e-6)
    best_colour = max(_rho(z[:, j], truth[:, 0]) for j in range(2))
    best_fashion = max(_rho(z[:, j], truth[:, 2]) for j in range(2, 6))
    assert best_fashion < 0.85  # the mixing spread Z21: no single coordinate reads it
    assert _rho(r.readings[:, 0], truth[:, 0]) > max(0.97, best_colour)
    assert _rho(r.readings[:, 1], truth[:, 2]) > 0.95
    assert r.validation_loss["fashion"].shape == (5,)
    assert r.nearest["fashion_reading_0"][0] in layout.names[2:]
    # the reading is oriented along its nearest block latent
    name, value = r.nearest["colour_reading_0"]
    assert spearmanr(r.readings[:, 0], z[:, layout.index(name)]).statistic == pytest.approx(value)


def _two_linked(n: int) -> tuple[np.ndarray, np.random.Generator]:
    """Two blocks of two latents, each of ``b``'s a function of one of ``a``'s (mixed inside the blocks), and the
    generator for more columns."""
    rng = np.random.default_rng(1)
    a = rng.uniform(-1.7, 1.7, size=(n, 2))
    b = np.column_stack([np.sin(1.5 * a[:, 0]) + 0.3 * rng.normal(size=n),
                         np.tanh(2 * a[:, 1]) + 0.3 * rng.normal(size=n)])
    return np.column_stack([_mix(a, 30), _mix(b, 30)]), rng


def test_two_linked_latents_give_a_two_dimensional_reading_and_an_unlinked_block_none():
    n = 3000
    ab, rng = _two_linked(n)
    z = np.column_stack([ab, rng.normal(size=(n, 2))])  # c independent of the rest
    layout = LatentLayout(0, {"a": 2, "b": 2, "c": 2})
    r = cross_modal_reading(z, layout, seed=0)
    assert r.dims == {"a": 2, "b": 2, "c": 0}
    assert r.readings.shape == (n, 4)
    assert not any(name.startswith("c_") for name in r.names)


def test_same_seed_same_reading_and_the_global_torch_state_is_left_alone(mixed):
    import torch

    truth, z, layout = mixed
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    first = cross_modal_reading(z[:400], layout, seed=3, steps=60)
    after = torch.rand(1)
    second = cross_modal_reading(z[:400], layout, seed=3, steps=60)
    np.testing.assert_array_equal(first.readings, second.readings)
    assert first.dims == second.dims
    assert torch.equal(before, after)


def test_bad_input_is_named(mixed):
    _, z, layout = mixed
    with pytest.raises(ValueError, match=r"latents: expected a \(N, 6\) array"):
        cross_modal_reading(z[:, :5], layout)
    bad = z[:100].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="latents: expected finite values"):
        cross_modal_reading(bad, layout)
    with pytest.raises(ValueError, match="two or more modality blocks"):
        cross_modal_reading(z[:, :2], LatentLayout(0, {"colour": 2}))
    with pytest.raises(ValueError, match="threshold"):
        cross_modal_reading(z, layout, threshold=0.0)
    with pytest.raises(ValueError, match="validation_fraction"):
        cross_modal_reading(z, layout, validation_fraction=0.0)


def test_spread_readings_flags_a_block_whose_children_of_cross_modal_edges_outnumber_its_reading():
    from pyro_personax.reading import CrossModalReading, spread_readings, spread_warning

    layout = LatentLayout(0, {"colour": 2, "fashion": 4})
    reading = CrossModalReading(np.zeros((5, 2)), ["colour_reading_0", "fashion_reading_0"],
                                {"colour": 1, "fashion": 1}, {})
    names = list(layout.names)
    P = np.zeros((6, 6))
    P[0, 2] = P[0, 3] = 0.9  # colour_1 -> two fashion latents: two children, one reading
    P[4, 0] = 0.6  # a fashion latent -> colour_1: one colour child, as many as its reading
    P[2, 3] = 0.99  # within-block: does not count
    assert spread_readings(reading, layout, P) == {"fashion": [names[2], names[3]]}
    P[5, 1] = 0.7  # a second colour child
    assert spread_readings(reading, layout, P) == {"colour": names[:2], "fashion": [names[2], names[3]]}
    P[0, 3] = P[5, 1] = 0.4  # below the threshold
    assert spread_readings(reading, layout, P) == {}
    # parents of several cross-modal edges are no sign of spread: five traits feed three face latents
    assert "count it more than once" in spread_warning("fashion", names[2:4], 1)
    with pytest.raises(ValueError, match=r"probs: expected shape \(\.\.\., 6, 6\)"):
        spread_readings(reading, layout, P[:5, :5])


def test_a_parent_block_feeding_fewer_children_reads_fewer_dimensions_than_its_linked_latents():
    """Given the demo's true latents, the text block's five traits reach the face through three face latents."""
    from pyro_personax.reading import spread_readings
    from pyro_personax.synthetic.persona import persona

    data, truth = persona(1500, seed=0)
    r = cross_modal_reading(truth.latents, truth.layout, seed=0)
    assert r.dims == {"face": 3, "text": 3}
    assert spread_readings(r, truth.layout, truth.adjacency) == {}


def test_reading_basis_puts_each_reading_in_its_block_and_leaves_the_rest_mean_independent_of_it(mixed):
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    from pyro_personax.reading import reading_basis

    truth, z, layout = mixed
    r = cross_modal_reading(z, layout, seed=0)
    basis = reading_basis(z, layout, r, seed=0)
    assert basis.latents.shape == z.shape
    np.testing.assert_allclose(basis.latents.std(0), 1, atol=1e-6)
    assert set(basis.replaced) == {"colour_reading_0", "fashion_reading_0"}
    for name, latent in basis.replaced.items():
        j = layout.index(latent)
        assert basis.names[j] == name
        np.testing.assert_allclose(basis.latents[:, j], r.readings[:, r.names.index(name)], atol=1e-6)
    rest = [j for j, n in enumerate(basis.names) if n.endswith("_rest")]
    assert [basis.names[j] for j in rest] == [f"{layout.names[j]}_rest" for j in rest] and len(rest) == 4
    reading_of = {j: r.readings[:, r.block_columns(str(layout.block_of[j]))] for j in rest}
    cubic = make_pipeline(PolynomialFeatures(3), LinearRegression())
    for j in rest:  # what a function of the reading predicts of the rest is gone
        assert cubic.fit(reading_of[j], basis.latents[:, j]).score(reading_of[j], basis.latents[:, j]) < 0.02
    # the block's content is kept: the latents as given are read back from the new basis
    fashion = slice(2, 6)
    net = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=500, random_state=0)
    back = net.fit(basis.latents[:2400, fashion], z[:2400, fashion]).score(basis.latents[2400:, fashion],
                                                                             z[2400:, fashion])
    assert back > 0.95


def test_reading_basis_gives_each_column_of_a_wider_reading_its_own_latent():
    from pyro_personax.reading import reading_basis

    ab, rng = _two_linked(3000)
    z = np.column_stack([ab, rng.normal(size=3000)])  # a third latent of b, independent of the rest
    layout = LatentLayout(0, {"a": 2, "b": 3})
    r = cross_modal_reading(z, layout, seed=0)
    assert r.dims == {"a": 2, "b": 2}
    basis = reading_basis(z, layout, r, seed=0)
    assert sorted(basis.names[:2]) == ["a_reading_0", "a_reading_1"]  # block a: both latents replaced
    assert {"b_reading_0", "b_reading_1"} < set(basis.names[2:])
    assert sum(n.endswith("_rest") for n in basis.names[2:]) == 1
    assert len(set(basis.replaced.values())) == 4  # four readings, four distinct latents


def test_reading_basis_names_bad_input(mixed):
    from pyro_personax.reading import reading_basis

    _, z, layout = mixed
    r = cross_modal_reading(z[:300], layout, seed=0, steps=30)
    with pytest.raises(ValueError, match="reading: expected readings of the 200 rows"):
        reading_basis(z[:200], layout, r)
    with pytest.raises(ValueError, match=r"latents: expected a finite \(N, 6\) array"):
        reading_basis(z[:300, :5], layout, r)
    with pytest.raises(ValueError, match=r"reading: blocks \['colour'\] are not modality blocks"):
        reading_basis(z[:300, 2:], LatentLayout(0, {"fashion": 2, "other": 2}), r)
