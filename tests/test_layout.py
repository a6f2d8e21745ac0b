"""Tests of pyro_personax.layout.LatentLayout: names, blocks, masks and prior-knowledge conflicts."""
import numpy as np
import pytest

from pyro_personax.layout import LatentLayout


def test_default_names_blocks_and_slices():
    layout = LatentLayout(2, {"face": 3, "text": 1})
    assert layout.names == ("s1", "s2", "face_1", "face_2", "face_3", "text_1")
    assert layout.latent_dim == 6
    assert layout.modalities == ("face", "text")
    assert layout.block_slice("shared") == slice(0, 2)
    assert layout.block_slice("face") == slice(2, 5)
    assert layout.block_slice("text") == slice(5, 6)
    assert layout.block_of == ("shared", "shared", "face", "face", "face", "text")
    assert layout.index("face_2") == 3
    with pytest.raises(ValueError, match="unknown block 'audio'"):
        layout.block_slice("audio")
    with pytest.raises(ValueError, match="unknown latent 'x'"):
        layout.index("x")


def test_allowed_mask_shared_is_root_and_diagonal():
    layout = LatentLayout(1, {"face": 2})
    allowed = layout.allowed_mask()
    assert allowed.shape == (3, 3) and allowed.dtype == bool
    assert not allowed.diagonal().any()
    assert not allowed[1:, 0].any()  # nothing into the shared block
    assert allowed[0, 1:].all() and allowed[1, 2] and allowed[2, 1]
    free = LatentLayout(1, {"face": 2}, shared_is_root=False).allowed_mask()
    assert free[1, 0] and free[2, 0]


def test_absorbable_mask_same_block_or_shared_parent():
    layout = LatentLayout(1, {"face": 2, "text": 1})  # s1 | face_1 face_2 | text_1
    expected = np.array([
        [0, 1, 1, 1],  # s1 is read by every decoder
        [0, 0, 1, 0],  # face_1 -> face_2 only; face -> s1 or text is read by other decoders
        [0, 1, 0, 0],
        [0, 0, 0, 0],  # text_1 is alone in its block and not shared
    ], dtype=bool)
    np.testing.assert_array_equal(layout.absorbable_mask(), expected)
    # prior knowledge does not change what a decoder reads
    knowing = LatentLayout(1, {"face": 2, "text": 1}, shared_is_root=False, forbidden=[("face_1", "face_2")])
    np.testing.assert_array_equal(knowing.absorbable_mask(), expected)
    no_shared = LatentLayout(0, {"a": 2, "b": 2}).absorbable_mask()
    assert no_shared[0, 1] and no_shared[2, 3] and not no_shared[0, 2] and not no_shared[1, 3]


def test_forbidden_blocks_tiers_single_edges_and_mask():
    layout = LatentLayout(
        0, {"a": 1, "b": 1, "c": 1},
        forbidden_blocks=[("a", "b")], tiers=[("c",), ("a", "b")], forbidden=[("b_1", "a_1")],
    )
    allowed = layout.allowed_mask()
    assert not allowed[0, 1]  # forbidden block a -> b
    assert not allowed[1, 0]  # single forbidden edge
    assert not allowed[0, 2] and not allowed[1, 2]  # later tier -> earlier tier
    assert allowed[2, 0] and allowed[2, 1]
    user = np.ones((3, 3), dtype=bool)
    user[2, 0] = False
    assert not LatentLayout(0, {"a": 1, "b": 1, "c": 1}, mask=user).allowed_mask()[2, 0]


def test_required_mask_and_roundtrip():
    layout = LatentLayout(1, {"face": 2, "text": 2}, required=[("text_1", "face_1")], forbidden=[("s1", "text_2")])
    req = layout.required_mask()
    assert req.sum() == 1 and req[3, 1]
    back = LatentLayout.from_dict(layout.to_dict())
    assert back.names == layout.names
    np.testing.assert_array_equal(back.allowed_mask(), layout.allowed_mask())
    np.testing.assert_array_equal(back.required_mask(), layout.required_mask())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(required=[("face_1", "s1")]), "conflict with forbidden"),
        (dict(required=[("face_1", "face_1")]), "conflict with forbidden"),
        (dict(required=[("face_1", "face_2")], forbidden=[("face_1", "face_2")]), "conflict with forbidden"),
        (
            dict(required=[("face_1", "face_2"), ("face_2", "face_1")]),
            r"directed cycle \(face_1 -> face_2, face_2 -> face_1\)",
        ),
        (dict(required=[("face_1", "nose")]), "unknown latent 'nose'"),
        (dict(forbidden_blocks=[("face", "audio")]), "unknown block 'audio'"),
        (dict(tiers=[("face",), ("face",)]), "more than one tier"),
        (dict(names=["a", "b"]), "expected 3 latent names"),
        (dict(names=["a", "a", "b"]), "unique"),
        (dict(mask=np.ones((2, 2), dtype=bool)), r"expected a \(3, 3\)"),
    ],
)
def test_layout_conflicts_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LatentLayout(1, {"face": 2}, **kwargs)


@pytest.mark.parametrize(
    "shared, dims, message",
    [
        (-1, {"face": 1}, "shared_dim"),
        (0, {}, "non-empty mapping"),
        (0, {"face": 0}, "no latent components"),
        (0, {"shared": 1}, "other than 'shared'"),
        (0, {"face": -2}, r"modality_dims\['face'\]"),
    ],
)
def test_bad_dimensions_raise(shared, dims, message):
    with pytest.raises(ValueError, match=message):
        LatentLayout(shared, dims)
