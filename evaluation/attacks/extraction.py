"""Extraction (open-unlearning's definitions, from Carlini et al. 2021 and Tirumala et al. 2022), read off one
teacher-forced pass over each forget answer:

- exact memorization: the share of the answer's tokens that are the model's most likely next token;
- extraction strength: 1 - k / n for the shortest prefix of k of the answer's n tokens after which every
  remaining token is the most likely one (1: the answer follows from the question alone; 0: not even its last
  token does; open-unlearning's loop gives 1 / n there instead).
"""
from __future__ import annotations

from typing import Sequence

from pmc_unlearning.evaluation.attacks.intervals import mean
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel


def extraction(model: AttackedModel, data: AttackData, config) -> dict:
    statistics = model.token_statistics([model.prompt.example(row.question, row.answer) for row in data.forget])
    per_question = [{"exact_memorization": sum(stats.top) / len(stats.top),
                     "extraction_strength": extraction_strength(stats.top)} for stats in statistics]
    figure = lambda key: mean([row[key] for row in per_question], config.eval.attacks.bootstrap, config.eval.seed)
    return {"exact_memorization": figure("exact_memorization"),
            "extraction_strength": figure("extraction_strength"), "per_question": per_question}


def extraction_strength(top: Sequence[bool]) -> float:
    """1 - k / n for the smallest k after which every token is the most likely one (k = n where none is)."""
    k = len(top)
    while k > 0 and top[k - 1]:
        k -= 1
    return 1 - k / len(top)
