"""The optional measurement map: which features of a modality read which latents of its block."""

import numpy as np
import pytest
import torch

from pyro_personax import PersonaX
from pyro_personax.layout import MAPPED_CLASS, LatentLayout
from pyro_personax.models import PersonaXModel
from pyro_personax.models.networks import MaskedDecoder
from pyro_personax.models.spec import ModelSpec
from pyro_personax.synthetic.graphs import EXAMPLE_MEASUREMENT_MAP as MAP
from pyro_personax.synthetic.graphs import measurement_map_example


def _v_structure_data(seed: int, n: int = 2000):
    """``a_1 -> a_2 <- b_1``: one within-block and one cross-modal edge, observed through a true map."""
    return measurement_map_example(n, seed=seed)


def test_the_map_changes_the_class_of_the_within_block_edges_it_separates():
    plain = LatentLayout(1, {"a": 2, "b": 1})
    mapped = LatentLayout(1, {"a": 2, "b": 1}, measurement_map=MAP)
    assert plain.edge_classes()[1, 2] == "within-block" and not plain.identified_mask()[1, 2]
    assert mapped.edge_classes()[1, 2] == MAPPED_CLASS == mapped.edge_classes()[2, 1]
    assert mapped.identified_mask()[1, 2] and mapped.identified_mask()[2, 1]
    # the shared block is read by every group: its edges stay undecided, cross-modal ones identified
    assert mapped.edge_classes()[0, 1] == "shared->modality" and not mapped.identified_mask()[0, 1]
    assert mapped.identified_mask()[1, 3] and mapped.identified_mask()[3, 2]
    # one reader per group of features: s1 + a_1, s1 + a_2, then modality b
    np.testing.assert_array_equal(mapped.reader_mask(), [[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]])


def test_a_group_that_reads_both_ends_leaves_the_edge_undecided():
    # features 4-7 read a_1 and a_2: a_1 -> a_2 can be absorbed (every reader of a_2 reads a_1),
    # a_2 -> a_1 cannot (features 0-3 read a_1 but not a_2)
    layout = LatentLayout(0, {"a": 2}, measurement_map={"a": [([0, 1], ["a_1"]), ([2, 3], ["a_1", "a_2"])]})
    assert layout.edge_classes()[0, 1] == "within-block"
    assert layout.edge_classes()[1, 0] == MAPPED_CLASS


def test_the_map_round_trips_and_is_checked():
    layout = LatentLayout(0, {"a": 2, "b": 1}, measurement_map=MAP)
    again = LatentLayout.from_dict(layout.to_dict())
    assert again.measurement_map == layout.measurement_map
    assert LatentLayout.from_dict(LatentLayout(0, {"a": 2}).to_dict()).measurement_map == {}
    with pytest.raises(ValueError, match="unknown modality 'c'"):
        LatentLayout(0, {"a": 2}, measurement_map={"c": [([0], ["a_1"])]})
    with pytest.raises(ValueError, match=r"latents \['b_1'\] are not in block 'a'"):
        LatentLayout(0, {"a": 2, "b": 1}, measurement_map={"a": [([0], ["a_1", "b_1"]), ([1], ["a_2"])]})
    with pytest.raises(ValueError, match="feature 0 is in more than one group"):
        LatentLayout(0, {"a": 2}, measurement_map={"a": [([0], ["a_1"]), ([0], ["a_2"])]})
    with pytest.raises(ValueError, match=r"latents \['a_2'\] are read by no group"):
        LatentLayout(0, {"a": 2}, measurement_map={"a": [([0, 1], ["a_1"])]})
    with pytest.raises(ValueError, match="non-negative int column indices"):
        LatentLayout(0, {"a": 2}, measurement_map={"a": [([-1], ["a_1"]), ([1], ["a_2"])]})


def test_the_model_checks_the_map_against_the_data():
    data, _ = _v_structure_data(0, n=50)
    layout = LatentLayout(0, {"a": 2, "b": 1}, measurement_map={"a": [([0, 1], ["a_1"]), ([2, 3], ["a_2"])]})
    with pytest.raises(ValueError, match=r"cover the 8 features of 'a' once; features in no group: \[4, 5, 6, 7\]"):
        PersonaXModel(layout, ModelSpec.from_data(data))
    with pytest.raises(ValueError, match="measurement_map"):
        PersonaX(LatentLayout(0, {"a": 2, "b": 1}), latent_dims={"a": 2, "b": 1}, measurement_map=MAP)


def test_a_masked_decoder_feature_depends_on_its_group_inputs_only():
    net = MaskedDecoder(2, [([0, 3], [2, 0]), ([1, 3], [1])], 8)
    x = torch.randn(4, 2, 4, requires_grad=True)
    out = net(x)
    assert out.shape == (4, 2, 3)
    for feature, inputs in ((0, [0, 3]), (2, [0, 3]), (1, [1, 3])):
        (grad,) = torch.autograd.grad(out[..., feature].sum(), x, retain_graph=True)
        read = grad.abs().sum((0, 1)) > 0
        assert read.tolist() == [i in inputs for i in range(4)]
    with pytest.raises(ValueError, match="partition range"):
        MaskedDecoder(1, [([0], [0]), ([1], [2])], 8)


def test_mapped_model_decodes_each_group_from_its_latents():
    data, _ = _v_structure_data(0, n=50)
    layout = LatentLayout(0, {"a": 2, "b": 1}, measurement_map=MAP)
    model = PersonaXModel(layout, ModelSpec.from_data(data))
    z = torch.randn(5, 3, requires_grad=True)
    eta = torch.zeros(5, 2, model.nuisance_dims["a"])
    lat = z[:, layout.decoder_inputs("a")].unsqueeze(-2).expand(5, 2, 2)
    params = model.decoders["a"](torch.cat([lat, eta], -1))
    (grad,) = torch.autograd.grad(params[..., :4].sum(), z)
    assert grad[:, 0].abs().sum() > 0 and grad[:, 1:].abs().sum() == 0
    t = data.to_tensors()["a"]
    x = t[0][:5]
    assert model.likelihood("a", z, eta, (x, t[1][:5])).log_prob(x).shape == (5,)


def test_observe_latents_follows_the_map():
    data, truth = _v_structure_data(0, n=200)
    x = data.values["a"][:, 0]  # (N, 8), first measurement
    z = truth.latents
    corr = np.abs(np.corrcoef(np.c_[x, z].T)[:8, 8:])
    # features 0-3 are functions of a_1, which is independent of b_1; features 4-7 of a_2
    assert corr[:4, 2].max() < 0.2 and corr[4:, 1].min() > 0.1


@pytest.mark.slow
@pytest.mark.graph_stage
def test_the_map_makes_the_within_block_edge_recoverable():
    """With a true map the within-block edge of the v-structure is recovered; without it, it is undecided.

    The post-nonlinear latent transform keeps the collider's orientation from depending on
    the monotone distortion the encoder gives each latent (see ``latent_transform``).
    """
    data, truth = _v_structure_data(2)
    px = PersonaX(data, latent_dims={"a": 2, "b": 1}, measurement_map=MAP, latent_transform="spline")
    px.fit(data, num_chains=1, num_epochs=200, seed=2, progress=False)  # 1,600 steps, half the default
    P = px.edge_probabilities().to_numpy()
    assert P[0, 1] > 0.9 and P[2, 1] > 0.9  # a_1 -> a_2 (within-block, by the map) and b_1 -> a_2
    assert P[~truth.adjacency.astype(bool) & ~np.eye(3, dtype=bool)].max() < 0.1
    classes = px.edge_classes()
    assert classes.loc["a_1", "a_2"] == MAPPED_CLASS and classes.loc["b_1", "a_2"] == "cross-modal"
    plain = PersonaX(data, latent_dims={"a": 2, "b": 1})
    assert plain.edge_classes().loc["a_1", "a_2"] == "within-block"
    assert not plain.layout.identified_mask()[0, 1]


def test_a_mapped_fit_saves_loads_and_labels_its_outputs(tmp_path):
    data, _ = _v_structure_data(0, n=120)
    px = PersonaX(data, latent_dims={"a": 2, "b": 1}, measurement_map=MAP, latent_transform="spline")
    px.fit(data, num_chains=1, num_epochs=1, batch_size=60, progress=False, device="cpu", refine_graph=False)
    px.save(tmp_path / "model")
    again = PersonaX.load(tmp_path / "model")
    assert again.layout.measurement_map == px.layout.measurement_map
    np.testing.assert_allclose(again.edge_probabilities().to_numpy(), px.edge_probabilities().to_numpy())
    np.testing.assert_allclose(again.get_latent_representation(data), px.get_latent_representation(data), atol=1e-6)
    idata = px.to_inference_data(num_samples=20, seed=0)
    assert MAPPED_CLASS in idata.posterior.attrs["edge_classes"]
    assert "measurement_map" in idata.posterior.attrs["layout"]
