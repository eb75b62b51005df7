#!/usr/bin/env python3
"""The paired bootstrap of tools/quality/bootstrap.py on cases with a known
interval (label eval):
- a constant difference c: the interval is exactly [c, c];
- differences of +1 and -1, half each, n items: the margin's standard error
  is 1/sqrt(n), so the 95 % interval is about +-1.96/sqrt(n) around 0;
- Bernoulli recalls with a known gap: the interval covers the true gap, and
  the paired interval is narrower than an unpaired one when the two methods
  agree on most items;
- the same seed gives the same interval; bad input is refused.
"""
import math
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
sys.path.insert(0, os.path.join(here, "..", "..", "tools", "quality"))
from checks import check, summary  # noqa: E402
from bootstrap import margin_interval  # noqa: E402

m, lo, hi = margin_interval([0.5, 0.7, 0.2], [0.4, 0.6, 0.1])
check(abs(m - 0.1) < 1e-12 and abs(lo - 0.1) < 1e-12 and abs(hi - 0.1) < 1e-12,
      "constant difference: [0.1, 0.1], got %g [%g, %g]" % (m, lo, hi))

n = 400
a = np.array([1.0, 0.0] * (n // 2))
b = np.array([0.0, 1.0] * (n // 2))
m, lo, hi = margin_interval(a, b, rounds=4000)
half = 1.96 / math.sqrt(n)
check(abs(m) < 1e-12 and abs(lo + half) < 0.25 * half and abs(hi - half) < 0.25 * half,
      "+-1 differences: about +-%.3f, got [%.3f, %.3f]" % (half, lo, hi))

rng = np.random.default_rng(7)
base = rng.random(2000) < 0.4           # items both methods find
extra = rng.random(2000) < 0.05         # items only the model finds
model = (base | extra).astype(float)
other = base.astype(float)
true_gap = model.mean() - other.mean()
m, lo, hi = margin_interval(model, other)
check(lo <= true_gap <= hi and lo > 0, "covers the sample gap %.4f: [%.4f, %.4f]" % (true_gap, lo, hi))
# Unpaired: resample the two lists independently; wider when the methods agree.
widths = []
for r in range(300):
    i, j = rng.integers(0, 2000, 2000), rng.integers(0, 2000, 2000)
    widths.append(model[i].mean() - other[j].mean())
unpaired = np.percentile(widths, 97.5) - np.percentile(widths, 2.5)
check(hi - lo < 0.5 * unpaired, "paired %.4f narrower than unpaired %.4f" % (hi - lo, unpaired))

check(margin_interval(model, other) == margin_interval(model, other), "seeded: same interval")
try:
    margin_interval([1, 2], [1])
    check(False, "lists of different lengths refused")
except ValueError:
    check(True, "lists of different lengths refused")

sys.exit(summary("test_bootstrap"))
