"""Dead and saturated units, and the trivial predictor's loss, against hand-worked numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.training.factories import hand_made, job_spec, train_recording
from workers.training.units import UnitProbe

CPU = torch.device("cpu")


def probe(model: nn.Module, *batches: torch.Tensor) -> list[float]:
    units = UnitProbe(model)
    with units.watching(), torch.no_grad():
        for batch in batches:
            model(batch)
    dead, saturated = units.values(CPU).tolist()
    return [dead, saturated]


def test_a_relu_unit_that_never_fires_on_any_batch_is_dead() -> None:
    layer = nn.Linear(2, 4)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
        layer.bias.zero_()
    model = nn.Sequential(layer, nn.ReLU())
    # Unit 0 fires on the first batch, unit 1 only on the second, unit 2 (all zero) never, unit 3 on both.
    assert probe(model, torch.tensor([[1.0, 1.0]]), torch.tensor([[-1.0, 1.0]])) == [0.25, 0.0]


def test_a_tanh_unit_near_its_bounds_on_most_examples_is_saturated() -> None:
    layer = nn.Linear(1, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[100.0], [0.01]]))  # unit 0: tanh(±100) = ±1; unit 1: near 0
        layer.bias.zero_()
    model = nn.Sequential(layer, nn.Tanh())
    x = torch.linspace(-1, 1, 21).reshape(-1, 1)  # x = 0 gives tanh(0) = 0 on unit 0: 20 of 21 near a bound
    assert probe(model, x) == [0.0, 0.5]


def test_sigmoid_channels_of_a_convolution_count_over_positions() -> None:
    conv = nn.Conv2d(1, 2, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[50.0]]], [[[0.1]]]]))
        conv.bias = nn.Parameter(torch.tensor([20.0, 0.0]))  # channel 0: 50x + 20 = 70, -30, 120, -80; 1: ≈ 0
    model = nn.Sequential(conv, nn.Sigmoid())
    x = torch.tensor([[[[1.0, -1.0], [2.0, -2.0]]]])
    assert probe(model, x) == [0.0, 0.5]


def test_a_network_without_such_units_reports_zero() -> None:
    assert probe(nn.Sequential(nn.Linear(2, 2), nn.GELU()), torch.ones(3, 2)) == [0.0, 0.0]


def test_the_baseline_is_the_loss_of_predicting_the_training_class_frequencies() -> None:
    data = hand_made()
    _, epochs = train_recording(job_spec(training={"epochs": 1}), data, device=CPU)
    frequency = np.bincount(data.y_train, minlength=2) / len(data.y_train)
    expected = -np.mean(np.log(frequency[data.y_val]))
    assert epochs[0].metrics["baseline_val_loss"] == pytest.approx(expected, rel=1e-5)


def test_the_regression_baseline_predicts_the_training_mean() -> None:
    data = hand_made("regression")
    _, epochs = train_recording(job_spec("regression", training={"epochs": 1}), data, device=CPU)
    expected = float(np.mean((data.y_val - data.y_train.mean()) ** 2))
    assert epochs[0].metrics["baseline_val_loss"] == pytest.approx(expected, rel=1e-5)
