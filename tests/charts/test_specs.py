"""The chart specs: each validates against the Vega-Lite schema, and their data is what the formulas say."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from service.charts import specs
from service.charts.render import render

EPOCHS = [
    {
        "epoch": 1,
        "train_loss": 1.0,
        "val_loss": 1.2,
        "weight_l1": 30.0,
        "weight_l2": 3.0,
        "sparsity": 0.0,
        "penalty": 0.1,
    },
    {
        "epoch": 2,
        "train_loss": 0.5,
        "val_loss": 0.9,
        "weight_l1": 20.0,
        "weight_l2": 2.0,
        "sparsity": 0.2,
        "penalty": 0.05,
    },
    {
        "epoch": 3,
        "train_loss": 0.4,
        "val_loss": float("nan"),
        "weight_l1": 10.0,
        "weight_l2": 1.5,
        "sparsity": 0.5,
        "penalty": 0.02,
    },
]
TRIALS = [
    {
        "number": 0,
        "params": {"regularization.l2": 1e-4, "optimizer.name": "adam", "model.dropout": 0.1},
        "objective": 0.3,
    },
    {
        "number": 1,
        "params": {"regularization.l2": 1e-2, "optimizer.name": "sgd", "model.dropout": 0.3},
        "objective": 0.2,
    },
    {
        "number": 2,
        "params": {"regularization.l2": 1.0, "optimizer.name": "adam", "model.dropout": 0.5},
        "objective": 0.4,
    },
    {
        "number": 3,
        "params": {"regularization.l2": 1e-3, "optimizer.name": "sgd", "model.dropout": 0.2},
        "objective": None,
    },
]
OVERFIT = [
    {"epoch": i, "data_loss": t, "val_loss": v, "val_loss_se": 0.01}
    for i, (t, v) in enumerate(
        zip([1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2], [1.0, 0.8, 0.6, 0.62, 0.7, 0.8, 0.9], strict=True), start=1
    )
]
LANDSCAPE = {
    "slices": {
        "1d": {"alpha": [-1.0, 0.0, 1.0], "train": [2.0, 0.1, 1.5], "val": [2.2, 0.3, 1.8]},
        "2d": {"alpha": [-1.0, 1.0], "beta": [-1.0, 1.0], "train": [[2.0, 1.0], [1.2, float("inf")]]},
    },
    "top_eigenvalue": 12.5,
    "hessian_trace": 100.0,
    "sharpness": 0.4,
}
CHARTS = {
    "learning_curves": specs.learning_curves("job · learning curves", EPOCHS, 2, "early_stopping"),
    "learning_curves_empty": specs.learning_curves("queued", [], None, None),
    "regularization": specs.regularization("job · regularization", EPOCHS),
    "regularization_empty": specs.regularization("queued", []),
    "parallel_coordinates": specs.parallel_coordinates("sweep", TRIALS, "val_loss"),
    "parallel_coordinates_empty": specs.parallel_coordinates("sweep", TRIALS[3:], "val_loss"),
    "diagnosis": specs.diagnosis("job · diagnosis", OVERFIT, {"model": {"hidden_layers": [8]}}),
    "landscape": specs.landscape("job · landscape", LANDSCAPE),
    "landscape_empty": specs.landscape("job · landscape", None),
    "path": specs.path("path", "l2", [{"value": 0.1, "val_loss": 0.5, "val_loss_se": 0.1, "sparsity": 0.2}], 0.1, 0.1),
}


@pytest.fixture(scope="module")
def vega_lite_schema() -> dict[str, Any]:
    """The Vega-Lite 6 JSON schema, as altair ships it."""
    schema: dict[str, Any] = json.loads((files("altair.vegalite.v6.schema") / "vega-lite-schema.json").read_text())
    return schema


@pytest.mark.parametrize("name", CHARTS)
def test_each_chart_validates_against_the_vega_lite_schema(name: str, vega_lite_schema: dict[str, Any]) -> None:
    chart = json.loads(json.dumps(CHARTS[name], allow_nan=False))  # what the API sends: plain JSON
    jsonschema.Draft7Validator(vega_lite_schema).validate(chart)


@pytest.mark.parametrize("name", [name for name in CHARTS if name.endswith("_empty")])
def test_a_chart_with_nothing_to_draw_yet_says_so_and_renders(name: str) -> None:
    assert CHARTS[name]["data"]["values"] == [{"text": "nothing to draw yet"}]
    assert render(CHARTS[name], "png").startswith(b"\x89PNG")


def test_a_chart_that_breaks_the_schema_is_caught(vega_lite_schema: dict[str, Any]) -> None:
    broken = {**CHARTS["learning_curves"], "mark": "lines"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(vega_lite_schema).validate(broken)


def test_learning_curves_leave_out_non_finite_losses_and_mark_best_and_stop() -> None:
    loss, rules = CHARTS["learning_curves"]["layer"]
    assert [(row["epoch"], row["split"], row["loss"]) for row in loss["data"]["values"]] == [
        (1, "train", 1.0),
        (1, "val", 1.2),
        (2, "train", 0.5),
        (2, "val", 0.9),
        (3, "train", 0.4),
    ]
    assert [(row["epoch"], row["mark"]) for row in rules["data"]["values"]] == [
        (2, "best"),
        (3, "stop (early_stopping)"),
    ]


def test_parallel_coordinates_place_log_linear_and_categorical_axes_from_0_to_1() -> None:
    lines, ticks = CHARTS["parallel_coordinates"]["layer"]
    rows = lines["data"]["values"]
    position = {(row["trial"], row["axis"]): row["position"] for row in rows}
    # l2 spans 1e-4 .. 1 (four decades): log10 positions (-4, -2, 0) → (0, 0.5, 1)
    assert [position[(t, "regularization.l2")] for t in (0, 1, 2)] == [0.0, 0.5, 1.0]
    # dropout 0.1 .. 0.5, linear: 0.3 is halfway
    assert [position[(t, "model.dropout")] for t in (0, 1, 2)] == pytest.approx([0.0, 0.5, 1.0])
    assert [position[(t, "optimizer.name")] for t in (0, 1, 2)] == [0.0, 1.0, 0.0]  # adam, sgd
    assert [position[(t, "val_loss")] for t in (0, 1, 2)] == pytest.approx([0.5, 0.0, 1.0])
    assert 3 not in {row["trial"] for row in rows}  # no objective yet: not drawn
    labels = {(row["axis"], row["position"]): row["label"] for row in ticks["data"]["values"]}
    assert labels[("regularization.l2", 0.0)] == "0.0001" and labels[("regularization.l2", 1.0)] == "1"
    assert labels[("optimizer.name", 0.0)] == "adam" and labels[("val_loss", 1.0)] == "0.4"


def test_parallel_coordinates_put_the_most_important_parameters_first_and_the_objective_last() -> None:
    def axes(chart: dict[str, Any]) -> list[str]:
        return list(chart["layer"][0]["encoding"]["x"]["sort"])

    assert axes(CHARTS["parallel_coordinates"]) == ["model.dropout", "optimizer.name", "regularization.l2", "val_loss"]
    ordered = specs.parallel_coordinates("sweep", TRIALS, "val_loss", ["regularization.l2", "model.dropout"])
    assert axes(ordered) == ["regularization.l2", "model.dropout", "optimizer.name", "val_loss"]


def test_the_diagnosis_chart_draws_the_gap_and_marks_the_onset() -> None:
    chart = CHARTS["diagnosis"]
    assert chart["title"].endswith("overfitting")
    gap, _zero, onset = chart["layer"]
    assert [row["gap"] for row in gap["data"]["values"]][:2] == [0.0, pytest.approx(0.1)]
    assert onset["data"]["values"][0]["epoch"] == 5  # the centred mean of validation loss is lowest at epoch 4


def test_the_landscape_chart_leaves_out_non_finite_cells() -> None:
    one_d, two_d = CHARTS["landscape"]["hconcat"]
    assert len(one_d["data"]["values"]) == 6 and len(two_d["data"]["values"]) == 3
    assert "top Hessian eigenvalue 12.5" in CHARTS["landscape"]["title"]
