"""The network a ModelSpec describes, without torch: each block's output size, and each tensor of its state
dict by name and shape. The engine builds its layers with the same sizes (workers/training/model.py), the
quotas count parameters from the same tensors, and an uploaded weights file is checked against them
(POST /v1/models). A test holds the names and shapes to what the engine builds.
"""

from __future__ import annotations

import math

from core.spec.job import ConvLayerSpec, ModelSpec

BATCH_NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")  # buffers, not parameters


def padding(conv: ConvLayerSpec) -> int:
    return conv.kernel_size // 2 if conv.padding == "same" else 0


def side_after(side: int, conv: ConvLayerSpec) -> int:
    """A height or width after the block: the convolution (its stride and padding), then the pooling."""
    if conv.stride > 1 or conv.padding == "valid":  # PyTorch's "same" at stride 1 keeps the side, even kernels too
        side = (side + 2 * padding(conv) - conv.kernel_size) // conv.stride + 1
    return side // conv.pool if conv.pool else side


def tensor_shapes(model: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> dict[str, tuple[int, ...]]:
    """Every tensor of the network's state dict, in the engine's names (`conv0.conv.weight`, `hidden1.norm.
    running_mean`, `output.bias`, …)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def norm(block: str, width: int) -> None:
        if model.batch_norm_placement is not None:
            shapes.update({f"{block}.norm.weight": (width,), f"{block}.norm.bias": (width,)})
            shapes.update({f"{block}.norm.running_mean": (width,), f"{block}.norm.running_var": (width,)})
            shapes[f"{block}.norm.num_batches_tracked"] = ()

    width = math.prod(input_shape)
    if model.type == "cnn":
        channels, height, breadth = input_shape
        for i, conv in enumerate(model.conv_layers):
            body = f"conv{i}.residual.body" if conv.residual else f"conv{i}"
            shapes[f"{body}.conv.weight"] = (conv.filters, channels, conv.kernel_size, conv.kernel_size)
            shapes[f"{body}.conv.bias"] = (conv.filters,)
            norm(body, conv.filters)
            if conv.residual and (channels != conv.filters or conv.stride != 1):
                shapes[f"conv{i}.residual.shortcut.weight"] = (conv.filters, channels, 1, 1)
                shapes[f"conv{i}.residual.shortcut.bias"] = (conv.filters,)
            channels = conv.filters
            height, breadth = side_after(height, conv), side_after(breadth, conv)
        if model.global_pool:
            height = breadth = 1
        width = channels * height * breadth
    for i, units in enumerate(model.hidden_layers):
        shapes[f"hidden{i}.linear.weight"] = (units, width)
        shapes[f"hidden{i}.linear.bias"] = (units,)
        norm(f"hidden{i}", units)
        width = units
    shapes["output.weight"] = (n_outputs, width)
    shapes["output.bias"] = (n_outputs,)
    return shapes


def parameter_count(model: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> int:
    """Trainable parameters of the network: its tensors but batch norm's running statistics."""
    return sum(
        math.prod(shape)
        for name, shape in tensor_shapes(model, input_shape, n_outputs).items()
        if not name.endswith(BATCH_NORM_STATISTICS)
    )
