"""Stored metrics read back as finite floats, or None."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.numbers import finite_or_none


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.5, 0.5), (-2.0, -2.0)])
def test_a_finite_number_is_a_float(value: Any, expected: float) -> None:
    result = finite_or_none(value)
    assert result == expected
    assert isinstance(result, float)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None, "1.0", [1.0]])
def test_anything_else_is_none(value: Any) -> None:
    assert finite_or_none(value) is None
