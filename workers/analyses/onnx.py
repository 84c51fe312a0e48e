"""The kept model exported to ONNX with its preprocessing inside (workers/training/export.py), checked, and kept
as the job's `model.onnx`:
1. `onnx.checker` accepts the graph (full check, with shape inference);
2. onnxruntime's answers on the test split (up to ANALYSIS_ROWS rows, as raw rows) match torch's within 1e-5,
   relative where a value exceeds 1;
3. only then is the file stored, so a model that fails a check is never served.
A failure fails this analysis and leaves the job succeeded.
"""

from __future__ import annotations

import math
from typing import Any

from core.artifacts import ONNX_FILE
from workers.analyses.context import Context
from workers.training.export import INPUT, OPSET, OUTPUT, Servable, largest_difference, to_onnx

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
        "input": {"name": INPUT, "shape": ["n", n_features], "dtype": "float32"},
        "output": {
            "name": OUTPUT,
            "shape": ["n", len(classes)] if data.task == "classification" else ["n"],
            "meaning": "class probabilities" if data.task == "classification" else "predicted values",
        },
        "rows_checked": len(rows),
        "largest_difference": difference,
    }
