"""The documented schema and on-disk layout of the PersonaX datasets.

The exact column names of the released CelebPersona / AthlePersona files are not known
here; the field names below are those of the paper's overview figure (biographical
fields, CelebA face attributes) and of its analysis code (``<llm>_<trait>`` per-LLM
scores, ``final_<trait>`` aggregated scores). A file with other names is read with a
``columns=`` mapping from the file's names to these names.

Fields
------
Biographical (required)
    CelebPersona: ``ID, Birthyear, Birthmonth, Birthday, Latitude, Longitude, Weight,
    Height, Occupation, Gender``; AthlePersona: ``ID, League, Birthyear, Birthmonth,
    Birthday, Latitude, Longitude, Weight, Height``. ``Occupation``, ``Gender`` and
    ``League`` are categorical (category names kept), the others numeric; ``ID`` is a
    unique, non-missing identifier.
Face attributes (CelebPersona only)
    The 10 stable CelebA attributes :data:`FACE_ATTRIBUTES` (required) and ``Chubby``
    (optional), stored as ``+1`` / ``-1`` (``1`` / ``0`` and booleans are accepted),
    read as nullable booleans (``+1`` -> ``True``).
Per-LLM trait scores (required)
    ``<llm>_<trait>`` for every LLM of ``llms`` (default :data:`DEFAULT_LLMS` =
    ``("gpt4o", "gemini", "llama")`` for ChatGPT-4o-Latest, Gemini-2.5-Pro and
    Llama-4-Maverick) and every trait of :data:`TRAITS` = ``("o", "c", "e", "a", "n")``
    (openness, conscientiousness, extraversion, agreeableness, neuroticism). Scores are
    on the 3-point scale ``1, 2, 3``; ``0`` means "insufficient information"; an empty
    cell is missing.
Aggregated traits (optional)
    ``final_<trait>``. When present in the file they are kept as released; otherwise
    they are computed by :func:`pyro_personax.data.traits.aggregate_traits`. A value
    is the median of a person's valid scores, so it lies in :data:`FINAL_RANGE` =
    ``[1, 3]``; an empty cell is missing (no valid score), and ``0`` is refused.
Embeddings (optional)
    Face: one column or file per face measurement (image), ``face_emb_0``,
    ``face_emb_1``, ...; text: one per LLM, ``text_emb_<llm>`` (the embedding of that
    LLM's description). Released dimensions are 1024 (face) and 3584 (text).

On-disk layout
--------------
A dataset is a directory::

    <path>/
        table.parquet   or  table.csv      one row per person, all fields above
        face_emb_0.npy, face_emb_1.npy ...  optional (N, d_face) float arrays
        text_emb_gpt4o.npy, ...             optional (N, d_text) float arrays

``path`` may also name the table file itself; companions are then looked for beside
it. Embeddings are stored either as list/array columns of the parquet table (one list
of floats per row, ``null`` = missing measurement) or as ``.npy`` companions whose rows
follow the table's row order (a row of all ``NaN`` = missing measurement). A CSV table
keeps its embeddings in companions. The ``columns=`` mapping also renames companion
files (by their stem). :func:`pyro_personax.data.datasets.write_persona` writes exactly
this layout.

Derived features
----------------
``Birthyear/Birthmonth/Birthday`` are kept as given and complemented by the cyclic
day-of-year features ``birth_doy_sin`` and ``birth_doy_cos``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "KINDS",
    "TRAITS",
    "TRAIT_NAMES",
    "DEFAULT_LLMS",
    "LLM_NAMES",
    "INSUFFICIENT",
    "TRAIT_SCALE",
    "FINAL_RANGE",
    "FACE_ATTRIBUTES",
    "OPTIONAL_FACE_ATTRIBUTES",
    "BIO_FIELDS",
    "NUMERIC_FIELDS",
    "CATEGORICAL_FIELDS",
    "FACE_PREFIX",
    "TEXT_PREFIX",
    "TABLE_STEM",
    "trait_column",
    "final_column",
    "text_column",
    "face_column",
    "required_fields",
    "check_kind",
    "missing_fields_message",
    "check_columns_map",
]

KINDS = ("celeb", "athle")
TRAITS = ("o", "c", "e", "a", "n")
TRAIT_NAMES = {
    "o": "openness",
    "c": "conscientiousness",
    "e": "extraversion",
    "a": "agreeableness",
    "n": "neuroticism",
}
DEFAULT_LLMS = ("gpt4o", "gemini", "llama")
LLM_NAMES = {"gpt4o": "ChatGPT-4o-Latest", "gemini": "Gemini-2.5-Pro", "llama": "Llama-4-Maverick"}
INSUFFICIENT = 0
TRAIT_SCALE = (1, 2, 3)
FINAL_RANGE = (min(TRAIT_SCALE), max(TRAIT_SCALE))  # an aggregated trait is a median of scores

FACE_ATTRIBUTES = (
    "Arched_Eyebrows",
    "Big_Nose",
    "Pointy_Nose",
    "Bushy_Eyebrows",
    "Big_Lips",
    "Oval_Face",
    "Double_Chin",
    "Receding_Hairline",
    "Narrow_Eyes",
    "High_Cheekbones",
)
OPTIONAL_FACE_ATTRIBUTES = ("Chubby",)

_COMMON = ("Birthyear", "Birthmonth", "Birthday", "Latitude", "Longitude", "Weight", "Height")
BIO_FIELDS = {
    "celeb": ("ID", *_COMMON, "Occupation", "Gender"),
    "athle": ("ID", "League", *_COMMON),
}
NUMERIC_FIELDS = _COMMON
CATEGORICAL_FIELDS = {"celeb": ("Occupation", "Gender"), "athle": ("League",)}

FACE_PREFIX = "face_emb_"
TEXT_PREFIX = "text_emb_"
TABLE_STEM = "table"


def trait_column(llm: str, trait: str, pattern: str = "{llm}_{trait}") -> str:
    """Name of the score column of ``llm`` for ``trait`` (``"gpt4o_o"``)."""
    return pattern.format(llm=llm, trait=trait)


def final_column(trait: str) -> str:
    """Name of the aggregated column of ``trait`` (``"final_o"``)."""
    return f"final_{trait}"


def text_column(llm: str) -> str:
    """Name of the text-embedding field of ``llm`` (``"text_emb_gpt4o"``)."""
    return f"{TEXT_PREFIX}{llm}"


def face_column(k: int) -> str:
    """Name of the ``k``-th face-embedding field (``"face_emb_0"``)."""
    return f"{FACE_PREFIX}{k}"


def check_kind(kind: str) -> str:
    """Validate a dataset kind (``"celeb"`` or ``"athle"``) and return it."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}; found {kind!r}")
    return kind


def required_fields(kind: str, llms: Sequence[str] = DEFAULT_LLMS,
                    traits: Sequence[str] = TRAITS) -> tuple[str, ...]:
    """All required table fields of ``kind``.

    Parameters
    ----------
    kind
        ``"celeb"`` or ``"athle"``.
    llms, traits
        LLM keys and trait keys of the per-LLM score columns.

    Returns
    -------
    tuple of str
        Biographical fields, face attributes (celeb), then ``<llm>_<trait>`` columns.
    """
    check_kind(kind)
    fields = list(BIO_FIELDS[kind])
    if kind == "celeb":
        fields += list(FACE_ATTRIBUTES)
    fields += [trait_column(m, t) for m in llms for t in traits]
    return tuple(fields)


def missing_fields_message(missing: Iterable[str], present: Sequence[str], source: str) -> str:
    """An error message listing missing fields and, for each, the closest names present.

    Parameters
    ----------
    missing
        Required field names not found.
    present
        Names found in the file (after the ``columns=`` mapping).
    source
        The file (or description) the names were read from.
    """
    present = [str(p) for p in present]
    lower = {p.lower(): p for p in present}
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, present, n=3, cutoff=0.6)
        close += [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
                  if lower[c] not in close]
        hint = f"closest present: {close[:3]}" if close else "no similar name present"
        parts.append(f"{name!r} ({hint})")
    return (
        f"{source}: missing required fields: " + "; ".join(parts)
        + ". Map the file's names to ours with columns={'<file name>': '<field>'}"
    )


def check_columns_map(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a ``columns=`` mapping (file name -> our name) and return it as a dict."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns: expected a mapping file name -> field name; found {type(columns).__name__}")
    out = {str(k): str(v) for k, v in columns.items()}
    targets = list(out.values())
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise ValueError(f"columns: several file names map to the same field(s) {dup}")
    return out
