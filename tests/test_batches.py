"""Training tensors without copies of the data: unfilled tensors, row subsets and per-batch filling."""

import numpy as np
import pandas as pd
import pytest
import torch

from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.inference import RowSubset, index_batch, num_rows
from pyro_personax.inference.checkpoint import fingerprint


def _masked_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 3, 4)).astype(np.float32)
    mask = rng.random((n, 3)) > 0.3
    mask[:, 0] |= ~mask.any(axis=1)
    values[~mask] = np.nan  # what a user may hold where nothing was measured
    table = pd.DataFrame({"h": rng.normal(size=n), "y": rng.integers(0, 2, n).astype(float)})
    table.iloc[[2, 5], 0] = np.nan
    return MultiModalData({"face": values}, masks={"face": mask}, tabular=table)


def _equal(a, b) -> bool:
    return all(
        torch.equal(a[m].values, b[m].values)
        and torch.equal(a[m].mask, b[m].mask)
        and (a[m].cell_mask is None if b[m].cell_mask is None else torch.equal(a[m].cell_mask, b[m].cell_mask))
        for m in b
    )


def test_unfilled_tensors_share_the_containers_memory_and_batches_are_filled():
    data = _masked_data()
    shared = data.to_tensors(dtype=torch.float32, fill=False)
    assert shared["face"].values.data_ptr() == data.values["face"].__array_interface__["data"][0]
    assert torch.isnan(shared["face"].values).any()  # left as it is: no copy was made
    idx = torch.arange(data.num_entities)
    batch = index_batch(shared, idx)
    assert _equal(batch, index_batch(data.to_tensors(dtype=torch.float32), idx))
    assert torch.isfinite(batch["face"].values).all() and torch.isfinite(batch["bio"].values).all()
    assert np.isnan(data.values["face"]).any()  # the container is untouched


def test_a_row_subset_reads_the_same_rows_as_a_copied_subset():
    data = _masked_data()
    train_rows, val_rows = data.split_rows(0.25, seed=3)
    train, validation = data.split(0.25, seed=3)
    np.testing.assert_array_equal(train_rows, np.sort(train_rows))
    assert len(train_rows) == len(train) and len(val_rows) == len(validation) == 10
    assert set(train_rows).isdisjoint(val_rows) and len(set(train_rows) | set(val_rows)) == len(data)
    tensors = data.to_tensors(fill=False)
    view = RowSubset(tensors, train_rows)
    assert num_rows(view) == len(train_rows) and num_rows(tensors) == len(data)
    assert view["face"].values.data_ptr() == tensors["face"].values.data_ptr()  # no copy of the data
    idx = torch.tensor([0, 3, 7, len(train_rows) - 1])
    assert _equal(index_batch(view, idx), index_batch(train.to_tensors(), idx))


def test_the_fingerprint_of_a_row_subset_is_that_of_the_copied_rows():
    """A checkpoint written with copied subsets resumes with row subsets, and the other way round."""
    data = _masked_data()
    train_rows, val_rows = data.split_rows(0.25, seed=1)
    train, validation = data.split(0.25, seed=1)
    tensors = data.to_tensors(fill=False)
    module = torch.nn.Linear(2, 2)
    views = fingerprint(RowSubset(tensors, train_rows), RowSubset(tensors, val_rows), module, module)
    copies = fingerprint(train.to_tensors(), validation.to_tensors(), module, module)
    assert views == copies
    other = fingerprint(RowSubset(tensors, val_rows), RowSubset(tensors, train_rows), module, module)
    assert other["training data"] != copies["training data"]


def test_bad_rows_are_refused():
    with pytest.raises(ValueError, match=r"rows: expected a 1-d array of row indices; found shape \(2, 2\)"):
        RowSubset(_masked_data().to_tensors(), np.zeros((2, 2), dtype=int))
    uneven = {"a": _masked_data(10).to_tensors()["face"], "b": _masked_data(12).to_tensors()["face"]}
    with pytest.raises(ValueError, match=r"same number of rows; found \[10, 12\]"):
        num_rows(uneven)
