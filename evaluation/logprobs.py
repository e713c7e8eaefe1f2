"""TOFU's probability metrics for one model state: answer probability and truth ratio per split.

Every probability is length-normalised, P(a|q) = exp(-mean token NLL of a given q). All (question, answer)
pairs a state needs are scored in one batched call of `score` (the Trainer's forward passes).
"""
from __future__ import annotations

import math
from statistics import mean
from typing import Callable

from pmc_unlearning.evaluation.greedy import ROW_SPLITS, EvalSet
from pmc_unlearning.evaluation.tofu_metrics import answer_prob_share, reported_truth_ratio, truth_ratio
from pmc_unlearning.models.prompting import Example, PromptFormat

Scorer = Callable[[list[Example]], list[tuple[float, int]]]
# On these splits "Prob" is the true answer's share against the perturbed ones (TOFU); elsewhere P(a|q).
SHARE_SPLITS = ("world_facts", "real_authors")


def logprob_metrics(eval_set: EvalSet, prompt: PromptFormat, score: Scorer) -> dict:
    requests: list[tuple[str, int, str, str]] = []  # (split, row, role, answer text)
    for split in ROW_SPLITS:
        for i, row in enumerate(eval_set.rows[split]):
            requests.append((split, i, "true", row.answer))
            if row.paraphrased_answer:
                requests.append((split, i, "para", row.paraphrased_answer))
            requests += [(split, i, "perturbed", text) for text in row.perturbed_answer]
    examples = [prompt.example(eval_set.rows[split][i].question, text) for split, i, _, text in requests]
    probs: dict[tuple[str, int], dict[str, list[float]]] = {}
    for (split, i, role, _), (logprob, count) in zip(requests, score(examples)):
        probs.setdefault((split, i), {}).setdefault(role, []).append(math.exp(logprob / max(count, 1)))

    prob, ratio, raw_forget_ratios = {}, {}, []
    for split in ROW_SPLITS:
        rows = [probs[(split, i)] for i in range(len(eval_set.rows[split]))]
        if not rows:
            continue
        # A split's rows all have perturbed answers or none has (data/checks.py); without them the truth ratio
        # and, on SHARE_SPLITS, Prob cannot be computed: the data's `absent` says so.
        has_perturbed = all("perturbed" in r for r in rows)
        if split not in SHARE_SPLITS:
            prob[split] = mean(r["true"][0] for r in rows)
        elif has_perturbed:
            prob[split] = mean(answer_prob_share(r["true"][0], r["perturbed"]) for r in rows)
        if not has_perturbed:
            continue
        # The paraphrased answer is the reference where there is one; the original answer stands in otherwise.
        ratios = [truth_ratio(r.get("para", r["true"])[0], r["perturbed"]) for r in rows]
        ratio[split] = reported_truth_ratio(ratios, "forget" if split == "forget" else "other")
        if split == "forget":
            raw_forget_ratios = ratios
    return {"prob": prob, "truth_ratio": ratio, "forget_truth_ratios": raw_forget_ratios}


UTILITY_SPLITS = ("retain", "real_authors", "world_facts")
UTILITY_PARTS = tuple(f"{family}.{split}" for split in UTILITY_SPLITS for family in ("prob", "rouge_l", "truth_ratio"))


def utility_inputs(prob: dict[str, float], rouge: dict[str, float], ratio: dict[str, float]) -> dict[str, float]:
    """The nine numbers of TOFU's model utility, {Prob, ROUGE, Truth ratio} x {retain, real authors, world facts},
    by name ("prob.retain", ...): those the data allows (see UTILITY_PARTS for all nine)."""
    tables = {"prob": prob, "rouge_l": rouge, "truth_ratio": ratio}
    return {part: tables[family][split] for part in UTILITY_PARTS
            for family, split in [part.split(".")] if split in tables[family]}
