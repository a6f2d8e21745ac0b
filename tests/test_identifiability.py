"""Edge classes, the block-level graph and the Condition 4.3 check on hand-made layouts."""

import logging

import numpy as np
import pandas as pd
import pytest

from pyro_personax.identifiability import (
    block_probabilities,
    latent_block_probabilities,
    select_edges,
    unpinned_latents,
)
from pyro_personax.layout import LatentLayout


def test_edge_classes_of_one_block():
    layout = LatentLayout(0, {"face": 3})
    classes = layout.edge_classes()
    off = ~np.eye(3, dtype=bool)
    assert set(classes[off]) == {"within-block"}
    assert not layout.identified_mask().any()
    np.testing.assert_array_equal(layout.absorbable_mask(), off)


def test_edge_classes_with_a_shared_block_and_two_modalities():
    layout = LatentLayout(1, {"face": 2, "text": 1}, shared_is_root=False)
    C = pd.DataFrame(layout.edge_classes(), index=layout.names, columns=layout.names)
    assert C.loc["s1", "face_1"] == "shared->modality" and C.loc["face_1", "s1"] == "modality->shared"
    assert C.loc["face_1", "face_2"] == "within-block"
    assert C.loc["face_2", "text_1"] == "cross-modal" and C.loc["text_1", "face_1"] == "cross-modal"
    assert C.loc["s1", "s1"] == ""
    identified = layout.identified_mask()
    assert identified.sum() == 4  # face_1/face_2 <-> text_1
    # the classes follow the one rule of which latents a decoder reads
    assert layout.decoder_inputs("face").tolist() == [0, 1, 2] and layout.decoder_inputs("text").tolist() == [0, 3]
    np.testing.assert_array_equal(identified, ~layout.absorbable_mask() & (C.to_numpy() == "cross-modal"))
    assert not (identified & layout.absorbable_mask()).any()


def test_select_edges_and_block_probabilities():
    layout = LatentLayout(1, {"face": 2, "text": 1})
    P = np.full((4, 4), 0.5)
    np.fill_diagonal(P, 0)
    ident = select_edges(layout, P, "identified")
    und = select_edges(layout, P, "undecided")
    np.testing.assert_array_equal(ident + und, P)
    assert ident[1, 3] == 0.5 and ident[0, 1] == 0.0 and und[1, 2] == 0.5
    with pytest.raises(ValueError, match="edges: expected one of"):
        select_edges(layout, P, "cross")
    draws = np.zeros((4, 4, 4), dtype=int)
    draws[0, 1, 3] = 1  # face_1 -> text_1
    draws[1, 1, 3] = draws[1, 2, 3] = 1  # two edges face -> text: one draw
    draws[2, 0, 2] = 1  # s1 -> face_2
    B = block_probabilities(layout, draws)
    assert list(B.index) == ["shared", "face", "text"]
    assert B.loc["face", "text"] == 0.5 and B.loc["shared", "face"] == 0.25 and B.loc["text", "face"] == 0.0


def test_latent_block_probabilities_count_a_latent_linked_with_any_latent_of_a_block():
    layout = LatentLayout(1, {"face": 2, "text": 2})  # s1, face_1, face_2, text_1, text_2
    draws = np.zeros((4, 5, 5), dtype=int)
    draws[0, 1, 3] = 1  # face_1 -> text_1
    draws[1, 4, 1] = 1  # text_2 -> face_1: the link, reversed and with the other text latent
    draws[2, 1, 2] = draws[2, 1, 4] = draws[2, 1, 3] = 1  # face_1 -> face_2, and two edges into text: one draw
    draws[3, 0, 3] = 1  # s1 -> text_1
    L = latent_block_probabilities(layout, draws)
    assert list(L.index) == list(layout.names) and list(L.columns) == ["shared", "face", "text"]
    assert (L.index.name, L.columns.name) == ("latent", "block")
    assert L.loc["face_1", "text"] == 0.75 and L.loc["face_1", "face"] == 0.25 and L.loc["face_2", "text"] == 0.0
    assert L.loc["text_1", "face"] == 0.5 and L.loc["text_1", "shared"] == 0.25 and L.loc["s1", "text"] == 0.25
    out, into = (latent_block_probabilities(layout, draws, d) for d in ("out", "in"))
    assert out.loc["face_1", "text"] == 0.5 and into.loc["face_1", "text"] == 0.25
    assert out.loc["text_2", "face"] == 0.25 and into.loc["text_2", "face"] == 0.25
    # a relabelling inside the text block leaves every face latent's row as it is
    swap = np.array([0, 1, 2, 4, 3])
    swapped = latent_block_probabilities(layout, draws[:, swap][:, :, swap])
    np.testing.assert_array_equal(swapped.loc[["face_1", "face_2"]], L.loc[["face_1", "face_2"]])
    # the block-level graph is the "out" table's any-over-rows: with one draw it is exact
    for g in draws:
        B = block_probabilities(layout, g[None])
        children = latent_block_probabilities(layout, g[None], "out")
        assert B.loc["face", "text"] == children.loc[["face_1", "face_2"], "text"].max()
    # weighted draws (an enumerated posterior): the first graph alone, then half each of the first two
    weighted = latent_block_probabilities(layout, draws, weights=[3.0, 0, 0, 0])
    assert weighted.loc["face_1", "text"] == 1.0 and weighted.loc["text_2", "face"] == 0.0
    assert latent_block_probabilities(layout, draws, weights=[1, 1, 0, 0]).loc["text_2", "face"] == 0.5
    with pytest.raises(ValueError, match="weights: expected 4 finite non-negative values"):
        latent_block_probabilities(layout, draws, weights=[1, -1, 0, 0])
    with pytest.raises(ValueError, match="direction: expected one of"):
        latent_block_probabilities(layout, draws, "both")
    with pytest.raises(ValueError, match=r"draws: expected shape \(S, D, D\)"):
        latent_block_probabilities(layout, draws[0])
    assert latent_block_probabilities(LatentLayout(0, {"face": 1, "text": 1}), draws[:, 1:3, 1:3]).shape == (2, 2)


def test_unpinned_latents_are_modality_latents_without_a_cross_modal_neighbour():
    layout = LatentLayout(1, {"face": 2, "text": 2})
    P = np.zeros((5, 5))
    P[1, 3] = 0.9  # face_1 -> text_1 (cross-modal)
    P[1, 2] = 0.95  # face_1 -> face_2 (within a block: does not pin face_2)
    P[0, 4] = 0.99  # s1 -> text_2 (shared: does not pin text_2)
    assert unpinned_latents(layout, P) == ["face_2", "text_2"]
    P[4, 2] = 0.7
    assert unpinned_latents(layout, P) == []
    assert unpinned_latents(layout, P, threshold=0.8) == ["face_2", "text_2"]


def test_fit_warns_about_unpinned_latents_and_graph_holds_identified_edges(caplog):
    from pyro_personax import PersonaX
    from pyro_personax.data import MultiModalData

    rng = np.random.default_rng(0)
    data = MultiModalData({"face": rng.normal(size=(80, 2, 3)), "text": rng.normal(size=(80, 2, 3))})
    px = PersonaX(data, latent_dims={"face": 2, "text": 1}, shared_dim=1, mechanism="linear")
    with caplog.at_level(logging.WARNING, logger="pyro_personax.facade"):
        px.fit(data, num_chains=1, num_epochs=2, batch_size=40, progress=False, device="cpu", validation_fraction=None)
    # independent noise: nothing is linked across modalities, so no modality latent is pinned
    assert any("Condition 4.3" in r.getMessage() and "face_1" in r.getMessage() for r in caplog.records)
    g = px.graph(threshold=0.0)
    assert all(d["edge_class"] == "cross-modal" for _, _, d in g.edges(data=True))
    g_all = px.graph(threshold=0.0, edges="all")
    assert {d["edge_class"] for _, _, d in g_all.edges(data=True)} - {"cross-modal"}
    assert px.edge_classes().loc["s1", "text_1"] == "shared->modality"
    B = px.block_graph(num_samples=200)
    assert B.shape == (3, 3) and ((B.to_numpy() >= 0) & (B.to_numpy() <= 1)).all()
    L = px.latent_block_graph(num_samples=200)
    draws = px.sample_posterior(200)["edges"]
    np.testing.assert_array_equal(L.to_numpy(), latent_block_probabilities(px.layout, draws.reshape(-1, 4, 4)))
    assert list(L.columns) == list(B.columns) and list(L.index) == list(px.layout.names)
    with pytest.raises(ValueError, match="direction: expected one of"):
        px.latent_block_graph(direction="to")
