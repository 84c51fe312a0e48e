"""The training loop: a JobSpec and prepared data in, per-epoch metrics out through a callback.

Each epoch, in order: set the learning rate → step through the shuffled training batches → evaluate on the
validation split → read the epoch's metrics → early stopping → the epoch callback → decide to stop.
Regularization is not written here: the spec's regularizers (`regularizers/`) change the model and the loss
once, and each batch transforms inputs, adds penalty terms and acts after the backward pass and after the
step, through the hooks listed, in their order, in `regularizers/base.py`.

Speed: the data sits on the training device as tensors and is batched by index from a seeded permutation
(no DataLoader); evaluation runs under inference mode in large batches; the hot loop never waits for the
device: losses and scores accumulate as device tensors, and the epoch's numbers are read in one go.

Metrics, every key of `core.spec.job.metrics_for(task)`:
- data_loss and penalty are means over the epoch's batches, measured in training mode (dropout on, batch
  statistics) as the batches were stepped; train_loss = data_loss + penalty; train_accuracy / train_mae
  come from the same batches.
- val_loss is the data loss alone on the validation split in evaluation mode: no penalty, so runs with
  different regularization compare on the same footing. val_* scores come from the same pass.
  val_loss_se is its standard error: the per-example losses' standard deviation (n - 1) over √n (the 1-SE
  rule of a regularization path compares val_loss within it).
- grad_norm is the global L2 norm of the gradients of the epoch's last step, before clipping (computing
  it at every step would cost several percent of a small network's epoch, for a curve hardly different).
- weight_l1 = Σ|w|, weight_l2 = √Σw², sparsity = the fraction of |w| < 1e-3 and weights_above_threshold =
  the number of |w| ≥ 1e-3, over the Linear/Conv weights at the end of the epoch (biases and batch-norm
  parameters excluded).
- dead_units and saturated_units are measured during the validation pass (`units.py`): the fraction of ReLU
  units never active on the validation data, and of tanh/sigmoid units stuck near a bound on most of it.
- baseline_val_loss is the validation loss of the best constant prediction (the training split's class
  frequencies, or its mean), the same every epoch: the loss a network that learned nothing would have.
- lr is the rate used during the epoch; epoch_seconds covers training and validation;
  samples_per_second = training rows / epoch_seconds.

Stopping: a StopTraining from the callback, a non-finite train or val loss ("diverged") and early stopping
end training after the epoch, which has been reported. A `should_stop` reason or the wall-clock limit
("timeout") ends it at once, mid-epoch; that partial epoch is not reported. Same spec and seed give the
same metrics bit for bit on the CPU (timings aside), and a resumed run continues exactly where its
checkpoint left off.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import get_total_norm

from core.spec.job import JobSpec, Task, metrics_for, output_size
from workers.training.checkpoint import (
    Checkpoint,
    load_optimizer_state,
    optimizer_state,
    prefixed,
    rng_state,
    set_rng_state,
    to_cpu,
    unprefixed,
)
from workers.training.data import PreparedData
from workers.training.early_stopping import EarlyStopping, StopDecision
from workers.training.losses import build_loss, predict
from workers.training.metrics import score_names, scores, weight_stats
from workers.training.model import build_model, freeze, layer_weights, load_initial_weights
from workers.training.optim import LrSchedule, build_optimizer, set_lr
from workers.training.regularizers.base import from_spec, total_penalty
from workers.training.units import UnitProbe

EVAL_BATCH_SIZE = 8192
# Numbers an evaluation chunk may hold at its widest layer (8 MiB of fp32): past it, activations leave the
# caches. An MLP of a few hundred units keeps EVAL_BATCH_SIZE rows; a CNN's first convolution (filters x
# height x width numbers an image) takes fewer, e.g. 128 images of 3x32x32 under 16 filters, which evaluates
# 10 % of an epoch faster.
EVAL_ELEMENTS = 1 << 21
TRAIN_SCORE = {"classification": "train_accuracy", "regression": "train_mae"}


class StopTraining(Exception):
    """Raised by an epoch callback to end training cleanly after that epoch, e.g. StopTraining("pruned")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # counts from 1
    metrics: dict[str, float]
    is_best: bool
    capture: Callable[[], Checkpoint] | None = field(default=None, repr=False, compare=False)

    def checkpoint(self) -> Checkpoint:
        """The full training state after this epoch; call it during the callback, before training moves on."""
        if self.capture is None:
            raise RuntimeError("this EpochEnd carries no training state")
        return self.capture()


@dataclass(frozen=True)
class TrainResult:
    epochs_completed: int
    best_epoch: int | None
    best_metrics: dict[str, float] | None
    stop_reason: str
    test_metrics: dict[str, float]
    weights: dict[str, torch.Tensor]  # the kept model's state dict, CPU tensors


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    """The GPU's name, or the processor's model for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"cpu: {model or platform.processor() or 'unknown'}"


def train(
    spec: JobSpec,
    data: PreparedData,
    *,
    on_epoch_end: Callable[[EpochEnd], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    resume: Checkpoint | None = None,
    init_weights: Mapping[str, torch.Tensor] | None = None,
    device: torch.device | None = None,
) -> TrainResult:
    """Train the network `spec` describes on `data`; see the module docstring for metrics and stopping.

    Without early stopping the best epoch is the one with the lowest val_loss and the final weights are
    kept; with it, `restore_best_weights` keeps the best epoch's weights. Test metrics use the kept weights.
    """
    device = device or pick_device()
    if spec.init_from is not None and init_weights is None and resume is None:
        raise ValueError("init_from needs the source job's weights (init_weights)")
    run = _Run(spec, data, device, init_weights)
    if resume is not None:
        run.restore(resume)
    train_x, train_y = _on_device(data.x_train, data.y_train, data.task, device)
    val_x, val_y = _on_device(data.x_val, data.y_val, data.task, device)
    baseline = run.baseline_loss(train_y, val_y)
    poll = _poller(should_stop, spec.training.max_wall_seconds, run)
    stop_reason = "max_epochs"
    try:
        for epoch in range(run.epoch + 1, spec.training.epochs + 1):
            lr = run.schedule.lr(epoch)
            set_lr(run.optimizer, lr)
            started = time.perf_counter()
            totals, steps, rows, interrupted = run.train_epoch(train_x, train_y, poll)
            if interrupted is not None:
                stop_reason = interrupted
                break
            with run.units.watching():
                validation = run.evaluate(val_x, val_y)
            # The epoch's one host-device sync: every number is read at once.
            parts = [totals, validation, weight_stats(run.weights), run.units.values(device), baseline]
            values = torch.cat(parts).tolist()
            seconds = time.perf_counter() - started
            metrics = _epoch_metrics(data.task, values, steps, rows, lr, seconds)
            for regularizer in run.regularizers:
                metrics.update(regularizer.epoch_metrics())
            run.epoch = epoch
            run.schedule.observe(epoch, metrics)
            decision, is_best = run.track(epoch, metrics)
            if on_epoch_end is not None:
                try:
                    on_epoch_end(EpochEnd(epoch, metrics, is_best, run.checkpoint))
                except StopTraining as stop:
                    stop_reason = stop.reason
                    break
            if not (math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_loss"])):
                stop_reason = "diverged"
                break
            if decision is not None:
                stop_reason = decision.reason
                break
        if run.best.state is not None:
            run.model.load_state_dict(run.best.state)
        test_x, test_y = _on_device(data.x_test, data.y_test, data.task, device)
        test = run.evaluate(test_x, test_y).tolist()
        return TrainResult(
            epochs_completed=run.epoch,
            best_epoch=run.best.epoch,
            best_metrics=run.best.metrics,
            stop_reason=stop_reason,
            test_metrics=dict(zip(("loss", "loss_se", *score_names(data.task)), test, strict=True)),
            weights=to_cpu(run.model.state_dict()),
        )
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


@dataclass
class _Best:
    epoch: int | None = None
    metrics: dict[str, float] | None = None
    state: dict[str, torch.Tensor] | None = None  # the best epoch's weights, kept with restore_best_weights


class _Run:
    """Everything training changes as it goes: what a checkpoint captures and a resume restores."""

    def __init__(
        self,
        spec: JobSpec,
        data: PreparedData,
        device: torch.device,
        init_weights: Mapping[str, torch.Tensor] | None,
    ) -> None:
        self.spec, self.task, self.n_classes, self.device = spec, data.task, data.n_classes, device
        self.has_batch_norm = spec.model.batch_norm_placement is not None
        if self.has_batch_norm and spec.training.batch_size == 1:
            raise ValueError("batch normalization needs training.batch_size of at least 2")
        torch.manual_seed(spec.training.seed)  # initialization, dropout and input noise draw from it
        self.shuffle = torch.Generator().manual_seed(spec.training.seed)
        self.regularizers = from_spec(spec)
        for regularizer in self.regularizers:
            regularizer.bind(data.input_shape)
        n_outputs = output_size(data.task, spec.loss_spec, data.n_classes)
        model = build_model(spec.model, data.input_shape, n_outputs)
        self.eval_rows = eval_rows(model, data.input_shape)  # before any regularizer sees the model
        for regularizer in self.regularizers:
            model = regularizer.modify_model(model)
        self.model = model.to(device)
        if init_weights is not None:
            reset_head = spec.init_from.reset_head if spec.init_from else True
            load_initial_weights(self.model, init_weights, reset_head=reset_head)
        if spec.init_from is not None:
            freeze(self.model, spec.init_from.freeze)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.weights = layer_weights(self.model)
        self.units = UnitProbe(self.model)
        self.penalized = layer_weights(self.model, trainable_only=True)
        if not self.penalized:
            raise ValueError("init_from.freeze freezes every layer: nothing is left to train")
        self.optimizer = build_optimizer(spec.optimizer, self.params)
        self.loss_fn = build_loss(spec.loss_spec, data.n_classes)
        for regularizer in self.regularizers:
            self.loss_fn = regularizer.modify_loss(self.loss_fn, data.n_classes)
        self.schedule = LrSchedule(spec.optimizer.lr, spec.scheduler, spec.training.epochs)
        self.stopper = EarlyStopping(spec.early_stopping) if spec.early_stopping else None
        self.best = _Best()
        self.epoch = 0  # the last completed epoch
        self.seconds_before = 0.0  # training time of the run this one resumes
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def autocast(self) -> torch.autocast:
        # bf16 on CUDA only: on the CPU it would change the numbers and gains nothing for small networks.
        bf16 = self.spec.training.precision == "bf16" and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def train_epoch(
        self, x: torch.Tensor, y: torch.Tensor, poll: Callable[[], str | None]
    ) -> tuple[torch.Tensor, int, int, str | None]:
        """One shuffled pass: device sums [data loss, penalty, score, last grad norm], steps, rows, stop reason.

        Each batch calls the regularizers' hooks in their documented order (regularizers/base.py)."""
        self.model.train()
        batches = self._batches(len(x))
        totals = torch.zeros(3, device=self.device)
        grad_norm = torch.zeros((), device=self.device)
        for step, index in enumerate(batches, start=1):
            inputs, targets = x.index_select(0, index), y.index_select(0, index)
            for regularizer in self.regularizers:
                inputs, targets = regularizer.transform_batch(inputs, targets)
            with self.autocast():
                outputs = self.model(inputs)
                data_loss = self.loss_fn(outputs, targets)
            penalty_value = total_penalty(self.regularizers, self.penalized)
            self.optimizer.zero_grad(set_to_none=True)
            (data_loss + penalty_value).backward()
            if step == len(batches):
                grad_norm = get_total_norm([p.grad for p in self.params if p.grad is not None])
            for regularizer in self.regularizers:
                regularizer.after_backward(self.params)
            self.optimizer.step()
            for regularizer in self.regularizers:
                regularizer.after_step(self.penalized)
            with torch.no_grad():
                totals += torch.stack([data_loss, penalty_value, self._batch_score(outputs, targets)])
            if (reason := poll()) is not None:
                return totals, step, 0, reason
        return torch.cat([totals, grad_norm.reshape(1)]), len(batches), sum(len(index) for index in batches), None

    def _batches(self, n: int) -> list[torch.Tensor]:
        order = torch.randperm(n, generator=self.shuffle).to(self.device)
        batches = list(order.split(self.spec.training.batch_size))
        # Batch norm cannot normalize a single row in training mode; that row is reshuffled next epoch.
        if self.has_batch_norm and len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()
        return batches

    def _batch_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Correct predictions (classification) or the absolute error (regression), summed over the batch."""
        predicted = predict(outputs, self.task)
        if self.task == "classification":
            return (predicted == targets).sum().float()
        return (predicted.float() - targets).abs().sum()

    @torch.inference_mode()
    def baseline_loss(self, train_y: torch.Tensor, val_y: torch.Tensor) -> torch.Tensor:
        """The validation loss of the best constant prediction fitted on the training targets, as a 1-element
        device tensor: the class frequencies (as logits) for classification, the mean (the median for `mae`)
        for regression. A network whose training loss stays near it has learned nothing (underfitting)."""
        loss = self.spec.loss_spec
        n_outputs = output_size(self.task, loss, self.n_classes)
        if self.task == "regression":
            center = train_y.float().median() if loss.name == "mae" else train_y.float().mean()
            constant = center.reshape(1)
        else:
            counts = torch.bincount(train_y, minlength=self.n_classes).float()
            frequency = (counts / counts.sum()).clamp(1e-7, 1 - 1e-7)
            if loss.name == "cross_entropy":
                constant = frequency.log()
            else:  # binary cross-entropy: each output's log-odds (a two-class set's one output: class 1's)
                constant = (frequency / (1 - frequency)).log()[-n_outputs:]
        return self.loss_fn(constant.expand(len(val_y), n_outputs), val_y).reshape(1)

    @torch.inference_mode()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[data loss, its standard error, *scores] over a whole split, in evaluation mode. The standard error
        of the mean loss is the per-example losses' standard deviation (n - 1) over √n."""
        self.model.eval()
        with self.autocast():
            outputs = torch.cat([self.model(chunk) for chunk in x.split(self.eval_rows)])
        loss = self.loss_fn(outputs, y)
        per_example = self.loss_fn(outputs, y, reduction="none")
        error = per_example.std() / math.sqrt(len(per_example)) if len(per_example) > 1 else torch.zeros_like(loss)
        predicted = predict(outputs, self.task)
        return torch.cat([loss.reshape(1), error.reshape(1), scores(predicted, y, self.task, self.n_classes)])

    def track(self, epoch: int, metrics: dict[str, float]) -> tuple[StopDecision | None, bool]:
        """Early stopping's verdict, and whether this epoch is the new best (lowest val_loss without it)."""
        if self.stopper is None:
            decision = None
            best_loss = self.best.metrics["val_loss"] if self.best.metrics else math.inf
            is_best = metrics["val_loss"] < best_loss
        else:
            decision = self.stopper.update(epoch, metrics)
            is_best = self.stopper.improved
        if is_best:
            keep = self.stopper is not None and self.stopper.restore_best_weights
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()} if keep else None
            self.best = _Best(epoch, metrics, state)
        return decision, is_best

    def checkpoint(self) -> Checkpoint:
        optimizer_tensors, optimizer_values = optimizer_state(self.optimizer)
        tensors = {
            **prefixed("model", to_cpu(self.model.state_dict())),
            **prefixed("optimizer", optimizer_tensors),
            **prefixed("rng", rng_state(self.shuffle, self.device)),
        }
        if self.best.state is not None:
            tensors.update(prefixed("best", to_cpu(self.best.state)))
        meta = {
            "epoch": self.epoch,
            "seconds": self.elapsed(),
            "best_epoch": self.best.epoch,
            "best_metrics": self.best.metrics,
            "optimizer": optimizer_values,
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.stopper.state_dict() if self.stopper else None,
        }
        return Checkpoint(tensors=tensors, meta=meta)

    def restore(self, checkpoint: Checkpoint) -> None:
        tensors, meta = checkpoint.tensors, checkpoint.meta
        self.model.load_state_dict(unprefixed("model", tensors))
        load_optimizer_state(self.optimizer, unprefixed("optimizer", tensors), meta["optimizer"])
        self.schedule.load_state_dict(meta["schedule"])
        if self.stopper is not None:
            self.stopper.load_state_dict(meta["early_stopping"])
        best_state = {k: v.to(self.device) for k, v in unprefixed("best", tensors).items()}
        self.best = _Best(meta["best_epoch"], meta["best_metrics"], best_state or None)
        self.epoch, self.seconds_before = meta["epoch"], meta["seconds"]
        # Last, so that building the model above does not move the restored random streams.
        set_rng_state(self.shuffle, self.device, unprefixed("rng", tensors))


def eval_rows(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Rows per evaluation chunk: EVAL_BATCH_SIZE, or fewer when the widest layer's outputs for so many rows
    would pass EVAL_ELEMENTS. The widths are read from one row of zeros through the (CPU) model in evaluation
    mode, with the random stream put back afterwards, so training draws exactly what it would have."""
    width = math.prod(input_shape)
    widest = width

    def note(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal widest
        if isinstance(output, torch.Tensor):
            widest = max(widest, output[0].numel())

    hooks = [module.register_forward_hook(note) for module in model.modules() if next(module.children(), None) is None]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            model(torch.zeros(1, width))
    finally:
        for hook in hooks:
            hook.remove()
    return max(1, min(EVAL_BATCH_SIZE, EVAL_ELEMENTS // widest))


def _on_device(x: np.ndarray, y: np.ndarray, task: Task, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    target_dtype = torch.long if task == "classification" else torch.float32
    return (
        torch.as_tensor(x, dtype=torch.float32, device=device),
        torch.as_tensor(y, dtype=target_dtype, device=device),
    )


def _poller(
    should_stop: Callable[[], str | None] | None, max_seconds: float | None, run: _Run
) -> Callable[[], str | None]:
    """The per-batch stop check: the caller's reason first, then the wall-clock limit."""

    def poll() -> str | None:
        if should_stop is not None and (reason := should_stop()):
            return reason
        if max_seconds is not None and run.elapsed() > max_seconds:
            return "timeout"
        return None

    return poll


def _epoch_metrics(
    task: Task, values: list[float], steps: int, rows: int, lr: float, seconds: float
) -> dict[str, float]:
    data_sum, penalty_sum, score_sum, grad_norm, val_loss, val_loss_se, *rest = values
    val_scores, weights, units = rest[:-7], rest[-7:-3], rest[-3:]
    weight_l1, weight_l2, sparsity, weights_above_threshold = weights
    dead_units, saturated_units, baseline_val_loss = units
    named = {
        "train_loss": (data_sum + penalty_sum) / steps,
        "data_loss": data_sum / steps,
        "penalty": penalty_sum / steps,
        TRAIN_SCORE[task]: score_sum / rows,
        "val_loss": val_loss,
        "val_loss_se": val_loss_se,
        **{f"val_{name}": value for name, value in zip(score_names(task), val_scores, strict=True)},
        "weight_l1": weight_l1,
        "weight_l2": weight_l2,
        "sparsity": sparsity,
        "weights_above_threshold": weights_above_threshold,
        "dead_units": dead_units,
        "saturated_units": saturated_units,
        "baseline_val_loss": baseline_val_loss,
        "grad_norm": grad_norm,
        "lr": lr,
        "epoch_seconds": seconds,
        "samples_per_second": rows / seconds,
    }
    return {key: named[key] for key in metrics_for(task)}
