"""Small, seeded specs and data sets for the engine's tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from core.spec.job import DatasetSpec, JobSpec, ModelSpec, Task
from workers.training.data import PreparedData, load_dataset
from workers.training.engine import EpochEnd, TrainResult, train
from workers.training.model import build_model

TIMING_METRICS = ("epoch_seconds", "samples_per_second")
HIDDEN = [[1.0, -2.0, 0.0], [0.5, 0.0, -1.0]]  # Σ|w| = 4.5, Σw² = 6.25
OUTPUT = [[3.0, -1.0], [0.0, 2.0]]  # Σ|w| = 6, Σw² = 14


def job_spec(task: Task = "classification", **sections: dict[str, Any]) -> JobSpec:
    """A tiny job (one hidden layer of 8, 4 epochs); each keyword updates that section of the spec."""
    spec: dict[str, Any] = {
        "dataset": {"name": "classification" if task == "classification" else "regression"},
        "model": {"hidden_layers": [8]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 4, "batch_size": 32, "seed": 3},
    }
    for section, values in sections.items():
        spec[section] = {**spec.get(section, {}), **values}
    return JobSpec.model_validate(spec).with_task(task)


def synthetic(task: Task = "classification", n_samples: int = 200, **options: Any) -> PreparedData:
    name = "classification" if task == "classification" else "regression"
    return load_dataset(DatasetSpec.model_validate({"name": name, "n_samples": n_samples, **options}), seed=3)


def digits() -> PreparedData:
    return load_dataset(DatasetSpec(name="digits"), seed=0)


def hand_made(task: Task = "classification") -> PreparedData:
    """Forty rows of four features, built by hand: no dependence on the data-set loaders."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    if task == "classification":
        y: np.ndarray = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
        classes = ["no", "yes"]
    else:
        y = (2 * x[:, 0] - x[:, 2]).astype(np.float32)
        classes = []
    return PreparedData(
        task=task,
        x_train=x[:24],
        y_train=y[:24],
        x_val=x[24:32],
        y_val=y[24:32],
        x_test=x[32:],
        y_test=y[32:],
        n_classes=len(classes),
        input_shape=(4,),
        feature_mean=np.zeros(4, np.float32),
        feature_std=np.ones(4, np.float32),
        feature_names=["a", "b", "c", "d"],
        class_names=classes,
    )


def hand_made_images() -> PreparedData:
    """Forty 1 x 8 x 8 images, built by hand (the shape of digits): the class is whether the left half is the
    brighter."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 64)).astype(np.float32)
    images = x.reshape(40, 8, 8)
    y = (images[:, :, :4].mean(axis=(1, 2)) > images[:, :, 4:].mean(axis=(1, 2))).astype(np.int64)
    return replace(hand_made(), x_train=x[:24], y_train=y[:24], x_val=x[24:32], y_val=y[24:32], x_test=x[32:],
                   y_test=y[32:], input_shape=(1, 8, 8), feature_mean=np.zeros(64, np.float32),
                   feature_std=np.ones(64, np.float32), feature_names=[f"p{i}" for i in range(64)])  # fmt: skip


def train_recording(spec: JobSpec, data: PreparedData, **kwargs: Any) -> tuple[TrainResult, list[EpochEnd]]:
    """Train and keep every EpochEnd the callback saw."""
    epochs: list[EpochEnd] = []
    result = train(spec, data, on_epoch_end=epochs.append, **kwargs)
    return result, epochs


def without_timing(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if key not in TIMING_METRICS}


def tiny_network() -> Any:  # Any: the tests reach into named blocks
    """3 inputs → 2 hidden units (batch norm) → 2 outputs, with hand-set weights and nonzero biases."""
    model: Any = build_model(ModelSpec(hidden_layers=[2], batch_norm=True), (3,), 2)
    with torch.no_grad():
        model.hidden0.linear.weight.copy_(torch.tensor(HIDDEN))
        model.output.weight.copy_(torch.tensor(OUTPUT))
        model.hidden0.linear.bias.fill_(5.0)
        model.output.bias.fill_(-7.0)
        model.hidden0.norm.weight.fill_(3.0)
        model.hidden0.norm.bias.fill_(0.5)
    return model
