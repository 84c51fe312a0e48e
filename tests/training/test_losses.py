import math

import pytest
import torch

from core.spec.job import LossSpec, output_size
from workers.training.losses import build_loss, predict

LN3 = math.log(3)
# Logits (ln 3, 0) give probabilities (0.75, 0.25); a sigmoid of ln 3 is 0.75 too.
CE_TARGET_0 = -math.log(0.75)  # 0.287682
SMOOTHED_0_2 = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))  # targets (0.9, 0.1): 0.397541


def loss(name: str, outputs: list, targets: list, n_classes: int = 2, smoothing: float = 0.0, **kw) -> float:
    fn = build_loss(LossSpec.model_validate({"name": name, **kw}), n_classes, smoothing)
    target = torch.tensor(targets)
    return fn(torch.tensor(outputs), target).item()


def test_cross_entropy_is_the_negative_log_probability_of_the_class():
    assert loss("cross_entropy", [[LN3, 0.0]], [0]) == pytest.approx(CE_TARGET_0)


def test_cross_entropy_label_smoothing_mixes_in_a_uniform_target():
    # Smoothing 0.2 over two classes: the target becomes (1 - 0.2 + 0.1, 0.1).
    assert loss("cross_entropy", [[LN3, 0.0]], [0], smoothing=0.2) == pytest.approx(SMOOTHED_0_2)


def test_binary_cross_entropy_on_one_logit():
    assert loss("binary_cross_entropy", [[LN3]], [1]) == pytest.approx(CE_TARGET_0)
    assert loss("binary_cross_entropy", [[0.0]], [0]) == pytest.approx(math.log(2))


def test_binary_cross_entropy_label_smoothing_moves_targets_toward_one_half():
    # Target 1 with smoothing 0.2 becomes 0.9.
    assert loss("binary_cross_entropy", [[LN3]], [1], smoothing=0.2) == pytest.approx(SMOOTHED_0_2)


def test_binary_cross_entropy_on_many_classes_is_one_vs_rest_averaged_over_outputs():
    # Sigmoids (0.75, 0.5, 0.25) against the one-hot target (1, 0, 0).
    expected = (-math.log(0.75) - math.log(0.5) - math.log(0.75)) / 3
    assert loss("binary_cross_entropy", [[LN3, 0.0, -LN3]], [0], n_classes=3) == pytest.approx(expected)


PREDICTED = [[1.0], [2.0], [4.0]]
TARGETS = [1.0, 0.0, 1.0]  # errors 0, 2, 3


def test_mse_and_mae():
    assert loss("mse", PREDICTED, TARGETS, n_classes=0) == pytest.approx(13 / 3)
    assert loss("mae", PREDICTED, TARGETS, n_classes=0) == pytest.approx(5 / 3)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (1.0, (0 + 1.0 * (2 - 0.5) + 1.0 * (3 - 0.5)) / 3),  # both errors beyond delta: linear
        (2.5, (0 + 0.5 * 2**2 + 2.5 * (3 - 1.25)) / 3),  # 2 is quadratic, 3 is linear
    ],
)
def test_huber_is_quadratic_within_delta_and_linear_beyond(delta, expected):
    assert loss("huber", PREDICTED, TARGETS, n_classes=0, delta=delta) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("task", "name", "n_classes", "size"),
    [
        ("classification", "cross_entropy", 2, 2),
        ("classification", "cross_entropy", 5, 5),
        ("classification", "binary_cross_entropy", 2, 1),
        ("classification", "binary_cross_entropy", 5, 5),
        ("regression", "mse", 0, 1),
    ],
)
def test_output_size_fits_the_loss(task, name, n_classes, size):
    assert output_size(task, LossSpec(name=name), n_classes) == size


def test_predictions_from_outputs():
    assert predict(torch.tensor([[0.3], [-0.1]]), "classification").tolist() == [1, 0]
    assert predict(torch.tensor([[0.1, 0.7, 0.2], [2.0, 0.0, 1.0]]), "classification").tolist() == [1, 0]
    assert predict(torch.tensor([[1.5], [-2.0]]), "regression").tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    ("name", "outputs", "targets", "n_classes"),
    [
        ("cross_entropy", [[2.0, 0.0], [0.0, 0.0], [0.0, 3.0]], [0, 0, 0], 2),
        ("binary_cross_entropy", [[2.0, 0.0, 1.0], [0.0, 0.0, -1.0]], [0, 2], 3),
        ("mse", [[1.0], [2.0], [4.0]], [0.0, 0.0, 1.0], 0),
        ("huber", [[0.5], [3.0]], [0.0, 0.0], 0),
    ],
)
def test_each_examples_loss_averages_to_the_batch_loss(name, outputs, targets, n_classes):
    loss_fn = build_loss(LossSpec(name=name), n_classes)
    target = torch.tensor(targets)
    per_example = loss_fn(torch.tensor(outputs), target, reduction="none")
    assert per_example.shape == (len(targets),)
    assert per_example.mean().item() == pytest.approx(loss_fn(torch.tensor(outputs), target).item(), rel=1e-6)


def test_cross_entropy_per_example_by_hand():
    loss_fn = build_loss(LossSpec(name="cross_entropy"), 2)
    per_example = loss_fn(torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 0]), reduction="none")
    assert per_example.tolist() == pytest.approx([math.log(1 + math.exp(-2)), math.log(2)])
