"""Bad input files and values: each is refused (or warned about) with a message naming the
culprit, and the user's files are never changed."""
import hashlib
import logging

import numpy as np
import pandas as pd
import pytest
from test_datasets import _tiny_celeb_table, _write_tiny

from pyro_personax.data import MultiModalData, PersonaDataset, load_celebpersona
from pyro_personax.data.schema import FINAL_RANGE

CHECKS_LOGGER = "pyro_personax.data.checks"


def _snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _refused(folder, match, error=ValueError, **kwargs):
    """Loading ``folder`` raises ``error`` matching ``match`` and leaves every file as it was."""
    before = _snapshot(folder)
    with pytest.raises(error, match=match) as err:
        load_celebpersona(folder, **kwargs)
    assert _snapshot(folder) == before
    return str(err.value)


# ---------------------------------------------------------------- value ranges
def test_final_trait_out_of_range_names_rows_ids_and_range(tmp_path):
    table = _tiny_celeb_table()
    table["final_o"] = [2.0, 9.0, np.nan, -4.0]
    _write_tiny(tmp_path, table=table)
    msg = _refused(tmp_path, r"table\.parquet: aggregated trait 'final_o' must lie in \[1, 3\]")
    assert "2 row(s)" in msg and "row 1 (ID 102): 9" in msg and "row 3 (ID 104): -4" in msg
    assert "columns={'final_o': 'released_final_o'}" in msg  # the way out is named
    # renamed away, the aggregate is recomputed from the per-LLM scores
    data = load_celebpersona(tmp_path, columns={"final_o": "released_final_o"})
    np.testing.assert_array_equal(data.traits["final_o"].to_numpy(), [2.0, 2.0, np.nan, 2.0])


def test_final_trait_zero_is_refused_and_the_range_edges_kept(tmp_path):
    assert FINAL_RANGE == (1, 3)
    table = _tiny_celeb_table()
    table["final_n"] = [1.0, 3.0, 0.0, 2.5]  # 0 ("insufficient") is not an aggregate
    _write_tiny(tmp_path, "csv", table=table)
    _refused(tmp_path, r"table\.csv: aggregated trait 'final_n'.*row 2 \(ID 103\): 0")
    table["final_n"] = [1.0, 3.0, np.nan, 2.5]
    _write_tiny(tmp_path, "csv", table=table)
    np.testing.assert_array_equal(load_celebpersona(tmp_path).traits["final_n"], [1.0, 3.0, np.nan, 2.5])


def test_final_trait_range_checked_in_from_frame():
    table = _tiny_celeb_table()
    table["final_a"] = [1.0, 3.5, 2.0, 2.0]
    with pytest.raises(ValueError, match=r"mine: aggregated trait 'final_a'.*\[1, 3\].*row 1 \(ID 102\): 3\.5"):
        PersonaDataset.from_frame(table, "celeb", source="mine")


def test_llm_score_off_scale_names_rows_and_ids(tmp_path):
    table = _tiny_celeb_table()
    table.loc[[0, 2], "llama_c"] = [7, -1]
    _write_tiny(tmp_path, table=table)
    msg = _refused(tmp_path, r"trait score 'llama_c' must be on the scale \[0, 1, 2, 3\]")
    assert "row 0 (ID 101): 7" in msg and "row 2 (ID 103): -1" in msg


# ---------------------------------------------------------------- truncated CSV
def _csv_lines(tmp_path):
    _write_tiny(tmp_path, "csv")
    return (tmp_path / "table.csv").read_bytes().split(b"\n")


def test_csv_cut_mid_row_names_file_line_and_field_counts(tmp_path):
    lines = _csv_lines(tmp_path)
    n_fields = lines[0].count(b",") + 1
    assert lines[4].startswith(b"104,2000")
    cut = b"\n".join(lines[:4]) + b"\n" + lines[4][:6]  # the last row cut in its Birthyear: "104,20"
    (tmp_path / "table.csv").write_bytes(cut)
    msg = _refused(tmp_path, rf"table\.csv, line 5: expected {n_fields} fields \(as the header\); found 2")
    assert "cut mid-row" in msg


def test_csv_short_or_long_row_in_the_middle(tmp_path):
    lines = _csv_lines(tmp_path)
    n_fields = lines[0].count(b",") + 1
    short = lines[:]
    short[2] = short[2].rsplit(b",", 2)[0]
    (tmp_path / "table.csv").write_bytes(b"\n".join(short))
    _refused(tmp_path, rf"table\.csv, line 3: expected {n_fields} fields.*found {n_fields - 2}")
    long = lines[:]
    long[1] = long[1] + b",1"  # pandas would make the first column the index
    (tmp_path / "table.csv").write_bytes(b"\n".join(long))
    _refused(tmp_path, rf"table\.csv, line 2: expected {n_fields} fields.*found {n_fields + 1}")


def test_csv_open_quote_and_missing_final_line_break(tmp_path, caplog):
    lines = _csv_lines(tmp_path)
    (tmp_path / "table.csv").write_bytes(b"\n".join(lines[:4]) + b'\n105,"19')
    _refused(tmp_path, r"table\.csv, line 5: not a valid CSV row.*quoted field")
    complete = b"\n".join(lines).rstrip(b"\n")  # every row whole, no final line break
    (tmp_path / "table.csv").write_bytes(complete)
    with caplog.at_level(logging.WARNING, logger="pyro_personax.data.persona_io"):
        assert load_celebpersona(tmp_path).num_entities == 4
    assert "does not end with a line break" in caplog.text and "line 5" in caplog.text


def test_empty_csv(tmp_path):
    _write_tiny(tmp_path, "csv")
    (tmp_path / "table.csv").write_bytes(b"")
    _refused(tmp_path, r"table\.csv: expected a CSV table \(UTF-8 text\); found an empty file")


# ---------------------------------------------------------------- corrupt or mistyped files
def test_truncated_and_corrupt_parquet(tmp_path):
    _write_tiny(tmp_path)
    good = (tmp_path / "table.parquet").read_bytes()
    (tmp_path / "table.parquet").write_bytes(good[: len(good) // 2])
    _refused(tmp_path, r"table\.parquet: the parquet table is truncated or corrupt.*PAR1")
    middle = len(good) // 2
    garbled = good[:8] + bytes(range(256)) * ((middle - 8) // 256) + good[8 + 256 * ((middle - 8) // 256):]
    assert len(garbled) == len(good) and garbled[-4:] == b"PAR1"
    (tmp_path / "table.parquet").write_bytes(garbled)
    _refused(tmp_path, r"table\.parquet: the parquet table is corrupt and cannot be read")


def test_file_of_the_wrong_type(tmp_path):
    _write_tiny(tmp_path, "csv")
    csv_bytes = (tmp_path / "table.csv").read_bytes()
    (tmp_path / "table.csv").unlink()
    (tmp_path / "table.parquet").write_bytes(csv_bytes)  # a CSV named .parquet
    _refused(tmp_path, r"table\.parquet: expected a parquet table.*found text \(it starts with b'ID,Birth")
    (tmp_path / "table.parquet").unlink()
    _tiny_celeb_table().to_parquet(tmp_path / "table.csv")  # a parquet file named .csv
    _refused(tmp_path, r"table\.csv: expected a CSV table \(UTF-8 text\); found a parquet file")


def test_binary_garbage_and_non_utf8_csv(tmp_path):
    _write_tiny(tmp_path, "csv")
    rng = np.random.default_rng(0)
    (tmp_path / "table.csv").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _refused(tmp_path, r"table\.csv: expected a CSV table \(UTF-8 text\); found binary data")
    latin1 = _tiny_celeb_table().assign(Occupation=["Actor", "Écrivain", "Actor", "Musician"])
    (tmp_path / "table.csv").write_bytes(latin1.to_csv(index=False).encode("latin-1"))
    _refused(tmp_path, r"table\.csv: expected a CSV table \(UTF-8 text\); found binary data, not UTF-8")


def test_companion_that_is_not_a_npy_array(tmp_path):
    _write_tiny(tmp_path)
    (tmp_path / "face_emb_1.npy").write_text("0.1,0.2\n0.3,0.4\n")
    _refused(tmp_path, r"face_emb_1\.npy: embedding 'face_emb_1' must be a \.npy array.*found text")
    np.save(tmp_path / "face_emb_1.npy", np.array([{"a": 1}] * 4), allow_pickle=True)
    _refused(tmp_path, r"face_emb_1\.npy: embedding 'face_emb_1' is not a readable.*Python objects")
    np.save(tmp_path / "face_emb_1.npy", np.ones((4, 6)))
    good = (tmp_path / "face_emb_1.npy").read_bytes()
    (tmp_path / "face_emb_1.npy").write_bytes(good[:-40])
    _refused(tmp_path, r"face_emb_1\.npy: embedding 'face_emb_1' is not a readable numeric \.npy array: truncated")


def test_missing_id_and_inf_embedding(tmp_path):
    table = _tiny_celeb_table().astype({"ID": float})
    table.loc[2, "ID"] = np.nan
    _write_tiny(tmp_path, table=table)
    _refused(tmp_path, r"table\.parquet: field 'ID' has 1 missing values")
    face = [np.ones((4, 6)), np.ones((4, 6))]
    face[0][1, 4] = np.inf
    _write_tiny(tmp_path, face=face)
    _refused(tmp_path, r"table\.parquet: embedding 'face_emb_0' contains inf")


# ---------------------------------------------------------------- boolean embeddings
def test_boolean_embedding_companion_and_array_refused(tmp_path):
    rng = np.random.default_rng(0)
    face = [rng.normal(size=(4, 6)), rng.normal(size=(4, 6))]
    _write_tiny(tmp_path, face=face)
    np.save(tmp_path / "text_emb_gemini.npy", rng.random((4, 5)) > 0.5)
    _refused(tmp_path, r"text_emb_gemini\.npy: embedding 'text_emb_gemini' is boolean.*\.astype\(float\)")
    with pytest.raises(ValueError, match=r"embedding 'face_emb_0' is boolean"):
        PersonaDataset.from_frame(_tiny_celeb_table(), "celeb", face=[np.ones((4, 3), dtype=bool)])


def test_boolean_measurements_need_a_bernoulli_likelihood():
    flags = np.random.default_rng(0).random((20, 2, 3)) > 0.5
    with pytest.raises(TypeError, match=r"modality 'flags', measurement 0: boolean values with a normal "
                                        r"likelihood; pass likelihoods=\{'flags': 'bernoulli'\}"):
        MultiModalData({"flags": flags})
    data = MultiModalData({"flags": flags}, likelihoods={"flags": "bernoulli"})
    np.testing.assert_array_equal(data.values["flags"], flags.astype(np.float32))


# ---------------------------------------------------------------- constant features
def test_constant_measurement_feature_is_warned_and_kept(caplog):
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(20, 4)) for _ in range(2)]
    parts[1][:, 2] = 0.5
    parts[1][3, 2] = 99.0  # a different value, but in a masked (missing) measurement
    mask = np.ones((20, 2), dtype=bool)
    mask[3, 1] = False
    with caplog.at_level(logging.WARNING, logger=CHECKS_LOGGER):
        data = MultiModalData({"face": parts}, masks={"face": mask},
                              tabular=pd.DataFrame({"h": rng.normal(size=20), "league": pd.Categorical(["A"] * 20)}))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "modality 'face', measurement 'face_1'" in warnings[0] and "(feature 2)" in warnings[0]
    assert "tabular modality 'bio'" in warnings[1] and "('league')" in warnings[1]
    np.testing.assert_array_equal(data.values["face"][:, 1, 2], parts[1][:, 2])  # nothing changed


def test_constant_field_and_embedding_dimension_warned_once_at_load(tmp_path, caplog):
    rng = np.random.default_rng(1)
    face = [rng.normal(size=(4, 6)), rng.normal(size=(4, 6))]
    face[0][:, 3] = 1.0
    table = _tiny_celeb_table().assign(Height=180.0)
    _write_tiny(tmp_path, table=table, face=face)
    with caplog.at_level(logging.WARNING, logger=CHECKS_LOGGER):
        data = load_celebpersona(tmp_path)
        data.to_multimodal(tabular=["Height", "Gender"])
    text = caplog.text
    assert "table.parquet: fields" in text and "'Height'" in text and "'final_o'" in text
    assert "embedding 'face_emb_0'" in text and "(dimension 3)" in text
    assert "modality" not in text  # the conversion does not report them again
    np.testing.assert_array_equal(data.table["Height"], 180.0)
