"""L1, L2 and the elastic net (both on): their penalty terms and gradients, by hand, on the Linear weights only."""

from typing import Any

import pytest
import torch
from torch import nn

from tests.training.factories import HIDDEN, OUTPUT, tiny_network
from workers.training.model import layer_weights
from workers.training.regularizers.base import total_penalty
from workers.training.regularizers.l1 import L1
from workers.training.regularizers.l2 import L2


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
    value = total_penalty([L1(0.1)], layer_weights(model))
    assert value.item() == pytest.approx(0.1 * 10.5)
    grads = gradients_of(value, model)
    assert torch.allclose(grads["hidden0.linear.weight"], torch.tensor([[0.1, -0.1, 0.0], [0.1, 0.0, -0.1]]))
    assert torch.allclose(grads["output.weight"], torch.tensor([[0.1, -0.1], [0.0, 0.1]]))
    assert_no_gradient_beyond_weights(grads)


def test_l2_penalty_is_l2_times_the_squared_sum_with_gradient_two_l2_w():
    model = tiny_network()
    value = total_penalty([L2(0.01)], layer_weights(model))
    assert value.item() == pytest.approx(0.01 * 20.25)
    grads = gradients_of(value, model)
    assert torch.allclose(grads["hidden0.linear.weight"], 0.02 * torch.tensor(HIDDEN))
    assert torch.allclose(grads["output.weight"], 0.02 * torch.tensor(OUTPUT))
    assert_no_gradient_beyond_weights(grads)


def test_elastic_net_adds_both_penalties_and_both_gradients():
    model = tiny_network()
    value = total_penalty([L1(0.1), L2(0.01)], layer_weights(model))
    assert value.item() == pytest.approx(1.05 + 0.2025)
    grads = gradients_of(value, model)
    hidden = torch.tensor(HIDDEN)
    assert torch.allclose(grads["hidden0.linear.weight"], 0.1 * hidden.sign() + 0.02 * hidden)


def test_no_penalty_is_zero():
    assert total_penalty([], layer_weights(tiny_network())).item() == 0.0
