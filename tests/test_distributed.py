"""Data-parallel training (torch.distributed, DDP) and chains in worker processes.

The data-parallel fit's result is set by ``data_shards`` and not by the number of
processes: two gloo processes with one shard each must give the edge probabilities and
parameters of one process that computes both shards, up to the order of the sums over
processes (tolerance 1e-6; on CPU they agree bitwise). The one-process trainer without
shards draws from one random stream and differs by Monte Carlo noise, so it is not the
reference here.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from pyro_personax.inference import FitOptions, TrainerConfig, fit_chains
from pyro_personax.inference.distributed import ProcessGroup, ShardedChainTrainer, process_device

# Runs under torchrun (every process) and, imported, in the test process.
SCRIPT = r'''
import json, os, sys
import numpy as np, torch
import pyro_personax.inference.trainer as trainer_module
from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.facade import PersonaX
from pyro_personax.inference import AugLagConfig, GraphRefinement
from pyro_personax.inference.distributed import init_distributed, process_group, shutdown_distributed


def tiny_data(n=96):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2))
    face = np.stack([z @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(n, 4)) for _ in range(2)], axis=1)
    text = np.stack([z[:, :1] @ rng.normal(size=(1, 3)) + 0.1 * rng.normal(size=(n, 3)) for _ in range(2)], axis=1)
    return MultiModalData({"face": face.astype(np.float32), "text": text.astype(np.float32)})


def fit(out, data_shards, device="cpu"):
    """Fit one chain with each graph posterior (the order one's loss is GraphParticleELBO, the
    pairwise one's Pyro's ELBO module); write this process's edge probabilities, parameters
    and checkpoint writes."""
    for graph_posterior in ("order", "pairwise"):
        fit_one(out, data_shards, device, graph_posterior)


def fit_one(out, data_shards, device, graph_posterior):
    torch.set_num_threads(1)
    writes, save = [], trainer_module.save_checkpoint
    trainer_module.save_checkpoint = lambda path, state: (writes.append(str(path)), save(path, state))
    try:
        data = tiny_data()
        px = PersonaX(data, latent_dims={"face": 1, "text": 1}, shared_dim=1, mechanism="linear",
                      noise_flow="affine", decoder_hidden_dim=8, encoder_hidden_dim=8, nuisance_dim=1,
                      graph_posterior=graph_posterior)
        px.fit(data, num_chains=1, num_epochs=2, batch_size=24, progress=False, device=device, seed=1,
               data_shards=data_shards, checkpoint_dir=os.path.join(out, graph_posterior),
               refine_graph=GraphRefinement(mechanism_steps=10, graph_steps=10, num_restarts=1),
               auglag=AugLagConfig(steps_per_round=3, num_graph_samples=8))
    finally:
        trainer_module.save_checkpoint = save
    model, guide = px.chains.models[0], px.chains.guides[0]
    group = process_group()
    every = [p.detach().cpu().flatten() for p in [*model.parameters(), *guide.parameters()]]
    record = {
        "rank": group.rank,
        "world_size": group.world_size,
        "backend": group.backend,
        "edge_probabilities": px.chains.edge_probabilities().tolist(),
        "graph_parameters": [p.detach().cpu().flatten().tolist() for p in guide.graph_parameters()],
        "parameters": torch.cat(every).tolist(),
        "checkpoint_writes": writes,
    }
    with open(os.path.join(out, f"rank_{group.rank}_{graph_posterior}.json"), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    init_distributed(device)
    try:
        fit(sys.argv[1], None, device)
    finally:
        shutdown_distributed()
'''


POSTERIORS = ("order", "pairwise")


def _script(tmp_path):
    path = tmp_path / "ddp_fit.py"
    path.write_text(SCRIPT)
    return path


def _script_module():
    """The script's functions, in this process."""
    module = types.ModuleType("ddp_fit")
    exec(SCRIPT, module.__dict__)
    return module


def _torchrun(tmp_path, nproc: int, device: str) -> list[dict]:
    out = tmp_path / f"run_{nproc}"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(_script(tmp_path)), str(out), device]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {g: [json.loads((out / f"rank_{r}_{g}.json").read_text()) for r in range(nproc)] for g in POSTERIORS}


def _in_process(tmp_path, data_shards: int) -> dict:
    out = tmp_path / f"one_process_{data_shards}"
    out.mkdir()
    _script_module().fit(str(out), data_shards)
    return {g: json.loads((out / f"rank_0_{g}.json").read_text()) for g in POSTERIORS}


@pytest.mark.parametrize("graph_posterior", POSTERIORS)
def test_two_gloo_processes_match_one_process_with_the_same_shards(two_processes, graph_posterior):
    runs, one = two_processes
    ranks, one = runs[graph_posterior], one[graph_posterior]
    assert [(r["rank"], r["world_size"], r["backend"]) for r in ranks] == [(0, 2, "gloo"), (1, 2, "gloo")]
    # the graph (and every other) parameter is the same on both processes, bit for bit
    assert ranks[0]["graph_parameters"] == ranks[1]["graph_parameters"]
    assert ranks[0]["parameters"] == ranks[1]["parameters"]
    # checkpoints are written once, by process 0: one per epoch, one file
    assert len(ranks[0]["checkpoint_writes"]) == 2 and ranks[1]["checkpoint_writes"] == []
    assert len({*ranks[0]["checkpoint_writes"]}) == 1 and ranks[0]["checkpoint_writes"][0].endswith("chain_0.pt")
    # one process computing both shards: the same fit up to the order of the sums over processes
    np.testing.assert_allclose(ranks[0]["edge_probabilities"], one["edge_probabilities"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ranks[0]["parameters"], one["parameters"], rtol=0, atol=1e-6)
    assert len(one["checkpoint_writes"]) == 2 and one["world_size"] == 1


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Two gloo processes under torchrun, and one process that computes both shards."""
    tmp = tmp_path_factory.mktemp("ddp")
    return _torchrun(tmp, 2, "cpu"), _in_process(tmp, data_shards=2)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP with nccl needs 2 GPUs")
def test_two_nccl_processes_on_two_gpus(tmp_path):
    ranks = _torchrun(tmp_path, 2, "cuda")["order"]
    assert [r["backend"] for r in ranks] == ["nccl", "nccl"]
    assert ranks[0]["graph_parameters"] == ranks[1]["graph_parameters"]
    assert len(ranks[0]["checkpoint_writes"]) == 2 and ranks[1]["checkpoint_writes"] == []


def test_shards_are_checked_and_the_cuda_device_follows_the_local_rank():
    with pytest.raises(ValueError, match=r"data_shards: expected a multiple of the number of processes \(2\); found 3"):
        ShardedChainTrainer(None, None, None, TrainerConfig(), 0, 0, "cpu", num_shards=3, group=ProcessGroup(0, 2))
    with pytest.raises(ValueError, match=r"data_shards: expected at most batch_size \(4\) shards"):
        ShardedChainTrainer(
            None, None, None, TrainerConfig(batch_size=4), 0, 0, "cpu", num_shards=8, group=ProcessGroup()
        )
    assert process_device("cpu", ProcessGroup(1, 2, 1, "gloo")) == torch.device("cpu")
    with pytest.raises(ValueError, match="data_shards: expected None or an int >= 1; found 0"):
        FitOptions(data_shards=0)


# ---------------------------------------------------------------------------- chains in workers
def _fit_two_chains(num_workers: int):
    from pyro_personax.facade import PersonaX

    data = _script_module().tiny_data()
    px = PersonaX(data, latent_dims={"face": 1, "text": 1}, shared_dim=1, mechanism="linear", noise_flow="affine",
                  decoder_hidden_dim=8, encoder_hidden_dim=8, nuisance_dim=1)  # fmt: skip
    px.fit(data, num_chains=2, num_epochs=2, batch_size=24, progress=False, device="cpu", seed=5,
           num_workers=num_workers, refine_graph=False)  # fmt: skip
    return px


def test_chains_in_two_workers_equal_the_sequential_chains_bitwise():
    """Each chain is a function of its seed, the data, the settings and the thread count only, so
    the same CPU gives the same bits whichever process runs it."""
    sequential, parallel = _fit_two_chains(1), _fit_two_chains(2)
    np.testing.assert_array_equal(
        sequential.chains.chain_edge_probabilities(), parallel.chains.chain_edge_probabilities()
    )
    for c in range(2):
        for name, module in (("model", "models"), ("guide", "guides")):
            a = getattr(sequential.chains, module)[c].state_dict()
            b = getattr(parallel.chains, module)[c].state_dict()
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), (c, name, key)
        s, p = sequential.fit_result.chains[c], parallel.fit_result.chains[c]
        assert s.train_elbo == p.train_elbo and s.validation_elbo == p.validation_elbo


def test_chains_in_workers_need_a_picklable_build():
    def build():  # a local function cannot be pickled
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="num_workers: chains in worker processes need a picklable build"):
        fit_chains(build, {}, config=TrainerConfig(), num_chains=2, num_workers=2)
    with pytest.raises(ValueError, match="num_workers: expected an int >= 1; found 0"):
        fit_chains(build, {}, config=TrainerConfig(), num_chains=2, num_workers=0)
    with pytest.raises(ValueError, match="num_workers: chains in worker processes .* cannot be combined"):
        fit_chains(build, {}, config=TrainerConfig(), num_chains=2, num_workers=2, data_shards=2)


def test_a_sharded_fit_resumes_exactly(tmp_path):
    """Every shard is seeded from the step, so a resumed sharded fit continues the same draws."""
    from pyro_personax.facade import PersonaX

    data = _script_module().tiny_data()

    def fit(num_epochs, **kw):
        px = PersonaX(data, latent_dims={"face": 1, "text": 1}, shared_dim=1, mechanism="linear",
                      noise_flow="affine", decoder_hidden_dim=8, encoder_hidden_dim=8, nuisance_dim=1)  # fmt: skip
        px.fit(data, num_chains=1, num_epochs=num_epochs, anneal_epochs=4, batch_size=24, progress=False,
               device="cpu", seed=2, data_shards=2, refine_graph=False, **kw)  # fmt: skip
        return px

    straight = fit(4)
    fit(2, checkpoint_dir=tmp_path)
    resumed = fit(4, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(straight.edge_probabilities().to_numpy(), resumed.edge_probabilities().to_numpy())
    assert straight.fit_result.chains[0].train_elbo == resumed.fit_result.chains[0].train_elbo


def test_the_command_line_reaches_the_parallel_options():
    from pyro_personax.cli import build_parser

    args = build_parser().parse_args(["fit", "run.toml", "--out", "o", "--num-workers", "2", "--data-shards", "4"])
    assert (args.num_workers, args.data_shards) == (2, 4)
