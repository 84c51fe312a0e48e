"""The kept model as ONNX, for predictions without torch (the API answers them with onnxruntime).

The graph takes raw rows, float32 (n, features) in the training columns' order (an image flattened as
channels x height x width), and does what the job did before and after its network:
1. standardize each feature by the training split's mean and std;
2. run the network in evaluation mode (dropout off, batch norm on its running statistics);
3. classification: each class's probability (softmax; a single-logit binary head as [1 - p, p]);
   regression: the value, shape (n,).
What a caller needs to build the rows (feature and class names, the input shape, the data set's text columns)
is in the model's metadata under `steadyfit`, as JSON.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from core.spec.job import Task

INPUT, OUTPUT = "rows", "output"
OPSET = 17
METADATA_KEY = "steadyfit"


class Servable(nn.Module):
    """The network between the job's preprocessing and the answer a caller wants."""

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
            buffer,
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}},
            opset_version=OPSET,
        )
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.checker.check_model(model, full_check=True)
    return bytes(model.SerializeToString())


def largest_difference(onnx_model: bytes, servable: Servable, rows: np.ndarray) -> float:
    """The largest |onnxruntime - torch| over `rows`, relative to the torch value where that exceeds 1."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    answer = session.run([OUTPUT], {INPUT: rows.astype(np.float32)})[0]
    with torch.no_grad():
        expected = servable.cpu().eval()(torch.as_tensor(rows, dtype=torch.float32)).numpy()
    return float((np.abs(answer - expected) / np.maximum(1.0, np.abs(expected))).max(initial=0.0))
