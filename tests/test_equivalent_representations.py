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


def test_latents_read_from_the_images_are_predicted_for_rows_the_regression_did_not_see(monkeypatch):
    bench = load_benchmark("equivalent_representations")
    import recovery_variant_mnist  # on the path once the benchmark is loaded

    seen = []
    fit = recovery_variant_mnist.supervised_latents

    def recording(data, latents, fit_rows, seed):
        seen.append(np.asarray(fit_rows))
        return fit(data, latents, fit_rows, seed)

    monkeypatch.setattr(recovery_variant_mnist, "supervised_latents", recording)
    predicted, truth = bench.read_from_images(1000, seed=0)
    np.testing.assert_array_equal(seen[0], np.arange(1000, 2000))  # trained on the other half only
    np.testing.assert_array_equal(truth, sample_variant_mnist_latents(2000, seed=0)[:1000])
    assert predicted.shape == truth.shape == (1000, 4)
    kept = [np.corrcoef(predicted[:, j], truth[:, j])[0, 1] ** 2 for j in range(4)]
    assert min(kept[:2]) > 0.8 and min(kept[2:]) > 0.9, kept  # the colour block from 1,000 rows reads less


def test_degraded_images_latents_lose_precision_in_one_column_at_a_time():
    bench = load_benchmark("equivalent_representations")
    truth = sample_variant_mnist_latents(20000, seed=0)
    reading = truth + 0.1 * truth.std(0) * np.random.default_rng(1).normal(size=truth.shape)  # R^2 about 0.99
    reading[:, 3] = truth[:, 3] + truth[:, 3].std() * np.random.default_rng(2).normal(size=len(truth))  # 0.5
    out = bench.degraded(reading, truth, 0.9, seed=0)
    assert list(out) == ["images Z11 R2 0.9", "images Z12 R2 0.9", "images Z21 R2 0.9"]  # Z22 is already below
    for j, v in enumerate(out.values()):
        kept = [np.corrcoef(v[:, k], truth[:, k])[0, 1] ** 2 for k in range(4)]
        assert abs(kept[j] - 0.9) < 0.01
        np.testing.assert_array_equal(np.delete(v, j, axis=1), np.delete(reading, j, axis=1))


def test_only_images_versions_still_read_the_latents_from_the_images(capsys):
    bench = load_benchmark("equivalent_representations")
    bench.main(["--entities", "300", "--seeds", "0", "--steps", "2", "--only", "images Z", "--supervised",
                "--images-r2", "0.5"])
    out = capsys.readouterr().out
    assert "images Z21 R2 0.5" in out
    assert "   truth " not in out and "images truth" not in out  # computed for the R^2 line, not scored
