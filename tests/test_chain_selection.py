"""The rules of ``benchmarks/chain_selection.py``: which restart each one picks."""

import numpy as np
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
