"""Probabilistic evaluation (Scholten, Günnemann, Schwinn, ICLR 2025) of a score X in [0, 1].

From n sampled answers per question we bound, with confidence 1 - alpha,
    - the leakage probability P(X >= tau):   exact (Clopper-Pearson) binomial interval;
    - the CDF F of X:                          DKW band F_hat(t) +- eps, eps = sqrt(ln(2/alpha) / (2n));
    - E[X] = integral_0^1 (1 - F(t)) dt:       Riemann sums of the DKW band (left rule up, right rule down);
    - the standard deviation of X:             from the same band (see `std_upper_bound`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import beta

DEFAULT_GRID_POINTS = 1001


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _unit_samples(samples: ArrayLike) -> np.ndarray:
    """The samples as a non-empty 1-D float array, checked to lie in [0, 1] (the bounds assume it)."""
    x = np.asarray(samples, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("no samples")
    if np.any(~np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
        raise ValueError("samples must lie in [0, 1]")
    return x


def clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    """Exact two-sided 1 - alpha interval for a binomial proportion from k successes in n trials.

    lower = Beta(alpha/2; k, n-k+1) quantile (0 when k = 0), upper = Beta(1-alpha/2; k+1, n-k) quantile (1 when k = n).
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    _check_alpha(alpha)
    # The Beta quantiles are undefined at the edges (a shape parameter would be 0); there the bound is trivial.
    lower = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def dkw_epsilon(n: int, alpha: float) -> float:
    """Half-width of the DKW band: eps = sqrt(ln(2/alpha) / (2n)), so P(sup_t |F_hat - F| > eps) <= alpha."""
    if n < 1:
        raise ValueError(f"need n >= 1, got {n}")
    _check_alpha(alpha)
    return math.sqrt(math.log(2 / alpha) / (2 * n))


def dkw_band(
    samples: ArrayLike, alpha: float, grid_points: int = DEFAULT_GRID_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, lower_cdf, upper_cdf): the empirical CDF on `grid_points` evenly spaced points of [0, 1], +- eps,
    clipped to [0, 1]. With probability >= 1 - alpha the true CDF lies inside the band at every point."""
    if grid_points < 2:
        raise ValueError(f"need at least 2 grid points, got {grid_points}")
    x = np.sort(_unit_samples(samples))
    eps = dkw_epsilon(x.size, alpha)
    grid = np.linspace(0.0, 1.0, grid_points)
    # F_hat(t) = #{x_i <= t} / n: side="right" counts ties with t as at or below it.
    ecdf = np.searchsorted(x, grid, side="right") / x.size
    return grid, np.clip(ecdf - eps, 0.0, 1.0), np.clip(ecdf + eps, 0.0, 1.0)


def expectation_bounds(
    samples: ArrayLike, alpha: float, grid_points: int = DEFAULT_GRID_POINTS
) -> tuple[float, float]:
    """(lower, upper) bound on E[X] = integral_0^1 (1 - F(t)) dt at confidence 1 - alpha.

    1 - F is non-increasing, so on each grid cell [t_i, t_i+1] it is at most 1 - F(t_i) <= 1 - lower_cdf(t_i)
    (left Riemann sum -> upper bound) and at least 1 - F(t_i+1) >= 1 - upper_cdf(t_i+1) (right sum -> lower bound).
    The sample mean, the same integral of 1 - F_hat, always lies between the two.
    """
    grid, lower_cdf, upper_cdf = dkw_band(samples, alpha, grid_points)
    width = np.diff(grid)
    upper = float(np.sum(width * (1.0 - lower_cdf[:-1])))
    lower = float(np.sum(width * (1.0 - upper_cdf[1:])))
    return lower, upper


def std_upper_bound(samples: ArrayLike, alpha: float, grid_points: int = DEFAULT_GRID_POINTS) -> float:
    """Upper bound on the standard deviation of X at confidence 1 - alpha, from the DKW band.

    Var = E[X^2] - E[X]^2 with E[X^2] = integral_0^1 2t (1 - F(t)) dt. On a grid cell [t_i, t_i+1] the integrand is
    at most 2 t_i+1 (1 - lower_cdf(t_i)), so that Riemann sum bounds E[X^2] from above; E[X]^2 is bounded from below
    by the square of `expectation_bounds`' lower end. Both hold on the same band event, so
    Var <= max(0, E2_upper - E_lower^2) with probability >= 1 - alpha; the result is also capped at 1/2, the largest
    standard deviation of any variable in [0, 1] (Popoviciu).
    """
    grid, lower_cdf, _ = dkw_band(samples, alpha, grid_points)
    second_moment_upper = float(np.sum(np.diff(grid) * 2.0 * grid[1:] * (1.0 - lower_cdf[:-1])))
    mean_lower, _ = expectation_bounds(samples, alpha, grid_points)
    variance_upper = max(0.0, second_moment_upper - mean_lower**2)
    return min(math.sqrt(variance_upper), 0.5)


def sampling_summary(scores_per_question: Sequence[Sequence[float]], threshold: float, alpha: float) -> dict:
    """Summary of n sampled ROUGE-L scores per question over one split, as plain floats.

    n: samples per question; mean_rouge_l: mean over all samples; max_rouge_l: mean over questions of the
    per-question max (leak@n); leak_share: share of all samples scoring >= threshold; leak_share_upper: upper end of
    the Clopper-Pearson interval of that share (counts pooled over all samples); expected_rouge_l_upper and
    std_rouge_l_upper: means over questions of each question's DKW upper bounds on E[X] and std(X);
    threshold; confidence = 1 - alpha. Each per-question bound holds at confidence 1 - alpha on its own.
    """
    if not scores_per_question:
        raise ValueError("no questions")
    lengths = {len(scores) for scores in scores_per_question}
    if len(lengths) != 1:
        raise ValueError(f"every question needs the same number of samples, got {sorted(lengths)}")
    scores = np.vstack([_unit_samples(s) for s in scores_per_question])
    n = scores.shape[1]
    leaks = int(np.sum(scores >= threshold))
    _, leak_upper = clopper_pearson(leaks, scores.size, alpha)
    return {
        "n": n,
        "mean_rouge_l": float(scores.mean()),
        "max_rouge_l": float(scores.max(axis=1).mean()),
        "leak_share": leaks / scores.size,
        "leak_share_upper": leak_upper,
        "expected_rouge_l_upper": float(np.mean([expectation_bounds(row, alpha)[1] for row in scores])),
        "std_rouge_l_upper": float(np.mean([std_upper_bound(row, alpha) for row in scores])),
        "threshold": float(threshold),
        "confidence": 1.0 - alpha,
    }
