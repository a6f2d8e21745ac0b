"""Tests of the validated multimodal container."""

import numpy as np
import pandas as pd
import pytest
import torch

from pyro_personax import PersonaX
from pyro_personax.data.multimodal import MultiModalData


def _arrays(n=20, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, d)) for _ in range(k)]


def test_shapes_from_list_and_3d_array_agree():
    parts = _arrays()
    a = MultiModalData({"face": parts})
    b = MultiModalData({"face": np.stack(parts, axis=1)})
    assert a.values["face"].shape == (20, 3, 4)
    np.testing.assert_array_equal(a.values["face"], b.values["face"])
    assert a.num_entities == len(a) == 20
    assert a.num_measurements == {"face": 3} and a.measurement_dim == {"face": 4}
    assert a.masks["face"].all() and a.likelihood["face"] == "normal"


def test_mismatched_rows_between_modalities():
    with pytest.raises(ValueError, match="'text': has 19 rows but earlier modalities have 20"):
        MultiModalData({"face": _arrays(20), "text": _arrays(19)})


def test_mismatched_rows_and_dims_within_a_modality():
    parts = _arrays()
    with pytest.raises(ValueError, match=r"different row counts \[20, 20, 19\]"):
        MultiModalData({"face": parts[:2] + [parts[2][:19]]})
    with pytest.raises(ValueError, match=r"share one dimension; found \[4, 4, 3\]"):
        MultiModalData({"face": parts[:2] + [parts[2][:, :3]]})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_without_mask_is_rejected(bad):
    parts = _arrays()
    parts[1][5, 2] = bad
    with pytest.raises(ValueError, match=r"'face', measurements \[1\]: 1 observed rows contain NaN or inf"):
        MultiModalData({"face": parts})


def test_nonfinite_under_a_mask_is_accepted_and_kept():
    parts = _arrays()
    parts[1][5, 2] = np.nan
    mask = np.ones((20, 3), dtype=bool)
    mask[5, 1] = False
    data = MultiModalData({"face": parts}, masks={"face": mask})
    assert np.isnan(data.values["face"][5, 1, 2])  # never imputed in the container
    assert not data.masks["face"][5, 1]


def test_empty_data():
    with pytest.raises(ValueError, match="no modality"):
        MultiModalData({})
    with pytest.raises(ValueError, match="0 entities"):
        MultiModalData({"face": [np.zeros((0, 3))]})
    with pytest.raises(ValueError, match="no measurements"):
        MultiModalData({"face": []})
    with pytest.raises(ValueError, match="0 features"):
        MultiModalData({"face": [np.zeros((5, 0))]})


def test_wrong_types_and_dtypes():
    with pytest.raises(TypeError, match="expected a numeric array; found dtype <U1"):
        MultiModalData({"face": [np.array([["a"], ["b"]])]})
    with pytest.raises(TypeError, match="mapping"):
        MultiModalData([np.zeros((3, 2))])
    with pytest.raises(ValueError, match="expected a list of"):
        MultiModalData({"face": np.zeros((3, 2))})
    with pytest.raises(TypeError, match=r"masks\['face'\]: expected a boolean array; found dtype int64"):
        MultiModalData({"face": _arrays()}, masks={"face": np.ones((20, 3), dtype=np.int64)})
    with pytest.raises(ValueError, match=r"masks\['face'\]: expected shape \(20, 3\)"):
        MultiModalData({"face": _arrays()}, masks={"face": np.ones((20, 2), dtype=bool)})
    with pytest.raises(ValueError, match="masks: unknown modalities"):
        MultiModalData({"face": _arrays()}, masks={"text": np.ones((20, 3), dtype=bool)})


def test_likelihoods():
    binary = [np.random.default_rng(0).integers(0, 2, size=(10, 3)).astype(float)]
    data = MultiModalData({"attr": binary}, likelihoods={"attr": "bernoulli"})
    assert data.likelihood["attr"] == "bernoulli"
    with pytest.raises(ValueError, match="bernoulli likelihood needs 0/1"):
        MultiModalData({"attr": [binary[0] * 2]}, likelihoods={"attr": "bernoulli"})
    for bad in ("", "tabular", 3):
        with pytest.raises(ValueError, match=r"likelihoods\['attr'\]: expected a likelihood name"):
            MultiModalData({"attr": binary}, likelihoods={"attr": bad})
    # another name is the model's to check: an unregistered one is refused when a model is built
    data = MultiModalData({"attr": binary}, likelihoods={"attr": "no_such_likelihood"})
    with pytest.raises(ValueError, match=r"modality 'attr': unknown likelihood 'no_such_likelihood'; registered are"):
        PersonaX(data, latent_dims={"attr": 1})


def test_tabular_columns_and_cell_masks():
    df = pd.DataFrame({
        "height": [1.8, np.nan, 1.7, 1.6],
        "male": [True, False, True, True],
        "league": pd.Categorical(["NBA", "NFL", None, "NBA"]),
    })
    data = MultiModalData({"face": _arrays(4)}, tabular=df)
    cols = data.tabular_columns["bio"]
    assert [(c.name, c.likelihood) for c in cols] == [("height", "normal"), ("male", "bernoulli"),
                                                      ("league", "categorical")]
    assert cols[2].categories == ("NBA", "NFL")
    np.testing.assert_array_equal(data.cell_masks["bio"][:, 0], [True, False, True, True])
    np.testing.assert_array_equal(data.cell_masks["bio"][:, 2], [True, True, False, True])
    assert data.likelihood["bio"] == "tabular"
    with pytest.raises(TypeError, match="column 'name'"):
        MultiModalData({"face": _arrays(2)}, tabular=pd.DataFrame({"name": ["a", "b"]}))
    with pytest.raises(ValueError, match="column 'x': contains inf"):
        MultiModalData({"face": _arrays(2)}, tabular=pd.DataFrame({"x": [1.0, np.inf]}))


def test_split_is_reproducible_by_seed_and_disjoint():
    data = MultiModalData({"face": _arrays(50)}, entity_ids=np.arange(50))
    tr1, va1 = data.split(0.2, seed=3)
    tr2, va2 = data.split(0.2, seed=3)
    _, va3 = data.split(0.2, seed=4)
    np.testing.assert_array_equal(va1.entity_ids, va2.entity_ids)
    assert not np.array_equal(va1.entity_ids, va3.entity_ids)
    assert len(va1) == 10 and len(tr1) == 40
    assert set(tr1.entity_ids).isdisjoint(va1.entity_ids)
    assert set(tr1.entity_ids) | set(va1.entity_ids) == set(range(50))
    with pytest.raises(ValueError, match="validation_fraction must be a number in"):
        data.split(1.0)


def test_subset_by_index_and_boolean_mask():
    data = MultiModalData({"face": _arrays(10)}, entity_ids=np.arange(10) * 10)
    sub = data.subset([2, 5])
    np.testing.assert_array_equal(sub.values["face"], data.values["face"][[2, 5]])
    np.testing.assert_array_equal(sub.entity_ids, [20, 50])
    sub_b = data.subset(np.arange(10) < 3)
    assert len(sub_b) == 3
    with pytest.raises(ValueError, match="selects 0 entities"):
        data.subset(np.zeros(10, dtype=bool))


def test_to_tensors_fills_masked_entries_in_a_copy_only():
    parts = _arrays()
    parts[0][1] = np.nan
    user_copy = [p.copy() for p in parts]
    mask = np.ones((20, 3), dtype=bool)
    mask[1, 0] = False
    data = MultiModalData({"face": parts}, masks={"face": mask})
    tensors = data.to_tensors(dtype=torch.float32)
    t = tensors["face"]
    assert t.values.shape == (20, 3, 4) and t.values.dtype == torch.float32
    assert torch.equal(t.values[1, 0], torch.zeros(4)) and t.mask.dtype == torch.bool
    assert t.cell_mask is None
    assert np.isnan(data.values["face"][1, 0]).all()  # container untouched
    for p, c in zip(parts, user_copy):
        np.testing.assert_array_equal(p, c)  # user's arrays untouched
    t.values[0, 0, 0] = 99.0
    assert data.values["face"][0, 0, 0] != 99.0  # not a view of the container


def test_to_tensors_does_not_copy_fully_observed_values_of_the_right_dtype():
    values = np.random.default_rng(0).normal(size=(20, 3, 4)).astype(np.float32)
    data = MultiModalData({"face": values})
    t = data.to_tensors(dtype=torch.float32)["face"]
    assert t.values.data_ptr() == data.values["face"].__array_interface__["data"][0]  # shared memory
    assert torch.equal(t.values, torch.from_numpy(values))
    t64 = data.to_tensors(dtype=torch.float64)["face"]
    assert t64.values.dtype == torch.float64 and torch.allclose(t64.values, t.values.double())


def test_to_tensors_tabular_cell_mask():
    df = pd.DataFrame({"h": [1.0, np.nan, 2.0]})
    t = MultiModalData({"face": _arrays(3)}, tabular=df).to_tensors()["bio"]
    assert t.values.shape == (3, 1, 1) and t.cell_mask.shape == (3, 1)
    assert t.values[1, 0, 0] == 0.0 and not t.cell_mask[1, 0]
    assert t.values.dtype == torch.get_default_dtype()


def test_observed_mask_combines_measurement_and_cell_masks():
    x = np.ones((3, 2, 4))
    mask = np.array([[True, False], [True, True], [False, True]])
    table = pd.DataFrame({"h": [1.0, np.nan, 2.0], "g": [True, False, True]})
    data = MultiModalData({"face": x}, masks={"face": mask}, tabular=table)
    face = data.observed_mask("face")
    assert face.shape == (3, 2, 4)
    np.testing.assert_array_equal(face, np.broadcast_to(mask[:, :, None], (3, 2, 4)))
    bio = data.observed_mask("bio")
    np.testing.assert_array_equal(bio[:, 0, :], [[True, True], [False, True], [True, True]])
    with pytest.raises(ValueError, match="unknown modality"):
        data.observed_mask("text")


def test_split_and_fit_name_a_bad_seed_or_fraction():
    from pyro_personax import PersonaX

    rng = np.random.default_rng(0)
    data = MultiModalData({"a": rng.normal(size=(20, 1, 2)), "b": rng.normal(size=(20, 1, 2))})
    for bad in ("0", -1, True, 1.5):
        with pytest.raises(ValueError, match=r"seed: expected an int >= 0; found"):
            data.split(0.1, seed=bad)
    with pytest.raises(ValueError, match=r"validation_fraction must be a number in \(0, 1\); found '0.1'"):
        data.split("0.1")
    px = PersonaX(data, latent_dims={"a": 1, "b": 1}, mechanism="linear")
    with pytest.raises(ValueError, match=r"seed: expected an int >= 0; found '0'"):
        px.fit(data, num_chains=1, seed="0", num_epochs=1, progress=False)
    assert px.fit_result is None  # refused before anything ran


def test_duplicate_entity_ids_and_a_fit_on_too_few_entities_are_refused():
    from pyro_personax import PersonaX

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"entity_ids: must be unique; found duplicates \['x'\]"):
        MultiModalData({"a": rng.normal(size=(3, 1, 2))}, entity_ids=["x", "x", "y"])
    data = MultiModalData({"a": rng.normal(size=(3, 1, 2)), "b": rng.normal(size=(3, 1, 2))})
    px = PersonaX(data, latent_dims={"a": 1, "b": 1}, mechanism="linear")
    with pytest.raises(ValueError, match="fit needs at least 10 entities; found 3"):
        px.fit(data, num_chains=1, num_epochs=1, progress=False, validation_fraction=None)
