"""Upload parsing: hand-written tables and exactly the matrices and errors they must give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.datasets.encoding import encode
from service.datasets.parsing import Caps, TableError, detect_format
from service.datasets.reading import Table, read_table

CAPS = Caps(max_rows=100, max_columns=10, max_categories=5, max_encoded_bytes=10_000)

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


@pytest.fixture
def read(tmp_path: Path) -> Callable[..., Table]:
    """Reads bytes as an upload: from a file, with CAPS unless told otherwise."""

    def read_bytes(data: bytes, caps: Caps = CAPS) -> Table:
        path = tmp_path / "upload"
        path.write_bytes(data)
        return read_table(path, caps)

    return read_bytes


def test_numeric_columns_stay_and_text_columns_are_one_hot(read: Callable[..., Table]) -> None:
    encoded = encode(read(CSV), "label", "classification", "none", CAPS)

    assert encoded.feature_names == ["size", "colour=blue", "colour=green", "colour=red"]
    assert encoded.categorical_columns == ["colour"]
    np.testing.assert_array_equal(encoded.features[:2], [[1.5, 0, 0, 1], [2.5, 1, 0, 0]])
    assert encoded.features.dtype == np.float32
    assert encoded.class_names == ["a", "b"]
    assert encoded.class_counts == {"a": 5, "b": 5}
    np.testing.assert_array_equal(encoded.target[:4], [0, 1, 0, 1])


def test_a_row_with_the_wrong_field_count_names_its_line(read: Callable[..., Table]) -> None:
    broken = CSV.replace(b"3.5,red,a", b"3.5,red,a,extra")
    with pytest.raises(TableError, match=r"^line 4: 4 fields, the header has 3$") as caught:
        read(broken)
    assert caught.value.status == 400


def test_an_unclosed_quote_names_its_line(read: Callable[..., Table]) -> None:
    with pytest.raises(TableError, match=r"^line \d+: "):
        read(b'a,b\n1,"2\n3,4\n')


def test_missing_values_are_an_error_unless_imputed(read: Callable[..., Table]) -> None:
    table = read(CSV.replace(b"2.5,blue", b",blue").replace(b"4.5,green", b"NA,green"))

    with pytest.raises(TableError, match="column `size` has 2 missing values") as caught:
        encode(table, "label", "classification", "none", CAPS)
    mean = encode(table, "label", "classification", "mean", CAPS).features[:, 0]
    median = encode(table, "label", "classification", "median", CAPS).features[:, 0]

    assert caught.value.status == 422
    present = [1.5, 3.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5]  # mean 6.625, median (6.5 + 7.5) / 2 = 7.0
    assert mean[1] == mean[3] == pytest.approx(6.625)
    assert median[1] == median[3] == pytest.approx(7.0)
    assert mean[0] == present[0]


def test_regression_targets_must_be_numbers_and_the_target_must_exist(read: Callable[..., Table]) -> None:
    table = read(CSV)
    with pytest.raises(TableError, match="non-numeric"):
        encode(table, "label", "regression", "none", CAPS)
    with pytest.raises(TableError, match="no column `price`"):
        encode(table, "price", "regression", "none", CAPS)
    encoded = encode(table, "size", "regression", "none", CAPS)
    assert encoded.target[0] == np.float32(1.5) and encoded.class_names == []


def test_too_many_rows_is_a_413(read: Callable[..., Table]) -> None:
    with pytest.raises(TableError, match="more than the limit of 5 rows") as caught:
        read(CSV, Caps(5, 10, 5, 10_000))
    assert caught.value.status == 413


def test_parquet_is_recognised_by_content_and_reads_like_csv(read: Callable[..., Table]) -> None:
    table = pa.table({"size": [1.5, 2.5] * 5, "colour": ["red", "blue"] * 5, "label": ["a", "b"] * 5})
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)

    data = buffer.getvalue().to_pybytes()
    encoded = encode(read(data), "label", "classification", "none", CAPS)

    assert detect_format(data) == "parquet" and detect_format(CSV) == "csv"
    assert encoded.feature_names == ["size", "colour=blue", "colour=red"]
    with pytest.raises(TableError, match="neither CSV text nor Parquet"):
        read(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


def test_a_text_column_past_the_category_cap_is_a_422_naming_it(read: Callable[..., Table]) -> None:
    rows = b"".join(b"%d,user-%d,%s\n" % (i, i, b"ab"[i % 2 : i % 2 + 1]) for i in range(12))
    table = read(b"size,user,label\n" + rows)

    with pytest.raises(TableError, match=r"^column `user` has 12 distinct values, over the limit") as caught:
        encode(table, "label", "classification", "none", CAPS)

    assert caught.value.status == 422
    assert "`max_categories` of 5; drop the column or hash it" in str(caught.value)


def test_a_target_with_more_classes_than_the_cap_is_a_422(read: Callable[..., Table]) -> None:
    table = read(b"x,y\n" + b"".join(b"1,%d\n" % i for i in range(12)))

    with pytest.raises(TableError, match=r"^the target `y` has 12 classes, over the limit `max_categories` of 5"):
        encode(table, "y", "classification", "none", CAPS)
    assert encode(table, "y", "regression", "none", CAPS).target[11] == 11.0


def test_too_many_columns_is_a_422_before_any_value_is_read(read: Callable[..., Table]) -> None:
    header = ",".join(f"c{i}" for i in range(11)).encode()
    parquet = pa.BufferOutputStream()
    pq.write_table(pa.table({f"c{i}": [1.0] for i in range(11)}), parquet)

    for data in (header + b"\n" + b"\xff" * 10, parquet.getvalue().to_pybytes()):
        with pytest.raises(TableError, match=r"^11 columns, over the limit `max_upload_columns` of 10$") as caught:
            read(data)
        assert caught.value.status == 422


def test_an_encoded_table_past_the_byte_cap_is_a_422_before_it_is_allocated(read: Callable[..., Table]) -> None:
    table = read(CSV)  # 10 rows x 4 features x 4 bytes = 160 bytes

    with pytest.raises(TableError, match=r"^encoded, the table would be 160 bytes or more \(10 rows x 4 features\)"):
        encode(table, "label", "classification", "none", Caps(100, 10, 5, max_encoded_bytes=159))
    encoded = encode(table, "label", "classification", "none", Caps(100, 10, 5, max_encoded_bytes=160))
    assert encoded.features.shape == (10, 4)


def test_missing_text_is_filled_with_the_most_frequent_value_the_first_in_order_on_a_tie(
    read: Callable[..., Table],
) -> None:
    holey = CSV.replace(b"4.5,green", b"4.5,NA").replace(b"8.5,green", b"8.5, ").replace(b"9.5,red", b"9.5,blue")
    table = read(holey)  # then 4 blue, 4 red: blue comes first

    with pytest.raises(TableError, match="column `colour` has 2 missing values"):
        encode(table, "label", "classification", "none", CAPS)
    encoded = encode(table, "label", "classification", "most_frequent", CAPS)

    assert encoded.feature_names == ["size", "colour=blue", "colour=red"]
    np.testing.assert_array_equal(encoded.features[[3, 7], 1:], [[1, 0], [1, 0]])


def test_a_repeated_parquet_string_is_read_once_not_once_per_row(read: Callable[..., Table]) -> None:
    rows = 400_000
    long = "x" * 10_000  # one string per row: 4 GB
    text = pa.DictionaryArray.from_arrays(np.arange(rows, dtype=np.int32) % 2, [long, "short"])
    table = pa.table({"size": np.arange(rows) % 3, "text": text, "label": [0, 1] * (rows // 2)})
    parquet = pa.BufferOutputStream()
    pq.write_table(table, parquet)
    caps = Caps(max_rows=rows, max_columns=10, max_categories=5, max_encoded_bytes=rows * 3 * 4)

    read_back = read(parquet.getvalue().to_pybytes(), caps)
    encoded = encode(read_back, "label", "classification", "none", caps)

    assert read_back.columns[1].nbytes < 10 * rows  # the dictionary's indices and its two values
    assert encoded.feature_names == ["size", "text=short", f"text={long}"]
    np.testing.assert_array_equal(encoded.features[:3], [[0, 0, 1], [1, 1, 0], [2, 0, 1]])
    assert encoded.class_counts == {"0": rows // 2, "1": rows // 2}


def test_a_parquet_file_too_large_once_encoded_is_refused_before_it_is_read(read: Callable[..., Table]) -> None:
    parquet = pa.BufferOutputStream()
    pq.write_table(pa.table({"a": [0.0] * 100, "b": [1.0] * 100, "label": [0, 1] * 50}), parquet)
    data = parquet.getvalue().to_pybytes()

    with pytest.raises(TableError, match=r"^encoded, the table would be 800 bytes or more \(100 rows x 2 features\)"):
        read(data, Caps(max_rows=100, max_columns=10, max_categories=5, max_encoded_bytes=799))
    assert read(data, Caps(max_rows=100, max_columns=10, max_categories=5, max_encoded_bytes=800)).rows == 100


def test_a_parquet_column_that_is_neither_numbers_nor_text_is_a_422_naming_it(read: Callable[..., Table]) -> None:
    parquet = pa.BufferOutputStream()
    pq.write_table(pa.table({"tags": [[1, 2], [3]] * 5, "x": [1.0] * 10, "label": [0, 1] * 5}), parquet)
    table = read(parquet.getvalue().to_pybytes())

    with pytest.raises(TableError, match=r"^column `tags` is neither numbers nor text: ") as caught:
        encode(table, "label", "classification", "none", CAPS)
    assert caught.value.status == 422
