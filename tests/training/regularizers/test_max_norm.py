import torch
from torch import nn

from workers.training.regularizers.max_norm import MaxNorm


def test_max_norm_rescales_only_the_rows_above_the_limit():
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, -2.0]]))
        layer.bias.fill_(10.0)
    MaxNorm(1.0).after_step([layer.weight])
    expected = torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, -1.0]])
    assert torch.allclose(layer.weight, expected, atol=1e-6)
    assert torch.equal(layer.bias, torch.full((3,), 10.0))


def test_max_norm_treats_each_conv_filter_as_one_unit():
    conv = nn.Conv2d(1, 2, kernel_size=2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[2.0, 2.0], [2.0, 2.0]]], [[[0.1, 0.0], [0.0, 0.0]]]]))
    MaxNorm(2.0).after_step([conv.weight])
    assert torch.allclose(conv.weight[0], torch.full((1, 2, 2), 1.0), atol=1e-6)  # norm 4 → 2
    assert torch.allclose(conv.weight[1, 0, 0, 0], torch.tensor(0.1))
