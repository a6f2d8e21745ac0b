"""Synthetic persona generator: schema, ground truth, determinism and dependencies."""
import time

import numpy as np
import pytest
from scipy import stats

from pyro_personax.data import PersonaDataset
from pyro_personax.data.schema import required_fields
from pyro_personax.graph import is_dag
from pyro_personax.synthetic.persona import (
    PERSONA_EDGES,
    PERSONA_LATENTS,
    persona,
    persona_layout,
)
from pyro_personax.synthetic.truth import GroundTruth


@pytest.fixture(scope="module")
def celeb():
    return persona(2000, seed=0, kind="celeb")


@pytest.mark.parametrize("kind", ["celeb", "athle"])
def test_schema_and_shapes(kind):
    data, truth = persona(300, seed=2, kind=kind)
    assert isinstance(data, PersonaDataset) and isinstance(truth, GroundTruth)
    raw = data.released_frame()
    assert set(required_fields(kind)) <= set(raw.columns)
    assert len(data.face) == 2 and all(a.shape == (300, 32) for a in data.face)
    assert set(data.text) == {"gpt4o", "gemini", "llama"}
    assert all(a.shape == (300, 32) for a in data.text.values())
    assert truth.latents.shape == (300, 10) and truth.names == PERSONA_LATENTS
    assert len(set(data.ids)) == 300


def test_full_dims_and_options():
    data, _ = persona(20, seed=0, full_dims=True, num_faces=3)
    assert [a.shape for a in data.face] == [(20, 1024)] * 3
    assert data.text["llama"].shape == (20, 3584)
    data, _ = persona(20, seed=0, face_dim=8, text_dim=4, llms=("a", "b"))
    assert data.face[0].shape == (20, 8) and set(data.text) == {"a", "b"}
    with pytest.raises(ValueError, match="kind"):
        persona(20, seed=0, kind="movie")
    with pytest.raises(ValueError, match="num_entities"):
        persona(3, seed=0)


def test_same_seed_same_numbers_different_seed_differs():
    a, ta = persona(200, seed=5)
    b, tb = persona(200, seed=5)
    c, tc = persona(200, seed=6)
    np.testing.assert_array_equal(ta.latents, tb.latents)
    np.testing.assert_array_equal(a.face[1], b.face[1])
    assert a.trait_scores.equals(b.trait_scores) and a.table.equals(b.table)
    assert not np.allclose(ta.latents, tc.latents)


def test_fast():
    start = time.perf_counter()
    persona(2000, seed=0)
    assert time.perf_counter() - start < 1.0


def test_ground_truth_graph_and_layout(celeb):
    _, truth = celeb
    A = truth.adjacency
    assert is_dag(A) and A.sum() == len(PERSONA_EDGES)
    idx = {n: i for i, n in enumerate(PERSONA_LATENTS)}
    for p, c in PERSONA_EDGES:
        assert A[idx[p], idx[c]] == 1
    allowed = persona_layout().allowed_mask()
    assert not (A.astype(bool) & ~allowed).any()
    assert tuple(truth.layout.modalities) == ("face", "text")
    face_edges = A[truth.layout.block_slice("face")][:, truth.layout.block_slice("face")]
    assert face_edges.sum() == 1  # attractiveness -> expression


def test_truth_has_identified_structure(celeb):
    """Every face and text latent has a cross-modal neighbour, no two share the same set,
    and the truth also has edges the data do not decide (within a block, from the shared block)."""
    _, truth = celeb
    layout = truth.layout
    A = truth.adjacency.astype(bool)
    classes = layout.edge_classes()
    cross = A & (classes == "cross-modal")
    np.testing.assert_array_equal(cross, A & layout.identified_mask())
    assert cross.sum() == 7
    neighbours = {}
    for modality in layout.modalities:
        for j in range(layout.latent_dim)[layout.block_slice(modality)]:
            linked = np.flatnonzero(cross[j] | cross[:, j])
            assert linked.size, f"{truth.names[j]} has no cross-modal neighbour"
            neighbours[truth.names[j]] = frozenset(truth.names[i] for i in linked)
    assert len(neighbours) == 8 and len(set(neighbours.values())) == 8, neighbours
    assert neighbours["expression"] == {"extraversion", "agreeableness", "neuroticism"}
    assert (A & (classes == "within-block")).sum() == 2
    assert (A & (classes == "shared->modality")).sum() == 2
    assert (A & (classes == "within-shared")).sum() == 1
    assert not (A & (classes == "modality->shared")).any()


def test_edges_carry_dependence_and_noise_is_non_gaussian(celeb):
    _, truth = celeb
    z = truth.latents
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-9)
    idx = {n: i for i, n in enumerate(PERSONA_LATENTS)}
    for p, c in PERSONA_EDGES:
        x, y = z[:, idx[p]], z[:, idx[c]]
        X = np.column_stack([np.ones_like(x), x, x**2, x**3, np.sin(x), np.tanh(x)])
        resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        assert 1 - resid.var() / y.var() > 0.15, (p, c)
    # roots: Laplace (excess kurtosis about 3) and uniform (about -1.2)
    assert stats.kurtosis(z[:, idx["age"]]) > 1.5
    assert stats.kurtosis(z[:, idx["openness"]]) < -0.8


def test_llm_scores_and_missing_rules(celeb):
    data, truth = celeb
    scores = data.trait_scores.to_numpy()
    assert set(np.unique(scores)) == {0.0, 1.0, 2.0, 3.0}
    for m in data.llms:
        s = data.scores(m).to_numpy()
        all_zero = (s == 0).all(axis=1)
        assert 0.005 < all_zero.mean() < 0.15
        assert not data.text_mask[m][all_zero].any()
        assert data.text_mask[m].mean() > 0.85
    everyone_silent = np.all(scores == 0, axis=1)
    assert everyone_silent.sum() > 0
    assert data.traits[everyone_silent].isna().all().all()
    assert 0.05 < (1 - data.face_mask[:, 1].mean()) < 0.25 and data.face_mask[:, 0].all()
    # aggregated traits follow the trait latents
    for j, t in enumerate(data.trait_columns):
        ok = data.traits[t].notna().to_numpy()
        rho = stats.spearmanr(data.traits[t][ok], truth.latents[ok, 5 + j]).statistic
        assert rho > 0.6, t


def test_embeddings_encode_their_blocks(celeb):
    from sklearn.linear_model import RidgeCV

    data, truth = celeb
    z = truth.latents
    f = data.face[0]
    r2_face = RidgeCV().fit(f[:1500], z[:1500, 2:5]).score(f[1500:], z[1500:, 2:5])
    assert r2_face > 0.8
    ok = data.text_mask["gpt4o"]
    t = data.text["gpt4o"][ok]
    r2_text = RidgeCV().fit(t[:1500], z[ok][:1500, 5:]).score(t[1500:], z[ok][1500:, 5:])
    assert r2_text > 0.8
    # skin_tone's own noise has no path into the text embedding (skin_tone has no descendants
    # among traits or shared; the text only carries its parents conscientiousness, neuroticism)
    basis = [np.ones(len(z))] + [g(z[:, k]) for k in (6, 9) for g in (
        lambda x: x, np.square, lambda x: x**3, np.sin, np.tanh, lambda x: x / (1 + np.abs(x)))]
    X = np.column_stack(basis)
    own = z[:, 2] - X @ np.linalg.lstsq(X, z[:, 2], rcond=None)[0]
    r2_leak = RidgeCV().fit(t[:1500], own[ok][:1500]).score(t[1500:], own[ok][1500:])
    assert r2_leak < 0.05
    assert RidgeCV().fit(f[:1500], own[:1500]).score(f[1500:], own[1500:]) > 0.1  # the face does


def test_biography_depends_on_traits(celeb):
    frame = celeb[0].structured_frame()
    for t in ("final_c", "final_a", "final_n"):
        groups = [frame[t][frame["Gender"] == g].dropna() for g in ("Male", "Female")]
        assert stats.mannwhitneyu(*groups).pvalue < 1e-6, t
    occ = [frame["final_e"][frame["Occupation"] == o].dropna() for o in frame["Occupation"].cat.categories]
    assert stats.kruskal(*occ).pvalue < 1e-3
    athle = persona(2000, seed=0, kind="athle")[0].structured_frame()
    years = [athle["Birthyear"][athle["League"] == lg] for lg in athle["League"].cat.categories]
    assert len(years) == 7 and stats.kruskal(*years).pvalue < 1e-10


def test_to_multimodal_matches_truth_layout(celeb):
    data, truth = celeb
    mm = data.to_multimodal()
    assert mm.modalities == tuple(truth.layout.modalities)
    assert mm.num_measurements == {"face": 2, "text": 3}
