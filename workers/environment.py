"""What torch must find in the environment when it loads: it reads these variables once, at import, so a
worker sets them before its first `import torch` (and the tests before theirs)."""

from __future__ import annotations

import os

from core.settings import Settings

# CPU kernels whose results do not depend on the processor: ATen's portable code path rather than the
# AVX2/AVX-512 one the processor allows, MKL's conditional numerical reproducibility, oneDNN held to SSE4.1.
# The same spec and seed then give the same metrics bit for bit on any x86-64 machine, not only on one like
# the machine that ran it first (a small network's epoch takes about a tenth longer). CUDA is unaffected.
PORTABLE_NUMERICS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "DNNL_MAX_CPU_ISA": "SSE41"}


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
