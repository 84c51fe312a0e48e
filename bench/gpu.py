"""GPU figures in one script: run `python bench/gpu.py` on a CUDA machine and record what it prints in
BENCHMARKS.md. Without a GPU it says so, and measures what the CPU can (fp32, and jobs in parallel).

1. Seconds per epoch (median of the epochs after the first) of bench/engine.py's MLP workload (60,000 x 64
   rows, 256-256 hidden, batch norm, dropout 0.2, Adam, batch 256) and of the shapes CNN
   (examples/shapes_cnn.json on 3,000 images):
   - the engine with bf16 autocast (its default on CUDA) and in fp32;
   - the engine (the data resident on the device) against a DataLoader loop that copies each batch from
     pinned host memory, the same MLP in fp32.
2. CUDA graphs: one training step of the MLP (forward, backward, Adam) captured once and replayed, against
   the same step run eagerly; microseconds per step.
3. GPU memory around one job: allocated before, the peak, allocated and reserved after (the engine empties
   the cache at the end), so a worker's next job starts from what the last one left.
4. Jobs per GPU: K processes each training the MLP job (3 epochs) at once, as a worker with concurrency K
   runs them; jobs per minute for K = 1, 2, 4.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from engine import BATCH_SIZE, LR, MODEL, SEED, cnn_job, make_data, plain_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from core.spec.job import JobSpec
from workers.training import engine
from workers.training.data import PreparedData


def mlp_job(epochs: int) -> tuple[JobSpec, PreparedData]:
    x_train, y_train, x_val, y_val = make_data()
    data = PreparedData(
        "classification", x_train, y_train, x_val, y_val, x_val, y_val, 10, (64,),
        np.zeros(64, np.float32), np.ones(64, np.float32), [f"x{i}" for i in range(64)], [str(i) for i in range(10)],
    )  # fmt: skip
    spec = {
        "dataset": {"name": "classification"},
        "model": MODEL.model_dump(),
        "optimizer": {"name": "adam", "lr": LR},
        "training": {"epochs": epochs, "batch_size": BATCH_SIZE, "seed": SEED},
    }
    return JobSpec.model_validate(spec).with_task("classification"), data


def engine_epoch(job: tuple[JobSpec, PreparedData], device: torch.device, bf16: bool) -> float:
    spec, data = job
    seconds: list[float] = []
    autocast = lambda run: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731
    with mock.patch.object(engine._Run, "autocast", autocast):
        engine.train(spec, data, on_epoch_end=lambda end: seconds.append(end.metrics["epoch_seconds"]), device=device)
    return statistics.median(seconds[1:])


def copied_epoch(epochs: int, device: torch.device) -> float:
    """The DataLoader loop: batches copied from pinned host memory to the device, fp32."""
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in make_data())
    pin = device.type == "cuda"
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=BATCH_SIZE, shuffle=True, pin_memory=pin)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=4096, pin_memory=pin)
    model = plain_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(xb.to(device)).argmax(1) == yb.to(device)).sum()) for xb, yb in val_loader)
        assert correct >= 0
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:])


def graph_step(device: torch.device, steps: int = 200) -> tuple[float, float]:
    """Microseconds per training step: eager, and captured as a CUDA graph and replayed."""
    model = plain_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, capturable=True)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(BATCH_SIZE, 64, device=device)
    y = torch.randint(0, 10, (BATCH_SIZE,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    def timed(run: Callable[[], None]) -> float:
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            run()
        torch.cuda.synchronize()
        return (time.perf_counter() - started) / steps * 1e6

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm up on a side stream, as capture requires
            step()
    torch.cuda.current_stream().wait_stream(side)
    eager = timed(step)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss_fn(model(x), y).backward()
        optimizer.step()
    return eager, timed(graph.replay)


def memory_around_a_job(device: torch.device) -> dict[str, float]:
    mib = 2**20
    before = torch.cuda.memory_allocated(device) / mib
    torch.cuda.reset_peak_memory_stats(device)
    engine.train(*mlp_job(3), device=device)
    return {
        "allocated before": before,
        "peak": torch.cuda.max_memory_allocated(device) / mib,
        "allocated after": torch.cuda.memory_allocated(device) / mib,
        "reserved after": torch.cuda.memory_reserved(device) / mib,
    }


def jobs_per_minute(concurrency: int) -> float:
    command = [sys.executable, str(Path(__file__)), "--one-job"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=Path(__file__).parent) for _ in range(concurrency)]
    if any(process.wait() != 0 for process in processes):
        raise RuntimeError("a job process failed")
    return concurrency / (time.perf_counter() - started) * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one-job", action="store_true", help="Train one MLP job and exit (for part 4).")
    if parser.parse_args().one_job:
        engine.train(*mlp_job(3), device=engine.pick_device())
        return
    device = engine.pick_device()
    cuda = device.type == "cuda"
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    else:
        print(f"No GPU found (torch.cuda.is_available() is False; torch {torch.__version__}): these are CPU")
        print("figures, and bf16 autocast, CUDA graphs and GPU memory are skipped. Run it on a CUDA machine.")
    epochs = 6 if cuda else 3
    print("1. seconds per epoch")
    for name, job in (("MLP", mlp_job(epochs)), ("CNN", cnn_job(epochs))):
        fp32 = engine_epoch(job, device, bf16=False)
        line = f"   {name}: engine fp32 {fp32:.3f}"
        if cuda:
            line += f", engine bf16 {engine_epoch(job, device, bf16=True):.3f}"
        print(line)
    print(f"   MLP fp32, DataLoader copying each batch: {copied_epoch(epochs, device):.3f}")
    if cuda:
        eager, replayed = graph_step(device)
        print(f"2. one MLP training step: eager {eager:.0f} us, CUDA graph {replayed:.0f} us")
        memory = memory_around_a_job(device)
        print("3. GPU memory around one job (MiB): " + ", ".join(f"{k} {v:.1f}" for k, v in memory.items()))
    print("4. jobs per minute (MLP, 3 epochs, one process each)")
    for concurrency in (1, 2, 4) if cuda else (1, 2):
        print(f"   {concurrency} at once: {jobs_per_minute(concurrency):.1f}")


if __name__ == "__main__":
    main()
