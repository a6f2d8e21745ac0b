"""Loaders of the released layout, validation errors, and conversion to the model."""
import numpy as np
import pandas as pd
import pytest

from pyro_personax.data import (
    MultiModalData,
    load_athlepersona,
    load_celebpersona,
    load_persona,
    write_persona,
)
from pyro_personax.data.schema import FACE_ATTRIBUTES, required_fields
from pyro_personax.synthetic.persona import persona


def _tiny_celeb_table() -> pd.DataFrame:
    """Four people, hand-chosen values (one all-zero LLM, one all-zero person)."""
    df = pd.DataFrame({
        "ID": [101, 102, 103, 104],
        "Birthyear": [1970, 1985, np.nan, 2000],
        "Birthmonth": [1, 12, 2, 7],
        "Birthday": [1, 31, 29, 4],
        "Latitude": [51.5, 40.7, -33.9, 35.7],
        "Longitude": [-0.1, -74.0, 151.2, 139.7],
        "Weight": [70.0, 80.5, np.nan, 60.0],
        "Height": [175.0, 182.0, 168.5, 160.0],
        "Occupation": ["Actor", "Writer", "Actor", "Musician"],
        "Gender": ["Male", "Male", "Female", "Female"],
    })
    for i, a in enumerate(FACE_ATTRIBUTES):
        df[a] = [1, -1, 1 if i % 2 else -1, -1]
    scores = {
        "gpt4o": [[1, 2, 3, 2, 1], [3, 3, 3, 3, 3], [0, 0, 0, 0, 0], [2, 0, 1, 1, 1]],
        "gemini": [[2, 2, 3, 1, 1], [1, 0, 3, 3, 2], [0, 0, 0, 0, 0], [3, 0, 1, 2, 1]],
        "llama": [[3, 0, 3, 2, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [2, 0, 2, 2, 1]],
    }
    for m, rows in scores.items():
        for j, t in enumerate("ocean"):
            df[f"{m}_{t}"] = [r[j] for r in rows]
    return df


def _write_tiny(tmp_path, fmt="parquet", table=None, face=None):
    table = _tiny_celeb_table() if table is None else table
    rng = np.random.default_rng(0)
    face = [rng.normal(size=(4, 6)) for _ in range(2)] if face is None else face
    face[1][2] = np.nan  # person 103 has no second image
    for k, a in enumerate(face):
        np.save(tmp_path / f"face_emb_{k}.npy", a)
    for m in ("gpt4o", "gemini", "llama"):
        np.save(tmp_path / f"text_emb_{m}.npy", rng.normal(size=(4, 5)).astype(np.float32))
    if fmt == "parquet":
        table.to_parquet(tmp_path / "table.parquet", index=False)
    else:
        table.to_csv(tmp_path / "table.csv", index=False)
    return table, face


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_load_tiny_table_values_untouched(tmp_path, fmt):
    table, face = _write_tiny(tmp_path, fmt)
    data = load_celebpersona(tmp_path)
    assert data.kind == "celeb" and data.num_entities == 4
    np.testing.assert_array_equal(data.ids, [101, 102, 103, 104])
    for col in ("Birthyear", "Weight", "Height", "Latitude"):
        np.testing.assert_array_equal(data.table[col].to_numpy(), table[col].to_numpy(dtype=float))
    assert data.table["Occupation"].dtype == "category"
    assert list(data.table["Gender"].cat.categories) == ["Female", "Male"]
    assert data.table["Big_Nose"].tolist() == [v == 1 for v in table["Big_Nose"]]
    np.testing.assert_array_equal(data.trait_scores["llama_o"], table["llama_o"].astype(float))
    np.testing.assert_array_equal(data.traits["final_o"].to_numpy(), [2.0, 2.0, np.nan, 2.0])
    np.testing.assert_array_equal(data.traits["final_c"].to_numpy(), [2.0, 3.0, np.nan, np.nan])
    np.testing.assert_array_equal(data.face[0], face[0])
    np.testing.assert_array_equal(data.face_mask, [[1, 1], [1, 1], [1, 0], [1, 1]])
    # the LLM that said 0 on every trait has no text measurement
    np.testing.assert_array_equal(data.text_mask["llama"], [True, False, False, True])
    np.testing.assert_array_equal(data.text_mask["gpt4o"], [True, True, False, True])


def test_date_features(tmp_path):
    _write_tiny(tmp_path)
    data = load_celebpersona(tmp_path / "table.parquet")
    sin, cos = data.table["birth_doy_sin"].to_numpy(), data.table["birth_doy_cos"].to_numpy()
    assert sin[0] == pytest.approx(0.0) and cos[0] == pytest.approx(1.0)  # 1 January
    angle = 2 * np.pi * (31 + 29 - 1) / 366  # 29 February counts in a leap year
    assert sin[2] == pytest.approx(np.sin(angle)) and cos[2] == pytest.approx(np.cos(angle))
    np.testing.assert_allclose(sin**2 + cos**2, 1.0)


def test_invalid_date_raises(tmp_path):
    table = _tiny_celeb_table()
    table.loc[1, "Birthday"] = 32
    _write_tiny(tmp_path, table=table)
    with pytest.raises(ValueError, match=r"table\.parquet.*Birthmonth.*ID \[102\]"):
        load_celebpersona(tmp_path)


def test_renamed_columns_with_map(tmp_path):
    table = _tiny_celeb_table().rename(columns={"Birthyear": "birth_year", "gpt4o_o": "chatgpt_open",
                                                "Gender": "sex"})
    _write_tiny(tmp_path, table=table)
    (tmp_path / "face_emb_0.npy").rename(tmp_path / "imagebind_a.npy")
    with pytest.raises(ValueError) as err:
        load_celebpersona(tmp_path)
    msg = str(err.value)
    assert "table.parquet" in msg and "'Birthyear'" in msg and "birth_year" in msg and "'Gender'" in msg
    data = load_celebpersona(tmp_path, columns={"birth_year": "Birthyear", "chatgpt_open": "gpt4o_o",
                                                "sex": "Gender", "imagebind_a": "face_emb_0"})
    assert len(data.face) == 2
    np.testing.assert_array_equal(data.table["Birthyear"].to_numpy(), table["birth_year"].to_numpy())
    with pytest.raises(ValueError, match="nope"):
        load_celebpersona(tmp_path, columns={"nope": "Birthyear"})


def test_wrong_row_count_in_embedding_file(tmp_path):
    _write_tiny(tmp_path)
    np.save(tmp_path / "text_emb_gemini.npy", np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"text_emb_gemini\.npy.*'text_emb_gemini'.*\(4, d\).*\(3, 5\)"):
        load_celebpersona(tmp_path)


def test_non_numeric_embedding(tmp_path):
    _write_tiny(tmp_path)
    np.save(tmp_path / "face_emb_1.npy", np.array([["a", "b"]] * 4))
    with pytest.raises(ValueError, match=r"face_emb_1\.npy.*'face_emb_1'.*numeric"):
        load_celebpersona(tmp_path)


def test_non_numeric_list_column(tmp_path):
    data, _ = persona(30, seed=0, kind="athle")
    write_persona(data, tmp_path, embeddings="columns")
    df = pd.read_parquet(tmp_path / "table.parquet")
    df["text_emb_llama"] = [["x"] * 3] * len(df)
    df.to_parquet(tmp_path / "table.parquet", index=False)
    with pytest.raises(ValueError, match=r"table\.parquet.*'text_emb_llama'.*numeric"):
        load_athlepersona(tmp_path)


def test_partial_nan_embedding_row_raises(tmp_path):
    face = [np.ones((4, 6)), np.ones((4, 6))]
    face[0][1, 2] = np.nan
    _write_tiny(tmp_path, face=face)
    with pytest.raises(ValueError, match=r"face_emb_0.*some NaN"):
        load_celebpersona(tmp_path)


def test_duplicate_ids(tmp_path):
    table = _tiny_celeb_table()
    table.loc[3, "ID"] = 101
    _write_tiny(tmp_path, table=table)
    with pytest.raises(ValueError, match=r"table\.parquet.*'ID'.*unique.*101"):
        load_celebpersona(tmp_path)


def test_missing_required_column(tmp_path):
    _write_tiny(tmp_path, "csv", table=_tiny_celeb_table().drop(columns=["Pointy_Nose"]))
    with pytest.raises(ValueError, match=r"table\.csv.*'Pointy_Nose'"):
        load_celebpersona(tmp_path)


def test_scores_off_scale_and_bad_attribute(tmp_path):
    table = _tiny_celeb_table()
    table.loc[0, "gemini_e"] = 5
    _write_tiny(tmp_path, table=table)
    with pytest.raises(ValueError, match=r"'gemini_e'.*\[5\]"):
        load_celebpersona(tmp_path)
    table = _tiny_celeb_table()
    table["Big_Lips"] = [1, 0, -1, 1]
    _write_tiny(tmp_path, table=table)
    with pytest.raises(ValueError, match=r"'Big_Lips'.*\+1/-1"):
        load_celebpersona(tmp_path)


def test_non_numeric_bio_field(tmp_path):
    table = _tiny_celeb_table()
    table["Height"] = ["175", "tall", "168", "160"]
    _write_tiny(tmp_path, "csv", table=table)
    with pytest.raises(ValueError, match=r"table\.csv.*'Height'.*numeric.*tall"):
        load_celebpersona(tmp_path)


@pytest.mark.parametrize("kind", ["celeb", "athle"])
@pytest.mark.parametrize("fmt,emb", [("parquet", "npy"), ("parquet", "columns"), ("csv", "npy")])
def test_write_load_round_trip(tmp_path, kind, fmt, emb):
    data, _ = persona(60, seed=3, kind=kind)
    write_persona(data, tmp_path, fmt, embeddings=emb)
    back = load_persona(tmp_path, kind)
    pd.testing.assert_frame_equal(back.table, data.table, check_dtype=False)
    pd.testing.assert_frame_equal(back.trait_scores, data.trait_scores)
    pd.testing.assert_frame_equal(back.traits, data.traits)
    for a, b in zip(back.face, data.face):
        np.testing.assert_array_equal(a, b)
    for m in data.text:
        np.testing.assert_array_equal(back.text[m], data.text[m])
        np.testing.assert_array_equal(back.text_mask[m], data.text_mask[m])
    np.testing.assert_array_equal(back.face_mask, data.face_mask)


def test_write_refuses_to_overwrite(tmp_path):
    data, _ = persona(20, seed=0, kind="athle")
    write_persona(data, tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_persona(data, tmp_path)
    write_persona(data, tmp_path, overwrite=True)
    with pytest.raises(ValueError, match="format"):
        write_persona(data, tmp_path / "x", format="xlsx")


def test_to_multimodal_and_structured_frame():
    data, _ = persona(120, seed=1, kind="celeb")
    mm = data.to_multimodal(face_measurements=[0, 1], text_llms=["gpt4o", "llama"],
                            tabular=["Gender", "Occupation", "Height", "High_Cheekbones"])
    assert isinstance(mm, MultiModalData)
    assert mm.modalities == ("face", "text", "bio")
    assert mm.num_measurements == {"face": 2, "text": 2, "bio": 1}
    assert mm.measurement_names["text"] == ("gpt4o", "llama")
    np.testing.assert_array_equal(mm.masks["text"][:, 1], data.text_mask["llama"])
    np.testing.assert_array_equal(mm.masks["face"], data.face_mask)
    liks = [c.likelihood for c in mm.tabular_columns["bio"]]
    assert liks == ["categorical", "categorical", "normal", "bernoulli"]
    assert mm.tabular_columns["bio"][0].categories == ("Female", "Male")
    np.testing.assert_array_equal(mm.entity_ids, data.ids)
    frame = data.structured_frame()
    assert frame.index.name == "ID" and len(frame) == 120
    assert list(frame.columns[:5]) == data.trait_columns
    assert set(data.feature_columns) <= set(frame.columns)
    with pytest.raises(ValueError, match="text_llms"):
        data.to_multimodal(text_llms=["mistral"])
    with pytest.raises(ValueError, match="face_measurements"):
        data.to_multimodal(face_measurements=[5])
    with pytest.raises(ValueError, match="Hieght"):
        data.to_multimodal(tabular=["Hieght"])


def test_required_fields_lists_schema():
    celeb = required_fields("celeb")
    assert "Occupation" in celeb and "High_Cheekbones" in celeb and "llama_n" in celeb
    athle = required_fields("athle")
    assert "League" in athle and "Gender" not in athle and len(athle) == 9 + 15
    with pytest.raises(ValueError, match="kind"):
        required_fields("movie")


def test_released_aggregates_are_kept_as_given(tmp_path):
    table = _tiny_celeb_table()
    table["final_o"] = [1.0, 1.5, np.nan, 3.0]  # differs from the recomputed [2, 2, NaN, 2]
    _write_tiny(tmp_path, table=table)
    data = load_celebpersona(tmp_path)
    np.testing.assert_array_equal(data.traits["final_o"].to_numpy(), [1.0, 1.5, np.nan, 3.0])
    np.testing.assert_array_equal(data.traits["final_e"].to_numpy(), [3.0, 3.0, np.nan, 1.0])


def test_csv_table_with_string_embedding_column_raises(tmp_path):
    table = _tiny_celeb_table()
    table["face_emb_0"] = ["[0.1, 0.2]"] * 4
    _write_tiny(tmp_path, "csv", table=table)
    (tmp_path / "face_emb_0.npy").unlink()
    with pytest.raises(ValueError, match=r"table\.csv.*'face_emb_0'.*numeric lists.*\.npy companions"):
        load_celebpersona(tmp_path)
