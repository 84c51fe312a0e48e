import math
from typing import Any

import pytest
import torch
from torch import nn

from core.spec.job import ConvLayerSpec, Init, ModelSpec
from workers.training.model import build_model, freeze, init_layer, load_initial_weights, trainable_layers


def mlp(**fields: Any) -> Any:  # Any: the tests reach into named blocks
    torch.manual_seed(0)
    return build_model(ModelSpec(**fields), (4,), 3)


def kinds(block: nn.Module) -> list[type]:
    return [type(layer) for layer in block.children()]


def test_an_mlp_block_is_linear_norm_activation_in_that_order():
    model = mlp(hidden_layers=[5, 6], batch_norm=True, activation="tanh")
    assert list(model._modules) == ["hidden0", "hidden1", "output"]
    assert kinds(model.hidden0) == [nn.Linear, nn.BatchNorm1d, nn.Tanh]
    assert (model.hidden1.linear.in_features, model.output.in_features, model.output.out_features) == (5, 6, 3)


def test_batch_norm_after_activation_follows_the_activation():
    model = mlp(hidden_layers=[5], batch_norm="after_activation")
    assert kinds(model.hidden0) == [nn.Linear, nn.ReLU, nn.BatchNorm1d]


def test_a_cnn_unflattens_rows_and_keeps_spatial_size_until_pooling():
    spec = ModelSpec.model_validate(
        {"type": "cnn", "conv_layers": [{"filters": 4, "kernel_size": 3, "pool": 2}, {"filters": 6}]}
    )
    model: Any = build_model(spec, (1, 8, 8), 10)
    assert kinds(model.conv0) == [nn.Conv2d, nn.ReLU, nn.MaxPool2d]
    assert model.hidden0.linear.in_features == 6 * 4 * 4  # 8 by 8 → pool 2 → 4 by 4; "same" padding keeps sizes
    assert model(torch.zeros(2, 64)).shape == (2, 10)
    assert [type(layer) for layer in trainable_layers(model)] == [nn.Conv2d, nn.Conv2d, nn.Linear, nn.Linear]


def test_batch_norm_normalizes_with_running_statistics_in_eval():
    model = mlp(hidden_layers=[2], batch_norm=True)
    norm = model.hidden0.norm
    batch = torch.tensor([[1.0, 0, 0, 0], [3.0, 0, 0, 0]])
    model.train()
    model(batch)
    pre = model.hidden0.linear(batch).detach()
    # Momentum 0.1 from (mean 0, var 1); the running variance uses the unbiased estimate.
    assert torch.allclose(norm.running_mean, 0.1 * pre.mean(0))
    assert torch.allclose(norm.running_var, 0.9 + 0.1 * pre.var(0, unbiased=True))
    model.eval()
    probe = torch.tensor([[2.0, 1, 0, 0]])
    z = model.hidden0.linear(probe)
    expected = (z - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
    assert torch.allclose(model.hidden0.norm(z), expected)
    assert torch.allclose(model.hidden0(probe), torch.relu(expected))


def weight_after(init: Init, shape: tuple[int, int] = (300, 400)) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(shape[1], shape[0])
    init_layer(layer, init)
    return layer


@pytest.mark.parametrize(
    ("init", "std", "bound"),
    [
        ("he_normal", math.sqrt(2 / 400), None),
        ("he_uniform", math.sqrt(2 / 400), math.sqrt(6 / 400)),
        ("xavier_normal", math.sqrt(2 / 700), None),
        ("xavier_uniform", math.sqrt(2 / 700), math.sqrt(6 / 700)),
    ],
)
def test_scaled_inits_have_their_standard_deviation_and_a_zero_bias(init, std, bound):
    layer = weight_after(init)
    assert abs(layer.weight.std().item() - std) < 0.02 * std
    assert abs(layer.weight.mean().item()) < 0.02 * std
    if bound is not None:
        assert layer.weight.abs().max().item() <= bound
        assert layer.weight.abs().max().item() > 0.99 * bound
    assert torch.equal(layer.bias, torch.zeros(300))


def test_orthogonal_init_has_orthonormal_rows():
    weight = weight_after("orthogonal").weight
    assert torch.allclose(weight @ weight.T, torch.eye(300), atol=1e-5)


def test_zeros_init_zeroes_everything():
    layer = weight_after("zeros")
    assert not layer.weight.any() and not layer.bias.any()


def test_default_init_is_pytorchs_own_with_a_nonzero_bias():
    layer = weight_after("default")
    bound = 1 / math.sqrt(400)  # kaiming_uniform with a = √5 gives U(-1/√fan_in, 1/√fan_in)
    assert layer.weight.abs().max().item() <= bound and layer.weight.abs().max().item() > 0.99 * bound
    assert layer.bias.abs().max().item() > 0


def test_init_applies_to_every_linear_and_conv_layer():
    spec = ModelSpec.model_validate(
        {"type": "cnn", "conv_layers": [{"filters": 2}], "hidden_layers": [3], "init": "zeros"}
    )
    model = build_model(spec, (1, 4, 4), 2)
    assert all(not layer.weight.any() for layer in trainable_layers(model))


def test_warm_start_loads_matching_tensors_and_resets_a_head_of_another_size():
    source = mlp(hidden_layers=[5], batch_norm=True)
    torch.manual_seed(1)
    target: Any = build_model(ModelSpec(hidden_layers=[5], batch_norm=True), (4,), 7)
    fresh_head = target.output.weight.detach().clone()
    load_initial_weights(target, source.state_dict(), reset_head=True)
    for name, tensor in source.state_dict().items():
        if not name.startswith("output."):
            assert torch.equal(target.state_dict()[name], tensor), name
    assert torch.equal(target.output.weight, fresh_head)


def test_warm_start_refuses_a_head_of_another_size_without_reset_head():
    target = build_model(ModelSpec(hidden_layers=[5]), (4,), 7)
    with pytest.raises(ValueError, match=r"output.weight.*reset_head"):
        load_initial_weights(target, mlp(hidden_layers=[5]).state_dict(), reset_head=False)


def test_warm_start_refuses_a_hidden_layer_of_another_size_even_with_reset_head():
    target = build_model(ModelSpec(hidden_layers=[6]), (4,), 3)
    with pytest.raises(ValueError, match=r"hidden0.linear.weight.*\(5, 4\).*\(6, 4\)"):
        load_initial_weights(target, mlp(hidden_layers=[5]).state_dict(), reset_head=True)


def test_warm_start_refuses_weights_with_nothing_in_common():
    with pytest.raises(ValueError, match="no tensor in common"):
        load_initial_weights(mlp(), {"elsewhere.weight": torch.zeros(1)}, reset_head=True)


def test_freeze_stops_gradients_for_the_listed_layers_only():
    model = mlp(hidden_layers=[5, 5])
    freeze(model, [0, 2])
    assert [layer.weight.requires_grad for layer in trainable_layers(model)] == [False, True, False]
    assert not model.hidden0.linear.bias.requires_grad
    with pytest.raises(ValueError, match="layer 3 does not exist"):
        freeze(model, [3])


@pytest.mark.parametrize(
    ("conv", "side"),
    [
        ({"filters": 4, "kernel_size": 3}, 8),
        ({"filters": 4, "kernel_size": 3, "stride": 2}, 4),  # (8 + 2 - 3) // 2 + 1
        ({"filters": 4, "kernel_size": 3, "padding": "valid"}, 6),  # 8 - 3 + 1
        ({"filters": 4, "kernel_size": 5, "stride": 2, "padding": "valid", "pool": 2}, 1),  # (8 - 5) // 2 + 1 = 2, / 2
    ],
)
def test_stride_padding_and_pooling_set_the_size_the_head_sees(conv: dict[str, Any], side: int) -> None:
    spec = ModelSpec(type="cnn", conv_layers=[ConvLayerSpec(**conv)], hidden_layers=[3])
    model = build_model(spec, (1, 8, 8), 2)
    assert model.get_submodule("hidden0.linear").in_features == 4 * side * side
    assert model(torch.randn(5, 64)).shape == (5, 2)


def test_global_pooling_gives_the_head_one_number_per_channel() -> None:
    spec = ModelSpec(type="cnn", conv_layers=[ConvLayerSpec(filters=6)], hidden_layers=[3], global_pool=True)
    model = build_model(spec, (1, 8, 8), 2)
    assert model.get_submodule("hidden0.linear").in_features == 6
    with torch.no_grad():
        pooled = model[:4](torch.ones(1, 64))  # unflatten, conv block, pool, flatten
        assert torch.allclose(pooled, model[1](torch.ones(1, 1, 8, 8)).mean(dim=(2, 3)))


def test_a_residual_block_adds_its_input_through_a_matching_shortcut() -> None:
    same = ModelSpec(type="cnn", conv_layers=[ConvLayerSpec(filters=1, residual=True)], hidden_layers=[2])
    model = build_model(same, (1, 4, 4), 2)
    block, body = model.get_submodule("conv0.residual"), model.get_submodule("conv0.residual.body")
    assert isinstance(model.get_submodule("conv0.residual.shortcut"), nn.Identity)
    x = torch.randn(2, 1, 4, 4)
    with torch.no_grad():
        assert torch.allclose(block(x), body(x) + x)
    wider = ModelSpec(type="cnn", conv_layers=[ConvLayerSpec(filters=3, stride=2, residual=True)], hidden_layers=[2])
    shortcut = build_model(wider, (1, 4, 4), 2).get_submodule("conv0.residual.shortcut")
    assert isinstance(shortcut, nn.Conv2d) and shortcut.stride == (2, 2) and shortcut.out_channels == 3


def test_a_residual_block_needs_same_padding_and_global_pooling_a_cnn() -> None:
    with pytest.raises(ValueError, match="needs `padding: same`"):
        ConvLayerSpec(filters=2, residual=True, padding="valid")
    with pytest.raises(ValueError, match="needs `type: cnn`"):
        ModelSpec(global_pool=True)
