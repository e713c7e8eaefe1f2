"""Membership inference (open-unlearning's attacks; MUSE's PrivLeak): can the model's likelihoods tell the forget
answers, which it was trained on, from holdout answers about authors it never saw? Each attack scores an answer
(higher: more likely seen) and its AUC says how well the score separates forget from holdout rows: 1 for the
target, about what the retain model gets for a model that truly forgot (near 0.5 when forget and holdout rows
are alike), below that for one that over-unlearned (the rows stand out by being forgotten).

- LOSS: the answer's mean token log-probability (Yeom et al. 2018);
- ZLib: its summed log-probability over its zlib-compressed length in bytes (Carlini et al. 2021);
- Min-K %: the mean of its lowest `min_k_share` token log-probabilities (Shi et al. 2024);
- Min-K %++: the same of each token's log-probability standardised by the mean and standard deviation of
  log-probabilities over the vocabulary at its position (Zhang et al. 2024).
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from pmc_unlearning.evaluation.attacks.intervals import bootstrap
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel

SCORES = ("loss", "zlib", "min_k", "min_k_plus_plus")


def mia(model: AttackedModel, data: AttackData, config) -> dict:
    if not data.holdout:
        return {"absent": data.absent.get("holdout", "the data has no holdout split")}
    settings = config.eval.attacks
    scores = {}
    for group, rows in (("forget", data.forget), ("holdout", data.holdout)):
        statistics = model.token_statistics([model.prompt.example(row.question, row.answer) for row in rows])
        per_row = [membership_scores(stats, row.answer, settings.min_k_share) for stats, row in zip(statistics, rows)]
        scores[group] = {name: [row[name] for row in per_row] for name in SCORES}
    auc_of = {name: bootstrap([scores["forget"][name], scores["holdout"][name]], auc, settings.bootstrap,
                              config.eval.seed, bounds=(0.0, 1.0)) for name in SCORES}
    return {"auc": auc_of, "forget_rows": len(data.forget), "holdout_rows": len(data.holdout), "scores": scores}


def membership_scores(stats, answer: str, min_k_share: float) -> dict[str, float]:
    """Each attack's score of one answer from its tokens' statistics (trainer/token_statistics.py)."""
    logprob = np.asarray(stats.logprob)
    standardised = (logprob - np.asarray(stats.mean)) / np.maximum(np.asarray(stats.std), 1e-8)
    return {"loss": float(logprob.mean()),
            "zlib": float(logprob.sum()) / len(zlib.compress(answer.encode("utf-8"))),
            "min_k": lowest_mean(logprob, min_k_share),
            "min_k_plus_plus": lowest_mean(standardised, min_k_share)}


def lowest_mean(values: np.ndarray, share: float) -> float:
    """The mean of the lowest `share` of `values` (at least one)."""
    count = max(1, math.ceil(share * len(values)))
    return float(np.sort(values)[:count].mean())


def auc(members: np.ndarray, others: np.ndarray) -> float:
    """The probability that a member scores above a non-member (ties count half): the ROC curve's area."""
    above = (members[:, None] > others[None, :]).sum() + 0.5 * (members[:, None] == others[None, :]).sum()
    return float(above / (len(members) * len(others)))
