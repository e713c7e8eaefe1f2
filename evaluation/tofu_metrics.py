"""TOFU's metrics (Maini et al., 2024) from per-row numbers computed elsewhere (mean token NLLs, probabilities).

P(a|q) = exp(-(1/|a|) * sum of the token NLLs of a given q) is the length-normalised answer probability.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

from scipy.stats import ks_2samp


def _positive(values: Sequence[float], what: str) -> list[float]:
    """The values as floats, checked to be non-empty and > 0 (they enter logarithms or ratios)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f"no {what}")
    if any(not v > 0 for v in values):
        raise ValueError(f"{what} must be > 0")
    return values


def normalised_prob(mean_token_nll: float) -> float:
    """P(a|q) = exp(-mean token NLL of a given q)."""
    return math.exp(-mean_token_nll)


def truth_ratio(para_prob: float, perturbed_probs: Sequence[float]) -> float:
    """R = (prod_j P(a_pert_j))^(1/m) / P(a_para): geometric mean of the m perturbed-answer probabilities over the
    paraphrased-answer probability (on real authors / world facts the original answer stands for a_para)."""
    (para,) = _positive([para_prob], "paraphrased-answer probability")
    perturbed = _positive(perturbed_probs, "perturbed-answer probabilities")
    # A product of m small probabilities underflows; the mean of their logs does not.
    log_ratio = sum(math.log(p) for p in perturbed) / len(perturbed) - math.log(para)
    return math.exp(log_ratio)


def reported_truth_ratio(ratios: Sequence[float], split_kind: Literal["forget", "other"]) -> float:
    """The truth ratio as TOFU reports it: forget split: mean min(R, 1/R); retain, real authors, world facts
    ("other"): mean max(0, 1 - R)."""
    ratios = _positive(ratios, "truth ratios")
    if split_kind == "forget":
        values = [min(r, 1.0 / r) for r in ratios]
    elif split_kind == "other":
        values = [max(0.0, 1.0 - r) for r in ratios]
    else:
        raise ValueError(f"split_kind must be 'forget' or 'other', got {split_kind!r}")
    return sum(values) / len(values)


def answer_prob_share(true_prob: float, perturbed_probs: Sequence[float]) -> float:
    """P(a_true) / (P(a_true) + sum_j P(a_pert_j)): TOFU's "Prob" on real authors and world facts."""
    (true,) = _positive([true_prob], "true-answer probability")
    perturbed = _positive(perturbed_probs, "perturbed-answer probabilities")
    return true / (true + sum(perturbed))


def forget_quality(
    unlearned_forget_ratios: Sequence[float], retain_model_forget_ratios: Sequence[float]
) -> float:
    """p-value of the two-sided two-sample KS test between the raw forget-split truth ratios of the unlearned model
    and of the retain model (the base fine-tuned on the retain split only)."""
    if len(unlearned_forget_ratios) == 0 or len(retain_model_forget_ratios) == 0:
        raise ValueError("both samples of truth ratios must be non-empty")
    result = ks_2samp(unlearned_forget_ratios, retain_model_forget_ratios, alternative="two-sided")
    return float(result.pvalue)


def model_utility(values: Sequence[float]) -> float:
    """Harmonic mean of the given numbers, TOFU's model utility: {Prob, ROUGE, Truth ratio} x {retain, real authors,
    world facts}, i.e. 9 numbers, or fewer where a split is absent. 0 as soon as any number is 0."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values for the model utility")
    if any(v < 0 for v in values):
        raise ValueError("model utility inputs must be >= 0")
    # The limit of the harmonic mean as one value goes to 0 is 0; 1/0 itself is undefined.
    if any(v == 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)
