"""The interface every regularizer implements, and the order in which the engine calls its hooks.

A regularizer is a class in its own module of this package that subclasses `Regularizer`, says in
`for_spec` whether a spec switches it on, and overrides only the hooks it needs; the others do nothing.
The engine calls the hooks in this order (`HOOKS`), each for every active regularizer in module-name order:

0. `bind(input_shape)`: once, first: the shape of one example, (features,) or (channels, height, width), as
   the data has it (an uploaded set's is known only then, not from the spec).
1. `modify_model(model)`: once, after the network is built and before it moves to the device, is
   warm-started or has layers frozen; returns the model to train (the same one, changed, or a wrapper).
2. `modify_loss(loss_fn, n_classes)`: once; returns the data loss that training and validation use (a
   `losses.LossFn`: the batch mean, or each example's with `reduction="none"`).
3. `transform_batch(inputs, targets)`: each training batch, before the forward pass.
4. `penalty(weights)`: each training batch, after the forward pass; the terms of all regularizers are
   summed, in order, into the `penalty` metric and added to the data loss before the backward pass.
5. `after_backward(params)`: each batch, after the backward pass and before the optimizer step. The
   epoch's `grad_norm` is read just before this hook, so it is the norm before any clipping.
6. `after_step(weights)`: each batch, after the optimizer step.
7. `epoch_metrics()`: at the end of each epoch, after validation; merged into the epoch's metrics.

`weights` are the trainable Linear/Conv weight tensors (no biases, no batch-norm parameters); `params` are
all trainable parameters. Nothing here lists the regularizers: adding one is adding its module.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Self

import torch
from torch import nn

from core.spec.job import JobSpec
from workers.training.losses import LossFn

HOOKS = (
    "bind",
    "modify_model",
    "modify_loss",
    "transform_batch",
    "penalty",
    "after_backward",
    "after_step",
    "epoch_metrics",
)


class Regularizer(ABC):
    """No-op hooks; a subclass overrides those it needs (the order is in the module docstring)."""

    @classmethod
    @abstractmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        """This regularizer, configured from `spec`, or None when the spec does not switch it on."""

    def bind(self, input_shape: tuple[int, ...]) -> None:
        return None

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        return model

    def modify_loss(self, loss_fn: LossFn, n_classes: int) -> LossFn:
        return loss_fn

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs, targets

    def penalty(self, weights: Sequence[torch.Tensor]) -> torch.Tensor | None:
        return None

    def after_backward(self, params: Sequence[torch.Tensor]) -> None:
        return None

    def after_step(self, weights: Sequence[torch.Tensor]) -> None:
        return None

    def epoch_metrics(self) -> dict[str, float]:
        return {}


def discovered() -> list[type[Regularizer]]:
    """Every regularizer class of this package, in module-name order."""
    package = importlib.import_module(__package__ or "workers.training.regularizers")
    classes: list[type[Regularizer]] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Regularizer)
            and not inspect.isabstract(value)  # a shared base such as ImageAugmentation
            and value.__module__ == module.__name__
        ]
    return classes


def from_spec(spec: JobSpec) -> list[Regularizer]:
    """The regularizers `spec` switches on, in the order their hooks run."""
    return [regularizer for cls in discovered() if (regularizer := cls.for_spec(spec)) is not None]


def total_penalty(regularizers: list[Regularizer], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum of every regularizer's penalty term, in order; zero when none has one."""
    terms = [term for regularizer in regularizers if (term := regularizer.penalty(weights)) is not None]
    if not terms:
        return weights[0].new_zeros(())
    return torch.stack(terms).sum()
