"""``benchmarks/graph_switch.py``: block flows polished under a fixed DAG, scored on held-out rows."""

import numpy as np
import pytest
import torch
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("graph_switch")


def test_graphs_are_read_as_dags_and_bad_ones_are_named(bench):
    A = bench.parse_graph("01 02 23")
    assert A.sum() == 3 and A[0, 1] == A[0, 2] == A[2, 3] == 1
    assert bench.edges_of(A) == "01 02 23"
    with pytest.raises(ValueError, match="not acyclic"):
        bench.parse_graph("01 12 20")
    with pytest.raises(ValueError, match="edge '04'"):
        bench.parse_graph("01 04")
    with pytest.raises(ValueError, match="--train 9000"):
        bench.rows(0, 30.0, 9000)


def test_the_truths_graph_unmixes_the_pinned_latents(bench, tmp_path):
    """Under the truth's DAG, a short polish takes the mixed pinned latents back toward the truth."""
    x, truth, log_jac = bench.rows(0, 30.0, 6000)
    start = bench.spearman_of_matches(x.numpy()[6000:], truth[6000:], [0, 1, 2, 3])
    rows_to = bench.rows_path(tmp_path, 0, "mixed", "01 02 23")
    held, pen, corr = bench.fit_and_score(x, truth, log_jac, 6000, bench.parse_graph("01 02 23"), rounds=1,
                                          steps=20, seed=0, rows_to=rows_to)
    assert np.isfinite(held) and pen < held
    assert rows_to.name == "seed0_mixed_01-02-23.npy" and bench.rows_path(None, 0, "mixed", "01") is None
    rows = np.load(rows_to)  # the held-out rows' log densities, with the mixing's Jacobian
    assert rows.shape == (3000,) and abs(rows.mean() - held) < 1e-4
    saved = np.load(bench.basis_path(rows_to))  # every row's fitted basis, standardised by the training rows
    basis, logdet = saved["basis"], saved["logdet"]
    assert basis.shape == (9000, 4) and np.allclose(basis[:6000].mean(0), 0, atol=1e-5)
    assert logdet.shape == (3000,) and np.all(np.isfinite(logdet)) and np.all(logdet <= rows.max() + 50)
    assert np.allclose(bench.spearman_of_matches(basis[6000:], truth[6000:], [0, 1, 2, 3]), corr, atol=1e-6)
    assert (corr[0] + corr[2]) / 2 > (start[0] + start[2]) / 2 + 0.1


def test_the_moves_run_on_a_saved_fit(bench, tmp_path, capsys):
    """``--latents``: the library's moves from the most probable DAG and from the truth's graph, on the training
    rows of a saved fit (here the true latents with the colour block turned)."""
    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    truth = sample_variant_mnist_latents(400, seed=3)
    t = (truth - truth.mean(0)) / truth.std(0)
    a = np.radians(30)
    learned = t.copy()
    learned[:, :2] = t[:, :2] @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T
    np.savez(tmp_path / "seed3.npz", latents=learned, true_latents=truth, train=np.arange(300),
             test=np.arange(300, 400), edge_probs=np.zeros((4, 4)), blocks=np.array(["colour"] * 2 + ["fashion"] * 2))
    bench.main(["--latents", str(tmp_path), "--seeds", "3", "--moves", "1", "--steps", "5"])
    out = capsys.readouterr().out
    assert "seed 3: learned blocks ['colour', 'colour', 'fashion', 'fashion'], matched [0, 1, 2, 3]" in out
    assert "from the most probable DAG" in out and "from the truth's graph (3 edges)" in out
    assert out.count("MCC_PINNED") == 3


def test_the_turned_truth_is_a_saved_fit_of_one_turn_per_block(bench):
    f = bench.turned_truth(0, 30.0)
    t = (f["true_latents"] - f["true_latents"].mean(0)) / f["true_latents"].std(0)
    assert f["latents"].shape == (9000, 4) and len(f["train"]) == 9000
    np.testing.assert_allclose((f["latents"][:, :2] ** 2).sum(1), (t[:, :2] ** 2).sum(1))
    assert abs(np.corrcoef(f["latents"][:, 0], t[:, 0])[0, 1] - np.cos(np.radians(30))) < 0.05


def test_fixed_graphs_run_on_a_saved_fit_from_either_start(bench, tmp_path, capsys):
    """``--fixed-on``: each DAG fitted and scored on a saved fit's training rows; ``--start truth`` starts the flows
    at the least-squares map onto the truth, so the pinned latents start matched."""
    from pyro_personax.synthetic.variant_mnist import sample_variant_mnist_latents

    truth = sample_variant_mnist_latents(600, seed=3)
    t = (truth - truth.mean(0)) / truth.std(0)
    learned = t[:, [1, 0, 3, 2]] + 0.3 * np.tanh(t[:, [0, 1, 2, 3]])  # the fit's order and a bend inside blocks
    np.savez(tmp_path / "seed3.npz", latents=learned, true_latents=truth, train=np.arange(500),
             test=np.arange(500, 600), edge_probs=np.zeros((4, 4)), blocks=np.array(["colour"] * 2 + ["fashion"] * 2))
    for start in ("fit", "truth"):
        bench.main(["--fixed-on", str(tmp_path), "--seeds", "3", "--train", "400", "--rounds", "1", "--steps", "5",
                    "--start", start, "--graphs", "10 13 32", "--rows-to", str(tmp_path)])
    out = capsys.readouterr().out
    assert "matched [1, 0, 3, 2]" in out and "flows start at truth" in out
    runs = [ln for ln in out.splitlines() if ln.startswith("seed 3, DAG 10 13 32")]
    assert len(runs) == 2
    pinned = [float(ln.split("MCC_PINNED ")[1].split()[0]) for ln in runs]
    assert pinned[1] > 0.95
    for start, ln in zip(("fit", "truth"), runs):  # the saved held-out rows average to the printed score
        rows = np.load(tmp_path / f"seed3_{start}_10-13-32.npy")
        assert rows.shape == (100,)
        assert abs(rows.mean() - float(ln.split("held-out ")[1].split(",")[0])) < 1e-4
    with pytest.raises(ValueError, match="--train 500"):
        bench.main(["--fixed-on", str(tmp_path), "--seeds", "3", "--train", "500", "--graphs", "10 13 32"])


def test_options_of_one_mode_given_to_another_are_errors(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--start", "truth", "--graphs", "01 02 23"])
    assert "--start truth: only with --fixed-on" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--turned", "30", "--rows-to", "/tmp"])
    assert "--rows-to: not with --latents or --turned" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--turned", "0", "--homoscedastic"])
    assert "--homoscedastic: not with --latents or --turned" in capsys.readouterr().err


def test_homoscedastic_mechanisms_keep_a_log_scale_of_zero(bench, monkeypatch):
    """``homoscedastic=True``: the library's additive mechanisms (no log-scale head), so every node's noise is
    additive; otherwise the fit learns a log scale."""
    made = []
    new_model = bench.new_model
    monkeypatch.setattr(bench, "new_model", lambda *a, **k: made.append(new_model(*a, **k)) or made[-1])
    x, truth, log_jac = bench.rows(0, 30.0, 2000)
    for homoscedastic in (True, False):
        held = bench.fit_and_score(x, truth, log_jac, 2000, bench.parse_graph("01 02 23"), rounds=1, steps=10,
                                   seed=0, homoscedastic=homoscedastic)[0]
        assert np.isfinite(held)
    assert made[0].mechanisms.kind == "mlp_additive" and not hasattr(made[0].mechanisms, "w3")
    assert torch.count_nonzero(made[1].mechanisms.w3) > 0
