"""Confidence intervals for the report's shares.

Count shares use the Wilson score interval (good coverage for small counts and shares near 0 or
1, unlike the normal approximation). Effort shares are ratios of sums (``sum(h * y) / sum(h)``);
their delta-method variance is ``sum(h^2 (y - R)^2) / sum(h)^2``, which for labels independent of
hours equals ``R(1 - R) / n_eff`` with Kish's effective sample size ``n_eff = sum(h)^2 / sum(h^2)``.
So the effort interval is the Wilson interval at ``n_eff``: the delta method's width, kept inside
[0, 1] and sane for a handful of large items. Both describe sampling uncertainty only (which items
happened to be in the period), not classification error; the report states coverage and the
expected share from ``p_business`` for that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["Z95", "effective_n", "linear_trend", "wilson"]

Z95 = 1.959963984540054


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (``successes`` may be fractional with ``n_eff``)."""
    if n <= 0:
        return (0.0, 1.0)
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def effective_n(hours: Iterable[float]) -> float:
    """Kish's effective sample size of effort-weighted items: ``sum(h)^2 / sum(h^2)``."""
    total = squares = 0.0
    for h in hours:
        total += h
        squares += h * h
    return total * total / squares if squares else 0.0


def linear_trend(points: list[tuple[float, float, float]]) -> float | None:
    """Weighted least-squares slope of ``(x, y, weight)`` points; None with fewer than two."""
    usable = [(x, y, w) for x, y, w in points if w > 0]
    if len(usable) < 2:
        return None
    weight = sum(w for _, _, w in usable)
    mean_x = sum(x * w for x, _, w in usable) / weight
    mean_y = sum(y * w for _, y, w in usable) / weight
    sxx = sum(w * (x - mean_x) ** 2 for x, _, w in usable)
    if sxx == 0:
        return None
    sxy = sum(w * (x - mean_x) * (y - mean_y) for x, y, w in usable)
    return sxy / sxx
