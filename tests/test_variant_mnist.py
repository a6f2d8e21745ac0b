"""The variant-MNIST generator: shapes, determinism, structure, visible latent effects."""

import time

import matplotlib
import numpy as np
import pytest

from pyro_personax.graph import is_dag
from pyro_personax.synthetic.idx import write_idx
from pyro_personax.synthetic.variant_mnist import (
    LATENT_NAMES,
    colour_tint,
    fashion_pose,
    generating_factors,
    load_templates,
    render_fashion,
    render_latent_sweep,
    sample_variant_mnist_latents,
    sparsest_equivalent,
    structural_noise,
    variant_mnist,
    variant_mnist_adjacency,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def small():
    return variant_mnist(300, seed=3)


def test_shapes_names_and_ranges(small):
    data, truth = small
    assert data.values["colour"].shape == (300, 3, 3 * 14 * 14)
    assert data.values["fashion"].shape == (300, 1, 14 * 14)
    assert data.likelihood == {"colour": "tinted_rgb", "fashion": "normal"}
    for v in data.values.values():
        assert v.min() >= 0.0 and v.max() <= 1.0
    assert truth.latents.shape == (300, 4)
    assert truth.names == LATENT_NAMES
    assert truth.layout.block_slice("colour") == slice(0, 2)
    np.testing.assert_array_equal(truth.adjacency, variant_mnist_adjacency())
    assert is_dag(truth.adjacency)
    assert set(zip(*np.nonzero(truth.adjacency))) == {(0, 1), (0, 2), (2, 3)}


def test_same_seed_same_data_other_seed_other_data(small):
    data, truth = small
    again, truth2 = variant_mnist(300, seed=3)
    np.testing.assert_array_equal(data.values["colour"], again.values["colour"])
    np.testing.assert_array_equal(data.values["fashion"], again.values["fashion"])
    np.testing.assert_array_equal(truth.latents, truth2.latents)
    other, _ = variant_mnist(300, seed=4)
    assert not np.array_equal(data.values["colour"], other.values["colour"])


def test_measurements_show_different_digits_with_one_tint(small):
    data, truth = small
    imgs = data.values["colour"].reshape(300, 3, 3, 14, 14)
    grey = imgs.sum(axis=2)
    # different digits per measurement: shapes differ...
    assert np.mean([not np.allclose(grey[n, 0], grey[n, 1]) for n in range(300)]) > 0.95
    # ...but the colour ratio of every measurement is the tint of (Z11, Z12)
    tint = colour_tint(truth.latents[:, 0], truth.latents[:, 1])
    for k in range(3):
        total = imgs[:, k].sum(axis=(2, 3))  # (N, 3)
        ratio = total / total.sum(1, keepdims=True)
        np.testing.assert_allclose(ratio, tint / tint.sum(1, keepdims=True), rtol=1e-4)


def test_children_are_not_deterministic_functions_of_parents():
    z = sample_variant_mnist_latents(20_000, seed=0)
    A = variant_mnist_adjacency()
    for child in (1, 2, 3):
        parents = np.flatnonzero(A[:, child])
        # residual of the best smooth fit on the parents, via binning on the single parent
        p = z[:, parents[0]]
        bins = np.quantile(p, np.linspace(0, 1, 41))
        which = np.clip(np.searchsorted(bins, p) - 1, 0, 39)
        means = np.array([z[which == b, child].mean() for b in range(40)])
        resid_share = np.var(z[:, child] - means[which]) / np.var(z[:, child])
        assert 0.35 < resid_share < 0.65, (LATENT_NAMES[child], resid_share)
        if child == 1:  # non-Gaussian noise: Z12's residual has Laplace tails (excess kurtosis 3)
            r = z[:, child] - means[which]
            assert ((r - r.mean()) ** 4).mean() / r.var() ** 2 - 3 > 1.5
    with pytest.raises(ValueError, match="noise_scale"):
        sample_variant_mnist_latents(10, noise_scale=0.0)


def test_structural_noise_recovers_the_exogenous_draws():
    seed, n, s = 3, 20_000, 0.7
    z = sample_variant_mnist_latents(n, seed=seed, noise_scale=s)
    # the draws, in the order the sampler takes them from its generator
    rng = np.random.default_rng(seed)
    e1 = rng.uniform(-np.sqrt(3), np.sqrt(3), size=n)
    e2 = rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=n)
    e3 = rng.uniform(-np.sqrt(3), np.sqrt(3), size=n)
    e4 = rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=n)
    noise = structural_noise(z)
    np.testing.assert_allclose(noise, np.column_stack([e1, s * e2, s * e3, s * e4]), atol=1e-10)
    # independent columns, while the latents themselves are dependent
    rho_noise = np.corrcoef(noise, rowvar=False)[np.triu_indices(4, 1)]
    rho_latents = np.corrcoef(z, rowvar=False)[np.triu_indices(4, 1)]
    assert np.abs(rho_noise).max() < 0.03
    assert np.abs(rho_latents).max() > 0.5
    with pytest.raises(ValueError, match=r"latents: expected shape \(N, 4\)"):
        structural_noise(z[:, :3])


def test_sparsest_equivalent_is_a_unit_jacobian_map_within_blocks():
    z = sample_variant_mnist_latents(500, seed=5)
    eq, A = sparsest_equivalent(z)
    assert eq.shape == (500, 4)
    assert set(zip(*np.nonzero(A))) == {(0, 2)} and is_dag(A)
    # each block maps to itself: moving one block's latents leaves the other block's outputs alone
    moved = z.copy()
    moved[:, 2:] += 0.3
    np.testing.assert_array_equal(sparsest_equivalent(moved)[0][:, :2], eq[:, :2])
    moved = z.copy()
    moved[:, :2] -= 0.3
    np.testing.assert_array_equal(sparsest_equivalent(moved)[0][:, 2:], eq[:, 2:])
    # triangular with unit diagonal: parents pass through, a child shifts one for one
    shifted = z.copy()
    shifted[:, [1, 3]] += 0.7
    np.testing.assert_allclose(sparsest_equivalent(shifted)[0] - eq, np.tile([0.0, 0.7, 0.0, 0.7], (500, 1)))
    np.testing.assert_array_equal(eq[:, [0, 2]], z[:, [0, 2]])
    with pytest.raises(ValueError, match=r"latents: expected shape \(N, 4\)"):
        sparsest_equivalent(z[:, :3])


def test_sparsest_equivalent_is_markov_to_its_one_edge_graph():
    from pyro_personax.independence import hsic_gamma_test

    z = sample_variant_mnist_latents(1500, seed=6)
    eq, _ = sparsest_equivalent(z)
    # every pair but the kept edge Z11 -> Z21 is independent in the equivalent latents ...
    for i, j in [(0, 1), (0, 3), (1, 2), (1, 3), (2, 3)]:
        assert hsic_gamma_test(eq[:, i], eq[:, j])[1] > 0.01, (i, j)
    assert hsic_gamma_test(eq[:, 0], eq[:, 2])[1] < 1e-6
    # ... while the true latents depend along all three true edges
    for i, j in [(0, 1), (0, 2), (2, 3)]:
        assert hsic_gamma_test(z[:, i], z[:, j])[1] < 1e-6, (i, j)


def test_sparsest_equivalent_scores_below_the_paper_with_a_near_perfect_r2():
    from pyro_personax.metrics import mcc, r2

    z = sample_variant_mnist_latents(3000, seed=7)
    eq, _ = sparsest_equivalent(z)
    test = np.arange(300)
    train = np.arange(300, 3000)
    fit = r2(eq, z, train=train, test=test, seed=0)
    match = mcc(eq[test], z[test], "spearman")
    assert fit.value > 0.99
    np.testing.assert_array_equal(match.permutation, np.arange(4))
    assert np.abs(match.correlations[[0, 2]]).min() == pytest.approx(1.0)
    assert np.abs(match.correlations[[1, 3]]).max() < 0.75
    assert match.value < 0.85


def test_a_quarter_of_each_mechanism_keeps_the_true_graph_and_misses_mcc_092():
    from pyro_personax.independence import hsic_gamma_test
    from pyro_personax.metrics import mcc

    z = sample_variant_mnist_latents(10_000, seed=0)
    noise = structural_noise(z)
    quarter = z.copy()  # Z12 - 3/4 f12(Z11), Z22 - 3/4 f22(Z21): the same unit-Jacobian maps
    for child in (1, 3):
        quarter[:, child] = noise[:, child] + 0.25 * (z[:, child] - noise[:, child])
    held_out = np.random.default_rng(0).permutation(10_000)[:1000]
    match = mcc(quarter[held_out], z[held_out], "spearman")
    assert 0.9 < match.value < 0.92
    for parent, child in [(0, 1), (0, 2), (2, 3)]:  # every true edge is still a dependence
        assert hsic_gamma_test(quarter[:1500, parent], quarter[:1500, child])[1] < 1e-6


def test_fashion_pose_follows_latents():
    digits, garments = load_templates()
    idx = np.zeros(2, dtype=int)
    angle, scale = fashion_pose(np.zeros(2), np.array([-2.0, 2.0]))
    assert scale[1] > 1.3 and scale[0] < 0.75
    small_img, big_img = render_fashion(garments, idx, angle, scale)
    assert (big_img > 0.3).sum() > 1.5 * (small_img > 0.3).sum()
    angle, scale = fashion_pose(np.array([0.0, 2.0]), np.zeros(2))
    assert angle[1] == pytest.approx(np.pi / 3 * np.tanh(1.6))
    upright, turned = render_fashion(garments, idx, angle, scale)
    assert np.abs(upright - turned).mean() > 0.05
    # zero angle and unit scale reproduce the template
    np.testing.assert_allclose(render_fashion(garments, idx[:1], np.zeros(1), np.ones(1))[0], garments[0], atol=1e-6)


def test_images_carry_the_latents(small):
    data, truth = small
    z = truth.latents
    rgb = data.values["colour"][:, 0].reshape(300, 3, -1).sum(-1)
    red_share = rgb[:, 0] / rgb.sum(1)
    assert np.corrcoef(red_share, z[:, 0])[0, 1] > 0.6
    size = (data.values["fashion"][:, 0] > 0.3).sum(-1)
    assert np.corrcoef(size, z[:, 3])[0, 1] > 0.4


def test_generating_factors_are_a_componentwise_representation(small):
    from pyro_personax.metrics import mcc, r2

    _, truth = small
    z = truth.latents
    factors = generating_factors(z)
    assert factors.shape == (300, 4)
    np.testing.assert_allclose(factors[:, :2], colour_tint(z[:, 0], z[:, 1])[:, :2])
    # each column is increasing in its own latent: Spearman MCC exactly 1, identity matching
    match = mcc(factors, z, "spearman")
    assert match.value == pytest.approx(1.0)
    np.testing.assert_array_equal(match.permutation, np.arange(4))
    # saturation costs held-out R^2 in the tails, but the information is all there
    assert 0.9 < r2(factors, z, seed=0).value < 1.0
    with pytest.raises(ValueError, match=r"latents: expected shape \(N, 4\); found \(300, 3\)"):
        generating_factors(z[:, :3])


def test_idx_files_are_used_when_given(tmp_path):
    rng = np.random.default_rng(0)
    mnist = (rng.uniform(size=(20, 28, 28)) * 255).astype(np.uint8)
    fashion = np.zeros((10, 28, 28), dtype=np.uint8)
    fashion[:, 8:20, 10:18] = 200
    write_idx(tmp_path / "m.idx.gz", mnist)
    write_idx(tmp_path / "f.idx", fashion)
    digits, garments = load_templates(tmp_path / "m.idx.gz", tmp_path / "f.idx")
    assert digits.shape == (20, 14, 14) and garments.shape == (10, 14, 14)
    np.testing.assert_allclose(digits[3, 2, 5], mnist[3, 4:6, 10:12].mean() / 255, rtol=1e-5)
    data, truth = variant_mnist(50, seed=1, mnist_path=tmp_path / "m.idx.gz", fashion_path=tmp_path / "f.idx")
    assert truth.info["digits"].endswith("m.idx.gz")
    assert data.values["colour"].shape == (50, 3, 588)


def test_one_fashion_template_changes_only_the_garment():
    random_garments, truth = variant_mnist(40, seed=3)
    one, truth_one = variant_mnist(40, seed=3, fashion_template=45)
    np.testing.assert_array_equal(truth.latents, truth_one.latents)
    np.testing.assert_array_equal(random_garments.values["colour"], one.values["colour"])
    assert truth.info["fashion_template"] is None and truth_one.info["fashion_template"] == 45
    # every fashion image is template 45 in the entity's own pose, nothing else
    _, garments = load_templates()
    angle, scale = fashion_pose(truth.latents[:, 2], truth.latents[:, 3])
    expected = render_fashion(garments, np.full(40, 45), angle, scale).reshape(40, 1, -1)
    np.testing.assert_array_equal(one.values["fashion"], expected)
    assert not np.array_equal(one.values["fashion"], random_garments.values["fashion"])
    # with pixel noise too, the colour images (noise included) do not depend on the option
    noisy, _ = variant_mnist(40, seed=3, pixel_noise=0.05)
    noisy_one, _ = variant_mnist(40, seed=3, pixel_noise=0.05, fashion_template=45)
    np.testing.assert_array_equal(noisy.values["colour"], noisy_one.values["colour"])


@pytest.mark.parametrize("bad", [-1, 200, 1.0, True, "0"])
def test_bad_fashion_template_is_named(bad):
    with pytest.raises(ValueError, match=r"fashion_template: expected None or an int in \[0, 200\)"):
        variant_mnist(10, fashion_template=bad)


def test_generation_is_fast():
    start = time.perf_counter()
    data, _ = variant_mnist(10_000, seed=0)
    assert time.perf_counter() - start < 10.0
    assert data.num_entities == 10_000


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_entities"):
        variant_mnist(1)
    with pytest.raises(ValueError, match="pixel_noise"):
        variant_mnist(10, pixel_noise=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        render_latent_sweep(1)


def test_pixel_noise_keeps_range():
    data, _ = variant_mnist(20, seed=0, pixel_noise=0.05)
    assert data.values["colour"].min() >= 0 and data.values["colour"].max() <= 1


def test_latent_sweep_figure(tmp_path):
    fig = render_latent_sweep(5, seed=1)
    assert len(fig.axes) == 20
    assert fig.axes[0].get_title() == "Z11=-2.0"
    fig.savefig(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close(fig)
