"""Recovery on variant MNIST (2,000 entities, short training) against the PCA baseline.

Both methods are scored on the same 90/10 split: R^2 by kernel ridge fitted on the
training rows and scored on the held-out rows, MCC (Spearman) on the held-out rows.
The model uses the benchmark's sizes (``LATENT_DIMS``, ``NUISANCE_DIMS``) with a learning
rate of 3e-3 for the networks and for q(G), and the mechanisms trained by the ELBO as well
as on random parent sets (``--mechanisms-in-elbo``); the thresholds below were measured
with these settings (``docs/experiments.md`` and ``benchmarks/RESULTS.md`` have the
numbers). PCA gets as many components as the model has latents (6).
"""


import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark

from pyro_personax.synthetic.variant_mnist import variant_mnist

NUM_ENTITIES = 2000
EPOCHS = 40

# Margins over the baseline on this very data set (seed 0): PCA reaches held-out R^2
# 0.873 and MCC 0.515; PersonaX 0.937 and 0.750 (R^2 of metrics.r2's default; 0.874 and
# 0.906 with kernel="rbf"). MCC is where component-wise recovery shows; PCA already
# carries most of the latent information (R^2).
MCC_MARGIN = 0.15
R2_TOLERANCE = 0.02
# The paper-level goal, not reached yet: information clearly beyond PCA's.
R2_MARGIN = 0.03


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("recovery_variant_mnist")


@pytest.fixture(scope="module")
def problem(bench):
    data, truth = variant_mnist(NUM_ENTITIES, seed=0)
    train, test = bench.split_indices(NUM_ENTITIES, 0.1, seed=0)
    return data, truth, train, test


@pytest.fixture(scope="module")
def args(bench):
    """The benchmark's options at this size, with the library's graph and posterior defaults."""
    return bench.parse_args([
        "--num-entities", str(NUM_ENTITIES), "--seeds", "0", "--epochs", str(EPOCHS),
        "--learning-rate", "3e-3", "--graph-learning-rate", "3e-3", "--posterior-covariance", "diagonal",
        "--init-edge-logit", "0", "--sparsity", "bic", "--device", "cpu", "--mechanisms-in-elbo",
    ])


@pytest.fixture(scope="module")
def pca(bench, problem, args):
    """The PCA baseline's score dict on the same data and split."""
    return bench.run_pca(*problem, seed=0, n_components=sum(bench.latent_dims(args).values()))


@pytest.fixture(scope="module")
def scores(bench, problem, pca, args):
    """``(personax, pca)`` score dicts of one short fit (seed 0), by the benchmark's own runner."""
    pytest.importorskip("pyro_personax.facade")
    return bench.run_personax(*problem, seed=0, args=args)[0], pca


def test_pca_baseline_recovers_information_but_not_components(pca):
    assert pca["R2"] > 0.8
    assert pca["MCC"] < 0.65
    assert np.isnan(pca["SHD"])


def test_generating_factors_set_the_ceiling(bench, problem):
    _, truth, train, test = problem
    ceiling = bench.run_factors(truth, train, test, seed=0)
    assert ceiling["MCC"] == pytest.approx(1.0)
    assert 0.95 < ceiling["R2"] < 1.0
    assert 0.95 < ceiling["R2_BLOCK"] < 1.0


def test_block_scores_read_each_latent_from_its_own_block(bench, problem):
    data, truth, train, test = problem
    z = truth.latents
    right = bench.block_scores(z, ["colour", "colour", "fashion", "fashion"], truth, train, test)
    assert right["R2_BLOCK"] > 0.99 and set(right) == {"R2_BLOCK", *(f"R2B_{n}" for n in truth.names)}
    # the fashion latents labelled as colour and the other way round: each block then holds
    # only what the causal links carry across blocks
    wrong = bench.block_scores(z[:, [2, 3, 0, 1]], ["colour", "colour", "fashion", "fashion"], truth, train, test)
    assert wrong["R2_BLOCK"] < 0.5 and wrong["R2B_Z22"] < 0.2
    # PCA per modality, with the model's block sizes, reads more of the rotation than PCA of everything
    pca = bench.run_pca(data, truth, train, test, seed=0, n_components=6, block_dims={"colour": 2, "fashion": 4})
    assert pca["R2B_Z21"] > pca["R2_Z21"] + 0.1
    assert np.isnan(bench.run_pca(data, truth, train, test, seed=0, n_components=6).get("R2_BLOCK", np.nan))


def test_sparsest_equivalent_row_misses_the_paper_by_construction(bench, problem):
    # exactly as likely as the truth under the model, yet below the paper's MCC and SHD
    _, truth, train, test = problem
    row = bench.run_equivalent(truth, train, test, seed=0)
    assert row["method"] == bench.EQUIVALENT_ROW
    assert row["R2"] > 0.99 and row["R2_BLOCK"] > 0.99
    assert row["MCC"] < 0.85
    assert (row["SHD"], row["SHD_CPDAG"]) == (2, 2)  # Z11 -> Z12 and Z21 -> Z22 missing
    assert row["AUROC"] == pytest.approx(2 / 3)
    assert min(row["MCC_Z11"], row["MCC_Z21"], row["NOISE_Z12"], row["NOISE_Z22"]) == pytest.approx(1.0)
    # what the data decide is intact: the pinned latents, the one cross-modal edge, no spurious one
    assert row["MCC_PINNED"] == pytest.approx(1.0)
    assert (row["P_Z11_Z21"], row["P_SPURIOUS_X"], row["P_SPURIOUS_LINKS"], row["AUROC_ID"]) == (1.0, 0.0, 0.0, 1.0)


def test_identified_scores_match_within_blocks(bench, problem):
    _, truth, train, test = problem
    z = truth.latents[test]
    # four learned latents, blocks colour, fashion, colour, fashion: Z21 sits in column 1
    learned = z[:, [0, 2, 1, 3]]
    P = np.zeros((4, 4))
    P[0, 1], P[2, 3], P[1, 2], P[1, 0] = 0.8, 0.4, 0.3, 0.1  # Z11 -> Z21; spurious Z12 -> Z22, Z21 -> Z12, Z21 -> Z11
    out = bench.identified_scores(learned, z, truth, P, ["colour", "fashion", "colour", "fashion"])
    assert out["MCC_PINNED"] == pytest.approx(1.0)
    assert (out["P_Z11_Z21"], out["P_Z21_Z11"]) == (0.8, 0.1)
    assert out["P_LINK"] == pytest.approx(0.9)
    assert out["P_SPURIOUS_X"] == pytest.approx((0.4 + 0.3 + 0.1) / 7)  # 8 cross-modal cells, one of them true
    assert out["P_SPURIOUS_LINKS"] == pytest.approx((0.4 + 0.3) / 6)  # the pair reversed left out too
    assert out["AUROC_ID"] == 1.0
    assert np.isnan(bench.identified_scores(learned, z, truth, P, None)["P_Z11_Z21"]) and np.isnan(out["P_Z11_F"])
    links = pd.DataFrame({"colour": [0.1, 0.2, 0.3, 0.4], "fashion": [0.95, 0.5, 0.6, 0.7]})
    res = bench.identified_scores(learned, z, truth, P, ["colour", "fashion", "colour", "fashion"], links)
    assert (res["P_Z11_F"], res["P_Z12_F"]) == (0.95, 0.6)  # the rows of Z11's and Z12's matches
    # a 0/1 graph gives its own links: the sparsest equivalent has Z11 -> Z21 alone
    G = np.zeros((4, 4))
    G[0, 2] = 1
    scored = bench.score(truth.latents, truth, train, test, edge_probs=G)
    assert (scored["P_Z11_F"], scored["P_Z12_F"]) == (1.0, 0.0)


@pytest.mark.slow
def test_personax_recovers_components_clearly_above_pca(scores):
    ours, pca = scores
    assert ours["MCC"] > pca["MCC"] + MCC_MARGIN
    assert ours["R2"] > pca["R2"] - R2_TOLERANCE
    assert ours["MCC"] > 0.7
    # the colour block (three measurements) is recovered, and the fashion rotation is
    # kept beside the garment drawn
    assert min(ours["R2_Z11"], ours["R2_Z12"]) > 0.88
    assert ours["R2_Z21"] > 0.8


@pytest.mark.slow
@pytest.mark.xfail(
    reason=(
        "the thresholded graph misses true edges: at N=2,000, seed 0, 40 epochs, SHD 3 "
        "(held-out R^2 0.937 vs PCA 0.873, ceiling 0.996; the fashion rotation Z21 at "
        "R^2 0.914)"
    ),
    strict=False,
)
def test_personax_carries_more_latent_information_than_pca(scores):
    ours, pca = scores
    assert ours["R2"] > pca["R2"] + R2_MARGIN
    assert ours["R2_Z21"] > 0.9
    assert ours["SHD"] <= 1


def test_score_separates_reversals_within_the_equivalence_class(bench, problem):
    _, truth, train, test = problem
    rooted_at_z22 = np.zeros((4, 4))  # Z22 -> Z21 -> Z11 -> Z12: the true class, 2 reversals
    rooted_at_z22[3, 2] = rooted_at_z22[2, 0] = rooted_at_z22[0, 1] = 1
    res = bench.score(truth.latents, truth, train, test, edge_probs=rooted_at_z22)
    assert res["MCC"] == pytest.approx(1.0)
    assert (res["SHD"], res["SHD_CPDAG"]) == (2, 0)
    res = bench.score(truth.latents, truth, train, test, edge_probs=truth.adjacency.T)  # a v-structure at Z11
    assert (res["SHD"], res["SHD_CPDAG"]) == (3, 2)


def test_fashion_template_and_colour_likelihood_reach_the_data_and_the_header(bench, monkeypatch, capsys):
    calls = []

    def recording(*a, **kw):
        calls.append(kw)
        return variant_mnist(*a, **kw)

    monkeypatch.setattr(bench, "variant_mnist", recording)
    argv = ["--num-entities", "60", "--seeds", "0", "--fashion-template", "40", "--pca-only"]
    bench.main(argv)
    assert calls == [{"seed": 0, "fashion_template": 40, "colour_likelihood": "tinted_rgb"}]
    assert "fashion garments: template 40 only, colour likelihood tinted_rgb" in capsys.readouterr().out
    bench.main(argv[:-3] + ["--pca-only", "--colour-likelihood", "normal"])
    assert calls[-1]["fashion_template"] is None and calls[-1]["colour_likelihood"] == "normal"
    assert "fashion garments: random, colour likelihood normal" in capsys.readouterr().out


def test_supervised_bound_reads_the_latents_from_the_images(bench, problem, pca):
    """The reference trained with the truth holds more of every latent than PCA does."""
    row = bench.run_supervised(*problem, seed=0)
    assert row["method"] == "supervised from the images (bound)"
    assert row["R2"] > max(0.9, pca["R2"] + 0.05)
    assert min(row[f"R2_{n}"] for n in problem[1].names) > 0.85


def test_supervised_latents_only_centre_a_feature_constant_on_the_fit_rows(bench, problem):
    """A pixel blank on every fit row but inked elsewhere must not be divided by a vanishing scale."""
    from types import SimpleNamespace

    data, truth, train, test = problem
    fit_rows = train[:400]
    colour = np.array(data.values["colour"], dtype=float)
    colour[:, 0, 0] = 1.0
    colour[fit_rows, 0, 0] = 0.0
    edited = SimpleNamespace(values={**data.values, "colour": colour}, num_entities=data.num_entities)
    predicted = bench.supervised_latents(edited, truth.latents, fit_rows, seed=0)
    assert np.isfinite(predicted).all()
    assert predicted[test].std(0).max() < 2.0, predicted[test].std(0)  # a division by 1e-6 fails this


def test_network_widths_and_lr_decay_reach_the_model_and_the_fit_only_when_given(bench):
    model, fit = bench.given_options(bench.parse_args(["--encoder-hidden-dim", "128", "--lr-decay", "0.999"]))
    assert model == {"encoder_hidden_dim": 128} and fit == {"lr_decay": 0.999}
    assert bench.given_options(bench.parse_args(["--mechanism", "mlp_additive"])) == ({"mechanism": "mlp_additive"}, {})
    assert bench.given_options(bench.parse_args([])) == ({}, {})


def test_several_basis_polish_values_share_one_training_a_row_each(bench, problem, monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "run_personax_once",
                        lambda *a: calls.append(a[-2:]) or {"method": a[-1], "seed": 0})
    rows = bench.run_personax(*problem, seed=0, args=bench.parse_args(["--basis-polish", "0", "5"]))
    assert [r["method"] for r in rows] == ["PersonaX (ours), basis_polish=0", "PersonaX (ours), basis_polish=5"]
    (first, _), (second, _) = calls
    assert [c["refine_graph"].basis_polish for c in (first, second)] == [0, 5]
    assert (first["resume"], second["resume"]) == (False, True)
    assert first["checkpoint_dir"] == second["checkpoint_dir"]
    calls.clear()
    assert [r["method"] for r in bench.run_personax(*problem, seed=0, args=bench.parse_args([]))] == [bench.MODEL_ROW]
    assert calls == [({}, bench.MODEL_ROW)]


def test_reading_scores_read_the_pinned_latents_of_the_truth(bench, problem):
    from pyro_personax.reading import ReadingGraph, cross_modal_reading, reading_basis

    data, truth, train, test = problem
    layout = bench.link_layout(bench.BLOCKS)
    reading = cross_modal_reading(truth.latents, layout, seed=0)
    basis = reading_basis(truth.latents, layout, reading, seed=0)
    assert basis.names == ["colour_reading_0", "colour_2_rest", "fashion_reading_0", "fashion_2_rest"]
    probs = truth.adjacency.astype(float)
    probs[1, 2] = 0.4  # one spurious cross-modal cell: Z12 -> Z21
    frame = pd.DataFrame(probs, index=basis.names, columns=basis.names)
    first = truth.adjacency.astype(float)
    first[1, 2] = 0.8  # the first of two fits holds the spurious cell at 0.8, the pool at 0.4
    graph = ReadingGraph(frame, pd.DataFrame(layout.edge_classes()), basis, reading,
                         fit_probabilities=np.stack([first, 2 * probs - first]))
    out = bench.reading_scores(graph, bench.BLOCKS, truth, test)
    assert (out["K_COLOUR"], out["K_FASHION"]) == (1, 1)  # Z12 and Z22 hand nothing to the other block
    assert min(out["READ_Z11"], out["READ_Z21"]) > 0.95
    assert out["MCC_READ"] == pytest.approx((out["READ_Z11"] + out["READ_Z21"]) / 2)
    assert out["P_Z11_Z21_READ"] == 1.0 and out["P_LINK_READ"] == 1.0  # the readings matched to Z11 and Z21
    assert out["P_SPURIOUS_X_READ"] == pytest.approx(0.4 / 7)  # 8 cross-modal cells, the true edge left out
    assert out["P_SPURIOUS_X_READ1"] == pytest.approx(0.8 / 7) and out["P_Z11_Z21_READ1"] == 1.0
