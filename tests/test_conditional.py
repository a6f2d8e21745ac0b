"""Level I conditional analysis: PC / FCI recover a planted structure and drop a confounded pair."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from pyro_personax import independence as ind


def _confounded(n=3000, seed=0):
    # birth_year -> conscientiousness, birth_year -> league <- height: conscientiousness and
    # league depend pairwise and are independent given birth_year
    rng = np.random.default_rng(seed)
    birth_year = rng.normal(size=n)
    height = rng.normal(size=n)
    return pd.DataFrame({
        "final_c": 0.8 * birth_year + rng.normal(size=n),
        "league": 0.8 * birth_year + 0.8 * height + rng.normal(size=n),
        "birth_year": birth_year,
        "height": height,
    })


TIERS = [["birth_year", "height"], ["final_c", "league"]]


@pytest.mark.parametrize("test", ["fisherz", "rcit"])
def test_pc_recovers_the_planted_graph_and_removes_the_confounded_pair(test):
    df = _confounded()
    pairwise = ind.test_battery(df, ["final_c"], ["league"], tests=("fisherz",), cache_dir=None)
    assert pairwise["p_value"].iloc[0] < 1e-10  # dependent pairwise
    res = ind.conditional_graph(df, ["final_c"], ["league", "birth_year", "height"], test=test, alpha=0.01,
                                tiers=TIERS)
    directed = {(a, b) for a, b, m in res.graph.edges(data="mark") if m == "-->"}
    assert directed == {("birth_year", "final_c"), ("birth_year", "league"), ("height", "league")}
    assert set(res.graph.edges) == directed
    assert not res.adjacent("final_c", "league")
    assert res.sepsets[("final_c", "league")] == ("birth_year",)
    assert res.sepsets[("birth_year", "height")] == ()
    assert len(res.edges) == 3 and res.n == 3000


def test_fci_removes_the_confounded_pair_and_the_graph_writes_as_graphml(tmp_path):
    res = ind.conditional_graph(_confounded(), ["final_c"], ["league", "birth_year", "height"], method="fci",
                                alpha=0.01, tiers=TIERS)
    assert not res.adjacent("final_c", "league")
    assert res.adjacent("birth_year", "final_c") and res.adjacent("height", "league")
    assert res.sepsets == {}
    res.write_graphml(tmp_path / "g.graphml")
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert set(back.edges) == set(res.graph.edges)


def test_forbidden_edges_and_bad_input():
    df = _confounded(n=500)
    res = ind.conditional_graph(df, ["final_c"], ["birth_year"], forbidden=[("final_c", "birth_year")])
    assert list(res.graph.edges(data="mark")) == [("birth_year", "final_c", "-->")]
    with pytest.raises(ValueError, match="method"):
        ind.conditional_graph(df, ["final_c"], ["league"], method="ges")
    with pytest.raises(ValueError, match="test"):
        ind.conditional_graph(df, ["final_c"], ["league"], test="hsic")
    with pytest.raises(ValueError, match="tiers"):
        ind.conditional_graph(df, ["final_c"], ["league"], tiers=[["nope"]])
    with pytest.raises(TypeError, match="numeric"):
        ind.conditional_graph(df.assign(league=df["league"].astype(str)), ["final_c"], ["league"])
    with pytest.raises(ValueError, match=r"features: columns \[.weight.\] not in the table"):
        ind.conditional_graph(df, ["final_c"], ["weight"])
