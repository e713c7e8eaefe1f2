import math
import statistics

import pytest
from scipy.stats import ks_2samp

from pmc_unlearning.evaluation.tofu_metrics import (
    answer_prob_share,
    forget_quality,
    model_utility,
    normalised_prob,
    reported_truth_ratio,
    truth_ratio,
)


def test_normalised_prob():
    assert normalised_prob(0.0) == 1.0
    assert normalised_prob(math.log(2)) == pytest.approx(0.5)
    assert normalised_prob(2.0) == pytest.approx(math.exp(-2.0))


def test_truth_ratio_hand_computed():
    # Geometric mean of 0.1 and 0.4 is 0.2; over 0.5 -> 0.4.
    assert truth_ratio(0.5, [0.1, 0.4]) == pytest.approx(0.4)
    assert truth_ratio(0.25, [0.5]) == pytest.approx(2.0)


def test_truth_ratio_stays_finite_for_tiny_probabilities():
    # The product 1e-200^5 underflows to 0 in floating point; the log-space result does not.
    assert truth_ratio(1e-200, [1e-200] * 5) == pytest.approx(1.0)


@pytest.mark.parametrize("para,perturbed", [(0.0, [0.1]), (0.5, []), (0.5, [0.1, -0.2])])
def test_truth_ratio_rejects_bad_input(para, perturbed):
    with pytest.raises(ValueError):
        truth_ratio(para, perturbed)


def test_reported_truth_ratio_symmetric_case():
    ratio = truth_ratio(0.3, [0.3, 0.3, 0.3])
    assert ratio == pytest.approx(1.0)
    assert reported_truth_ratio([ratio], "forget") == pytest.approx(1.0)
    assert reported_truth_ratio([ratio], "other") == pytest.approx(0.0)


def test_reported_truth_ratio_hand_computed():
    # forget: min(R, 1/R) -> 0.5, 0.5, 1 -> mean 2/3.
    assert reported_truth_ratio([0.5, 2.0, 1.0], "forget") == pytest.approx(2 / 3)
    # other: max(0, 1 - R) -> 0.5, 0, 0.75 -> mean 1.25 / 3.
    assert reported_truth_ratio([0.5, 2.0, 0.25], "other") == pytest.approx(1.25 / 3)


def test_reported_truth_ratio_rejects_bad_input():
    with pytest.raises(ValueError):
        reported_truth_ratio([0.5], "retain")
    with pytest.raises(ValueError):
        reported_truth_ratio([], "forget")


def test_answer_prob_share_hand_computed():
    assert answer_prob_share(0.6, [0.1, 0.2, 0.1]) == pytest.approx(0.6)
    assert answer_prob_share(0.5, [0.5]) == pytest.approx(0.5)


def test_forget_quality_is_ks_pvalue():
    unlearned = [0.1, 0.3, 0.35, 0.8, 0.9, 1.2, 1.5]
    retain = [0.2, 0.25, 0.4, 0.5, 0.6, 0.65]
    assert forget_quality(unlearned, retain) == pytest.approx(ks_2samp(unlearned, retain).pvalue)
    # Identical samples cannot be told apart.
    assert forget_quality(retain, retain) == pytest.approx(1.0)


def test_forget_quality_rejects_empty_sample():
    with pytest.raises(ValueError):
        forget_quality([], [0.5])


@pytest.mark.parametrize("values", [
    [0.5, 0.4, 0.6, 0.9, 0.3, 0.7, 0.8, 0.2, 0.55],
    [0.5, 0.25],
    [0.42],
])
def test_model_utility_is_harmonic_mean(values):
    assert model_utility(values) == pytest.approx(statistics.harmonic_mean(values))


def test_model_utility_hand_computed_zero_and_empty():
    assert model_utility([1.0, 0.5]) == pytest.approx(2 / 3)
    assert model_utility([0.5, 0.0, 0.9]) == 0.0
    with pytest.raises(ValueError):
        model_utility([])
    with pytest.raises(ValueError):
        model_utility([0.5, -0.1])
