"""A model extended from outside the package keeps the whole PersonaX path.

``tests/extension/personax_counts`` adds a Poisson likelihood and a decoder through the
public hooks; it is fitted through ``PersonaX`` with chain alignment, InferenceData,
save / load and the edge report.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from pyro.distributions import Poisson

from pyro_personax import PersonaX
from pyro_personax.data import MultiModalData
from pyro_personax.inference.report import edge_report
from pyro_personax.models import get_likelihood, register_likelihood, registered_likelihoods

EXTENSION = Path(__file__).parent / "extension"


@pytest.fixture(scope="module")
def counts():
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(EXTENSION))
    import personax_counts

    yield personax_counts
    mp.undo()


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    face = s[:, None, None] + 0.3 * rng.normal(size=(n, 2, 3))
    rate = np.exp(0.5 * s)[:, None, None] * np.ones((n, 2, 4))
    return MultiModalData({"face": face, "counts": rng.poisson(rate).astype(float)}, likelihoods={"counts": "poisson"})


def test_a_likelihood_and_a_decoder_added_outside_the_package_fit_save_load_and_report(counts, tmp_path):
    assert "poisson" in registered_likelihoods() and get_likelihood("poisson") is counts.POISSON
    data = _data()
    px = PersonaX(
        data, latent_dims={"face": 1, "counts": 1}, shared_dim=1, mechanism="linear", model_cls=counts.SkipDecoderModel
    )
    px.fit(data, num_epochs=2, batch_size=60, num_chains=2, progress=False, device="cpu")
    model = px.model(1)
    assert isinstance(model.decoders["counts"], counts.SkipDecoder)
    batch = data.subset(np.arange(3)).to_tensors()
    eta = torch.zeros(3, 2, model.nuisance_dims["counts"])
    lik = model.likelihood("counts", torch.zeros(3, 3), eta, batch["counts"])
    assert isinstance(lik.base.base_dist, Poisson) and lik.log_prob(batch["counts"][0]).shape == (3,)
    assert px.chain_alignment is not None and px.chain_alignment.num_chains == 2
    idata = px.to_inference_data(data, num_samples=5, max_entities=30)
    assert idata.posterior_predictive["x_counts"].shape[-2:] == (2, 4)
    predicted = idata.posterior_predictive["x_counts"].to_numpy()
    assert (predicted >= 0).all() and np.array_equal(predicted, np.round(predicted))  # Poisson draws
    px.save(tmp_path / "model")
    loaded = PersonaX.load(tmp_path / "model")
    assert loaded.model_cls is counts.SkipDecoderModel
    assert isinstance(loaded.model(0).decoders["face"], counts.SkipDecoder)
    np.testing.assert_allclose(loaded.edge_probabilities().to_numpy(), px.edge_probabilities().to_numpy())
    np.testing.assert_allclose(loaded.get_latent_representation(data), px.get_latent_representation(data))
    idata_loaded = loaded.to_inference_data(data, num_samples=5, max_entities=30)
    out = edge_report(idata_loaded, tmp_path / "report")
    assert (out / "report.html").is_file() and "face_1" in (out / "edges.csv").read_text()


def test_registering_a_likelihood_is_checked(counts):
    with pytest.raises(ValueError, match="'poisson' is already registered"):
        register_likelihood(counts.PoissonLikelihood())
    with pytest.raises(TypeError, match="expected a Likelihood instance"):
        register_likelihood("poisson")
    with pytest.raises(ValueError, match="unknown likelihood 'gamma'; registered are"):
        get_likelihood("gamma")


def test_a_model_class_load_cannot_import_is_refused_at_save(tmp_path, counts):
    class Local(counts.SkipDecoderModel):
        pass

    data = _data(40)
    px = PersonaX(data, latent_dims={"face": 1, "counts": 1}, mechanism="linear", model_cls=Local)
    px.fit(data, num_chains=1, num_epochs=1, batch_size=40, progress=False, device="cpu", refine_graph=False)
    with pytest.raises(ValueError, match=r"model_cls '.*<locals>.Local' cannot be imported by its name"):
        px.save(tmp_path / "model")
    with pytest.raises(TypeError, match="model_cls: expected PersonaXModel or a subclass of it"):
        PersonaX(data, latent_dims={"face": 1, "counts": 1}, model_cls=torch.nn.Linear)
