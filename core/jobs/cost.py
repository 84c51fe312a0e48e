"""What a job costs, counted from its spec and its data set's size alone (no torch), and the server's bounds.

The rule, in the order `check` applies it (each bound is a setting, shown on `GET /v1/me`):

1. Data bytes: rows * features * 8, the float64 matrix a worker generates or loads before it splits and
   standardizes it. Rows and features are a synthetic set's `n_samples` and `n_features` (defaults 1000
   and 20), an uploaded set's stored rows and encoded features, or a built-in set's own. Over
   `max_data_bytes`: a 422 naming `dataset`.
2. Activation bytes: `training.batch_size` * the widest layer * 4 (float32), the largest tensor one
   training step makes. The widest layer is the widest of the input, each convolution block's output
   before pooling (filters * height * width: padding keeps the spatial size), each hidden layer and the
   output layer. Over `max_activation_bytes`: a 422 naming `model`.
3. Wall time: every job stops with `stop_reason: timeout` after `max_wall_seconds` of training (the
   worker enforces it). A spec's own `training.max_wall_seconds` may lower it; one that asks for more is
   a 422 naming `training.max_wall_seconds`. So a spec whose epochs would take longer (a wide CNN for
   100,000 epochs) is bounded rather than refused.

Parameters are an owner limit beside these (`max_model_parameters`, quotas.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from core.errors import InvalidSpec
from core.settings import Settings
from core.spec.job import JobSpec, ModelSpec

FLOAT64_BYTES = 8
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class CostBounds:
    max_data_bytes: Annotated[int, Field(description="Bytes of data a job may generate or load (rows * features * 8).")]
    max_activation_bytes: Annotated[
        int, Field(description="Bytes of the largest tensor one training step may make (batch * widest layer * 4).")
    ]
    max_wall_seconds: Annotated[
        float, Field(description="Seconds of training after which every job stops (`timeout`).")
    ]


def cost_bounds(settings: Settings) -> CostBounds:
    return CostBounds(settings.max_data_bytes, settings.max_activation_bytes, settings.max_wall_seconds)


def data_bytes(rows: int, input_shape: tuple[int, ...]) -> int:
    """Step 1: the float64 feature matrix."""
    return rows * math.prod(input_shape) * FLOAT64_BYTES


def widest_layer(model: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> int:
    """Step 2: the most values one example has in any layer's output (or in the input)."""
    widths = [math.prod(input_shape), *model.hidden_layers, n_outputs]
    if model.type == "cnn":
        _channels, height, breadth = input_shape
        for conv in model.conv_layers:
            widths.append(conv.filters * height * breadth)
            if conv.pool:
                height, breadth = height // conv.pool, breadth // conv.pool
    return max(widths)


def check(spec: JobSpec, rows: int, input_shape: tuple[int, ...], n_outputs: int, bounds: CostBounds) -> None:
    """422 for a spec past a cost bound, naming the bound (steps 1-3 of the module's rule)."""
    data = data_bytes(rows, input_shape)
    if data > bounds.max_data_bytes:
        raise InvalidSpec(
            "dataset",
            f"{rows} rows of {math.prod(input_shape)} features are {data} bytes, over the limit "
            f"`max_data_bytes` of {bounds.max_data_bytes}",
            "too_large",
        )
    activations = spec.training.batch_size * widest_layer(spec.model, input_shape, n_outputs) * FLOAT32_BYTES
    if activations > bounds.max_activation_bytes:
        raise InvalidSpec(
            "model",
            f"a batch of {spec.training.batch_size} through its widest layer is {activations} bytes of "
            f"activations, over the limit `max_activation_bytes` of {bounds.max_activation_bytes}",
            "too_large",
        )
    asked = spec.training.max_wall_seconds
    if asked is not None and asked > bounds.max_wall_seconds:
        raise InvalidSpec(
            "training.max_wall_seconds",
            f"{asked:g} seconds is over the limit `max_wall_seconds` of {bounds.max_wall_seconds:g}",
        )
