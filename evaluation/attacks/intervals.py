"""Every attack's figure with its 95 % interval, as one shape: {"value": v, "interval": [low, high], "n": n}.

Shares get the exact Clopper-Pearson interval; means and statistics of several groups (an AUC) a seeded
percentile bootstrap over questions. Both stay inside the metric's range.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pmc_unlearning.evaluation.bounds import clopper_pearson


def figure(value: float, low: float, high: float, n: int) -> dict:
    return {"value": float(value), "interval": [float(low), float(high)], "n": int(n)}


def share(hits: int, n: int, confidence: float = 0.95) -> dict:
    """`hits` of `n` (a share in [0, 1]) with its Clopper-Pearson interval."""
    low, high = clopper_pearson(hits, n, 1 - confidence)
    return figure(hits / n, low, high, n)


def bootstrap(groups: Sequence[Sequence[float]], statistic: Callable[..., float], resamples: int, seed: int,
              confidence: float = 0.95, bounds: tuple[float, float] = (-np.inf, np.inf)) -> dict:
    """`statistic(*groups)` with a percentile bootstrap interval: each group resampled with replacement, on
    its own, `resamples` times from a generator seeded with `seed`; the interval clipped to `bounds`."""
    arrays = [np.asarray(g, dtype=float) for g in groups]
    if any(a.size == 0 for a in arrays):
        raise ValueError("bootstrap: every group needs at least one value")
    rng = np.random.default_rng(seed)
    value = statistic(*arrays)
    draws = [statistic(*(a[rng.integers(0, a.size, a.size)] for a in arrays)) for _ in range(resamples)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    low, high = (float(np.clip(x, *bounds)) for x in (min(low, value), max(high, value)))
    return figure(value, low, high, min(a.size for a in arrays))


def mean(values: Sequence[float], resamples: int, seed: int, confidence: float = 0.95,
         bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    """The mean of per-question values with its bootstrap interval (in [0, 1] unless `bounds` says otherwise)."""
    return bootstrap([values], np.mean, resamples, seed, confidence, bounds)


def absent(reason: str) -> dict:
    """A figure the run cannot give: reported with the reason, never as 0."""
    return {"value": None, "absent": reason}
