"""The rules of ``benchmarks/chain_selection.py``: which restart each one picks."""

import numpy as np
import pytest
from conftest import load_benchmark


def test_each_rule_reads_its_own_statistic():
    bench = load_benchmark("chain_selection")
    identified = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=bool)  # two blocks: {0, 1} and {2}
    P = np.zeros((3, 3, 3))
    P[0, 0, 2] = 0.9                    # chain 0: one cross-modal edge
    P[1, 0, 2] = P[1, 1, 2] = 0.9       # chain 1: two
    P[2, 0, 2], P[2, 0, 1] = 0.9, 1.0   # chain 2: one cross-modal edge and one inside the block
    fit = {"P_own": P, "identified": identified, "validation_elbo": np.array([1.0, 3.0, 2.0]),
           "basis_score": np.array([np.nan, -2.0, -1.0])}
    assert bench.picks(fit) == {"best validation ELBO": 1, "highest basis score": 2, "lowest E_x": 0,
                                "highest E_x + E_in": 2}


def test_stacking_weights_follow_the_rows_each_restart_predicts():
    bench = load_benchmark("chain_selection")
    rng = np.random.default_rng(0)
    base = rng.normal(size=400)
    better = np.stack([base + 3.0, base, base - 1.0])  # restart 0 predicts every row best
    assert np.allclose(bench.stacking_weights(better), [1.0, 0.0, 0.0], atol=1e-4)
    halves = np.stack([np.r_[base[:200] + 5.0, base[200:]], np.r_[base[:200], base[200:] + 5.0]])
    w = bench.stacking_weights(halves)  # each restart predicts half the rows far better: an even split
    assert abs(w[0] - 0.5) < 0.01 and abs(w.sum() - 1.0) < 1e-9
    same = np.stack([base, base])
    assert np.allclose(bench.stacking_weights(same), [0.5, 0.5])  # no evidence either way: the start stays
    # the EM fixed point is the maximum: no other point of a fine grid does better
    mix = np.stack([base + rng.normal(scale=2.0, size=400), base + 0.3])
    w = bench.stacking_weights(mix)
    objective = lambda v: np.log(np.exp(mix).T @ np.array([v, 1.0 - v])).sum()  # noqa: E731
    assert objective(w[0]) >= max(objective(v) for v in np.linspace(0.0, 1.0, 1001)) - 1e-6
    with pytest.raises(ValueError, match="log_density"):
        bench.stacking_weights(np.array([[0.0, np.nan]]))
