"""The ``personax independence`` command."""

import json

import numpy as np
import pandas as pd
import pytest

from pyro_personax.cli import main
from pyro_personax.cli.independence import OUTPUT_FILES
from pyro_personax.independence.cache import ResultCache


@pytest.fixture(autouse=True)
def _fresh_memo():
    ResultCache.clear_memo()
    yield
    ResultCache.clear_memo()


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    gender = rng.choice(["f", "m"], n)
    df = pd.DataFrame({
        "ID": np.arange(n),
        "gpt_o": np.clip(np.round(2 + (gender == "f") + rng.normal(0, 0.5, n)), 1, 3),
        "llama_o": rng.integers(1, 4, n).astype(float),
        "Gender": gender,
        "Height": rng.normal(170, 10, n),
    })
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


def _args(csv, out, *extra):
    return ["independence", str(csv), "--traits", "gpt_o", "llama_o", "--id", "ID", "--out", str(out),
            "--tests", "hsic", "chisq", "--no-progress", "--group-traits", *extra]


def test_writes_table_settings_and_figures(csv, tmp_path):
    out = tmp_path / "res"
    assert main(_args(csv, out)) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())
    table = pd.read_csv(out / OUTPUT_FILES["table"])
    assert len(table) == 2 * 2 * 2  # tests x traits x features (ID left out)
    assert set(table["feature"]) == {"Gender", "Height"}
    row = table[(table["test"] == "hsic") & (table["trait"] == "gpt_o") & (table["feature"] == "Gender")]
    assert bool(row["dependent"].iloc[0])
    chisq_height = table[(table["test"] == "chisq") & (table["feature"] == "Height")]
    assert (chisq_height["status"] == "not_applicable").all()
    settings = json.loads((out / OUTPUT_FILES["settings"]).read_text())
    assert settings["kci_strategy"]["max_n"] == 2000
    assert (out / OUTPUT_FILES["heatmap"]).stat().st_size > 1000


def test_refuses_to_overwrite(csv, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(_args(csv, out)) == 0
    before = (out / OUTPUT_FILES["table"]).read_bytes()
    assert main(_args(csv, out, "--alpha", "0.01")) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (out / OUTPUT_FILES["table"]).read_bytes() == before
    assert main(_args(csv, out, "--overwrite", "--bins", "3")) == 0
    table = pd.read_csv(out / OUTPUT_FILES["table"])
    assert (table.loc[table["test"] == "chisq", "status"] == "ok").all()


def test_bad_input_gives_one_line_error(csv, tmp_path, capsys):
    assert main(["independence", str(csv), "--traits", "nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("personax independence: error: traits: columns ['nope'] not in the table")
    assert len(err.splitlines()) == 1
    assert main(["independence", str(tmp_path / "missing.csv"), "--traits", "x", "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_help_lists_tests_and_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["independence", "--help"])
    text = capsys.readouterr().out
    for word in ("--traits", "--features", "--kci-max-n", "--overwrite", "pvalue_heatmap.png", "never p = 0"):
        assert word in text


def test_default_features_leave_out_id_traits_and_llm_scores(tmp_path, capsys):
    from pyro_personax.synthetic import persona

    data, _ = persona(120, seed=0)
    path = tmp_path / "celeb.csv"
    data.released_frame().to_csv(path, index=False)
    out = tmp_path / "res"
    args = ["independence", str(path), "--traits", "final_o", "--tests", "hsic", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "testing 20 feature columns" in printed
    assert "left out as identifier: ID;" in printed
    assert "as per-LLM trait score (final_<trait> is their median): gpt4o_o, " in printed
    assert "and 9 more;" in printed and "as another trait column: final_c, final_e, final_a, final_n" in printed
    table = pd.read_csv(out / OUTPUT_FILES["table"])
    assert len(table) == 20
    assert not {"ID", "final_c", "gpt4o_o"} & set(table["feature"])
    settings = json.loads((out / OUTPUT_FILES["settings"]).read_text())
    assert settings["features"]["selection"] == "default"
    assert settings["features"]["excluded"]["gemini_n"].startswith("per-LLM trait score")
    assert main([*args, "--overwrite", "--features", "Height", "Gender"]) == 0
    assert "left out" not in capsys.readouterr().out
    assert set(pd.read_csv(out / OUTPUT_FILES["table"])["feature"]) == {"Height", "Gender"}


def test_conditional_writes_the_graph_the_separating_sets_and_a_figure(tmp_path, capsys):
    """A trait and a feature that depend only through a confounder are separated by it."""
    rng = np.random.default_rng(0)
    n = 1500
    c = rng.normal(size=n)
    df = pd.DataFrame({"ID": np.arange(n), "final_o": c + rng.normal(size=n), "league": c + rng.normal(size=n),
                       "birth_year": c, "Gender": rng.choice(["f", "m"], n)})
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["independence", str(path), "--traits", "final_o", "--features", "league", "birth_year", "Gender",
            "--tests", "fisherz", "--no-progress", "--out", str(out), "--conditional", "pc",
            "--tier", "birth_year", "--tier", "final_o", "league"]
    assert main(args) == 0
    sepsets = json.loads((out / "conditional_sepsets.json").read_text())
    assert {"a": "final_o", "b": "league", "given": ["birth_year"]} in sepsets
    edges = pd.read_csv(out / "conditional_edges.csv")
    pairs = {frozenset(p) for p in zip(edges["source"], edges["target"])}
    assert pairs == {frozenset(("birth_year", "final_o")), frozenset(("birth_year", "league"))}
    assert (out / "conditional_graph.graphml").stat().st_size > 0 and (out / "conditional_graph.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["independence", str(path), "--traits", "final_o", "--features", "league", "--tests", "fisherz",
                 "--out", str(tmp_path / "other"), "--forbid", "final_o", "league"]) == 2
    assert "--tier/--forbid: background knowledge of --conditional" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
