"""Building a model's rows from what a caller sends, on a hand-made signature: column order, one-hot text
columns, images with or without their channel axis, imputation by the training mean, and each 422."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.errors import InvalidSpec
from service.predictions.inputs import Columns, from_records, from_rows
from service.predictions.runtime import Signature

# A table of columns x1 (numeric), colour (text: blue, red) and x2 (numeric), as the upload encoded it.
TABLE = Signature(
    task="classification",
    feature_names=["x1", "colour=blue", "colour=red", "x2"],
    class_names=["no", "yes"],
    input_shape=(4,),
    feature_mean=np.array([2.0, 0.25, 0.75, 10.0], np.float32),
    categorical_columns=["colour"],
)
IMAGES = Signature("classification", [f"p{i}" for i in range(4)], ["a", "b"], (1, 2, 2), np.zeros(4, np.float32))


def refused(call: Any) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        call()
    return caught.value


def test_records_are_laid_out_in_feature_order_with_text_one_hot() -> None:
    assert Columns(TABLE).names == ["x1", "colour", "x2"]
    x = from_records([{"x2": 5, "colour": "red", "x1": 1.5}, {"x1": 0, "x2": -1, "colour": "blue"}], TABLE)
    assert x.dtype == np.float32
    assert x.tolist() == [[1.5, 0, 1, 5], [0, 1, 0, -1]]


def test_rows_are_taken_in_order_and_images_with_or_without_their_channel_axis() -> None:
    assert from_rows([[1, 2, 3, 4]], TABLE).tolist() == [[1, 2, 3, 4]]
    with_channel = from_rows([[[[1, 2], [3, 4]]]], IMAGES)
    without = from_rows([[[1, 2], [3, 4]]], IMAGES)
    assert with_channel.tolist() == without.tolist() == [[1, 2, 3, 4]]


def test_missing_and_unexpected_columns_and_unknown_text_are_named() -> None:
    missing = refused(lambda: from_records([{"x1": 1, "colour": "red"}], TABLE))
    assert "missing columns ['x2']" in missing.detail
    unexpected = refused(lambda: from_records([{"x1": 1, "x2": 2, "colour": "red", "size": 3}], TABLE))
    assert "unexpected columns ['size']" in unexpected.detail
    unknown = refused(
        lambda: from_records([{"x1": 1, "x2": 2, "colour": "red"}, {"x1": 1, "x2": 2, "colour": "green"}], TABLE)
    )
    assert unknown.errors is not None and unknown.errors[0].field == "records[1].colour"
    assert "'green' was never seen in training; known values: blue, red" in unknown.detail
    text = refused(lambda: from_records([{"x1": "wide", "x2": 2, "colour": "red"}], TABLE))
    assert text.errors is not None and text.errors[0].field == "records[0].x1"


def test_a_missing_value_is_refused_without_imputation_and_is_the_training_mean_with_it() -> None:
    null = refused(lambda: from_records([{"x1": 1, "x2": None, "colour": "red"}], TABLE))
    assert null.errors is not None and null.errors[0].field == "records[0]" and "`x2`" in null.detail
    imputed = Signature(**{**TABLE.__dict__, "imputation": "mean"})
    x = from_records([{"x1": 1, "colour": None}, {"x1": None, "x2": 3, "colour": "blue"}], imputed)
    assert x.tolist() == [[1, 0.25, 0.75, 10], [2, 1, 0, 3]]


def test_rows_of_the_wrong_shape_say_what_is_expected() -> None:
    short = refused(lambda: from_rows([[1, 2, 3]], TABLE))
    assert "each row must be 4 numbers (x1, colour=blue, colour=red, x2); got shape [3]" in short.detail
    ragged = refused(lambda: from_rows([[1, 2, 3, 4], [1]], TABLE))
    assert "same length" in ragged.detail
    image = refused(lambda: from_rows([[[1, 2, 3]]], IMAGES))
    assert "an array of shape [1, 2, 2] (channels, height, width) or 4 numbers" in image.detail
