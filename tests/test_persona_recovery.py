"""``benchmarks/persona_recovery.py``: the options that set the graph stage."""

import pytest
from conftest import load_benchmark


@pytest.mark.parametrize("option", [["--basis-polish", "0"], ["--graph-moves", "0", "3"]])
def test_graph_stage_options_without_the_graph_stage_are_errors(option, capsys):
    bench = load_benchmark("persona_recovery")
    with pytest.raises(SystemExit):
        bench.main(["--no-graph-stage", *option])
    assert "--basis-polish, --graph-moves: not with --no-graph-stage" in capsys.readouterr().err
