"""Numbers read back from stored metrics, which JSON may hold as ints, floats, NaN, infinities or anything else."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """The value as a float if it is a finite number, else None."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
