"""The dropout types against what they promise: alpha dropout keeps a SELU network self-normalizing where
standard dropout does not; Gaussian dropout's noise has mean 1 and variance p/(1-p); spatial dropout drops
whole channels; DropConnect drops weights, and is the plain layer in evaluation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.spec.job import ConvLayerSpec, ModelSpec
from workers.training.model import build_model
from workers.training.regularizers.alpha_dropout import AlphaDropout
from workers.training.regularizers.dropconnect import DropConnect, DropConnectLinear
from workers.training.regularizers.dropout import DropoutPlacement
from workers.training.regularizers.gaussian_dropout import GaussianNoiseLayer
from workers.training.regularizers.spatial_dropout import SpatialDropout

DEPTH, WIDTH = 8, 256


def selu_activations(regularizer: AlphaDropout | DropoutPlacement) -> torch.Tensor:
    """The last hidden layer's outputs of an 8 x 256 SELU network (LeCun-normal weights: xavier_normal on square
    layers) in training mode, on standard-normal inputs."""
    torch.manual_seed(0)
    spec = ModelSpec(hidden_layers=[WIDTH] * DEPTH, activation="selu", init="xavier_normal", dropout=0.1)
    model = regularizer.modify_model(build_model(spec, (WIDTH,), 2)).train()
    with torch.no_grad():
        return model[:-1](torch.randn(4096, WIDTH))


def test_alpha_dropout_keeps_a_selu_network_at_mean_0_and_variance_1_and_standard_dropout_does_not() -> None:
    alpha = selu_activations(AlphaDropout([0.1] * DEPTH))
    standard = selu_activations(DropoutPlacement(0.0, [0.1] * DEPTH))
    # Measured: alpha mean 0.001, variance 1.00; standard mean 0.045, variance 1.55 after eight layers.
    assert abs(alpha.mean().item()) < 0.02 and alpha.var().item() == pytest.approx(1.0, abs=0.05)
    assert standard.var().item() > 1.3


def test_gaussian_dropout_multiplies_by_noise_of_mean_1_and_variance_p_over_1_minus_p() -> None:
    torch.manual_seed(0)
    layer = GaussianNoiseLayer(0.2).train()
    noise = layer(torch.ones(200_000))
    assert noise.mean().item() == pytest.approx(1.0, abs=0.01)
    assert noise.var().item() == pytest.approx(0.2 / 0.8, rel=0.02)
    assert torch.equal(layer.eval()(torch.ones(3)), torch.ones(3))


def test_spatial_dropout_zeroes_whole_channels_of_the_conv_blocks() -> None:
    torch.manual_seed(0)
    conv = ConvLayerSpec(filters=16, kernel_size=3)
    spec = ModelSpec(type="cnn", conv_layers=[conv], hidden_layers=[4], dropout=0.5, dropout_type="spatial")
    model = SpatialDropout(0.5).modify_model(build_model(spec, (1, 6, 6), 2)).train()
    with torch.no_grad():
        maps = model[:2](torch.rand(8, 36) + 1)  # unflatten, then the conv block with its dropout
    per_channel = maps.flatten(2)
    zero, alive = (per_channel == 0).all(dim=2), (per_channel != 0).any(dim=2)
    assert (zero | alive).all() and zero.any() and alive.any()  # each channel whole: dropped or kept


def test_dropconnect_drops_weights_in_training_and_is_the_plain_layer_in_evaluation() -> None:
    torch.manual_seed(0)
    spec = ModelSpec(hidden_layers=[64])
    model = DropConnect([0.5]).modify_model(build_model(spec, (32,), 2))
    linear = model.get_submodule("hidden0.linear")
    assert isinstance(linear, DropConnectLinear) and "hidden0.linear.weight" in model.state_dict()
    x = torch.eye(32)  # row i reads column i of the weights
    with torch.no_grad():
        plain = nn.functional.linear(x, linear.weight, linear.bias)
        trained = linear.train()(x)
        assert torch.equal(linear.eval()(x), plain)
    dropped = trained == linear.bias  # a dropped weight leaves the bias alone
    kept = torch.isclose(trained, linear.bias + 2 * (plain - linear.bias))  # the rest scaled by 1/(1-0.5)
    assert (dropped | kept).all() and dropped.float().mean().item() == pytest.approx(0.5, abs=0.05)
