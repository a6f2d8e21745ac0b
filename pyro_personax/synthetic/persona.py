"""Synthetic persona data in the schema of CelebPersona / AthlePersona, with ground truth.

Latent causal variables (``D = 10``), laid out as
``LatentLayout(shared_dim=2, modality_dims={"face": 3, "text": 5})``::

    shared: age, status
    face:   skin_tone, attractiveness, expression
    text:   openness, conscientiousness, extraversion, agreeableness, neuroticism

True DAG (parent -> child), 12 edges::

    cross-modal (trait -> face latent):
        openness -> attractiveness          agreeableness -> attractiveness
        conscientiousness -> skin_tone      neuroticism -> skin_tone
        extraversion -> expression          agreeableness -> expression
        neuroticism -> expression
    within a block:
        attractiveness -> expression        conscientiousness -> neuroticism
    from the shared block:
        age -> status   age -> conscientiousness   status -> extraversion

Each modality's decoders read the shared block and that modality's own block, so only
the 7 cross-modal edges (between the face and the text block) are identified by the
data (``LatentLayout.identified_mask()``); the 2 within-block edges and the 3 edges out of
the shared block are not decided by the data. Every face and text latent has at least
one cross-modal neighbour, and no two of them have the same cross-modal neighbours
(skin_tone: conscientiousness, neuroticism; attractiveness: openness, agreeableness;
expression: extraversion, agreeableness, neuroticism).

Each latent is ``z_j = sum_i w_ij * phi_ij(z_i) + noise_j`` with nonlinear ``phi`` (tanh,
sine, softsign-like) and non-Gaussian noise (Laplace or uniform), standardised in
topological order. Observations:

- **face**: ``K`` images (default 2), each an embedding ``(N, d_face)`` (32 by default,
  1024 with ``full_dims=True``) made by one fixed random two-layer network of
  ``(shared, face latents, nuisance eta_k)``; image ``k >= 1`` is missing for about
  15% of people (an all-``NaN`` row).
- **text**: one embedding per LLM ``(N, d_text)`` (32 by default, 3584 full) made by a
  fixed random network of ``(shared, trait latents, eta)`` plus a small per-LLM
  perturbation; about 2% of rows are missing.
- **LLM scores**: ``<llm>_<trait>`` = noisy discretisation of the trait latent on the
  3-point scale (1, 2, 3) with a per-LLM bias and noise; a per-LLM share of cells is
  ``0`` ("insufficient information"), a per-LLM share of rows is all-``0`` (the text
  measurement of that LLM is then missing, see :mod:`pyro_personax.data.datasets`),
  and about 1% of people are all-``0`` for every LLM (aggregated traits ``NaN``).
- **biography** depends on the shared latents and traits: CelebPersona gender and
  occupation depend on the traits, face attributes on face latents (``Pointy_Nose``
  on attractiveness, ``High_Cheekbones`` on expression); AthlePersona league on
  status and traits, birth year on age and league, height / weight on league.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyro_personax.checks import check_int
from pyro_personax.data.datasets import PersonaDataset
from pyro_personax.data.persona_io import write_persona
from pyro_personax.data.schema import (
    DEFAULT_LLMS,
    FACE_ATTRIBUTES,
    TRAITS,
    check_kind,
    trait_column,
)
from pyro_personax.layout import LatentLayout
from pyro_personax.synthetic.truth import GroundTruth, check_measurement_edges, measurement_latents

__all__ = ["persona", "persona_layout", "PERSONA_EDGES", "PERSONA_LATENTS", "write_persona"]

PERSONA_LATENTS = (
    "age", "status",
    "skin_tone", "attractiveness", "expression",
    "openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism",
)
PERSONA_EDGES = (  # the mechanism of edge e is _PHI[e % 3]
    ("age", "status"),
    ("age", "conscientiousness"),
    ("conscientiousness", "neuroticism"),
    ("agreeableness", "expression"),
    ("agreeableness", "attractiveness"),
    ("status", "extraversion"),
    ("openness", "attractiveness"),
    ("neuroticism", "skin_tone"),
    ("conscientiousness", "skin_tone"),
    ("extraversion", "expression"),
    ("attractiveness", "expression"),
    ("neuroticism", "expression"),
)
# for the children with several parents (attractiveness, expression, skin_tone) each parent
# explains at least about 10% of the child's variance beyond the other parents, and the
# noise term has 15-20% of it; signs are chosen so no two paths cancel
_WEIGHTS = (0.8, 0.7, -0.7, 0.7, 0.7, 0.9, 0.6, -0.6, 0.7, 0.6, 0.7, -0.9)
_PHI = (np.tanh, np.sin, lambda x: x / (1 + np.abs(x)))
_TOPO = ("age", "openness", "agreeableness", "status", "conscientiousness", "extraversion",
         "neuroticism", "attractiveness", "expression", "skin_tone")
_LEAGUES = ("NBA", "NFL", "NHL", "ATP", "PGA", "Premier League", "Bundesliga")
_OCCUPATIONS = ("Actor", "Musician", "Athlete", "Politician", "Writer", "Business")
_P_CELL_ZERO = (0.05, 0.10, 0.15)
_P_ROW_ZERO = (0.02, 0.03, 0.05)


def persona_layout() -> LatentLayout:
    """The latent layout of the synthetic persona data (2 shared, 3 face, 5 text latents)."""
    return LatentLayout(shared_dim=2, modality_dims={"face": 3, "text": 5}, names=PERSONA_LATENTS)


def _latents(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``(N, 10)`` latents from the DAG; also return the ``(10, 10)`` adjacency."""
    idx = {name: i for i, name in enumerate(PERSONA_LATENTS)}
    adjacency = np.zeros((len(idx), len(idx)))
    for parent, child in PERSONA_EDGES:
        adjacency[idx[parent], idx[child]] = 1.0
    z = np.zeros((n, len(idx)))
    for j, name in enumerate(_TOPO):
        col = idx[name]
        noise = rng.laplace(size=n) if j % 2 == 0 else rng.uniform(-1.7, 1.7, size=n)
        value = 0.6 * noise
        for e, (parent, child) in enumerate(PERSONA_EDGES):
            if child == name:
                value = value + _WEIGHTS[e] * 2.0 * _PHI[e % 3](z[:, idx[parent]])
        z[:, col] = (value - value.mean()) / value.std()
    return z, adjacency


def _network(in_dim: int, out_dim: int, rng: np.random.Generator, hidden: int = 64):
    w1 = rng.normal(size=(in_dim, hidden)) / np.sqrt(in_dim)
    b1 = rng.normal(scale=0.3, size=hidden)
    w2 = rng.normal(size=(hidden, out_dim)) / np.sqrt(hidden)
    return lambda u: np.tanh(u @ w1 + b1) @ w2


def _face(z, num_faces, dim, rng, planted=()):
    net = _network(2 + 3 + 2, dim, rng)
    out = []
    for k in range(num_faces):
        u = measurement_latents(z, PERSONA_LATENTS, planted, "face", k)[:, :5]
        eta = rng.normal(size=(len(z), 2))
        x = net(np.concatenate([u, 0.5 * eta], axis=1)) + 0.05 * rng.normal(size=(len(z), dim))
        if k >= 1:
            x[rng.random(len(z)) < 0.15] = np.nan
        out.append(x.astype(np.float32))
    return out


def _text(z, llms, dim, rng, planted=()):
    base = _network(2 + 5 + 2, dim, rng)
    out = {}
    for k, m in enumerate(llms):
        z_k = measurement_latents(z, PERSONA_LATENTS, planted, "text", k)
        u = np.concatenate([z_k[:, :2], z_k[:, 5:]], axis=1)
        tweak = _network(2 + 5, dim, rng, hidden=16)
        eta = rng.normal(size=(len(z), 2))
        x = base(np.concatenate([u, 0.5 * eta], axis=1)) + 0.2 * tweak(u)
        x = x + 0.05 * rng.normal(size=x.shape)
        x[rng.random(len(z)) < 0.02] = np.nan
        out[m] = x.astype(np.float32)
    return out


def _scores(z, llms, rng) -> pd.DataFrame:
    n = len(z)
    traits = z[:, 5:]
    nobody = rng.random(n) < 0.01
    cols = {}
    for i, m in enumerate(llms):
        bias = rng.normal(scale=0.2, size=len(TRAITS))
        y = traits + bias + (0.4 + 0.15 * i) * rng.normal(size=traits.shape)
        s = 1 + (y > -0.6).astype(int) + (y > 0.6).astype(int)
        s[rng.random(s.shape) < _P_CELL_ZERO[i % 3]] = 0
        s[(rng.random(n) < _P_ROW_ZERO[i % 3]) | nobody] = 0
        for t_i, t in enumerate(TRAITS):
            cols[trait_column(m, t)] = s[:, t_i]
    return pd.DataFrame(cols)


def _dates(year: np.ndarray, rng) -> pd.DataFrame:
    month = rng.integers(1, 13, size=len(year))
    first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    day = 1 + np.floor(rng.random(len(year)) * first.dt.days_in_month.to_numpy()).astype(int)
    return pd.DataFrame({"Birthyear": year, "Birthmonth": month, "Birthday": day})


def _choice(logits: np.ndarray, rng) -> np.ndarray:
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)


def _celeb_bio(z, rng) -> pd.DataFrame:
    n = len(z)
    age, status, o, c, e, a, nn = z[:, 0], z[:, 1], *z[:, 5:].T
    male = rng.random(n) < 1 / (1 + np.exp(-(-0.9 * a - 0.7 * nn + 0.6 * e + 0.4 * c - 0.4 * o)))
    occ_w = rng.normal(size=(7, len(_OCCUPATIONS)))
    occupation = _choice(np.stack([status, age, o, c, e, a, nn], 1) @ occ_w, rng)
    region = _choice(np.stack([0.8 * o, 0.5 * status, -0.5 * o], 1), rng)
    lat = np.array([40.0, 50.0, 35.0])[region] + rng.normal(scale=5.0, size=n)
    lon = np.array([-95.0, 10.0, 120.0])[region] + rng.normal(scale=10.0, size=n)
    height = 165 + 12 * male + 2 * status + rng.normal(scale=6, size=n)
    weight = 58 + 15 * male + 0.5 * (height - 170) + 3 * age + rng.normal(scale=7, size=n)
    frame = _dates(np.round(1965 - 12 * age + rng.normal(scale=3, size=n)).astype(int), rng)
    frame = frame.assign(Latitude=lat.round(4), Longitude=lon.round(4), Weight=weight.round(1),
                         Height=height.round(1),
                         Occupation=np.array(_OCCUPATIONS)[occupation],
                         Gender=np.where(male, "Male", "Female"))
    drivers = np.concatenate([z[:, :5], male[:, None] - 0.5], axis=1)
    attr_w = 0.7 * rng.normal(size=(6, len(FACE_ATTRIBUTES) + 1))
    attr_w[3, FACE_ATTRIBUTES.index("Pointy_Nose")] = 1.5
    attr_w[4, FACE_ATTRIBUTES.index("High_Cheekbones")] = 1.5
    p = 1 / (1 + np.exp(-(drivers @ attr_w)))
    signs = np.where(rng.random(p.shape) < p, 1, -1)
    for i, name in enumerate((*FACE_ATTRIBUTES, "Chubby")):
        frame[name] = signs[:, i]
    return frame


def _athle_bio(z, rng) -> pd.DataFrame:
    n = len(z)
    age, status, _, c, e, a, _ = z[:, 0], z[:, 1], *z[:, 5:].T
    league_w = rng.normal(size=(4, len(_LEAGUES)))
    league = _choice(1.2 * np.stack([status, e, c, a], 1) @ league_w, rng)
    tall = np.array([15.0, 5.0, 0.0, 3.0, -3.0, -2.0, -1.0])[league]
    heavy = np.array([10.0, 25.0, 8.0, -5.0, -3.0, -8.0, -6.0])[league]
    shift = np.array([0, -2, -1, 2, -6, 3, 3])[league]
    home = np.array([[40, -95], [38, -90], [48, -85], [45, 5], [35, -85], [53, -2], [51, 10]], float)
    height = 180 + tall + rng.normal(scale=6, size=n)
    weight = 80 + heavy + 0.6 * (height - 183) + rng.normal(scale=6, size=n)
    frame = _dates(np.round(1990 - 6 * age + shift + rng.normal(scale=2, size=n)).astype(int), rng)
    frame.insert(0, "League", np.array(_LEAGUES)[league])
    return frame.assign(Latitude=(home[league, 0] + rng.normal(scale=4, size=n)).round(4),
                        Longitude=(home[league, 1] + rng.normal(scale=8, size=n)).round(4),
                        Weight=weight.round(1), Height=height.round(1))


def persona(
    num_entities: int = 2000,
    seed: int = 0,
    kind: str = "celeb",
    *,
    num_faces: int = 2,
    full_dims: bool = False,
    face_dim: int | None = None,
    text_dim: int | None = None,
    llms=DEFAULT_LLMS,
    measurement_edges=None,
) -> tuple[PersonaDataset, GroundTruth]:
    """Synthetic persona data with a known latent DAG (see the module docstring).

    Parameters
    ----------
    num_entities
        Number of people ``N``.
    seed
        Seed of all randomness (same seed -> same data).
    kind
        ``"celeb"`` (CelebPersona schema) or ``"athle"`` (AthlePersona schema).
    num_faces
        Number ``K`` of face measurements (images) per person.
    full_dims
        Use the released dimensions (face 1024, text 3584) instead of 32.
    face_dim, text_dim
        Explicit embedding dimensions (override ``full_dims``).
    llms
        LLM keys of the score columns and text measurements.
    measurement_edges
        Optional :class:`~pyro_personax.synthetic.truth.MeasurementEdge` items: an edge
        that one face image (``modality="face"``, ``measurement`` = image index) or one
        LLM's text embedding (``modality="text"``, ``measurement`` = index in ``llms``)
        sees and no other, e.g. ``MeasurementEdge("skin_tone", "openness", "text", 0)``:
        the first LLM's text reads openness partly from the skin tone. That embedding is
        generated from :func:`~pyro_personax.synthetic.truth.measurement_latents`; the
        LLM's trait scores, the biography and the true adjacency do not see the edge
        (it is listed in ``truth.info["measurement_edges"]``).

    Returns
    -------
    (PersonaDataset, GroundTruth)
        The data set (validated like a loaded one) and the truth: latents ``(N, 10)``,
        adjacency ``(10, 10)`` and :func:`persona_layout`.

    Examples
    --------
    >>> data, truth = persona(500, seed=1)
    >>> data.face[0].shape, int(truth.adjacency.sum())
    ((500, 32), 12)
    """
    check_kind(kind)
    check_int("num_entities", num_entities, low=10)
    check_int("num_faces", num_faces)
    face_dim = face_dim or (1024 if full_dims else 32)
    text_dim = text_dim or (3584 if full_dims else 32)
    planted = check_measurement_edges(
        measurement_edges, persona_layout(), {"face": int(num_faces), "text": len(tuple(llms))}
    )
    rng = np.random.default_rng(seed)
    z, adjacency = _latents(num_entities, rng)
    face = _face(z, num_faces, face_dim, rng, planted)
    text = _text(z, tuple(llms), text_dim, rng, planted)
    bio = _celeb_bio(z, rng) if kind == "celeb" else _athle_bio(z, rng)
    ids = pd.Series([f"{kind}_{i:05d}" for i in range(num_entities)], name="ID")
    raw = pd.concat([ids, bio, _scores(z, tuple(llms), rng)], axis=1)
    data = PersonaDataset.from_frame(raw, kind, face=face, text=text, llms=llms, source="synthetic")
    info = {"kind": kind, "seed": seed, "edges": PERSONA_EDGES, "weights": _WEIGHTS,
            "noise": "Laplace / uniform alternating in topological order",
            "face_dim": face_dim, "text_dim": text_dim, "num_faces": num_faces, "measurement_edges": planted}
    return data, GroundTruth(z, adjacency, persona_layout(), info)
