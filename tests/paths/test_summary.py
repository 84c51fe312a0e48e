"""The 1-SE rule and the path spec's grid, on hand-worked numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.spec.path import GridSpec, PathCreate
from service.paths.summary import Point, choose
from tests.fixtures import ROOT, tiny_spec


def point(value: float, loss: float | None, se: float | None = 0.01, succeeded: bool = True) -> Point:
    return Point(value, loss, se, succeeded)


def test_one_se_is_the_largest_strength_within_one_standard_error_of_the_best() -> None:
    # best: 1e-3 at 0.50 ± 0.04 → bound 0.54; 1e-2 (0.53) is within it, 1e-1 (0.60) is not.
    answer = choose([point(1e-1, 0.60), point(1e-2, 0.53), point(1e-3, 0.50, se=0.04), point(1e-4, 0.52)])
    assert answer.best is not None and answer.best.value == 1e-3
    assert answer.bound == pytest.approx(0.54)
    assert answer.one_se is not None and answer.one_se.value == 1e-2


def test_one_se_is_the_best_itself_when_no_stronger_point_comes_within_the_bound() -> None:
    answer = choose([point(1.0, 0.9), point(0.1, 0.5, se=0.01), point(0.01, 0.505)])
    assert answer.best is not None and answer.one_se is not None
    assert answer.best.value == answer.one_se.value == 0.1  # 0.01 is within, but weaker


def test_failed_points_and_missing_losses_are_not_ranked_and_ties_go_to_the_stronger() -> None:
    answer = choose([point(5.0, 0.1, succeeded=False), point(2.0, None), point(1.0, 0.4, se=0.0), point(0.5, 0.4)])
    assert answer.best is not None and answer.best.value == 1.0
    assert answer.one_se is not None and answer.one_se.value == 1.0
    assert choose([point(1.0, None), point(2.0, 0.3, succeeded=False)]).best is None


def test_a_log_grid_runs_from_high_down_to_low_evenly_in_the_logarithm() -> None:
    assert GridSpec(low=1e-5, high=1e-1, points=5).values() == [0.1, 0.01, 0.001, 0.0001, 1e-05]
    assert GridSpec(low=1e-4, high=1e-2, points=3).values() == [0.01, 0.001, 0.0001]
    assert GridSpec(scale="linear", low=0.0, high=0.5, points=3).values() == [0.5, 0.25, 0.0]
    assert len(GridSpec(low=1e-5, high=1e-1).values()) == 10  # K defaults to 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "exactly one of `values` and `grid`"),
        ({"values": [0.1, 0.2], "grid": {"low": 0.01, "high": 0.1}}, "exactly one of `values` and `grid`"),
        ({"values": [0.1]}, "at least 2 items"),
        ({"values": [0.1, 0.1]}, "lists a value twice"),
        ({"grid": {"low": 0.1, "high": 0.01}}, "`low` must be below `high`"),
        ({"grid": {"low": 0.0, "high": 0.1}}, "needs `low` > 0"),
        ({"grid": {"low": 1e-4, "high": 0.1, "points": 51}}, "less than or equal to 50"),
        ({"parameter": "optimizer.lr", "values": [0.1, 0.01]}, "Input should be"),
    ],
)
def test_an_invalid_path_says_why(changes: dict[str, object], message: str) -> None:
    body = {"base": tiny_spec(), "parameter": "regularization.l2", **changes}
    with pytest.raises(ValidationError, match=message):
        PathCreate.model_validate(body)


def test_a_warm_started_path_is_a_grid_sweep_of_one_parameter_run_one_point_at_a_time() -> None:
    path = PathCreate.model_validate(
        {"base": tiny_spec(), "parameter": "model.dropout", "values": [0.5, 0.2, 0.0], "warm_start": True}
    )
    sweep = path.as_sweep()
    assert (sweep.algorithm, sweep.max_parallel, sweep.warm_start) == ("grid", 1, True)
    assert sweep.parameters["model.dropout"].values == [0.5, 0.2, 0.0]
    assert PathCreate.model_validate({**path.model_dump(), "warm_start": False}).as_sweep().max_parallel == 4


def test_the_readme_path_example_is_a_10_point_log_grid_of_l2() -> None:
    example = PathCreate.model_validate_json((ROOT / "examples" / "l2_path.json").read_text())
    assert example.parameter == "regularization.l2"
    assert example.strengths[0] == 0.1 and example.strengths[-1] == 1e-5 and len(example.strengths) == 10
