"""Build the network a ModelSpec describes, and warm-start it from another job's weights.

Blocks are named so that a state dict reads like the spec: `conv0.conv.weight`, `hidden1.norm.running_mean`,
`output.weight`. The *trainable layers* are the Linear/Conv layers in order, the output layer last; their
indices are what `init_from.freeze` refers to.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping

import torch
from torch import nn

from core.spec.architecture import padding, side_after
from core.spec.job import Activation, BatchNormPlacement, ConvLayerSpec, Init, ModelSpec

ACTIVATIONS: dict[Activation, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
WeightedLayer = nn.Linear | nn.Conv2d
HEAD = "output."  # the output layer's prefix in the state dict


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> nn.Sequential:
    """[conv blocks → flatten] → hidden blocks → output Linear, initialized per `spec.init`.

    The model takes flat rows (n, features); a CNN unflattens them to `input_shape` (channels, height, width).
    Batch normalization follows `spec.batch_norm` in conv blocks and hidden blocks alike. Dropout is a
    regularizer (`regularizers/dropout.py`): it places its layers in the built model.
    """
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    width = math.prod(input_shape)
    if spec.type == "cnn":
        channels, height, breadth = input_shape
        blocks["unflatten"] = nn.Unflatten(1, input_shape)
        for i, conv in enumerate(spec.conv_layers):
            blocks[f"conv{i}"] = _conv_block(channels, conv, spec)
            channels = conv.filters
            height, breadth = (side_after(side, conv) for side in (height, breadth))
            if height < 1 or breadth < 1:
                raise ValueError(f"model.conv_layers[{i}] leaves no pixels of the {input_shape} input")
        if spec.global_pool:
            blocks["pool"] = nn.AdaptiveAvgPool2d(1)
            height = breadth = 1
        blocks["flatten"] = nn.Flatten()
        width = channels * height * breadth
    for i, units in enumerate(spec.hidden_layers):
        blocks[f"hidden{i}"] = _hidden_block(width, units, spec)
        width = units
    blocks["output"] = nn.Linear(width, n_outputs)
    model = nn.Sequential(blocks)
    for layer in trainable_layers(model):
        init_layer(layer, spec.init)
    return model


def _hidden_block(width: int, units: int, spec: ModelSpec) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(linear=nn.Linear(width, units))
    _add_activation(layers, spec.activation, spec.batch_norm_placement, lambda: nn.BatchNorm1d(units))
    return nn.Sequential(layers)


def _conv_block(channels: int, conv: ConvLayerSpec, spec: ModelSpec) -> nn.Sequential:
    filters, kernel = conv.filters, conv.kernel_size
    if conv.stride == 1 and conv.padding == "same":
        layer = nn.Conv2d(channels, filters, kernel, padding="same")
    else:  # PyTorch's "same" takes stride 1 only
        layer = nn.Conv2d(channels, filters, kernel, stride=conv.stride, padding=padding(conv))
    layers: OrderedDict[str, nn.Module] = OrderedDict(conv=layer)
    _add_activation(layers, spec.activation, spec.batch_norm_placement, lambda: nn.BatchNorm2d(filters))
    if conv.residual:
        shortcut = (
            nn.Identity()
            if channels == filters and conv.stride == 1
            else nn.Conv2d(channels, filters, 1, stride=conv.stride)
        )
        layers = OrderedDict(residual=Residual(nn.Sequential(layers), shortcut))
    if conv.pool:
        layers["pool"] = nn.MaxPool2d(conv.pool)
    return nn.Sequential(layers)


class Residual(nn.Module):
    """body(x) + shortcut(x): the block learns what to add to its input."""

    def __init__(self, body: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def _add_activation(
    layers: OrderedDict[str, nn.Module],
    activation: Activation,
    placement: BatchNormPlacement | None,
    norm: Callable[[], nn.Module],
) -> None:
    if placement == "before_activation":
        layers["norm"] = norm()
    layers["act"] = ACTIVATIONS[activation]()
    if placement == "after_activation":
        layers["norm"] = norm()


def trainable_layers(model: nn.Module) -> list[WeightedLayer]:
    """The Linear/Conv layers in order; the output layer is last."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def layer_weights(model: nn.Module, *, trainable_only: bool = False) -> list[torch.Tensor]:
    """The weight tensors of the Linear/Conv layers (what penalties, constraints and weight metrics see),
    optionally without frozen ones."""
    weights = [layer.weight for layer in trainable_layers(model)]
    return [w for w in weights if w.requires_grad] if trainable_only else weights


def init_layer(layer: WeightedLayer, init: Init) -> None:
    """Initialize one layer's weight; every init but `default` (PyTorch's own) zeroes the bias."""
    if init == "default":
        return  # the layer's constructor already applied PyTorch's own initialization
    weight = layer.weight
    if init == "he_normal":
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
    elif init == "he_uniform":
        nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="relu")
    elif init == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif init == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif init == "orthogonal":
        nn.init.orthogonal_(weight)
    else:
        nn.init.zeros_(weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def load_initial_weights(model: nn.Module, weights: Mapping[str, torch.Tensor], *, reset_head: bool) -> None:
    """Warm-start `model` from another job's kept weights.

    Tensors load by name. When an output-layer tensor differs in shape and `reset_head` is set, the whole
    output layer keeps the fresh initialization the model was built with; any other shape mismatch is a
    ValueError, as is a source with no tensor in common with the model.
    """
    state = model.state_dict()
    shared = [name for name in state if name in weights]
    if not shared:
        raise ValueError("the source weights have no tensor in common with this model")
    mismatched = [name for name in shared if weights[name].shape != state[name].shape]
    skipped: set[str] = set()
    if reset_head and any(name.startswith(HEAD) for name in mismatched):
        skipped = {name for name in shared if name.startswith(HEAD)}
    for name in mismatched:
        if name not in skipped:
            hint = " (set init_from.reset_head to re-initialize it)" if name.startswith(HEAD) else ""
            raise ValueError(
                f"cannot load `{name}`: shape {tuple(weights[name].shape)} in the source weights, "
                f"{tuple(state[name].shape)} in this model{hint}"
            )
    with torch.no_grad():
        for name in shared:
            if name not in skipped:
                state[name].copy_(weights[name])


def freeze(model: nn.Module, indices: list[int]) -> None:
    """Stop gradients for the trainable layers at these indices (0 = first, output layer last)."""
    layers = trainable_layers(model)
    for index in indices:
        if index >= len(layers):
            raise ValueError(f"init_from.freeze: layer {index} does not exist; the model has {len(layers)}")
        layers[index].requires_grad_(False)
