"""What every benchmark shares: reading a form's CSRF token and the percentile of latencies."""

from __future__ import annotations

import math
import re

# The hidden field Flask-WTF renders in every form of the app.
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1): the smallest value with at least a share
    ``q`` of the values at or below it; NaN for an empty list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
