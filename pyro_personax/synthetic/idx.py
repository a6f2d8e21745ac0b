"""Reader (and writer) for the IDX format of MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by a C-order array::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions n
    4 * n bytes each dimension as a big-endian uint32
    data        prod(dims) items, big-endian

Files may be gzip-compressed (``train-images-idx3-ubyte.gz``); compression is detected
from the content, not from the file name.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["read_idx", "write_idx"]

_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"read_idx: {path!s} looks gzip-compressed but cannot be decompressed: {err}") from err
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    Parameters
    ----------
    path
        Path to the file, e.g. ``train-images-idx3-ubyte`` or ``...-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Array with the file's shape (e.g. images ``(N, 28, 28)`` uint8, labels ``(N,)``)
        and its element type in native byte order.

    Raises
    ------
    ValueError
        When the header is malformed or the data length does not match the header.

    Examples
    --------
    >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape, images.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {path!s} is not an IDX file (expected magic 0x0000; found {raw[:2]!r})")
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _TYPES)
        raise ValueError(f"read_idx: {path!s} has unknown type code 0x{code:02X}; expected one of {known}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path!s} is truncated inside its header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        raise ValueError(
            f"read_idx: {path!s}: header shape {shape} needs {expected} data bytes; found {found}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    logger.debug("read_idx: %s -> %s %s", path, shape, dtype)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array, *, compress: bool | None = None, overwrite: bool = False) -> None:
    """Write a numpy array as an IDX file.

    Parameters
    ----------
    path
        Destination file.
    array
        Array of any shape with dtype uint8, int8, int16, int32, float32 or float64.
    compress
        Gzip the file; default: when ``path`` ends with ``.gz``.
    overwrite
        Replace an existing file; otherwise an existing ``path`` raises.
    """
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _CODES:
        raise TypeError(f"write_idx: array dtype {array.dtype} has no IDX type; expected one of {sorted(_CODES)}")
    if array.ndim > 255:
        raise ValueError(f"write_idx: array has {array.ndim} dimensions; IDX allows at most 255")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"write_idx: {path!s} exists; pass overwrite=True to replace it")
    code = _CODES[key]
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=_TYPES[code]).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as fh:
        fh.write(payload)
