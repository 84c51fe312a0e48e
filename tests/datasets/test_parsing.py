"""Upload parsing: hand-written tables and exactly the matrices and errors they must give."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.datasets.parsing import TableError, detect_format, encode, read_table

CSV = b"""size,colour,label
1.5,red,a
2.5,blue,b
3.5,red,a
4.5,green,b
5.5,red,a
6.5,blue,b
7.5,red,a
8.5,green,b
9.5,red,a
10.5,blue,b
"""


def test_numeric_columns_stay_and_text_columns_are_one_hot() -> None:
    encoded = encode(read_table(CSV, 100), "label", "classification", "none")

    assert encoded.feature_names == ["size", "colour=blue", "colour=green", "colour=red"]
    assert encoded.categorical_columns == ["colour"]
    np.testing.assert_array_equal(encoded.features[:2], [[1.5, 0, 0, 1], [2.5, 1, 0, 0]])
    assert encoded.features.dtype == np.float32
    assert encoded.class_names == ["a", "b"]
    assert encoded.class_counts == {"a": 5, "b": 5}
    np.testing.assert_array_equal(encoded.target[:4], [0, 1, 0, 1])


def test_a_row_with_the_wrong_field_count_names_its_line() -> None:
    broken = CSV.replace(b"3.5,red,a", b"3.5,red,a,extra")
    with pytest.raises(TableError, match=r"^line 4: 4 fields, the header has 3$") as caught:
        read_table(broken, 100)
    assert caught.value.status == 400


def test_an_unclosed_quote_names_its_line() -> None:
    with pytest.raises(TableError, match=r"^line \d+: "):
        read_table(b'a,b\n1,"2\n3,4\n', 100)


def test_missing_values_are_an_error_unless_imputed() -> None:
    table = read_table(CSV.replace(b"2.5,blue", b",blue").replace(b"4.5,green", b"NA,green"), 100)

    with pytest.raises(TableError, match="column `size` has 2 missing values") as caught:
        encode(table, "label", "classification", "none")
    mean = encode(table, "label", "classification", "mean").features[:, 0]
    median = encode(table, "label", "classification", "median").features[:, 0]

    assert caught.value.status == 422
    present = [1.5, 3.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5]  # mean 6.625, median (6.5 + 7.5) / 2 = 7.0
    assert mean[1] == mean[3] == pytest.approx(6.625)
    assert median[1] == median[3] == pytest.approx(7.0)
    assert mean[0] == present[0]


def test_regression_targets_must_be_numbers_and_the_target_must_exist() -> None:
    table = read_table(CSV, 100)
    with pytest.raises(TableError, match="non-numeric"):
        encode(table, "label", "regression", "none")
    with pytest.raises(TableError, match="no column `price`"):
        encode(table, "price", "regression", "none")
    encoded = encode(table, "size", "regression", "none")
    assert encoded.target[0] == np.float32(1.5) and encoded.class_names == []


def test_too_many_rows_is_a_413() -> None:
    with pytest.raises(TableError, match="more than the limit of 5 rows") as caught:
        read_table(CSV, 5)
    assert caught.value.status == 413


def test_parquet_is_recognised_by_content_and_reads_like_csv() -> None:
    table = pa.table({"size": [1.5, 2.5] * 5, "colour": ["red", "blue"] * 5, "label": ["a", "b"] * 5})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)

    data = buffer.getvalue()
    encoded = encode(read_table(data, 100), "label", "classification", "none")

    assert detect_format(data) == "parquet" and detect_format(CSV) == "csv"
    assert encoded.feature_names == ["size", "colour=blue", "colour=red"]
    with pytest.raises(TableError, match="neither CSV text nor Parquet"):
        read_table(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 100)
