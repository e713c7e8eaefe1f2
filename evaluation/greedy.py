"""The first evaluation: greedy answers on the forget, paraphrased-forget, retain and general-knowledge splits.

Unlearn quality and utility follow the PMC authors:
    unlearn quality = 100 * (1 - (R_forget + R_forget_paraphrased) / 2)
    utility         = 100 * mean(R_retain, R_world_facts, R_real_authors)   (over the splits that have rows)
with R the mean ROUGE-L recall of greedy answers against the dataset answers.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from statistics import mean
from typing import Callable, NamedTuple, Sequence

from pmc_unlearning.data import QA, Benchmark
from pmc_unlearning.evaluation.rouge import rouge_l_recall

EVAL_SPLITS = ("forget", "forget_para", "retain", "world_facts", "real_authors")
ROW_SPLITS = ("forget", "retain", "world_facts", "real_authors")


class Answer(NamedTuple):
    """A greedy answer as the engine gave it."""

    text: str
    cut: bool = False  # the engine stopped it at max_new_tokens before it ended (evaluation/verdict.py)


@dataclass(frozen=True)
class EvalSet:
    """The rows every model state of a run is evaluated on, fixed for the whole run."""

    rows: dict[str, tuple[QA, ...]]  # by ROW_SPLITS; "forget_para" asks the forget rows' paraphrases
    absent: dict[str, str] = field(default_factory=dict)  # what the data cannot give, and why (Benchmark.absent)

    def pairs(self, split: str) -> tuple[tuple[str, str], ...]:
        """(question, reference answer) pairs of a split."""
        if split == "forget_para":  # a forget request's rows may have no paraphrases (data/request.py)
            return tuple((r.paraphrased_question, r.paraphrased_answer) for r in self.rows["forget"]
                         if r.paraphrased_question)
        return tuple((r.question, r.answer) for r in self.rows[split])


def build_eval_set(bench: Benchmark, retain_subset: int, seed: int) -> EvalSet:
    """The forget rows, a seeded subset of the evaluation's retain rows (TOFU's retain_perturbed where the data
    has it), world facts and real authors."""
    retain = random.Random(seed).sample(list(bench.eval_retain), min(retain_subset, len(bench.eval_retain)))
    return EvalSet({"forget": bench.forget, "retain": tuple(retain), "world_facts": bench.world_facts,
                    "real_authors": bench.real_authors}, dict(bench.absent))


def evaluate(eval_set: EvalSet, answer: Callable[[Sequence[str]], list[Answer]]) -> dict:
    """Answer every question of every split in one call, then score; returns metrics and the answers
    ({"question", "reference", "answer", "rouge_l", "cut"} rows)."""
    questions = [q for split in EVAL_SPLITS for q, _ in eval_set.pairs(split)]
    answers = iter(answer(questions))
    per_split = {}
    for split in EVAL_SPLITS:
        per_split[split] = [
            {"question": q, "reference": ref, "answer": (a := next(answers)).text,
             "rouge_l": rouge_l_recall(ref, a.text), "cut": a.cut}
            for q, ref in eval_set.pairs(split)
        ]
    return {"metrics": summarise(per_split), "answers": per_split}


def summarise(per_split: dict[str, list[dict]]) -> dict[str, float]:
    rouge = {split: mean(r["rouge_l"] for r in rows) for split, rows in per_split.items() if rows}
    utility_parts = [rouge[s] for s in ("retain", "world_facts", "real_authors") if s in rouge]
    return {
        **{f"{split}_rouge_l": value for split, value in rouge.items()},
        # The PMC authors' mean of the two: n/a (None) without paraphrases, never the forget half alone.
        "unlearn_quality": 100 * (1 - (rouge["forget"] + rouge["forget_para"]) / 2) if "forget_para" in rouge else None,
        "utility": 100 * mean(utility_parts),
    }
