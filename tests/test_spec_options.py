"""Every model, regularizer, loss, optimizer, scheduler and early-stopping option of the spec is
accepted by POST /v1/jobs, trains on a real worker, and reports every per-epoch metric of its task."""

from __future__ import annotations

from typing import Any

import httpx

from core.spec.job import metrics_for
from tests.fixtures import Process, wait_for_job

SPECS: dict[str, dict[str, Any]] = {
    "cnn on digits, every regularizer, sgd with nesterov, step schedule with warm-up, full early stopping": {
        "dataset": {"name": "digits", "validation_split": 0.2, "test_split": 0.2},
        "model": {
            "type": "cnn",
            "conv_layers": [{"filters": 8, "kernel_size": 3, "pool": 2}],
            "hidden_layers": [32, 16],
            "activation": "relu",
            "dropout": [0.3, 0.1],
            "input_dropout": 0.1,
            "batch_norm": "after_activation",
            "init": "orthogonal",
        },
        "regularization": {
            "l1": 1e-4,
            "l2": 1e-4,
            "max_norm": 3.0,
            "gradient_clip_norm": 1.0,
            "label_smoothing": 0.1,
            "input_noise": 0.05,
        },
        "loss": {"name": "cross_entropy"},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
        "scheduler": {"name": "step", "step_size": 2, "gamma": 0.5, "warmup_epochs": 2},
        "training": {"epochs": 6, "batch_size": 64, "seed": 1},
        "early_stopping": {
            "monitor": "val_accuracy",
            "mode": "max",
            "patience": 10,
            "min_delta": 0.001,
            "baseline": 0.05,
            "start_from_epoch": 1,
            "restore_best_weights": True,
            "stopping_threshold": 0.999,
            "divergence_threshold": 0.01,
        },
    },
    "moons, binary cross-entropy, rmsprop, cosine": {
        "dataset": {"name": "moons", "n_samples": 400, "noise": 0.2, "seed": 3},
        "model": {"hidden_layers": [16, 16], "activation": "leaky_relu", "init": "xavier_uniform", "batch_norm": True},
        "loss": "binary_cross_entropy",
        "optimizer": {"name": "rmsprop", "lr": 0.01, "momentum": 0.5},
        "scheduler": {"name": "cosine", "t_max": 5, "eta_min": 0.0001},
        "training": {"epochs": 5, "batch_size": 32, "seed": 2},
    },
    "synthetic regression, huber, adamw with weight decay, exponential": {
        "dataset": {"name": "regression", "n_samples": 300, "n_features": 6, "noise": 0.5},
        "model": {"hidden_layers": [16], "activation": "elu", "init": "he_uniform"},
        "regularization": {"l2": 1e-3},
        "loss": {"name": "huber", "delta": 2.0},
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
        "scheduler": {"name": "exponential", "gamma": 0.9},
        "training": {"epochs": 5, "batch_size": 32, "seed": 3},
        "early_stopping": {"monitor": "val_r2", "mode": "auto", "patience": 3},
    },
    "diabetes, mae, reduce on plateau, selu": {
        "dataset": {"name": "diabetes"},
        "model": {"hidden_layers": [8], "activation": "selu", "init": "xavier_normal"},
        "loss": "mae",
        "optimizer": {"name": "adam", "lr": 0.01},
        "scheduler": {"name": "reduce_on_plateau", "factor": 0.5, "patience": 1},
        "training": {"epochs": 4, "batch_size": 32, "seed": 4},
    },
    "three-class synthetic data, gelu, plain sgd, zeros init": {
        "dataset": {"name": "classification", "n_samples": 300, "n_features": 5, "n_classes": 3, "noise": 0.05},
        "model": {"hidden_layers": [8, 8], "activation": "gelu", "init": "zeros"},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "training": {"epochs": 3, "batch_size": 16, "seed": 5},
    },
    "circles, tanh, dropout, default cross-entropy": {
        "dataset": {"name": "circles", "n_samples": 300, "noise": 0.05},
        "model": {"hidden_layers": [8], "activation": "tanh", "init": "he_normal", "dropout": 0.2},
        "training": {"epochs": 3, "batch_size": 32, "seed": 6},
    },
    "wine, sigmoid": {
        "dataset": {"name": "wine"},
        "model": {"hidden_layers": [8], "activation": "sigmoid"},
        "training": {"epochs": 3, "batch_size": 16, "seed": 7},
    },
}


def test_every_option_trains_and_reports_every_metric(api_server: httpx.Client, worker: Process) -> None:
    submitted = {}
    for label, spec in SPECS.items():
        response = api_server.post("/v1/jobs", json={"name": label[:200], **spec})
        assert response.status_code == 202, (label, response.text)
        submitted[label] = response.json()

    for label, job in submitted.items():
        finished = wait_for_job(api_server, job["id"])
        epochs = api_server.get(f"/v1/jobs/{job['id']}/metrics").json()["items"]
        assert finished["status"] == "succeeded", (label, finished["error"])
        assert epochs, label
        assert set(epochs[0]) == {"epoch", *metrics_for(finished["task"])}, label
        assert finished["test_metrics"], label
