"""IDX reader on small hand-written files."""

import gzip
import struct

import numpy as np
import pytest

from pyro_personax.synthetic.idx import read_idx, write_idx


def _hand_written(path, compress=False):
    """A 2 x 2 x 3 uint8 image file, written byte by byte."""
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 2, 3)
    data = bytes(range(12))
    payload = header + data
    path.write_bytes(gzip.compress(payload) if compress else payload)


@pytest.mark.parametrize("compress", [False, True])
def test_read_hand_written_ubyte(tmp_path, compress):
    path = tmp_path / "images-idx3-ubyte"
    _hand_written(path, compress)
    arr = read_idx(path)
    assert arr.shape == (2, 2, 3) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr.ravel(), np.arange(12))
    assert arr[1, 0, 2] == 8


def test_read_big_endian_int32_labels(tmp_path):
    path = tmp_path / "labels-idx1"
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">iii", 1, -2, 70000))
    arr = read_idx(path)
    np.testing.assert_array_equal(arr, [1, -2, 70000])
    assert arr.dtype == np.int32 and arr.dtype.byteorder in ("=", "<", "|")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x.idx.gz"
    write_idx(path, arr)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_write_does_not_overwrite(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="overwrite=True"):
        write_idx(path, np.ones(3, np.uint8))
    np.testing.assert_array_equal(read_idx(path), 0)
    write_idx(path, np.ones(3, np.uint8), overwrite=True)
    np.testing.assert_array_equal(read_idx(path), 1)
    with pytest.raises(TypeError, match="dtype"):
        write_idx(tmp_path / "y.idx", np.zeros(2, np.int64))


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "magic"),
        (bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00", "type code 0x07"),
        (bytes([0, 0, 0x08, 2]) + struct.pack(">I", 2), "truncated"),
        (bytes([0, 0, 0x08, 2]) + struct.pack(">II", 2, 2) + b"\x00" * 3, r"needs 4 data bytes; found 3"),
    ],
)
def test_malformed_files(tmp_path, payload, match):
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=match):
        read_idx(path)
