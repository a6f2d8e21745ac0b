"""The machine and package versions a benchmark ran on, as one line for its printout.

Fits can move between machines with the same packages (``RESULTS.md`` records cases), so
the benchmarks print this line first: the CPU's model name, the cores, torch's CPU
capability (the vector instructions its kernels use), the threads torch runs, and the
versions of the packages the fits depend on.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "pyro-ppl", "numpy", "scipy", "scikit-learn", "pandas")


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name from ``cpuinfo`` (Linux), else :func:`platform.processor`, else ``"unknown"``."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> str:
    """One line: CPU model, cores, torch's CPU capability and threads, and the package versions."""
    import torch

    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"machine: {cpu_model()}, {os.cpu_count()} cores, torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, torch threads {torch.get_num_threads()}, CUDA {cuda}; "
            f"python {platform.python_version()}, " + ", ".join(versions))
