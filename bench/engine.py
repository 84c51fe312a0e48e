"""How fast steadyfit's engine trains, against the loops a user would otherwise write or pick.

The same MLP (64 → 256 → 256 → 10, batch norm, dropout 0.2), Adam at lr 1e-3, batch 256, 5 epochs with
validation after each, on the same standardized synthetic data (60,000 rows, 64 features, 10 classes, 80/20 split):
1. steadyfit's `train`;
2. a plain PyTorch loop over a DataLoader(TensorDataset, shuffle=True), reading `.item()` every step;
3. skorch's NeuralNetClassifier and 4. PyTorch Lightning's Trainer, when installed (`pip install
   'steadyfit[bench]'`);
5. a plain loop on in-memory tensors (batches by index, fused Adam, no per-step `.item()`), and 6. the same
   model under `torch.compile`, to see whether compiling pays for a model this size.
The compute floor is the epoch's matrix-multiplication FLOPs (forward and backward over the 48,000 training
rows, forward over the 12,000 validation rows) at the matmul throughput measured here on the same shapes;
each loop is printed as the percentage of that floor it reaches.
Seconds per epoch are the median of epochs 2..5 (epoch 1 pays warm-up costs), cover training and
validation, and are the best of three round-robin rounds (timings on a shared machine only err upward).
The other loops build the MLP from stock modules (nn.Dropout included) and use torch.optim.Adam, as a
user would; steadyfit's own dropout and fused optimizer are part of what is measured.
Run: `python bench/engine.py`; `python bench/engine.py --profile` says instead where the milliseconds of one
engine step go (torch's profiler over two epochs, each operator's own time grouped by what it does);
`python bench/engine.py --cnn` compares instead an epoch of the shapes CNN (examples/shapes_cnn.json, 3,000
32x32 images, its 20 epochs) under the engine and under a DataLoader loop training the very same network
(built by steadyfit's `build_model` from the same seed, so only the loop differs), in the same round-robin
rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader, TensorDataset

from core.spec.job import DatasetSpec, JobSpec, ModelSpec
from workers.training.data import PreparedData, load_dataset
from workers.training.engine import train
from workers.training.model import build_model

SEED = 0
EPOCHS = 5
BATCH_SIZE = 256
LR = 1e-3
MODEL = ModelSpec(hidden_layers=[256, 256], batch_norm=True, dropout=0.2)
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
ROUNDS = 3
Result = tuple[list[float], float]  # seconds of each epoch, final validation accuracy
CNN_SPEC = json.loads((Path(__file__).resolve().parents[1] / "examples" / "shapes_cnn.json").read_text())


def make_data() -> Arrays:
    x, y = make_classification(
        n_samples=60_000, n_features=64, n_informative=32, n_redundant=16, n_classes=10, random_state=SEED
    )
    order = np.random.default_rng(SEED).permutation(len(x))
    cut = int(0.8 * len(x))
    train_rows, val_rows = order[:cut], order[cut:]
    mean, std = x[train_rows].mean(axis=0), x[train_rows].std(axis=0)
    x = ((x - mean) / std).astype(np.float32)
    return x[train_rows], y[train_rows].astype(np.int64), x[val_rows], y[val_rows].astype(np.int64)


def plain_model() -> nn.Module:
    """The same MLP in stock PyTorch modules, as a user writes it for the other loops."""
    torch.manual_seed(SEED)
    return nn.Sequential(
        nn.Linear(64, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 10),
    )  # fmt: skip


def run_steadyfit(arrays: Arrays, epochs: int = EPOCHS) -> Result:
    x_train, y_train, x_val, y_val = arrays
    data = PreparedData(
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_val,
        y_test=y_val,
        n_classes=10,
        input_shape=(64,),
        feature_mean=np.zeros(64, np.float32),
        feature_std=np.ones(64, np.float32),
        feature_names=[f"x{i}" for i in range(64)],
        class_names=[str(i) for i in range(10)],
    )
    spec = JobSpec.model_validate(
        {
            "dataset": {"name": "classification"},
            "model": MODEL.model_dump(),
            "optimizer": {"name": "adam", "lr": LR},
            "training": {"epochs": epochs, "batch_size": BATCH_SIZE, "seed": SEED},
        }
    ).with_task("classification")
    ended: list[dict[str, float]] = []
    train(spec, data, on_epoch_end=lambda end: ended.append(end.metrics), device=torch.device("cpu"))
    return [m["epoch_seconds"] for m in ended], ended[-1]["val_accuracy"]


def run_dataloader(arrays: Arrays) -> Result:
    return dataloader_loop(plain_model(), arrays, BATCH_SIZE, LR, EPOCHS)


def dataloader_loop(model: nn.Module, arrays: Arrays, batch_size: int, lr: float, epochs: int) -> Result:
    """The plain PyTorch loop: a shuffling DataLoader, torch.optim.Adam, the loss read every step."""
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in arrays)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    seconds, accuracy = [], 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        running_loss = 0.0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        model.eval()
        correct, total = 0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                correct += (model(xb).argmax(dim=1) == yb).sum().item()
                total += len(yb)
        accuracy = correct / total
        seconds.append(time.perf_counter() - started)
    return seconds, accuracy


def cnn_job(epochs: int) -> tuple[JobSpec, PreparedData]:
    """The shapes CNN of examples/shapes_cnn.json and its data, for `epochs` epochs."""
    spec = JobSpec.model_validate({**CNN_SPEC, "training": {**CNN_SPEC["training"], "epochs": epochs}})
    return spec.with_task("classification"), load_dataset(DatasetSpec.model_validate(CNN_SPEC["dataset"]), SEED)


def run_cnn_steadyfit(job: tuple[JobSpec, PreparedData]) -> Result:
    spec, data = job
    ended: list[dict[str, float]] = []
    train(spec, data, on_epoch_end=lambda end: ended.append(end.metrics), device=torch.device("cpu"))
    return [m["epoch_seconds"] for m in ended], ended[-1]["val_accuracy"]


def run_cnn_dataloader(job: tuple[JobSpec, PreparedData]) -> Result:
    """The DataLoader loop, training the network the engine builds for the same spec."""
    spec, data = job
    torch.manual_seed(SEED)
    model = build_model(spec.model, data.input_shape, data.n_classes)
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    return dataloader_loop(model, arrays, spec.training.batch_size, spec.optimizer.lr, spec.training.epochs)


def compare_cnn() -> None:
    """Seconds per CNN epoch (median of epochs 2.., best of the rounds) under the engine and a DataLoader loop."""
    epochs = CNN_SPEC["training"]["epochs"]  # the example's 20: by then the accuracies say something
    job = cnn_job(epochs)
    loops = [("steadyfit engine", run_cnn_steadyfit), ("PyTorch DataLoader loop", run_cnn_dataloader)]
    per_epoch: dict[str, list[float]] = {}
    accuracy: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, run in loops:
            seconds, accuracy[name] = run(job)
            per_epoch.setdefault(name, []).append(statistics.median(seconds[1:]))
    spec, data = job
    images = f"{len(data.x_train)} training images {'x'.join(map(str, data.input_shape))}"
    shape = f"{epochs} epochs, batch {spec.training.batch_size}"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, shapes CNN, {images}, {shape}")
    print(f"{'loop':<28} {'s/epoch':>8} {'val acc':>8} {'vs steadyfit':>13}")
    reference = min(per_epoch["steadyfit engine"])
    for name, _ in loops:
        best = min(per_epoch[name])
        print(f"{name:<28} {best:>8.3f} {accuracy[name]:>8.4f} {best / reference:>12.2f}x")


def run_in_memory(arrays: Arrays, compiled: bool = False) -> Result:
    """The loop a careful engineer writes: tensors in memory, batches by index, fused Adam, no host syncs."""
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in arrays)
    model: nn.Module = plain_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    step = torch.compile(model) if compiled else model
    generator = torch.Generator().manual_seed(SEED)
    seconds, accuracy = [], 0.0
    for _ in range(EPOCHS):
        started = time.perf_counter()
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(step(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            predicted = torch.cat([step(chunk).argmax(dim=1) for chunk in x_val.split(4096)])
        accuracy = float((predicted == y_val).float().mean())
        seconds.append(time.perf_counter() - started)
    return seconds, accuracy


def run_compiled(arrays: Arrays) -> Result:
    return run_in_memory(arrays, compiled=True)


def matmul_floor(train_rows: int, val_rows: int) -> float:
    """Seconds per epoch if every matmul of the MLP ran at the throughput measured here on its shapes."""
    layers = [(64, 256), (256, 256), (256, 10)]
    seconds = 0.0
    for inputs, outputs in layers:
        a, w = torch.randn(BATCH_SIZE, inputs), torch.randn(inputs, outputs)
        grad = torch.randn(BATCH_SIZE, outputs)
        for _ in range(20):  # warm-up
            a @ w
        runs = 200
        started = time.perf_counter()
        for _ in range(runs):
            a @ w  # forward
            grad @ w.T  # backward, to the inputs
            a.T @ grad  # backward, to the weights
        per_batch = (time.perf_counter() - started) / runs
        seconds += per_batch * train_rows / BATCH_SIZE + per_batch / 3 * val_rows / BATCH_SIZE
    return seconds


def run_skorch(arrays: Arrays) -> Result:
    from skorch import NeuralNetClassifier
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    x_train, y_train, x_val, y_val = arrays
    net = NeuralNetClassifier(
        plain_model(),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=BATCH_SIZE,
        max_epochs=EPOCHS,
        train_split=predefined_split(Dataset(x_val, y_val)),
        iterator_train__shuffle=True,
        device="cpu",
        verbose=0,
    )
    net.fit(x_train, y_train)
    return list(net.history[:, "dur"]), float(net.history[-1, "valid_acc"])


def run_lightning(arrays: Arrays) -> Result:
    import lightning as L

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = plain_model()
            self.loss_fn = nn.CrossEntropyLoss()

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            xb, yb = batch
            loss = self.loss_fn(self.net(xb), yb)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
            xb, yb = batch
            self.log("val_acc", (self.net(xb).argmax(dim=1) == yb).float().mean())

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=LR)

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.started = time.perf_counter()

        def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in arrays)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(
        Classifier(),
        DataLoader(TensorDataset(x_train, y_train), batch_size=BATCH_SIZE, shuffle=True),
        DataLoader(TensorDataset(x_val, y_val), batch_size=BATCH_SIZE),
    )
    return timer.seconds, float(trainer.callback_metrics["val_acc"])


# What each operator of the engine's step does for this model (the profiler's own time of each, so that the
# parts add up to the whole). Operators not named here are torch's bookkeeping: views, allocations, copies,
# autograd's graph walk and the Python between the operators.
PARTS = {
    "matrix products (forward and backward)": ("aten::mm", "aten::addmm"),
    "batch norm (forward and backward)": ("aten::native_batch_norm", "aten::native_batch_norm_backward"),
    "dropout (16-bit masks, applying them)": ("aten::random_", "aten::ge", "aten::mul", "aten::mul_"),
    "ReLU (forward and backward)": ("aten::clamp_min", "aten::threshold_backward"),
    "loss (log-softmax, NLL, both ways)": (
        "aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward", "aten::nll_loss_backward",
    ),
    "Adam step and zeroing the gradients": (
        "Optimizer.step#AdamW.step", "aten::_fused_adamw_", "Optimizer.zero_grad#AdamW.zero_grad",
    ),
    "batch gathering (index_select)": ("aten::index_select",),
    "epoch totals, accuracy, validation argmax": ("aten::sum", "aten::argmax", "aten::eq", "aten::add_", "aten::stack"),
}  # fmt: skip


def profile_engine(arrays: Arrays) -> None:
    """Milliseconds per training step of the engine, by part, over two epochs (validation included)."""
    run_steadyfit(arrays, epochs=1)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        seconds, _ = run_steadyfit(arrays, epochs=2)
    steps = 2 * -(-len(arrays[0]) // BATCH_SIZE)
    own = {event.key: event.self_cpu_time_total / 1000 for event in profiler.key_averages()}
    total = sum(own.values())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH_SIZE}, {steps} steps profiled")
    print(f"{'part of a step':<44} {'ms/step':>8} {'share':>6}")
    named = 0.0
    for part, ops in PARTS.items():
        ms = sum(own.get(op, 0.0) for op in ops)
        named += ms
        print(f"{part:<44} {ms / steps:>8.3f} {ms / total:>6.0%}")
    print(
        f"{'the rest (views, copies, autograd, Python)':<44} {(total - named) / steps:>8.3f} {1 - named / total:>6.0%}"
    )
    print(f"{'total under the profiler':<44} {total / steps:>8.3f}")
    epoch = statistics.median(seconds)
    print(f"(without the profiler an epoch takes {epoch:.3f} s: {epoch * 1000 * 2 / steps:.3f} ms/step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="Where the engine's step time goes, by part.")
    parser.add_argument("--cnn", action="store_true", help="A CNN epoch: the engine against a DataLoader loop.")
    args = parser.parse_args()
    if args.cnn:
        compare_cnn()
        return
    arrays = make_data()
    if args.profile:
        profile_engine(arrays)
        return
    loops: list[tuple[str, Callable[[Arrays], Result]]] = [
        ("steadyfit engine", run_steadyfit),
        ("PyTorch DataLoader loop", run_dataloader),
        ("skorch NeuralNetClassifier", run_skorch),
        ("Lightning Trainer", run_lightning),
        ("in-memory loop, fused Adam", run_in_memory),
        ("the same, torch.compile", run_compiled),
    ]
    per_epoch: dict[str, list[float]] = {}
    accuracy: dict[str, float] = {}
    missing: set[str] = set()
    # Round-robin rounds, so that a slow spell of a shared machine does not land on one loop only.
    for _ in range(ROUNDS):
        for name, run in loops:
            if name in missing:
                continue
            try:
                seconds, accuracy[name] = run(arrays)
            except ImportError:
                missing.add(name)
                continue
            except RuntimeError as exc:  # torch.compile without a working C++ toolchain, say
                print(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                missing.add(name)
                continue
            per_epoch.setdefault(name, []).append(statistics.median(seconds[1:]))
    floor = matmul_floor(len(arrays[0]), len(arrays[2]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {EPOCHS} epochs, batch {BATCH_SIZE}")
    print(f"compute floor (matmul FLOPs at the measured matmul throughput): {floor:.3f} s/epoch")
    print(f"{'loop':<28} {'s/epoch':>8} {'val acc':>8} {'vs steadyfit':>13} {'of floor':>9}")
    reference = min(per_epoch["steadyfit engine"])
    for name, _ in loops:
        if name in missing:
            print(f"{name:<28} not available")
            continue
        best = min(per_epoch[name])
        print(f"{name:<28} {best:>8.3f} {accuracy[name]:>8.4f} {best / reference:>12.2f}x {floor / best:>8.0%}")


if __name__ == "__main__":
    main()
