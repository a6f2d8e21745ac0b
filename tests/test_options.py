"""One set of defaults: PersonaX.fit, fit_chains, the trainer, the run configuration and the
CLI read the fit options from FitOptions, and every option is reachable from a run
configuration."""

import inspect
from dataclasses import fields

import pytest

from pyro_personax import PersonaX
from pyro_personax.cli.config import read_run_config
from pyro_personax.inference import AugLagConfig, FitOptions, GraphRefinement, TrainerConfig, fit_chains

DEFAULTS = FitOptions()
NAMES = [f.name for f in fields(FitOptions)]


def test_fit_keywords_are_the_fit_options_with_their_defaults():
    params = inspect.signature(PersonaX.fit).parameters
    keywords = {n: p.default for n, p in params.items() if p.kind == p.KEYWORD_ONLY}
    assert set(keywords) - {"checkpoint_dir", "resume"} == set(NAMES)
    for name in NAMES:
        assert keywords[name] == getattr(DEFAULTS, name), name


def test_fit_chains_and_the_trainer_share_the_defaults():
    assert inspect.signature(fit_chains).parameters["num_chains"].default == DEFAULTS.num_chains
    built, plain = DEFAULTS.trainer_config(), TrainerConfig()
    for f in fields(TrainerConfig):
        if f.name != "graph_refinement":  # the suite shortens the graph stage (conftest)
            assert getattr(built, f.name) == getattr(plain, f.name), f.name
    assert plain.graph_warmup_epochs == plain.num_epochs // 10


def test_the_run_configuration_reaches_every_fit_option(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[data]\ndataset = "celeb"\npath = "x"\n[model]\nlatent_dims = { face = 1 }\n')
    assert read_run_config(path).fit == DEFAULTS  # an empty [fit] is the defaults
    values = {
        "num_epochs": 7, "batch_size": 32, "learning_rate": 0.02, "graph_learning_rate": 0.1, "num_chains": 2,
        "seed": 3, "device": "cpu", "progress": False, "validation_fraction": 0.2, "patience": 4, "min_delta": 0.5,
        "sparsity": 1.5, "clip_norm": 5.0, "lr_decay": 0.99, "temperature": [2.0, 0.5], "anneal_epochs": 5,
        "kl_warmup_epochs": 2, "graph_warmup_epochs": 1, "graph_particles": 4, "mechanism_fit_weight": 0.5,
        "mechanisms_in_elbo": True, "checkpoint_every": 2, "num_threads": 2, "num_workers": 2,
    }
    lines = [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in values.items()]
    lines += ["[fit.auglag]", "tolerance = 0.001", "[fit.refine_graph]", "num_restarts = 2"]
    path.write_text(path.read_text() + "[fit]\n" + "\n".join(lines).replace("'", '"') + "\n")
    fit = read_run_config(path).fit
    assert set(values) | {"auglag", "refine_graph", "data_shards"} == set(NAMES)
    for name, value in values.items():
        assert getattr(fit, name) == (tuple(value) if isinstance(value, list) else value), name
    assert fit.auglag == AugLagConfig(tolerance=0.001) and fit.refine_graph == GraphRefinement(num_restarts=2)
    # data-parallel shards exclude chains in worker processes: a table of their own
    path.write_text(path.read_text().replace("num_workers = 2", "data_shards = 4"))
    assert read_run_config(path).fit.data_shards == 4


@pytest.mark.parametrize(
    "table, message",
    [
        ({"num_epoch": 3}, r"unknown keys \['num_epoch'\]"),
        ({"num_chains": 0}, "num_chains: expected an int >= 1"),
        ({"num_epochs": 0}, r"num_epochs: expected None or an int >= 1; found 0"),
        ({"num_epochs": 2.5}, r"num_epochs: expected None or an int >= 1; found 2.5"),
        ({"patience": True}, r"patience: expected None or an int >= 1; found True"),
        ({"seed": -1}, r"seed: expected an int >= 0; found -1"),
        ({"learning_rate": -1.0}, "learning_rate: expected a finite value > 0"),
        ({"auglag": {"tol": 1}}, r"auglag: unknown keys \['tol'\]"),
        ({"refine_graph": "yes"}, "refine_graph: expected True, False or a GraphRefinement"),
        ({"validation_fraction": 1.5}, r"validation_fraction: expected None or a number in \[0, 1\)"),
        ({"temperature": [1.0]}, r"temperature: expected \(initial, final\)"),
        ({"num_workers": 0}, "num_workers: expected an int >= 1; found 0"),
        ({"data_shards": 0}, "data_shards: expected None or an int >= 1; found 0"),
        ({"data_shards": 512}, r"data_shards: expected at most batch_size \(256\) shards per minibatch; found 512"),
        ({"data_shards": 2, "num_workers": 2}, "num_workers: chains in worker processes .* cannot be combined"),
    ],
)
def test_illegal_options_are_refused_at_construction_naming_the_option(table, message):
    with pytest.raises(ValueError, match=message):
        FitOptions.from_mapping(table, "run configuration [fit]")


def test_the_demo_and_simulate_use_the_library_defaults_but_the_demos_graph_moves(tmp_path):
    from pyro_personax.cli import build_parser
    from pyro_personax.cli.simulate import _run_toml
    from pyro_personax.layout import LatentLayout

    args = build_parser().parse_args(["demo"])
    assert args.num_chains is None  # resolved to FitOptions().num_chains when the demo runs
    assert args.num_epochs is None  # PersonaX.fit's default: 400 epochs on the demo's 2,000 people
    # the one setting the demo chooses for its data: moves between graphs in the graph stage
    # (the library's default is none; the README advises them where blocks share several identified edges)
    assert args.graph_moves == 3 and GraphRefinement().graph_moves == 0
    assert "num_chains" not in _run_toml('dataset = "celeb"', LatentLayout(0, {"face": 1}), fit_epochs=5)


def test_the_model_options_have_one_set_of_defaults():
    from pyro_personax.models import ModelOptions, PersonaXGuide, PersonaXModel
    from pyro_personax.models.options import GUIDE_FIELDS, MODEL_FIELDS

    defaults = ModelOptions()
    keywords = {
        n: p.default for n, p in inspect.signature(PersonaX.__init__).parameters.items() if p.kind == p.KEYWORD_ONLY
    }
    layout_keys = {"latent_dims", "shared_dim", "shared_is_root", "forbidden", "required", "measurement_map"}
    assert set(keywords) - layout_keys - {"model_cls", "guide_cls"} == {f.name for f in fields(ModelOptions)}
    for cls, names in ((PersonaXModel, MODEL_FIELDS), (PersonaXGuide, GUIDE_FIELDS)):
        params = inspect.signature(cls.__init__).parameters
        assert set(names) == {n for n, p in params.items() if p.kind == p.KEYWORD_ONLY} - {"name"}
        for name in names:
            assert params[name].default == getattr(defaults, name) == keywords[name], (cls.__name__, name)


def test_the_run_configuration_reaches_every_model_option(tmp_path):
    from pyro_personax.models import ModelOptions

    path = tmp_path / "run.toml"
    path.write_text(
        '[data]\ndataset = "celeb"\npath = "x"\n[model]\nlatent_dims = { face = 1 }\nmechanism = "linear"\n'
        'noise_flow = "affine"\nnuisance_dim = { face = 3 }\nposterior_covariance = "full"\nedge_prior = 0.3\n'
    )
    model = read_run_config(path).model
    assert model.options == ModelOptions(
        mechanism="linear", noise_flow="affine", nuisance_dim={"face": 3}, posterior_covariance="full", edge_prior=0.3
    )
    path.write_text(path.read_text().replace("edge_prior = 0.3", "edge_prior = 3.0"))
    with pytest.raises(ValueError, match=r"run configuration \[model\]: edge_prior: expected a number in \(0, 1\)"):
        read_run_config(path)


def test_the_default_epochs_give_small_data_sets_enough_steps():
    from pyro_personax.inference import DEFAULT_NUM_EPOCHS, default_num_epochs

    assert DEFAULTS.num_epochs is None
    assert DEFAULTS.trainer_config().num_epochs == DEFAULT_NUM_EPOCHS == 100  # without the data's size
    assert default_num_epochs(9000, 256) == 100  # 36 steps an epoch: 3,600 steps
    assert default_num_epochs(32 * 256, 256) == 100  # 32 steps an epoch: exactly 3,200
    assert default_num_epochs(31 * 256, 256) == 104  # 31 steps an epoch: 3,224 steps
    assert default_num_epochs(1800, 256) == 400  # the demo's training rows: 8 steps an epoch
    assert default_num_epochs(10, 256) == 3200  # one step an epoch
    built = DEFAULTS.trainer_config(num_train=1800)
    assert built.num_epochs == 400 and built.graph_warmup_epochs == 40  # the schedules follow the epochs
    assert FitOptions(num_epochs=7).trainer_config(num_train=1800).num_epochs == 7  # a given value is kept
    for args in ((0, 256), (100, 0), (100.0, 256), (True, 256)):
        with pytest.raises(ValueError, match="expected an int >= 1"):
            default_num_epochs(*args)


def test_fit_resolves_the_default_epochs_from_its_training_rows(monkeypatch):
    import pyro_personax.facade as facade
    from pyro_personax.synthetic import persona

    seen = []

    class Stop(Exception):
        pass

    def record(build, train, validation=None, *, config, **kw):
        seen.append((config.num_epochs, facade.num_rows(train)))
        raise Stop

    monkeypatch.setattr(facade, "fit_chains", record)
    dataset, truth = persona(300, seed=0)
    data = dataset.to_multimodal()
    px = PersonaX(data, latent_dims=dict(truth.layout.modality_dims), shared_dim=truth.layout.shared_dim)
    for kw in ({}, {"batch_size": 100}, {"validation_fraction": None}, {"num_epochs": 7}):
        with pytest.raises(Stop):
            px.fit(data, progress=False, device="cpu", **kw)
    # 270 training rows: 2 minibatches of 256 (1,600 epochs), 3 of 100 (1,067); 300 rows: 2 of 256
    assert seen == [(1600, 270), (1067, 270), (1600, 300), (7, 270)]


def test_the_default_epochs_survive_the_run_folders_configuration(tmp_path):
    import json

    from pyro_personax.cli.config import run_config_dict

    path = tmp_path / "run.toml"
    path.write_text('[data]\ndataset = "celeb"\npath = "x"\n[model]\nlatent_dims = { face = 1 }\n')
    written = run_config_dict(read_run_config(path))
    assert written["fit"]["num_epochs"] is None  # resolved again from the run's data by a refit
    again = tmp_path / "run_config.json"
    again.write_text(json.dumps(written))
    assert read_run_config(again).fit == DEFAULTS
