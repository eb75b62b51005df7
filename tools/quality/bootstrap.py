"""Paired bootstrap intervals for the margin between two methods scored on
the same items (docs/evaluation.md: "Report each margin with a paired
bootstrap 95% interval over items").

margin_interval(a, b) -> (mean(a - b), low, high): the items are resampled
with replacement `rounds` times (seeded: the same inputs give the same
interval), the margin of each resample recorded, and the interval is its
2.5th and 97.5th percentiles.  Pairing matters: both methods are judged on
the same resampled items, so an item that is hard for both does not widen
the interval.
"""
import numpy as np


def margin_interval(a, b, rounds=2000, level=0.95, seed=1):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired bootstrap needs two lists of the same length")
    diff = a - b
    n = diff.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(rounds)
    for r in range(rounds):
        means[r] = diff[rng.integers(0, n, n)].mean()
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(diff.mean()), float(low), float(high)
