"""The edge report folder and the ``personax report`` command."""

import json

import numpy as np
import pandas as pd
import pytest

from pyro_personax.cli import main
from pyro_personax.inference import diagnostics as dg
from pyro_personax.inference.exports import read_adjacency_csv, to_adjacency_csv
from pyro_personax.inference.report import REPORT_FILES, cyclic_fraction, edge_report
from pyro_personax.layout import LatentLayout
from pyro_personax.metrics import orientations

C, S, N = 2, 100, 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def layout():
    return LatentLayout(1, {"face": 2, "text": 2})


@pytest.fixture
def truth(layout):
    T = np.zeros((layout.latent_dim,) * 2, dtype=int)
    T[0, 1] = T[1, 2] = T[3, 4] = 1
    return T


@pytest.fixture
def idata(layout, truth):
    rng = np.random.default_rng(0)
    D = layout.latent_dim
    P = np.where(truth == 1, 0.85, 0.08) * layout.allowed_mask()
    E = (rng.random((C, S, D, D)) < P).astype(int)
    return dg.build_inference_data(
        layout, E,
        edge_strengths=np.abs(rng.normal(1.0, 0.2, size=(C, 1, D, D))),
        elbo=[-np.exp(-np.arange(50) / 10) * 100 - 10, -np.exp(-np.arange(40) / 10) * 100 - 12],
        posterior_predictive={"face": rng.normal(size=(C, S, N, 3, 2)),
                              "text": (rng.random((C, S, N, 1, 3)) < 0.3).astype(float)},
        observed={"face": rng.normal(size=(N, 3, 2)), "text": (rng.random((N, 1, 3)) < 0.3).astype(float)},
        log_weights=rng.normal(size=(C, S)),
    )


def _expected_files(with_truth: bool):
    files = set(REPORT_FILES) | {"elbo.png", "ppc_face.png", "ppc_text.png", "ppc_dependence.png"}
    return files | {"calibration.png"} if with_truth else files


def test_report_folder_contains_every_file(idata, truth, tmp_path):
    out = edge_report(idata, tmp_path / "report", truth_adjacency=truth)
    assert {p.name for p in out.iterdir()} == _expected_files(True)
    for png in out.glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, png.name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list(out.glob("*.png")))
    md = (out / "report.md").read_text()
    for png in out.glob("*.png"):
        assert f"]({png.name})" in md
    assert "Pareto k" in md and "ECE" in md


def test_report_tables_match_the_posterior(idata, layout, tmp_path):
    out = edge_report(idata, tmp_path / "r", threshold=0.5)
    assert not (out / "calibration.png").exists()
    P, names = read_adjacency_csv(out / "adjacency.csv")
    assert names == list(layout.names)
    np.testing.assert_allclose(P, dg.edge_draws(idata).mean(axis=(0, 1)))
    dag, _ = read_adjacency_csv(out / "dag_adjacency.csv")
    assert set(zip(*np.nonzero(dag))) == {(0, 1), (1, 2), (3, 4)}
    edges = pd.read_csv(out / "edges.csv")
    assert len(edges) == 20 and edges["p_edge"].is_monotonic_decreasing
    # s1 -> face_1 (shared parent) and face_1 -> face_2 (one block) can be absorbed by a
    # decoder; text_1 -> text_2 too; so all three thresholded edges are flagged
    md = (out / "report.md").read_text()
    assert "Absorbable edges" in md and "3 of 3 in the thresholded graph" in md
    flagged = edges.loc[edges["absorbable"], ["parent", "child"]].itertuples(index=False)
    assert {("s1", "face_1"), ("face_1", "face_2"), ("text_1", "text_2")} <= set(flagged)
    assert not edges.loc[(edges["parent"] == "face_1") & (edges["child"] == "text_1"), "absorbable"].item()


def test_report_has_the_block_level_graph(idata, layout, tmp_path):
    out = edge_report(idata, tmp_path / "r")
    blocks = pd.read_csv(out / "block_graph.csv", index_col=0)
    assert list(blocks.index) == list(blocks.columns) == ["shared", "face", "text"]
    E = dg.edge_draws(idata).reshape(-1, layout.latent_dim, layout.latent_dim)
    face, text = layout.block_slice("face"), layout.block_slice("text")
    expected = (E[:, face, text].reshape(len(E), -1) != 0).any(axis=1).mean()
    assert blocks.loc["face", "text"] == pytest.approx(expected)
    assert blocks.loc["shared", "face"] > 0.8  # the true s1 -> face_1 has P = 0.85 in every draw's cell
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "## Block-level graph" in md and f"| face | {blocks.loc['face', 'shared']:.2f} |" in md
    assert "<h2>Block-level graph</h2>" in page
    links = pd.read_csv(out / "latent_block_graph.csv", index_col=0)
    assert list(links.index) == list(layout.names) and list(links.columns) == list(blocks.columns)
    either = (E[:, 1, text] != 0).any(axis=1) | (E[:, text, 1] != 0).any(axis=1)  # face_1 with the text block
    assert links.loc["face_1", "text"] == pytest.approx(either.mean())
    assert "## Latent-to-block links" in md and "<h2>Latent-to-block links</h2>" in page
    assert f"| face_1 | {links.loc['face_1', 'shared']:.2f} | {links.loc['face_1', 'face']:.2f} |" in md


def test_existing_folder_is_not_overwritten(idata, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    keep = out / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        edge_report(idata, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    edge_report(idata, out, overwrite=True)
    assert keep.read_text() == "mine" and (out / "report.html").exists()


def test_accepts_an_object_with_to_inference_data(idata, tmp_path):
    class Fitted:
        def to_inference_data(self):
            return idata

    assert (edge_report(Fitted(), tmp_path / "r") / "graph.png").exists()
    with pytest.raises(TypeError, match="model_or_idata"):
        edge_report(object(), tmp_path / "r2")


def test_truth_of_wrong_shape_is_rejected(idata, tmp_path):
    with pytest.raises(ValueError, match="truth_adjacency"):
        edge_report(idata, tmp_path / "r", truth_adjacency=np.zeros((3, 3)))
    assert not (tmp_path / "r").exists()


def test_cyclic_fraction():
    E = np.zeros((2, 4, 3, 3), dtype=int)
    E[0, :2, 0, 1] = E[0, :2, 1, 2] = E[0, :2, 2, 0] = 1  # 3-cycle in two draws
    E[1, :, 0, 1] = 1
    np.testing.assert_allclose(cyclic_fraction(E), [0.5, 0.0])


def test_cli_report(idata, layout, truth, tmp_path, capsys):
    run_dir = tmp_path / "run"
    dg.save_inference_data(idata, run_dir / "posterior.nc")
    to_adjacency_csv(truth, layout.names, tmp_path / "truth.csv")
    assert main(["report", str(run_dir), "--truth", str(tmp_path / "truth.csv")]) == 0
    assert {p.name for p in (run_dir / "report").iterdir()} == _expected_files(True)
    assert main(["report", str(run_dir)]) == 0  # the run's own report is re-rendered in place
    assert {p.name for p in (run_dir / "report").iterdir()} == _expected_files(True)  # files of the last render kept
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    assert main(["report", str(run_dir), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "pass --overwrite to write into it" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--overwrite", "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "report.md").exists()
    assert (tmp_path / "elsewhere" / "notes.txt").read_text() == "mine"


def test_cli_report_matches_the_latents_of_a_truth_folder_as_simulate_writes_it(layout, truth, tmp_path):
    rng = np.random.default_rng(1)
    D, n_rows = layout.latent_dim, 60
    true_latents = rng.normal(size=(n_rows, D))
    perm = np.array([0, 2, 1, 4, 3])  # learned latent perm[j] plays true latent j (within blocks)
    learned = np.empty_like(true_latents)
    learned[:, perm] = np.tanh(true_latents)  # a monotone distortion: Spearman is unchanged
    rows = np.arange(0, n_rows, 2)
    P = np.zeros((D, D))
    P[np.ix_(perm, perm)] = np.where(truth == 1, 0.9, 0.05)
    P *= layout.allowed_mask()
    E = (rng.random((C, S, D, D)) < P).astype(int)
    idata = dg.build_inference_data(
        layout, E, edge_probabilities=np.stack([P, P]), latent_means=np.stack([learned[rows]] * C), entity_ids=rows
    )
    run_dir = tmp_path / "run"
    dg.save_inference_data(idata, run_dir / "posterior.nc")
    folder = tmp_path / "truth"
    folder.mkdir()
    true_layout = LatentLayout(1, {"face": 2, "text": 2}, names=["age", "smile", "tone", "trait_a", "trait_b"])
    np.save(folder / "latents.npy", true_latents)
    to_adjacency_csv(truth, true_layout.names, folder / "adjacency.csv")
    (folder / "layout.json").write_text(json.dumps(true_layout.to_dict()))
    assert main(["report", str(run_dir), "--truth", str(folder)]) == 0
    text = (run_dir / "report" / "report.md").read_text()
    assert "latents matched to the truth by |Spearman| on 30 entities, MCC 1.00" in text
    identified = [line for line in text.splitlines() if line.startswith("- identified (cross-modal) edges:")]
    n_true = int((truth.astype(bool) & layout.identified_mask()).sum())
    assert identified and f"{n_true} of {n_true} true edges recovered, 0 false" in identified[0]
    assert (run_dir / "report" / "calibration.png").is_file()


def test_orientations_tell_compelled_from_reversible_edges():
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])  # 0 -> 1 -> 2: its class also holds 0 <- 1 <- 2
    np.testing.assert_array_equal(orientations(chain), [["", "reversible", ""], ["", "", "reversible"], ["", "", ""]])
    collider = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]])  # 0 -> 2 <- 1: every equivalent DAG has it
    assert set(orientations(collider)[collider == 1]) == {"compelled"}


def test_report_says_which_identified_directions_only_the_model_decides(idata, layout, tmp_path):
    out = edge_report(idata, tmp_path / "r")
    edges = pd.read_csv(out / "edges.csv", keep_default_na=False)
    kept = edges.set_index(["parent", "child"])["orientation"]
    # the thresholded graph is s1 -> face_1 -> face_2 and text_1 -> text_2: no v-structure
    assert kept[("s1", "face_1")] == kept[("face_1", "face_2")] == kept[("text_1", "text_2")] == "reversible"
    assert kept[("face_1", "text_1")] == ""
    md = (out / "report.md").read_text()
    line = "Directions of the identified edges in the thresholded graph: 0 compelled by v-structures, 0 reversible."
    assert line in md


def test_report_names_a_lone_cross_modal_pair_as_reversible(tmp_path):
    layout = LatentLayout(0, {"face": 1, "text": 1})
    E = np.zeros((2, 20, 2, 2), dtype=int)
    E[..., 1, 0] = 1  # text_1 -> face_1 in every draw
    md = (edge_report(dg.build_inference_data(layout, E), tmp_path / "r") / "report.md").read_text()
    assert "0 compelled by v-structures, 1 reversible (text_1 -> face_1): only the additive-noise form" in md
