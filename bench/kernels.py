"""What the portable CPU kernels cost (STEADYFIT_PORTABLE_NUMERICS, workers/environment.py).

The engine bench's MLP (64 → 256 → 256 → 10 with batch norm, Adam, batch 256) trains one epoch of 48,000
synthetic rows in a fresh process for each kernel choice, round-robin, best of ROUNDS:
- native: whatever the processor allows (AVX-512, AMX);
- avx2: the portable default, AVX2 code paths in ATen, MKL and oneDNN;
- sse: the paths every x86-64 processor has (ATen's default, MKL's COMPATIBLE branch, oneDNN at SSE4.1).
Run: `python bench/kernels.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys

from workers.environment import PORTABLE_NUMERICS

ROUNDS = 3
CHOICES = {
    "native": {},
    "avx2": PORTABLE_NUMERICS,
    "sse": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "DNNL_MAX_CPU_ISA": "SSE41"},
}
EPOCH = """
import time, torch
from torch import nn
torch.manual_seed(0)
x, y = torch.randn(48000, 64), torch.randint(0, 10, (48000,))
layers = [nn.Linear(64, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 10))
optimizer = torch.optim.Adam(model.parameters(), fused=True)
def epoch():
    for i in range(0, len(x), 256):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 256]), y[i : i + 256]).backward()
        optimizer.step()
epoch()  # warm-up
started = time.perf_counter()
epoch()
print(time.perf_counter() - started)
"""


def seconds(variables: dict[str, str]) -> float:
    names = set(CHOICES["sse"])
    env = {k: v for k, v in os.environ.items() if k not in names} | variables | {"OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-c", EPOCH], env=env, check=True, capture_output=True, text=True)
    return float(done.stdout)


def main() -> None:
    best = {name: float("inf") for name in CHOICES}
    for _ in range(ROUNDS):
        for name, variables in CHOICES.items():
            best[name] = min(best[name], seconds(variables))
    print(f"{'kernels':<8} {'s/epoch':>8} {'vs native':>10}")
    for name, value in best.items():
        print(f"{name:<8} {value:>8.3f} {value / best['native']:>9.2f}x")


if __name__ == "__main__":
    main()
