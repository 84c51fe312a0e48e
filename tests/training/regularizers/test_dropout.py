"""Dropout: where its layers go in the built network, and what a dropout layer does."""

from typing import Any

import torch
from torch import nn

from tests.training.factories import job_spec
from workers.training.model import build_model
from workers.training.regularizers.dropout import Dropout, DropoutPlacement


def placed(**model: Any) -> Any:  # Any: the tests reach into named blocks
    """The network of a spec with these model fields, with the dropout regularizer's layers placed."""
    spec = job_spec(model=model)
    placement = DropoutPlacement.for_spec(spec)
    assert placement is not None
    return placement.modify_model(build_model(spec.model, (4,), 3))


def kinds(block: nn.Module) -> list[type]:
    return [type(layer) for layer in block.children()]


def test_input_dropout_comes_first_and_each_hidden_block_ends_with_its_dropout():
    model = placed(hidden_layers=[5, 6], batch_norm=True, activation="tanh", dropout=[0.1, 0.0], input_dropout=0.2)
    assert list(model._modules) == ["input_dropout", "hidden0", "hidden1", "output"]
    assert kinds(model.hidden0) == [nn.Linear, nn.BatchNorm1d, nn.Tanh, Dropout]
    assert kinds(model.hidden1) == [nn.Linear, nn.BatchNorm1d, nn.Tanh]  # a rate of 0 adds no layer
    assert (model.hidden1.linear.in_features, model.output.in_features, model.output.out_features) == (5, 6, 3)


def test_dropout_scales_kept_units_by_the_inverse_keep_rate_in_training_and_is_identity_in_eval():
    torch.manual_seed(0)
    x = torch.full((400, 500), 3.0)
    dropout = Dropout(0.2)
    out = dropout(x)
    kept = out != 0
    assert torch.allclose(out[kept], torch.tensor(3.0 / 0.8), rtol=1e-5)
    assert abs(1 - kept.float().mean().item() - 0.2) < 0.005
    dropout.eval()
    assert torch.equal(dropout(x), x)


def test_dropout_at_one_half_doubles_the_kept_units_exactly():
    out = Dropout(0.5)(torch.ones(1000))
    assert set(out.unique().tolist()) == {0.0, 2.0}


def test_a_spec_without_dropout_switches_it_off():
    assert DropoutPlacement.for_spec(job_spec(model={"dropout": 0.0, "input_dropout": 0.0})) is None


def test_placing_dropout_keeps_the_weights_and_their_names():
    spec = job_spec(model={"hidden_layers": [5], "dropout": 0.5, "input_dropout": 0.1})
    torch.manual_seed(0)
    plain = build_model(spec.model, (4,), 3)
    torch.manual_seed(0)
    with_dropout = DropoutPlacement(0.1, [0.5]).modify_model(build_model(spec.model, (4,), 3))
    assert plain.state_dict().keys() == with_dropout.state_dict().keys()
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in with_dropout.state_dict().items())
    with_dropout.eval()
    x = torch.randn(3, 4)
    assert torch.equal(with_dropout(x), plain(x))  # identity in evaluation
