"""The full evaluation of one model state, in its two steps (evaluation/result.py).

`measure_state`, with the state's engine and trainer: greedy ROUGE-L, TOFU's probabilities and truth ratios,
model utility, evaluation under sampling on the forget questions, and the probabilities of forget-answer
tokens in unrelated contexts. `evaluate_state` judges a measurement: forget quality against the retain
model, fluency by the base model, over-unlearning against the state before.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from pmc_unlearning.configs import EvalConfig
from pmc_unlearning.data import QA
from pmc_unlearning.evaluation.bounds import sampling_summary
from pmc_unlearning.evaluation.fluency import FluencyJudge
from pmc_unlearning.evaluation.greedy import Answer, EvalSet, evaluate
from pmc_unlearning.evaluation.logprobs import UTILITY_PARTS, UTILITY_SPLITS, Scorer, logprob_metrics, utility_inputs
from pmc_unlearning.evaluation.over_unlearning import Context, summarise_changes
from pmc_unlearning.evaluation.result import Measurement, StateEvaluation
from pmc_unlearning.evaluation.rouge import rouge_l_recall
from pmc_unlearning.evaluation.tofu_metrics import forget_quality, model_utility
from pmc_unlearning.models.prompting import Example, PromptFormat
from pmc_unlearning.telemetry.console import Progress
from pmc_unlearning.telemetry.timing import StageTimer


def measure_state(eval_set: EvalSet, prompt: PromptFormat, answer: Callable[[Sequence[str]], list[Answer]], sampler,
                  score: Scorer, contexts: Sequence[Context], config: EvalConfig, label: str) -> Measurement:
    """`label` names the evaluation's progress bar (its four parts) on the console."""
    timer = StageTimer()
    with Progress(label, total=4, unit="parts") as parts:
        with timer("greedy"), parts.part("greedy answers"):
            greedy = evaluate(eval_set, answer)
        with timer("logprobs"), parts.part("probabilities"):
            probabilities = logprob_metrics(eval_set, prompt, score)
        with timer("sampling"), parts.part("sampling"):
            sampling, sample_scores = sample_forget_answers(eval_set, prompt, sampler, config)
        with timer("over_unlearning"), parts.part("over-unlearning"):
            context_probs = [math.exp(logprob) for logprob, _ in
                             score([Example(c.prompt_ids, (c.token_id,)) for c in contexts])] if contexts else []
    rouge = {split: greedy["metrics"][f"{split}_rouge_l"] for split in UTILITY_SPLITS
             if f"{split}_rouge_l" in greedy["metrics"]}
    metrics = {
        **greedy["metrics"],
        "prob": probabilities["prob"],
        "truth_ratio": probabilities["truth_ratio"],
        **utility_metrics(utility_inputs(probabilities["prob"], rouge, probabilities["truth_ratio"]), eval_set.absent),
        "sampling": sampling,
        "not_measured": eval_set.absent,
        "eval_seconds": timer.seconds,
    }
    return Measurement(metrics, greedy["answers"], probabilities["forget_truth_ratios"], sample_scores, context_probs)


def evaluate_state(measured: Measurement, retain_model_ratios: Sequence[float] | None,
                   judge: FluencyJudge | None = None, before: Measurement | None = None,
                   attacks: dict | None = None) -> StateEvaluation:
    """`measured` judged: TOFU's forget quality (the KS test of its forget truth ratios against the retain
    model's), the fluency of its greedy forget answers (by `judge`), and the change of forget-token
    probabilities in unrelated contexts since `before` (the target, for an unlearned state); with the state's
    `attacks` (evaluation/attacks/, already judged against the retain model)."""
    return StateEvaluation(
        measured,
        forget_quality=(forget_quality(measured.forget_truth_ratios, retain_model_ratios)
                        if retain_model_ratios else None),
        over_unlearning=(summarise_changes(before.context_probs, measured.context_probs)
                         if before and before.context_probs else None),
        fluency=judge.measure(measured.answers["forget"]) if judge else None,
        attacks=attacks)


def measure_forgetting(rows: Sequence[QA], prompt: PromptFormat, answer: Callable[[Sequence[str]], list[Answer]],
                       sampler, config: EvalConfig) -> dict:
    """Forget ROUGE-L (greedy) and the leak under sampling of `rows` on the state the engines hold: whether an
    earlier request stays forgotten."""
    greedy = [rouge_l_recall(row.answer, said.text) for row, said in zip(rows, answer([row.question for row in rows]))]
    eval_set = EvalSet({"forget": tuple(rows), "retain": (), "world_facts": (), "real_authors": ()})
    sampling, _ = sample_forget_answers(eval_set, prompt, sampler, config)
    return {"rows": len(rows), "forget_rouge_l": sum(greedy) / len(greedy), "sampling": sampling}


def utility_metrics(parts: dict[str, float], absent: dict[str, str]) -> dict:
    """TOFU's model utility over the parts the data allows, and which parts are missing and why: a harmonic mean
    with a part left out is a different number, so it is never silent (n/a when no part is there)."""
    missing = {part: absent.get(part) or absent.get(part.split(".")[1]) or "not computed"
               for part in UTILITY_PARTS if part not in parts}
    return {"model_utility": model_utility(list(parts.values())) if parts else None,
            "model_utility_parts": len(parts), "model_utility_missing": missing}


def sample_forget_answers(eval_set: EvalSet, prompt: PromptFormat, sampler, config: EvalConfig) -> tuple[dict, list[list[float]]]:
    """`sampling_n` answers per forget question from the engine (seeded draws), each scored by ROUGE-L
    against the truth."""
    rows = eval_set.rows["forget"]
    candidates = sampler.sample([prompt.prompt(r.question) for r in rows], config.sampling_n,
                                config.sampling_temperature, config.sampling_top_p, seed=config.seed)
    scores = [[rouge_l_recall(row.answer, c.text) for c in cands] for row, cands in zip(rows, candidates)]
    summary = sampling_summary(scores, config.leak_threshold, 1 - config.confidence)
    return {**summary, "temperature": config.sampling_temperature, "top_p": config.sampling_top_p}, scores
