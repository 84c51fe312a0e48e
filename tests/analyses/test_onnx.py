"""The ONNX export: the graph standardizes, runs the network and gives probabilities or values as worked by
hand; a trained CNN with dropout and batch norm exports, passes onnx.checker and matches torch."""

from __future__ import annotations

from core.settings import Settings
from workers.environment import prepare_torch

prepare_torch(Settings())

import json  # noqa: E402
import math  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from core.artifacts import ONNX_INPUT, ONNX_METADATA  # noqa: E402
from tests.training.factories import hand_made, hand_made_images, job_spec  # noqa: E402
from workers.analyses import onnx as onnx_analysis  # noqa: E402
from workers.analyses.context import Context  # noqa: E402
from workers.analyses.onnx import Servable, to_onnx  # noqa: E402
from workers.training.engine import train  # noqa: E402


def linear(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def run(model: bytes, rows: list[list[float]]) -> np.ndarray:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {ONNX_INPUT: np.array(rows, np.float32)})[0]


def test_the_graph_standardizes_then_gives_softmax_probabilities() -> None:
    # Row (3, 1) with mean (1, 1) and std (2, 2) is (1, 0); logits (1, 0) -> (e, 1) / (e + 1).
    servable = Servable(linear([[1, 0], [0, 1]], [0, 0]), np.ones(2), np.full(2, 2.0), "classification")
    answer = run(to_onnx(servable, 2, {}), [[3, 1], [1, 1]])
    e = math.e
    assert answer[0].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)], abs=1e-6)
    assert answer[1].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)


def test_a_single_logit_head_gives_both_class_probabilities_and_regression_gives_values() -> None:
    binary = Servable(linear([[2, 0]], [0]), np.zeros(2), np.ones(2), "classification")
    p = 1 / (1 + math.exp(-2))  # logit 2 * 1
    assert run(to_onnx(binary, 2, {}), [[1, 5]])[0].tolist() == pytest.approx([1 - p, p], abs=1e-6)
    regression = Servable(linear([[2, -1]], [0.5]), np.zeros(2), np.ones(2), "regression")
    values = run(to_onnx(regression, 2, {}), [[1, 1], [0, 2]])
    assert values.shape == (2,) and values.tolist() == pytest.approx([1.5, -1.5], abs=1e-6)


def stored_export(spec_changes: dict[str, Any], data: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    spec = job_spec(data.task, **spec_changes)
    weights = train(spec, data, device=torch.device("cpu")).weights
    stored: dict[str, bytes] = {}
    context = Context(spec, data, weights, {}, seconds=60, rows=1000, store=stored.__setitem__)
    return onnx_analysis.run(context), stored


def test_a_trained_cnn_with_dropout_and_batch_norm_exports_and_matches_torch() -> None:
    model = {"type": "cnn", "conv_layers": [{"filters": 4, "kernel_size": 3, "pool": 2}], "dropout": 0.3}
    result, stored = stored_export(
        {
            "dataset": {"name": "digits"},
            "model": {**model, "hidden_layers": [8], "batch_norm": True},
            "training": {"epochs": 2},
        },
        hand_made_images(),
    )
    blob = stored["model.onnx"]
    onnx.checker.check_model(onnx.load_from_string(blob), full_check=True)
    assert result["bytes"] == len(blob) and result["rows_checked"] == 8
    assert 0 <= result["largest_difference"] <= 1e-5
    metadata = json.loads(onnx.load_from_string(blob).metadata_props[0].value)
    assert onnx.load_from_string(blob).metadata_props[0].key == ONNX_METADATA
    assert metadata["input_shape"] == [1, 8, 8] and metadata["class_names"] == ["no", "yes"]
    assert metadata["model"]["type"] == "cnn"


def test_the_export_of_a_regression_job_gives_one_value_per_row() -> None:
    result, stored = stored_export({"training": {"epochs": 2}}, hand_made("regression"))
    assert result["output"]["shape"] == ["n"]
    assert run(stored["model.onnx"], [[0.0, 0.0, 0.0, 0.0]]).shape == (1,)
