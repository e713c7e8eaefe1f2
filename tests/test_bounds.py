import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from pmc_unlearning.evaluation.bounds import (
    clopper_pearson,
    dkw_band,
    dkw_epsilon,
    expectation_bounds,
    sampling_summary,
    std_upper_bound,
)

ALPHA = 0.05


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (9, 10), (10, 10), (3, 128), (0, 1), (1, 1), (57, 400)])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_clopper_pearson_matches_scipy_exact_interval(k, n, alpha):
    expected = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    lower, upper = clopper_pearson(k, n, alpha)
    assert lower == pytest.approx(expected.low, abs=1e-12)
    assert upper == pytest.approx(expected.high, abs=1e-12)


def test_clopper_pearson_edges_and_hand_value():
    assert clopper_pearson(0, 20, ALPHA)[0] == 0.0
    assert clopper_pearson(20, 20, ALPHA)[1] == 1.0
    # k = 0: the upper end solves (1 - p)^n = alpha/2.
    assert clopper_pearson(0, 20, ALPHA)[1] == pytest.approx(1 - (ALPHA / 2) ** (1 / 20))


@pytest.mark.parametrize("k,n,alpha", [(-1, 5, 0.05), (6, 5, 0.05), (0, 0, 0.05), (1, 5, 0.0), (1, 5, 1.0)])
def test_clopper_pearson_rejects_bad_input(k, n, alpha):
    with pytest.raises(ValueError):
        clopper_pearson(k, n, alpha)


def test_dkw_epsilon_formula():
    assert dkw_epsilon(100, 0.05) == pytest.approx(math.sqrt(math.log(2 / 0.05) / 200))
    assert dkw_epsilon(2000, 0.01) == pytest.approx(math.sqrt(math.log(200) / 4000))


def test_dkw_band_is_empirical_cdf_plus_minus_eps():
    samples = [0.1, 0.4, 0.4, 0.9]
    grid, lower, upper = dkw_band(samples, ALPHA)
    assert grid.shape == lower.shape == upper.shape == (1001,)
    assert grid[0] == 0.0 and grid[-1] == 1.0
    eps = dkw_epsilon(4, ALPHA)
    ecdf = np.array([np.mean(np.asarray(samples) <= t) for t in grid])
    np.testing.assert_allclose(lower, np.clip(ecdf - eps, 0, 1))
    np.testing.assert_allclose(upper, np.clip(ecdf + eps, 0, 1))


def test_dkw_band_width_on_many_samples():
    samples = np.random.default_rng(1).uniform(size=500)
    grid, lower, upper = dkw_band(samples, ALPHA, grid_points=11)
    assert grid.shape == (11,)
    eps = dkw_epsilon(500, ALPHA)
    inside = (lower > 0) & (upper < 1)
    np.testing.assert_allclose((upper - lower)[inside], 2 * eps)


@pytest.mark.parametrize("samples", [[], [0.5, 1.2], [-0.1], [float("nan")]])
def test_rejects_samples_outside_unit_interval(samples):
    with pytest.raises(ValueError):
        dkw_band(samples, ALPHA)


def test_uniform_bounds_contain_truth_and_sample_mean():
    samples = np.random.default_rng(0).uniform(size=2000)
    lower, upper = expectation_bounds(samples, ALPHA)
    assert lower <= 0.5 <= upper
    assert lower <= samples.mean() <= upper
    # The band's half-width bounds how far each end can be from the sample mean (plus one grid cell).
    eps = dkw_epsilon(2000, ALPHA)
    assert upper - lower <= 2 * eps + 2e-3
    std_upper = std_upper_bound(samples, ALPHA)
    assert 1 / math.sqrt(12) <= std_upper <= 0.5
    assert samples.std() <= std_upper


@pytest.mark.parametrize("seed", range(5))
def test_sample_mean_always_between_bounds(seed):
    rng = np.random.default_rng(seed)
    samples = rng.beta(0.5, 2.0, size=int(rng.integers(1, 60)))
    lower, upper = expectation_bounds(samples, ALPHA)
    assert lower <= samples.mean() <= upper
    assert samples.std() <= std_upper_bound(samples, ALPHA)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_point_mass_gives_tight_bounds(value):
    n = 10_000
    eps = dkw_epsilon(n, ALPHA)
    lower, upper = expectation_bounds(np.full(n, value), ALPHA)
    assert lower <= value <= upper
    assert upper - lower <= eps + 1e-3
    # No band-based bound can beat ~sqrt(eps): mass eps moved to the other end has std sqrt(eps (1 - eps)).
    # Ours is ~sqrt(2 eps) at 1 (E[X^2] up to 1, E[X] down to 1 - eps), each moment one grid cell looser.
    assert std_upper_bound(np.full(n, value), ALPHA) <= math.sqrt(2 * (eps + 2e-3))


def test_sampling_summary_on_hand_computable_input():
    summary = sampling_summary([[0.0, 1.0], [0.5, 0.5]], threshold=0.5, alpha=ALPHA)
    eps = dkw_epsilon(2, ALPHA)
    assert summary["n"] == 2
    assert summary["mean_rouge_l"] == pytest.approx(0.5)
    assert summary["max_rouge_l"] == pytest.approx((1.0 + 0.5) / 2)
    assert summary["leak_share"] == pytest.approx(3 / 4)
    # Clopper-Pearson upper end for k = 3 of 4: the Beta(4, 1) quantile, x^4 = 1 - alpha/2.
    assert summary["leak_share_upper"] == pytest.approx((1 - ALPHA / 2) ** (1 / 4))
    # Question 1: eps > 1/2 pushes the lower band to 0 below t = 1, so the upper bound is 1.
    # Question 2: lower band 0 on [0, 0.5), 1 - eps from 0.5 on: 0.5 * 1 + 0.5 * eps.
    assert summary["expected_rouge_l_upper"] == pytest.approx((1.0 + 0.5 + 0.5 * eps) / 2)
    # With two samples the band is too wide for anything but the [0, 1] cap of 1/2.
    assert summary["std_rouge_l_upper"] == pytest.approx(0.5)
    assert summary["threshold"] == 0.5
    assert summary["confidence"] == pytest.approx(0.95)
    json.dumps(summary)


def test_sampling_summary_rejects_ragged_or_empty_input():
    with pytest.raises(ValueError):
        sampling_summary([[0.1, 0.2], [0.3]], threshold=0.5, alpha=ALPHA)
    with pytest.raises(ValueError):
        sampling_summary([], threshold=0.5, alpha=ALPHA)
