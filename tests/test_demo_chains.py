"""The maps and scores of ``benchmarks/demo_chains.py``: bases inside blocks, as densities of the same latents."""

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("demo_chains")


BLOCKS = ["shared", "face", "face", "text", "text", "text"]


def test_the_oracle_map_undoes_a_mixing_inside_each_block_and_never_across(bench):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(500, 6))
    mixing = bench.near_identity_rotation(BLOCKS, rng, spread=1.0) * rng.uniform(0.5, 2.0, size=6)
    z = truth @ mixing
    M = bench.oracle_map(z, truth, BLOCKS)
    assert np.allclose((z - z.mean(0)) @ M, truth - truth.mean(0), atol=1e-8)
    across = np.not_equal.outer(np.array(BLOCKS), np.array(BLOCKS))
    assert np.all(M[across] == 0)


def test_rotations_are_orthogonal_inside_blocks(bench):
    R = bench.near_identity_rotation(BLOCKS, np.random.default_rng(1))
    assert np.allclose(R @ R.T, np.eye(6))
    assert R[0, 0] == 1.0 and np.all(R[1:3, 3:] == 0)
    assert np.all(np.diag(R) > 0)  # near the identity: no block flipped or permuted


def test_a_basis_is_scored_with_the_log_determinant_of_the_whole_map(bench):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(1000, 3)) * [1.0, 2.0, 3.0]
    M = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    w, logdet = bench.standardised(z, M)
    assert np.allclose(w.std(0), 1.0)
    scale = (z @ M).std(0)
    assert logdet == pytest.approx(np.log(2.0) - np.log(scale).sum())


def test_identified_differences_name_missed_and_spurious_edges_after_matching(bench):
    truth = np.zeros((3, 3), dtype=int)
    truth[0, 2] = 1
    identified = np.ones((3, 3), dtype=bool)
    G = np.zeros((3, 3), dtype=int)
    G[1, 0] = 1  # learned latent 1 is true latent 0's match under perm [1, 0, 2]
    out = bench.differing_identified(G, [1, 0, 2], truth, identified, ["a", "b", "c"])
    assert out == ["a->b (spurious)", "a->c (missed)"]


def test_likelihood_latents_raise_the_likelihood_and_leave_the_model_as_it_was(bench):
    import pandas as pd
    import torch

    from pyro_personax.data.multimodal import MultiModalData
    from pyro_personax.facade import PersonaX
    from pyro_personax.inference import local_params
    from pyro_personax.inference.batches import index_batch

    rng = np.random.default_rng(0)
    n = 80
    z = rng.normal(size=(n, 2))
    face = np.stack([z @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(n, 4)) for _ in range(2)], axis=1)
    mask = np.ones((n, 2), dtype=bool)
    mask[::5, 1] = False
    data = MultiModalData({"face": face.astype(np.float32)}, masks={"face": mask},
                          tabular=pd.DataFrame({"height": rng.normal(size=n)}))
    px = PersonaX(data, latent_dims={"face": 1, "bio": 1}, shared_dim=0, mechanism="linear", noise_flow="affine",
                  decoder_hidden_dim=8, encoder_hidden_dim=8, nuisance_dim=1)
    px.fit(data, num_chains=1, seed=0, num_epochs=2, batch_size=40, progress=False, device="cpu")
    model, guide = px.model(0), px.guide(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with local_params():
        batch = index_batch(data.to_tensors(fill=False), torch.arange(n))
        latents, start, end = bench.likelihood_latents(model, guide, batch, steps=30, lr=0.05)
        means = guide.latent_posterior(batch)[0].double().numpy()
    assert latents.shape == means.shape == (n, 2)
    assert end > start + 0.1  # the encoder's means are not the likelihood's maximum after two epochs
    assert not np.allclose(latents, means)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())


def test_the_shared_part_is_removed_from_modality_latents_only(bench):
    rng = np.random.default_rng(3)
    s = rng.normal(size=(2000, 1))
    e = rng.uniform(-1, 1, size=(2000, 2))
    truth = np.column_stack([s, np.tanh(2 * s[:, 0]) + 0.3 * e[:, 0], e[:, 1]])
    blocks = ["shared", "face", "face"]
    out = bench.less_shared_part(truth, blocks)
    assert np.array_equal(out[:, 0], truth[:, 0])
    assert np.corrcoef(out[:, 1], e[:, 0])[0, 1] > 0.99  # the shared parent's part is gone
    assert np.corrcoef(truth[:, 1], e[:, 0])[0, 1] < 0.5
    assert np.corrcoef(out[:, 2], truth[:, 2])[0, 1] > 0.99  # a latent without a shared parent is kept
    assert np.array_equal(bench.less_shared_part(truth[:, 1:], blocks[1:]), truth[:, 1:])
