"""The kept model as ONNX, for predictions without torch (the API answers them with onnxruntime).

The graph takes raw rows, float32 (n, features) in the training columns' order (an image flattened as
channels x height x width), and does what the job did before and after its network:
1. standardize each feature by the training split's mean and std;
2. run the network in evaluation mode (dropout off, batch norm on its running statistics);
3. classification: each class's probability (softmax; a single-logit binary head as [1 - p, p]);
   regression: the value, shape (n,).
What a caller needs to build the rows (feature and class names, the input shape, the data set's text columns)
is in the model's metadata under `steadyfit`, as JSON.

The export, as an analysis of a succeeded job:
1. `onnx.checker` accepts the graph (full check, with shape inference);
2. onnxruntime's answers on the test split (up to ANALYSIS_ROWS rows, as raw rows) match torch's within 1e-5,
   relative where a value exceeds 1;
3. only then is the file stored, so a model that fails a check is never served.
A failure fails this analysis and leaves the job succeeded.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from core.artifacts import ONNX_FILE, ONNX_INPUT, ONNX_METADATA, ONNX_OUTPUT
from core.spec.job import Task
from workers.analyses.context import Context

OPSET = 17


class Servable(nn.Module):
    """The network between the job's preprocessing and the answer a caller wants."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, network: nn.Module, mean: np.ndarray, std: np.ndarray, task: Task) -> None:
        super().__init__()
        self.network, self.task = network.eval(), task
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        outputs = self.network((rows - self.mean) / self.std)
        if self.task == "regression":
            return outputs.squeeze(-1)
        if outputs.shape[-1] == 1:
            positive = torch.sigmoid(outputs)
            return torch.cat([1 - positive, positive], dim=-1)
        return torch.softmax(outputs, dim=-1)


def to_onnx(servable: Servable, n_features: int, metadata: dict[str, Any]) -> bytes:
    """The servable as an ONNX model with a dynamic row count and `metadata` stored under `steadyfit`."""
    import onnx  # workers only: the API reads models with onnxruntime

    servable = servable.cpu().eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter: the dynamo one needs onnxscript and takes seconds per small model.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            servable,
            (torch.zeros(2, n_features),),
            cast(Any, buffer),  # the stub names paths; the TorchScript exporter writes to any binary file
            dynamo=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "n"}, ONNX_OUTPUT: {0: "n"}},
            opset_version=OPSET,
        )
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA, json.dumps(metadata)
    onnx.checker.check_model(model, full_check=True)
    return bytes(model.SerializeToString())


def largest_difference(onnx_model: bytes, servable: Servable, rows: np.ndarray) -> float:
    """The largest |onnxruntime - torch| over `rows`, relative to the torch value where that exceeds 1."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    answer = session.run([ONNX_OUTPUT], {ONNX_INPUT: rows.astype(np.float32)})[0]
    with torch.no_grad():
        expected = servable.cpu().eval()(torch.as_tensor(rows, dtype=torch.float32)).numpy()
    return float((np.abs(answer - expected) / np.maximum(1.0, np.abs(expected))).max(initial=0.0))


TOLERANCE = 1e-5


def run(context: Context) -> dict[str, Any]:
    data = context.data
    servable = Servable(context.model(), data.feature_mean, data.feature_std, data.task)
    card = data.model_card(context.spec)
    metadata = {key: value for key, value in card.items() if key not in ("feature_std", "spec")}
    metadata["model"] = card["spec"]["model"]
    n_features = math.prod(data.input_shape)
    model = to_onnx(servable, n_features, metadata)
    context.check_time()
    x, _ = context.split("test")
    rows = x.cpu().numpy() * data.feature_std + data.feature_mean  # as a caller sends them
    difference = largest_difference(model, servable, rows)
    if not difference <= TOLERANCE:
        raise ValueError(f"onnxruntime differs from torch by {difference:.3g} on the test split, over {TOLERANCE:g}")
    context.store(ONNX_FILE, model)
    classes = data.class_names
    return {
        "file": ONNX_FILE,
        "bytes": len(model),
        "opset": OPSET,
        "input": {"name": ONNX_INPUT, "shape": ["n", n_features], "dtype": "float32"},
        "output": {
            "name": ONNX_OUTPUT,
            "shape": ["n", len(classes)] if data.task == "classification" else ["n"],
            "meaning": "class probabilities" if data.task == "classification" else "predicted values",
        },
        "rows_checked": len(rows),
        "largest_difference": difference,
    }
