"""Read and write PersonaX data sets in the documented on-disk layout.

The layout (see :mod:`pyro_personax.data.schema`)::

    <path>/table.parquet | table.csv        one row per person
    <path>/face_emb_<k>.npy                 optional (N, d_face) companions
    <path>/text_emb_<llm>.npy               optional (N, d_text) companions

Embeddings may instead be list columns of a parquet table. No network is used: the
released files are read from a local copy.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pyro_personax.data.datasets import PersonaDataset
from pyro_personax.data.schema import (
    DEFAULT_LLMS,
    FACE_PREFIX,
    TABLE_STEM,
    TEXT_PREFIX,
    TRAITS,
    check_columns_map,
    check_kind,
    missing_fields_message,
)
from pyro_personax.names import check_name

__all__ = ["load_persona", "load_celebpersona", "load_athlepersona", "write_persona", "read_table"]

logger = logging.getLogger(__name__)

_FORMATS = ("parquet", "csv")
_FACE = re.compile(rf"^{FACE_PREFIX}(\d+)$")


def _table_file(path: Path) -> Path:
    """The table file of ``path`` (a directory in the layout, or the table itself)."""
    if path.is_file():
        if path.suffix.lower() not in (".parquet", ".csv"):
            raise ValueError(f"path: expected a .parquet or .csv table; found {path}")
        return path
    if not path.is_dir():
        raise ValueError(f"path: no such file or directory: {path}")
    tables = [p for p in (path / f"{TABLE_STEM}.parquet", path / f"{TABLE_STEM}.csv") if p.is_file()]
    if not tables:
        tables = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".csv"))
    if len(tables) != 1:
        raise ValueError(
            f"path: expected one table ({TABLE_STEM}.parquet or {TABLE_STEM}.csv) in {path}; "
            f"found {[p.name for p in tables]}"
        )
    return tables[0]


_MAGIC = {
    b"PAR1": "a parquet file",
    b"\x93NUMPY": "a .npy array",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"\x1f\x8b": "a gzip archive",
}
_SNIFF = 65536  # bytes looked at to tell text from binary


def _looks_like(head: bytes) -> str:
    """What the first bytes of a file look like, for an error message."""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    if not head:
        return "an empty file"
    if b"\x00" in head:
        return f"binary data (it starts with {head[:8]!r})"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of the sample
            return f"binary data, not UTF-8 text (byte {err.start} is {head[err.start:err.start + 1]!r})"
    return f"text (it starts with {head[:24]!r})"


def _read_parquet(file: Path) -> pd.DataFrame:
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(_SNIFF)
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    if not head.startswith(b"PAR1"):
        raise ValueError(f"{file}: expected a parquet table (a file that starts with b'PAR1'); "
                         f"found {_looks_like(head)}")
    if size < 12 or tail != b"PAR1":
        raise ValueError(f"{file}: the parquet table is truncated or corrupt (it does not end with the "
                         f"b'PAR1' footer; {size} bytes)")
    try:
        return pd.read_parquet(file)
    except MemoryError:
        raise
    except Exception as err:  # pyarrow's many error types: the file is named, the cause kept
        raise ValueError(f"{file}: the parquet table is corrupt and cannot be read "
                         f"({type(err).__name__}: {err})") from err


def _check_csv(file: Path) -> None:
    """Refuse a CSV that is not UTF-8 text or has a row with another field count than its header.

    pandas fills a short row with ``NaN`` (and shifts a long first row into the index)
    without a word, so a file cut mid-row would load with a silently wrong last row.
    """
    with open(file, "rb") as fh:
        head = fh.read(_SNIFF)
    what = _looks_like(head)
    if not what.startswith("text"):
        raise ValueError(f"{file}: expected a CSV table (UTF-8 text); found {what}")
    try:
        with open(file, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{file}: the CSV table is empty (no header line)")
            for row in reader:
                if row and len(row) != len(header):
                    cut = " (the file may be cut mid-row)" if len(row) < len(header) else ""
                    raise ValueError(
                        f"{file}, line {reader.line_num}: expected {len(header)} fields (as the header); "
                        f"found {len(row)}{cut}"
                    )
            last = reader.line_num
    except UnicodeDecodeError as err:
        raise ValueError(f"{file}, after line {reader.line_num}: expected a CSV table in UTF-8 text; found "
                         f"bytes that are not UTF-8 ({err.reason}); save the file as UTF-8") from err
    except csv.Error as err:
        raise ValueError(f"{file}, line {reader.line_num}: not a valid CSV row ({err}); a quoted field "
                         "may be left open, or the file cut short") from err
    with open(file, "rb") as fh:
        fh.seek(-1, 2)
        if fh.read(1) not in (b"\n", b"\r"):
            logger.warning("%s: the file does not end with a line break; check that its last row (line %d) "
                           "is complete", file, last)


def _read_csv(file: Path) -> pd.DataFrame:
    _check_csv(file)
    try:
        return pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: cannot be read as a CSV table ({type(err).__name__}: {err})") from err


def read_table(file: Path, parquet_suffixes: tuple[str, ...] = (".parquet",)) -> pd.DataFrame:
    """A table from a parquet file (suffix in ``parquet_suffixes``) or a CSV (any other), with a clear
    ``ValueError`` naming ``file`` for a cut, corrupt or wrong-type file."""
    if file.suffix.lower() in parquet_suffixes:
        return _read_parquet(file)
    return _read_csv(file)


def _rename(df: pd.DataFrame, companions: dict[str, Path], columns: dict[str, str],
            source: str) -> tuple[pd.DataFrame, dict[str, Path]]:
    unknown = [k for k in columns if k not in df.columns and k not in companions]
    if unknown:
        raise ValueError(
            f"columns: names {unknown} are neither columns of {source} nor companion files; "
            + missing_fields_message(unknown, list(df.columns) + list(companions), source)
        )
    df = df.rename(columns=columns)
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise ValueError(f"{source}: after the columns= mapping, fields {dup} appear more than once")
    companions = {columns.get(stem, stem): p for stem, p in companions.items()}
    return df, companions


def _list_column(s: pd.Series, name: str, source: str) -> np.ndarray:
    """Stack a list/array column into ``(N, d)`` with ``NaN`` rows for null cells."""
    rows, dims = [], set()
    for v in s:
        if v is None or (np.isscalar(v) and pd.isna(v)):
            rows.append(None)
            continue
        a = np.asarray(v)
        if a.ndim != 1 or a.dtype.kind not in "fiu":
            raise ValueError(
                f"{source}: embedding field {name!r} must hold numeric lists; found a value of dtype "
                f"{a.dtype} and shape {a.shape} (a CSV table keeps embeddings in .npy companions)"
            )
        rows.append(a)
        dims.add(a.shape[0])
    if len(dims) > 1:
        raise ValueError(f"{source}: embedding field {name!r} has rows of different lengths {sorted(dims)}")
    if not dims:
        raise ValueError(f"{source}: embedding field {name!r} has no non-null row")
    d = dims.pop()
    dtype = np.result_type(*[r.dtype for r in rows if r is not None], np.float32)
    out = np.full((len(rows), d), np.nan, dtype=dtype)
    for i, r in enumerate(rows):
        if r is not None:
            out[i] = r
    return out


def _load_npy(file: Path, name: str) -> np.ndarray:
    with open(file, "rb") as fh:
        head = fh.read(_SNIFF)
    if not head.startswith(b"\x93NUMPY"):
        raise ValueError(f"{file}: embedding {name!r} must be a .npy array (saved with numpy.save); "
                         f"found {_looks_like(head)}")
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{file}: embedding {name!r} is not a readable numeric .npy array: truncated, "
                         f"corrupt or holding Python objects ({err})") from err


def _embeddings(df: pd.DataFrame, companions: dict[str, Path], llms: Sequence[str], source: str):
    """Face list and text dict from list columns and companions; the table without them."""
    fields = {}
    for c in df.columns:
        if _FACE.match(str(c)) or str(c) in {f"{TEXT_PREFIX}{m}" for m in llms}:
            fields[str(c)] = (source, _list_column(df[c], str(c), source))
    for stem, file in companions.items():
        if not (_FACE.match(stem) or stem in {f"{TEXT_PREFIX}{m}" for m in llms}):
            logger.info("ignoring companion file %s (not a face_emb_<k> or text_emb_<llm> field)", file)
            continue
        if stem in fields:
            raise ValueError(f"{source}: embedding {stem!r} is both a table column and the file {file}")
        fields[stem] = (str(file), _load_npy(file, stem))
    n = len(df)
    for name, (where, arr) in fields.items():
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"{where}: embedding {name!r} must have shape ({n}, d) to match the {n} rows "
                             f"of {source}; found {arr.shape}")
        if arr.dtype.kind == "b":
            raise ValueError(f"{where}: embedding {name!r} is boolean; embeddings are modelled as Normal "
                             "data, so they must be float (convert 0/1 values with .astype(float))")
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{where}: embedding {name!r} must be numeric; found dtype {arr.dtype}")
    face_keys = sorted((k for k in fields if _FACE.match(k)), key=lambda k: int(_FACE.match(k).group(1)))
    face = [fields[k][1] for k in face_keys]
    text = {m: fields[f"{TEXT_PREFIX}{m}"][1] for m in llms if f"{TEXT_PREFIX}{m}" in fields}
    return df.drop(columns=[c for c in df.columns if str(c) in fields]), face, text


def load_persona(
    path: str | Path,
    kind: str,
    columns: Mapping[str, str] | None = None,
    *,
    llms: Sequence[str] = DEFAULT_LLMS,
    traits: Sequence[str] = TRAITS,
) -> PersonaDataset:
    """Load a local copy of a PersonaX data set and validate it against the schema.

    Parameters
    ----------
    path
        A directory in the documented layout, or the table file (``.parquet`` /
        ``.csv``); ``.npy`` companions are read from the same directory.
    kind
        ``"celeb"`` (CelebPersona schema) or ``"athle"`` (AthlePersona schema).
    columns
        Mapping from the file's names (columns or companion-file stems) to our field
        names, e.g. ``{"birth_year": "Birthyear", "imagebind": "face_emb_0"}``.
    llms, traits
        Keys of the per-LLM score columns ``<llm>_<trait>``.

    Returns
    -------
    PersonaDataset
        ``N`` rows; values exactly as stored (no filling, no clipping). Columns that are
        not part of the schema are not kept.

    Raises
    ------
    ValueError
        Missing required fields (listing the closest names present), duplicated IDs,
        non-numeric or wrongly shaped embeddings, scores off the 3-point scale; each
        message names the file and the field.
    """
    check_kind(kind)
    file = _table_file(Path(path))
    source = str(file)
    companions = {p.stem: p for p in sorted(file.parent.glob("*.npy"))}
    df, companions = _rename(read_table(file), companions, check_columns_map(columns), source)
    df, face, text = _embeddings(df, companions, tuple(llms), source)
    data = PersonaDataset.from_frame(df, kind, face=face, text=text, llms=llms, traits=traits,
                                     source=source)
    logger.info("loaded %r from %s", data, source)
    return data


def load_celebpersona(path: str | Path, columns: Mapping[str, str] | None = None,
                      **kwargs) -> PersonaDataset:
    """Load CelebPersona from a local copy; see :func:`load_persona` (``kind="celeb"``)."""
    return load_persona(path, "celeb", columns, **kwargs)


def load_athlepersona(path: str | Path, columns: Mapping[str, str] | None = None,
                      **kwargs) -> PersonaDataset:
    """Load AthlePersona from a local copy; see :func:`load_persona` (``kind="athle"``)."""
    return load_persona(path, "athle", columns, **kwargs)


def write_persona(
    dataset: PersonaDataset,
    path: str | Path,
    format: str = "parquet",
    *,
    embeddings: str = "npy",
    overwrite: bool = False,
) -> Path:
    """Write a data set in the documented layout (what :func:`load_persona` reads).

    Parameters
    ----------
    dataset
        The data set.
    path
        Target directory (created when absent).
    format
        ``"parquet"`` or ``"csv"`` table.
    embeddings
        ``"npy"`` (companion files) or ``"columns"`` (list columns; parquet only).
    overwrite
        Replace existing files of the layout; otherwise an existing one raises.

    Returns
    -------
    pathlib.Path
        The directory.
    """
    if format not in _FORMATS:
        raise ValueError(f"format: expected one of {_FORMATS}; found {format!r}")
    if embeddings not in ("npy", "columns") or (embeddings == "columns" and format == "csv"):
        raise ValueError(f"embeddings: expected 'npy', or 'columns' with format='parquet'; "
                         f"found {embeddings!r} with format={format!r}")
    out = Path(path)
    for llm in dataset.text:
        check_name("dataset.text (LLM key)", llm)
    arrays = {f"{FACE_PREFIX}{k}": a for k, a in enumerate(dataset.face)}
    arrays.update({f"{TEXT_PREFIX}{m}": a for m, a in dataset.text.items()})
    targets = [out / f"{TABLE_STEM}.{format}"]
    if embeddings == "npy":
        targets += [out / f"{name}.npy" for name in arrays]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"path: {existing} already exist; pass overwrite=True to replace them")
    out.mkdir(parents=True, exist_ok=True)
    table = dataset.released_frame()
    if embeddings == "columns":
        for name, a in arrays.items():
            missing = np.isnan(a).all(axis=1) if a.dtype.kind == "f" else np.zeros(len(a), bool)
            table[name] = [None if miss else row for row, miss in zip(a, missing)]
    else:
        for name, a in arrays.items():
            np.save(out / f"{name}.npy", a)
    if format == "parquet":
        table.to_parquet(targets[0], index=False)
    else:
        table.to_csv(targets[0], index=False)
    logger.info("wrote %r to %s", dataset, out)
    return out
