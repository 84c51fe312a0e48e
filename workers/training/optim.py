"""Optimizers and the per-epoch learning-rate schedule.

`optimizer.weight_decay` is decoupled for adam and adamw (both run AdamW: the decay shrinks weights
directly and never passes through Adam's moment estimates), whereas `regularization.l2` adds l2·Σw² to the
loss, so its gradient is rescaled by Adam like any other: with Adam the two are not equivalent.
sgd and rmsprop use PyTorch's coupled weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# torch._dynamo, not just torch: the first optimizer built imports it (~2 s on a CPU), and importing it
# with this module lets a worker's parent pay that once, rather than the fresh child process of each job.
import torch._dynamo

from core.spec.job import OptimizerSpec, SchedulerSpec


def build_optimizer(spec: OptimizerSpec, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer over `params`; fused kernels where PyTorch has them (faster on CPU and CUDA alike)."""
    if spec.name in ("adam", "adamw"):
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay, fused=True)
    if spec.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=spec.lr,
            momentum=spec.momentum,
            nesterov=spec.nesterov,
            weight_decay=spec.weight_decay,
            fused=True,
        )
    return torch.optim.RMSprop(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay, foreach=True)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class LrSchedule:
    """The learning rate of each epoch (counted from 1): a linear warm-up, then the scheduler.

    Warm-up over W epochs gives epoch e ≤ W the rate lr·e/W. After it, with t = epochs since the warm-up
    ended (0 for its first epoch):
    - step: lr·gamma^⌊t/step_size⌋; exponential: lr·gamma^t;
    - cosine: eta_min + (lr - eta_min)·(1 + cos(π·min(t, T)/T))/2, T = t_max or the epochs after warm-up;
    - reduce_on_plateau: lr times `factor` once the monitored metric (minimized) has not fallen below its
      best for more than `patience` epochs; a NaN never counts as an improvement. Fed by `observe`.
    """

    def __init__(self, base_lr: float, spec: SchedulerSpec | None, epochs: int) -> None:
        self.base_lr = base_lr
        self.spec = spec
        self.warmup = spec.warmup_epochs if spec else 0
        self.t_max = (spec.t_max if spec and spec.t_max else None) or max(1, epochs - self.warmup)
        self.reset()

    def reset(self) -> None:
        self.plateau_scale = 1.0
        self.plateau_best = math.inf
        self.plateau_wait = 0

    def lr(self, epoch: int) -> float:
        if epoch <= self.warmup:
            return self.base_lr * epoch / self.warmup
        spec, t = self.spec, epoch - self.warmup - 1
        if spec is None:
            return self.base_lr
        if spec.name == "step":
            return self.base_lr * spec.gamma ** (t // spec.step_size)
        if spec.name == "exponential":
            return self.base_lr * spec.gamma**t
        if spec.name == "cosine":
            progress = min(t, self.t_max) / self.t_max
            return spec.eta_min + (self.base_lr - spec.eta_min) * (1 + math.cos(math.pi * progress)) / 2
        return self.base_lr * self.plateau_scale

    def observe(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Feed reduce_on_plateau the metrics of a finished epoch (other schedules ignore them)."""
        if self.spec is None or self.spec.name != "reduce_on_plateau" or epoch <= self.warmup:
            return
        value = metrics[self.spec.monitor]
        if value < self.plateau_best:
            self.plateau_best, self.plateau_wait = value, 0
            return
        self.plateau_wait += 1
        if self.plateau_wait > self.spec.patience:
            self.plateau_scale *= self.spec.factor
            self.plateau_wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.plateau_scale, "best": self.plateau_best, "wait": self.plateau_wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.plateau_scale = state["scale"]
        self.plateau_best = state["best"]
        self.plateau_wait = state["wait"]
