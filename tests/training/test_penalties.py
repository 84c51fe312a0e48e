import math
from typing import Any

import pytest
import torch
from torch import nn

from core.spec.job import ModelSpec
from workers.training.model import build_model
from workers.training.penalties import apply_max_norm, layer_weights, penalty, weight_stats

HIDDEN = [[1.0, -2.0, 0.0], [0.5, 0.0, -1.0]]  # Σ|w| = 4.5, Σw² = 6.25
OUTPUT = [[3.0, -1.0], [0.0, 2.0]]  # Σ|w| = 6, Σw² = 14


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


def gradients_of(value: torch.Tensor, model: nn.Module) -> dict[str, Any]:
    value.backward()
    return {name: p.grad for name, p in model.named_parameters()}


def assert_no_gradient_beyond_weights(grads: dict[str, Any]) -> None:
    for name in ("hidden0.linear.bias", "output.bias", "hidden0.norm.weight", "hidden0.norm.bias"):
        assert grads[name] is None, name


def test_the_penalized_weights_are_those_of_linear_layers_only():
    model = tiny_network()
    assert [w.shape for w in layer_weights(model)] == [(2, 3), (2, 2)]


def test_l1_penalty_is_l1_times_the_absolute_sum_with_gradient_l1_sign_w():
    model = tiny_network()
    value = penalty(layer_weights(model), l1=0.1, l2=0.0)
    assert value.item() == pytest.approx(0.1 * 10.5)
    grads = gradients_of(value, model)
    assert torch.allclose(grads["hidden0.linear.weight"], torch.tensor([[0.1, -0.1, 0.0], [0.1, 0.0, -0.1]]))
    assert torch.allclose(grads["output.weight"], torch.tensor([[0.1, -0.1], [0.0, 0.1]]))
    assert_no_gradient_beyond_weights(grads)


def test_l2_penalty_is_l2_times_the_squared_sum_with_gradient_two_l2_w():
    model = tiny_network()
    value = penalty(layer_weights(model), l1=0.0, l2=0.01)
    assert value.item() == pytest.approx(0.01 * 20.25)
    grads = gradients_of(value, model)
    assert torch.allclose(grads["hidden0.linear.weight"], 0.02 * torch.tensor(HIDDEN))
    assert torch.allclose(grads["output.weight"], 0.02 * torch.tensor(OUTPUT))
    assert_no_gradient_beyond_weights(grads)


def test_elastic_net_adds_both_penalties_and_both_gradients():
    model = tiny_network()
    value = penalty(layer_weights(model), l1=0.1, l2=0.01)
    assert value.item() == pytest.approx(1.05 + 0.2025)
    grads = gradients_of(value, model)
    hidden = torch.tensor(HIDDEN)
    assert torch.allclose(grads["hidden0.linear.weight"], 0.1 * hidden.sign() + 0.02 * hidden)


def test_no_penalty_is_zero():
    assert penalty(layer_weights(tiny_network()), l1=0.0, l2=0.0).item() == 0.0


def test_max_norm_rescales_only_the_rows_above_the_limit():
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, -2.0]]))
        layer.bias.fill_(10.0)
    apply_max_norm([layer.weight], max_norm=1.0)
    expected = torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, -1.0]])
    assert torch.allclose(layer.weight, expected, atol=1e-6)
    assert torch.equal(layer.bias, torch.full((3,), 10.0))


def test_max_norm_treats_each_conv_filter_as_one_unit():
    conv = nn.Conv2d(1, 2, kernel_size=2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[2.0, 2.0], [2.0, 2.0]]], [[[0.1, 0.0], [0.0, 0.0]]]]))
    apply_max_norm([conv.weight], max_norm=2.0)
    assert torch.allclose(conv.weight[0], torch.full((1, 2, 2), 1.0), atol=1e-6)  # norm 4 → 2
    assert torch.allclose(conv.weight[1, 0, 0, 0], torch.tensor(0.1))


def test_weight_stats_are_l1_l2_norms_and_near_zero_fraction_of_weights_only():
    model = tiny_network()
    with torch.no_grad():
        model.output.weight[1, 0] = 5e-4  # below the 1e-3 threshold; the bias of 0 below is not counted
        model.output.bias.zero_()
    l1, l2, sparsity = weight_stats(layer_weights(model)).tolist()
    assert l1 == pytest.approx(10.5 + 5e-4)
    assert l2 == pytest.approx(math.sqrt(20.25 + 2.5e-7))
    assert sparsity == pytest.approx(3 / 10)
