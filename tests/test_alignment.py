"""Label alignment of independent restarts: exchangeable groups, matching, relabelling."""

import numpy as np
import pytest

from pyro_personax.inference import (
    ChainAlignment,
    align_chains,
    exchangeable_groups,
    identity_alignment,
)
from pyro_personax.layout import LatentLayout


def _groups(layout):
    return [g.tolist() for g in exchangeable_groups(layout)]


def test_exchangeable_groups_follow_blocks_and_knowledge():
    layout = LatentLayout(2, {"face": 3, "text": 2})
    assert _groups(layout) == [[0, 1], [2, 3, 4], [5, 6]]
    # block-level knowledge treats a block's latents alike
    tiers = LatentLayout(1, {"face": 2, "text": 2}, tiers=[("shared",), ("text",), ("face",)])
    assert _groups(tiers) == [[0], [1, 2], [3, 4]]
    # an edge known for one latent only sets it apart from the rest of its block
    required = LatentLayout(0, {"face": 3, "text": 1}, required=[("text_1", "face_2")])
    assert _groups(required) == [[0, 2], [1], [3]]
    forbidden = LatentLayout(0, {"face": 3, "text": 1}, forbidden=[("face_3", "text_1")])
    assert _groups(forbidden) == [[0, 1], [2], [3]]
    # knowledge inside a block that is not uniform: no latent of the block is permuted
    inside = LatentLayout(0, {"face": 3}, required=[("face_1", "face_2")])
    assert _groups(inside) == [[0], [1], [2]]


def test_align_chains_recovers_a_permutation_within_blocks_only():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 5))
    layout = LatentLayout(1, {"face": 2, "text": 2})
    # chain 1: face latents swapped (one sign-flipped), text latents swapped and
    # monotonely transformed; the shared latent kept
    chain1 = np.column_stack([z[:, 0], -z[:, 2], z[:, 1], np.exp(z[:, 4]), z[:, 3] ** 3])
    al = align_chains([z, chain1], layout)
    assert al.permutations.tolist() == [[0, 1, 2, 3, 4], [0, 2, 1, 4, 3]]
    np.testing.assert_allclose(al.correlations, 1.0)
    assert al.reference == 0 and al.num_chains == 2
    # relabelled latents of chain 1 are monotone in chain 0's, column by column
    relabelled = al.relabel_latents(1, chain1)
    for j in range(5):
        assert abs(np.corrcoef(np.argsort(np.argsort(relabelled[:, j])), np.argsort(np.argsort(z[:, j])))[0, 1]) > 0.999


def test_align_chains_never_moves_a_latent_across_blocks():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 2))
    layout = LatentLayout(0, {"face": 1, "text": 1})
    # chain 1 swapped the two factors between blocks: that is a different model, not a relabelling
    al = align_chains([z, z[:, ::-1].copy()], layout)
    assert al.permutations.tolist() == [[0, 1], [0, 1]]
    assert al.correlations[1].max() < 0.2


def test_align_chains_reference_and_input_errors():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 2))
    layout = LatentLayout(0, {"face": 2})
    al = align_chains([z[:, ::-1].copy(), z], layout, reference=1)
    assert al.permutations.tolist() == [[1, 0], [0, 1]] and al.reference == 1
    with pytest.raises(ValueError, match=r"latents\[1\]: expected shape \(N, 2\)"):
        align_chains([z, z[:, :1]], layout)
    with pytest.raises(ValueError, match="reference"):
        align_chains([z, z], layout, reference=2)
    with pytest.raises(ValueError, match="found none"):
        align_chains([], layout)


def test_chain_alignment_relabelling_round_trip_and_validation():
    al = ChainAlignment(np.array([[0, 1, 2], [2, 0, 1]]), np.array([[1, 1, 1], [0.9, 0.8, 0.4]]))
    P = np.arange(9.0).reshape(3, 3)  # P[i, j] = P(i -> j) in chain 1's labels
    Q = al.relabel_edges(1, P)
    p = al.permutations[1]
    for j in range(3):
        for k in range(3):
            assert Q[j, k] == P[p[j], p[k]]
    assert al.relabel_edges(1, np.stack([P, 2 * P])).shape == (2, 3, 3)
    back = ChainAlignment.from_dict(al.to_dict())
    np.testing.assert_array_equal(back.permutations, al.permutations)
    np.testing.assert_allclose(back.correlations, al.correlations)
    frame = al.to_frame(["a", "b", "c"])
    assert frame.loc[frame["chain"] == 1, "matched"].tolist() == ["c", "a", "b"]
    with pytest.raises(ValueError, match="names: expected 3"):
        al.to_frame(["a"])
    with pytest.raises(ValueError, match="permutations of range"):
        ChainAlignment(np.array([[0, 0, 1]]), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"correlations: expected shape \(1, 3\)"):
        ChainAlignment(np.array([[0, 1, 2]]), np.ones((1, 2)))
    ident = identity_alignment(2, 3)
    np.testing.assert_array_equal(ident.relabel_edges(1, P), P)
