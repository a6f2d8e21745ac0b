"""The machine line the benchmarks print first (``benchmarks/environment.py``)."""

from importlib import metadata

from conftest import load_benchmark

env = load_benchmark("environment")


def test_cpu_model_reads_the_model_name_and_falls_back_where_there_is_none(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n")
    assert env.cpu_model(info) == "AMD EPYC 7B13 64-Core Processor"
    info.write_text("processor\t: 0\n")
    monkeypatch.setattr(env.platform, "processor", lambda: "")
    assert env.cpu_model(info) == "unknown"
    assert env.cpu_model(tmp_path / "absent") == "unknown"


def test_describe_names_the_cpu_capability_threads_and_package_versions():
    import torch

    line = env.describe()
    assert line.startswith("machine: ") and "\n" not in line
    assert f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}" in line
    assert f"torch threads {torch.get_num_threads()}" in line
    for name in ("torch", "pyro-ppl", "numpy", "scikit-learn"):
        assert f"{name} {metadata.version(name)}" in line
