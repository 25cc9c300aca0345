"""Mann-Whitney U test in numpy: does one run's latency distribution sit above or below another's?

Comparisons only run the test on samples of 20 or more (below that no interval is formed either), where the
normal approximation with tie and continuity corrections is the standard method; it is what
`scipy.stats.mannwhitneyu(..., method="asymptotic")` computes. Doing it here keeps scipy (a large dependency
whose import alone costs more than our whole comparison budget) out of the application.
"""

from __future__ import annotations

import math

import numpy as np


def mann_whitney_u(candidate: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """U of `candidate` (pairs where it is larger, ties counting half) and the two-sided p-value."""
    n1, n2 = int(candidate.size), int(baseline.size)
    if n1 == 0 or n2 == 0:
        raise ValueError("the Mann-Whitney test needs samples on both sides")
    combined = np.concatenate([np.asarray(candidate), np.asarray(baseline)])
    _, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank shared by every tied value
    u_candidate = float(average_rank[inverse[:n1]].sum()) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return u_candidate, 1.0  # every value is the same: no evidence of any difference
    z = (abs(u_candidate - n1 * n2 / 2.0) - 0.5) / math.sqrt(variance)
    return u_candidate, min(1.0, math.erfc(z / math.sqrt(2.0)))
