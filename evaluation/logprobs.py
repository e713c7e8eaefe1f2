"""TOFU's probability metrics for one model state: answer probability and truth ratio per split.

Every probability is length-normalised, P(a|q) = exp(-mean token NLL of a given q). All (question, answer)
pairs a state needs are scored in one batched call of `score` (the Trainer's forward passes).
"""
from __future__ import annotations

import math
from statistics import mean
from typing import Callable

from evaluation.greedy import ROW_SPLITS, EvalSet
from evaluation.tofu_metrics import answer_prob_share, reported_truth_ratio, truth_ratio
from models.prompting import Example, encode_example

Scorer = Callable[[list[Example]], list[tuple[float, int]]]
# On these splits "Prob" is the true answer's share against the perturbed ones (TOFU); elsewhere P(a|q).
SHARE_SPLITS = ("world_facts", "real_authors")


def logprob_metrics(eval_set: EvalSet, tokenizer, score: Scorer) -> dict:
    requests: list[tuple[str, int, str, str]] = []  # (split, row, role, answer text)
    for split in ROW_SPLITS:
        for i, row in enumerate(eval_set.rows[split]):
            requests.append((split, i, "true", row.answer))
            if row.paraphrased_answer:
                requests.append((split, i, "para", row.paraphrased_answer))
            requests += [(split, i, "perturbed", text) for text in row.perturbed_answer]
    examples = [encode_example(tokenizer, eval_set.rows[split][i].question, text) for split, i, _, text in requests]
    probs: dict[tuple[str, int], dict[str, list[float]]] = {}
    for (split, i, role, _), (logprob, count) in zip(requests, score(examples)):
        probs.setdefault((split, i), {}).setdefault(role, []).append(math.exp(logprob / max(count, 1)))

    prob, ratio, raw_forget_ratios = {}, {}, []
    for split in ROW_SPLITS:
        rows = [probs[(split, i)] for i in range(len(eval_set.rows[split]))]
        if not rows:
            continue
        if split in SHARE_SPLITS:
            prob[split] = mean(answer_prob_share(r["true"][0], r.get("perturbed", [])) for r in rows)
        else:
            prob[split] = mean(r["true"][0] for r in rows)
        # The paraphrased answer is the reference where there is one; the original answer stands in otherwise.
        ratios = [truth_ratio(r.get("para", r["true"])[0], r["perturbed"]) for r in rows if r.get("perturbed")]
        if ratios:
            ratio[split] = reported_truth_ratio(ratios, "forget" if split == "forget" else "other")
        if split == "forget":
            raw_forget_ratios = ratios
    return {"prob": prob, "truth_ratio": ratio, "forget_truth_ratios": raw_forget_ratios}


def utility_inputs(prob: dict[str, float], rouge: dict[str, float], ratio: dict[str, float]) -> list[float]:
    """The nine numbers of TOFU's model utility: {Prob, ROUGE, Truth ratio} x {retain, real authors, world facts}."""
    return [table[s] for s in ("retain", "real_authors", "world_facts") for table in (prob, rouge, ratio) if s in table]
