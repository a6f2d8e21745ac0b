"""Every CLI subcommand on small inputs: the files it writes and its exit status on bad input."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pyro_personax.cli import SUBCOMMANDS, main


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "personax" in capsys.readouterr().out
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: personax " + name in capsys.readouterr().out


def test_console_script_and_module_entry_point():
    script = Path(sys.executable).parent / "personax"
    for cmd in ([str(script), "--help"], [sys.executable, "-m", "pyro_personax", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0 and "simulate" in out.stdout, out.stderr


def test_simulate_writes_data_truth_and_config(tmp_path):
    assert main(["simulate", "--kind", "athle", "-n", "60", "--out", str(tmp_path / "s"), "--format", "csv"]) == 0
    s = tmp_path / "s"
    assert (s / "data" / "table.csv").is_file() and (s / "run.toml").is_file()
    adjacency = pd.read_csv(s / "truth" / "adjacency.csv", index_col=0)
    assert adjacency.shape == (10, 10) and adjacency.values.sum() > 0
    assert np.load(s / "truth" / "latents.npy").shape == (60, 10)
    assert json.loads((s / "truth" / "layout.json").read_text())["shared_dim"] == 2


def test_simulate_refuses_to_overwrite(tmp_path, capsys):
    args = ["simulate", "--kind", "variant-mnist", "-n", "20", "--out", str(tmp_path / "v")]
    assert main(args) == 0
    before = np.load(tmp_path / "v" / "data" / "colour.npy")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "personax simulate: error:" in err and "--overwrite" in err and "Traceback" not in err
    np.testing.assert_array_equal(np.load(tmp_path / "v" / "data" / "colour.npy"), before)


def test_bad_input_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["simulate", "-n", "3", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--num-entities" in err[0]
    with pytest.raises(ValueError, match="num-entities"):
        main(["--debug", "simulate", "-n", "3", "--out", str(tmp_path / "x")])


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["simulate", "--kind", "variant-mnist", "-n", "80", "--out", str(root / "sim")]) == 0
    code = main(["fit", str(root / "sim" / "run.toml"), "--out", str(root / "run"), "--num-epochs", "1",
                 "--num-chains", "2", "--num-samples", "10", "--no-progress", "--device", "cpu"])
    assert code == 0
    return root


def test_simulated_variant_mnist_declares_its_likelihoods(fitted_run, tmp_path):
    from pyro_personax.cli.config import load_data, read_run_config

    config = read_run_config(fitted_run / "sim" / "run.toml")
    assert config.data.likelihoods == {"colour": "tinted_rgb", "fashion": "normal"}
    assert load_data(config.data).likelihood == {"colour": "tinted_rgb", "fashion": "normal"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[data.measurements]\ncolour = "c.npy"\n[data.likelihoods]\nfashion = "normal"\n'
                   '[model]\nlatent_dims = { colour = 2 }\n')
    with pytest.raises(ValueError, match=r"\[data.likelihoods\]: modalities \['fashion'\] are not in"):
        read_run_config(bad)


def test_fit_writes_the_run_folder(fitted_run):
    run = fitted_run / "run"
    for name in ("model/config.json", "posterior.nc", "edge_probabilities.csv", "fit_summary.csv",
                 "report/report.html", "report/heatmap.png"):
        assert (run / name).stat().st_size > 0, name
    probs = pd.read_csv(run / "edge_probabilities.csv", index_col=0)
    assert list(probs.columns) == ["Z11", "Z12", "Z21", "Z22"] or probs.shape == (4, 4)
    align = pd.read_csv(run / "chain_alignment.csv")
    assert list(align.columns) == ["chain", "latent", "matched", "abs_spearman"]
    assert align.shape == (2 * 4, 4) and set(align["chain"]) == {0, 1}
    chain0 = align[align["chain"] == 0]
    assert (chain0["latent"] == chain0["matched"]).all() and np.allclose(chain0["abs_spearman"], 1.0)
    for _, rows in align.groupby("chain"):  # every chain's latents are matched one-to-one
        assert sorted(rows["matched"]) == sorted(rows["latent"])


def test_fit_refuses_existing_run_and_bad_config(fitted_run, tmp_path, capsys):
    assert main(["fit", str(fitted_run / "sim" / "run.toml"), "--out", str(fitted_run / "run")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\n[data.measurements]\ncolour = "nope.npy"\n[model]\nlatent_dims = { colour = 2 }\n')
    assert main(["fit", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "nope.npy" in capsys.readouterr().err
    bad.write_text('[model]\nlatent_dims = { a = 1 }\nunknown_key = 3\n[data]\ndataset = "celeb"\npath = "x"\n')
    assert main(["fit", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "unknown_key" in capsys.readouterr().err
    bad.write_text(
        '[model]\nlatent_dims = { a = 1 }\n[data]\ndataset = "celeb"\npath = "x"\n[fit]\ngraph_learning_rate = 0\n'
    )
    assert main(["fit", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "[fit]: graph_learning_rate" in capsys.readouterr().err


def test_report_rerenders_from_posterior(fitted_run, capsys):
    out = fitted_run / "rerendered"
    assert main(["report", str(fitted_run / "run"), "--out", str(out)]) == 0
    assert (out / "report.html").is_file() and (out / "forest.png").stat().st_size > 0
    assert main(["report", str(fitted_run / "does-not-exist")]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_small(tmp_path, capsys):
    out = tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "-n",
        "150",
        "--num-epochs",
        "2",
        "--num-chains",
        "2",
        "--level1-tests",
        "rcit",
        "chisq",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main([*args, "--num-workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "most probable edges" in text and "report:" in text and "MCC" in text
    # 7 of the 12 true persona edges join the face and the text block; the other 5 lie
    # inside one block or leave the shared block
    assert "(true graph: 12 edges, 7 of them cross-modal: the ones the data decide)" in text
    assert "identified (cross-modal) edges: " in text and " of 7 recovered at P > 0.5, SHD " in text
    assert "over the 30 ordered cross-modal pairs" in text
    assert re.search(r"SHD \d+ \(posterior expected SHD \d+\.\d\)", text)
    assert "undecided edges: " in text and " of 5 at P > 0.5" in text
    assert re.search(r"directions of the (\d+) identified edges at P > 0\.5: \d+ compelled by v-structures, \d+ "
                     r"reversible", text)
    # the persona truth has trait -> face edges and none from the face block to the text block
    assert re.search(r"P\(text -> face\) = [01]\.\d\d \(truth: 1\)", text)
    assert re.search(r"P\(face -> text\) = [01]\.\d\d \(truth: 0\)", text)
    # the suite's short graph stage runs the basis search with one start per chain
    assert re.search(r"basis inside the modality blocks chosen after SVI by the LiNGAM score \(gain per chain: "
                     r"[+-]\d\.\d{3}", text)
    # the demo's graph stage searches between graphs (the README's advice for its data)
    assert re.search(r"then moves between graphs on the identified edges \(at most 3 per chain, --graph-moves; the "
                     r"library's default is 0\): taken per chain [0-3], [0-3]\n", text)
    assert pd.read_csv(out / "run" / "report" / "block_graph.csv", index_col=0).shape == (3, 3)
    assert pd.read_csv(out / "run" / "report" / "latent_block_graph.csv", index_col=0).shape == (10, 3)
    for name in (
        "level1/independence.csv",
        "level1/pvalue_heatmap.png",
        "run/posterior.nc",
        "run/report/report.html",
        "data/table.parquet",
        "truth/adjacency.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    # the demo's own folder is reused: a second run replaces its outputs, and a file the
    # user keeps there is untouched; the chains trained in two worker processes give the
    # numbers of the chains trained one after another
    (out / "notes.txt").write_text("mine")
    before = (out / "truth" / "adjacency.csv").stat().st_mtime_ns
    edges = pd.read_csv(out / "run" / "edge_probabilities.csv", index_col=0)
    assert main([*args, "--num-workers", "2"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "truth" / "adjacency.csv").stat().st_mtime_ns >= before
    pd.testing.assert_frame_equal(pd.read_csv(out / "run" / "edge_probabilities.csv", index_col=0), edges)
    assert "2 chains x 2 epochs, 2 at a time in worker processes" in capsys.readouterr().out


def test_the_demo_trains_one_chain_per_usable_core_on_cpu(monkeypatch):
    from pyro_personax.cli.demo import default_num_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert default_num_workers(4, "cpu") == 2
    assert default_num_workers(1, "cpu") == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert default_num_workers(4, "cpu") == 4
    if torch.cuda.is_available():
        assert default_num_workers(4, "cuda") == 1
    else:
        with pytest.raises(ValueError, match="CUDA"):
            default_num_workers(4, "cuda")


def test_demo_refuses_a_negative_number_of_graph_moves_before_writing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--graph-moves", "-1", "--no-progress"]) == 2
    assert "--graph-moves: expected an int >= 0; found -1" in capsys.readouterr().err
    assert not out.exists()


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "truth").mkdir(parents=True)
    (out / "truth" / "latents.npy").write_bytes(b"user data")
    args = [
        "demo",
        "--out",
        str(out),
        "-n",
        "60",
        "--num-epochs",
        "1",
        "--num-chains",
        "1",
        "--level1-tests",
        "chisq",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(args) == 2
    assert "was not written by personax demo" in capsys.readouterr().err
    assert (out / "truth" / "latents.npy").read_bytes() == b"user data"
    assert sorted(p.name for p in out.iterdir()) == ["truth"]


def test_run_configuration_reaches_the_model_and_fit_options(tmp_path):
    from pyro_personax.cli.config import read_run_config

    path = tmp_path / "run.toml"
    path.write_text(
        '[data]\ndataset = "celeb"\npath = "x"\n'
        '[model]\nlatent_dims = { face = 2, text = 1 }\nlatent_transform = "spline"\n'
        'measurement_map = { face = [[[0, 1], ["face_1"]], [[2, 3], ["face_2"]]] }\n'
        "[fit]\nrefine_graph = false\nnum_threads = 2\n"
    )
    config = read_run_config(path)
    assert config.model.options.latent_transform == "spline"
    assert config.model.measurement_map == {"face": [[[0, 1], ["face_1"]], [[2, 3], ["face_2"]]]}
    assert config.fit.refine_graph is False and config.fit.num_threads == 2
    path.write_text('[data]\ndataset = "celeb"\npath = "x"\n[model]\nlatent_dims = { a = 1 }\nlatent_transform = "x"\n')
    with pytest.raises(ValueError, match=r"\[model\]: latent_transform: expected one of"):
        read_run_config(path)
    path.write_text(
        '[data]\ndataset = "celeb"\npath = "x"\n[model]\nlatent_dims = { a = 1 }\n[fit]\nrefine_graph = 1\n'
    )
    with pytest.raises(ValueError, match=r"\[fit\]: refine_graph: expected True, False or a GraphRefinement"):
        read_run_config(path)


_HEAVY = "[m for m in ('pandas', 'torch', 'pyro') if m in sys.modules]"


@pytest.mark.parametrize("command", [*SUBCOMMANDS, pytest.param(None, id="all")])
def test_building_the_parser_imports_no_pandas_or_torch(command):
    """``personax --help`` (None: every subcommand) and ``personax COMMAND --help`` stay light."""
    commands = "" if command is None else repr((command,))
    code = f"import sys, pyro_personax.cli as cli; cli.build_parser({commands}); print({_HEAVY})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_command_help_imports_only_its_module():
    code = (
        "import sys, contextlib, io, pyro_personax.cli as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['-v', 'independence', '--help'])\n"
        f"print({_HEAVY}, 'pyro_personax.cli.simulate' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"
