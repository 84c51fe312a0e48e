"""What an analysis of a job works from: the job's spec and data, its kept weights, a time limit, and a way to
store a file beside the job's other artifacts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.spec.job import JobSpec, output_size
from workers.training.data import PreparedData
from workers.training.losses import LossFn, build_loss, predict
from workers.training.metrics import score_names, scores
from workers.training.model import build_model


class AnalysisTimeout(TimeoutError):
    pass


@dataclass
class Context:
    spec: JobSpec  # resolved: its loss is known
    data: PreparedData
    weights: dict[str, torch.Tensor] | None  # the job's kept weights; None for an analysis of the spec alone
    options: dict[str, Any]
    seconds: float  # the analysis's time limit (settings.analysis_seconds)
    rows: int  # at most this many rows of a split are evaluated (settings.analysis_rows)
    store: Callable[[str, bytes], None]  # (artifact name, bytes): kept beside the job's weights
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    started: float = field(default_factory=time.monotonic)

    def check_time(self) -> None:
        """Raise once the analysis has used its time; called between steps."""
        if time.monotonic() - self.started > self.seconds:
            raise AnalysisTimeout(f"stopped after the {self.seconds:g} s an analysis may take (ANALYSIS_SECONDS)")

    def model(self) -> nn.Sequential:
        """The job's network with its kept weights, in evaluation mode, on the device."""
        n_outputs = output_size(self.data.task, self.spec.loss_spec, self.data.n_classes)
        model = build_model(self.spec.model, self.data.input_shape, n_outputs)
        if self.weights is not None:
            model.load_state_dict(self.weights)
        return model.to(self.device).eval()

    def loss_fn(self) -> LossFn:
        return build_loss(self.spec.loss_spec, self.data.n_classes, self.spec.regularization.label_smoothing)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A split's rows as device tensors, a seeded sample of `rows` of them when it has more."""
        x: np.ndarray = getattr(self.data, f"x_{name}")
        y: np.ndarray = getattr(self.data, f"y_{name}")
        if len(x) > self.rows:
            keep = np.random.default_rng(self.spec.training.seed).choice(len(x), self.rows, replace=False)
            x, y = x[np.sort(keep)], y[np.sort(keep)]
        target = torch.as_tensor(y, dtype=torch.long if self.data.task == "classification" else torch.float32)
        return torch.as_tensor(x, dtype=torch.float32).to(self.device), target.to(self.device)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """{loss, *the task's scores} of `model` on (x, y)."""
        outputs = model(x)
        values = [
            self.loss_fn()(outputs, y),
            *scores(predict(outputs, self.data.task), y, self.data.task, self.data.n_classes),
        ]
        return dict(zip(("loss", *score_names(self.data.task)), (float(v) for v in values), strict=True))
