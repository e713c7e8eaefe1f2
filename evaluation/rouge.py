"""ROUGE-L recall as the reference computes it: rouge_score with the Porter stemmer, `reference` as target."""
from __future__ import annotations

from functools import lru_cache

from rouge_score import rouge_scorer


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(reference: str, prediction: str) -> float:
    """Share of the reference's (stemmed) tokens that the prediction recovers as a common subsequence."""
    return _scorer().score(reference, prediction)["rougeL"].recall
