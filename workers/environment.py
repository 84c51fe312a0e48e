"""What torch must find in the environment when it loads: it reads these variables once, at import, so a
worker sets them before its first `import torch` (and the tests before theirs)."""

from __future__ import annotations

import os

from core.settings import Settings

# The same CPU kernels on every processor with AVX2 (every server processor of the last ten years): ATen's,
# MKL's (conditional numerical reproducibility) and oneDNN's AVX2 code paths, even where the processor has
# AVX-512 or AMX. The same spec, seed and torch threads then give the same metrics bit for bit on like
# processors; on other ones a few sums still round differently in the last bit (about 1e-7 relative,
# tests/training/test_golden.py), which a long or noisy run can amplify. They cost a few per cent against the
# fastest kernels; the SSE-only paths every x86-64 has would cost 40 % (BENCHMARKS.md). CUDA is unaffected.
PORTABLE_NUMERICS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}


def prepare_torch(settings: Settings) -> None:
    """Set what torch reads when it loads; a variable already set (by an operator) is left as it is."""
    # Asks the driver (NVML) whether there is a GPU without initializing CUDA, which a forked child could
    # not use afterwards.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    # OpenMP threads that wait for each other spin by default; while other processes hold the cores, the
    # spinning thread burns the time slice the thread it waits for needs, and an epoch takes a hundred times
    # longer (bench/contention.py). Waiting threads that sleep cost nothing on a quiet machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if settings.portable_numerics:
        for name, value in PORTABLE_NUMERICS.items():
            os.environ.setdefault(name, value)


def described(device_name: str) -> dict[str, str]:
    """What a job trained with, for its reproducibility record: the versions that decide its numbers, the
    device, and the worker's host."""
    import platform
    import socket
    from importlib.metadata import version

    import numpy
    import torch

    return {
        "steadyfit": version("steadyfit"),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "device": device_name,
        "host": socket.gethostname(),
        "portable_numerics": os.environ.get("ATEN_CPU_CAPABILITY", "off"),
    }
