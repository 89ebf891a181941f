"""One rule for numbers written to summary.json and the figures' data files, so every file rounds
the same way and a missing value is `null` rather than a NaN that strict JSON readers reject."""

from __future__ import annotations

import math
from typing import Any


def json_number(value: Any) -> float | None:
    """`value` as a float rounded to 6 decimals; None and NaN (any float type) become None."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, 6)
