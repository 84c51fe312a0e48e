"""The analyses' formulas on hand-worked numbers: global magnitude pruning and its chosen sparsity, per-class
scores, filter normalization, the Hessian's top eigenvalue and trace, and the learning-rate range test."""

from __future__ import annotations

from core.settings import Settings
from workers.environment import prepare_torch

prepare_torch(Settings())

from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.training.factories import digits, hand_made, job_spec  # noqa: E402
from workers.analyses import landscape, lr_range  # noqa: E402
from workers.analyses.confusion import per_class  # noqa: E402
from workers.analyses.context import AnalysisTimeout, Context  # noqa: E402
from workers.analyses.pruning import chosen, magnitude_masks  # noqa: E402
from workers.training.data import PreparedData  # noqa: E402
from workers.training.engine import train  # noqa: E402


def test_global_magnitude_pruning_zeroes_the_smallest_weights_over_all_layers() -> None:
    first, second = torch.tensor([[0.5, -0.1], [2.0, 0.3]]), torch.tensor([-0.2, 1.0, 0.05])
    masks = magnitude_masks([first, second], 0.4)  # round(0.4 * 7) = 3: |w| 0.05, 0.1 and 0.2 go
    assert masks[0].tolist() == [[True, False], [True, True]]
    assert masks[1].tolist() == [False, True, False]
    assert all(mask.all() for mask in magnitude_masks([first, second], 0.0))


def test_weights_of_equal_magnitude_go_in_the_order_they_are_stored() -> None:
    masks = magnitude_masks([torch.tensor([0.3, -0.3, 0.3, 1.0])], 0.5)
    assert masks[0].tolist() == [False, False, True, True]  # exactly half, the earlier ties first


def test_the_chosen_sparsity_is_the_highest_within_a_point_of_the_unpruned_accuracy() -> None:
    levels = [
        {"sparsity": s, "validation": {"accuracy": a, "loss": 0.1}}
        for s, a in [(0.0, 0.95), (0.5, 0.945), (0.75, 0.941), (0.9, 0.939), (0.95, 0.80)]
    ]
    assert chosen(levels, classification=True)["sparsity"] == 0.75  # 0.939 is more than a point below 0.95
    regression = [{"sparsity": s, "validation": {"loss": loss}} for s, loss in [(0.0, 1.0), (0.5, 1.009), (0.9, 1.2)]]
    assert chosen(regression, classification=False)["sparsity"] == 0.5


def test_per_class_precision_recall_and_f1_from_a_confusion_matrix() -> None:
    # True class 0: 3 right, 1 called 1; true class 1: 2 called 0, 4 right; class 2 never occurs nor is predicted.
    scores = per_class([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    assert scores[0] == {"precision": 3 / 5, "recall": 3 / 4, "f1": 6 / 9, "support": 4}
    assert scores[1] == {"precision": 4 / 5, "recall": 4 / 6, "f1": 8 / 11, "support": 6}
    assert scores[2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_filter_normalization_scales_each_filter_to_the_weights_filter_and_zeroes_biases() -> None:
    weights = [torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.tensor([1.0, 2.0])]
    direction = [torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([5.0, 5.0])]
    normalized = landscape.filter_normalized(direction, weights)
    assert normalized[0].tolist() == [[5.0, 0.0], [0.0, 1.0]]  # row norms 5 and 1, as the weights' rows
    assert normalized[1].tolist() == [0.0, 0.0]


def quadratic(matrix: torch.Tensor) -> tuple[landscape.Loss, list[torch.Tensor]]:
    """L(x) = ½ xᵀAx around x = 1: its Hessian is A everywhere."""
    x = torch.ones(len(matrix), requires_grad=True)
    return (lambda: 0.5 * x @ matrix @ x), [x]


def test_power_iteration_finds_the_largest_eigenvalue_of_a_quadratic() -> None:
    matrix = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]])  # eigenvalues 1 and (7 ± √5) / 2
    loss, params = quadratic(matrix)
    value = landscape.top_eigenvalue(loss, params, iterations=50, generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx((7 + 5**0.5) / 2, rel=1e-5)


def test_hutchinsons_estimate_is_exact_for_a_diagonal_hessian() -> None:
    loss, params = quadratic(torch.diag(torch.tensor([2.0, -1.0, 5.0])))
    trace = landscape.hessian_trace(loss, params, probes=3, generator=torch.Generator().manual_seed(1))
    assert trace == pytest.approx(6.0)


def context(spec_changes: dict[str, Any], data: PreparedData, weights: Any = None, **options: Any) -> Context:
    spec = job_spec(**spec_changes)
    return Context(spec, data, weights, options, seconds=60, rows=20_000, store=lambda *_: None)


def test_a_landscape_with_the_same_seed_gives_the_same_numbers() -> None:
    data = hand_made()
    spec = job_spec(training={"epochs": 3})
    weights = train(spec, data, device=torch.device("cpu")).weights
    runs = [landscape.run(context({"training": {"epochs": 3}}, data, weights, points=5, grid=3)) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0]["top_eigenvalue"] > 0 and runs[0]["sharpness"] >= 0
    one_d = runs[0]["slices"]["1d"]
    assert min(one_d["train"]) == pytest.approx(one_d["train"][2], rel=0.5)  # near θ, the middle point
    other = landscape.run(context({"training": {"epochs": 3}}, data, weights, points=5, grid=3, seed=7))
    assert other["slices"] != runs[0]["slices"]


def test_an_analysis_past_its_time_stops_with_the_reason() -> None:
    slow = Context(job_spec(), hand_made(), None, {}, seconds=0.0, rows=10, store=lambda *_: None)
    with pytest.raises(AnalysisTimeout, match="ANALYSIS_SECONDS"):
        lr_range.run(slow)


def test_the_lr_range_test_suggests_a_rate_within_ten_times_the_one_that_trains_digits() -> None:
    # The README's network on digits trains with Adam at 1e-3 (tests/test_end_to_end.py).
    spec_changes = {"model": {"hidden_layers": [128, 64], "batch_norm": True}, "training": {"batch_size": 64}}
    result = lr_range.run(context(spec_changes, digits()))
    assert 1e-4 <= result["suggested_lr"] <= 1e-2, result["suggested_lr"]
    assert result["stopped_early"]  # the loss blew up before 10
