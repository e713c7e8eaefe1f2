"""Relearning (Hu et al. 2024, "Jogging the memory of unlearned LLMs"; Lynch et al. 2024): fine-tune a copy of
the model on one half of the forget rows and see whether the other half comes back. Knowledge that was only
suppressed returns after a few steps; knowledge that is gone returns no faster than in the retain model, which
never saw it.

The halves are contiguous in the data's order: TOFU and the built-in benchmark list an author's rows together,
so with several authors the halves split authors (what is measured is never trained on), with one author they
split its facts. The curve gives, after each number of steps in `eval.attacks.relearn_steps` (the target
fine-tune's lr and batch), the greedy forget ROUGE-L and the leak share under sampling on the held-out half. The
benign curve (`eval.attacks.benign_relearn`, off by default: it doubles the attack's cost) relearns on as many
retain rows instead: fine-tuning on unrelated rows should bring nothing back.
"""
from __future__ import annotations

from typing import Sequence

from pmc_unlearning.data import QA
from pmc_unlearning.evaluation.attacks.intervals import absent
from pmc_unlearning.evaluation.attacks.measure import asked, greedy_rouge_and_leak
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel


def relearn(model: AttackedModel, data: AttackData, config) -> dict:
    if len(data.forget) < 2:
        return {"absent": "relearning needs at least two forget rows: one half to relearn, one to measure"}
    taught, held = halves(data.forget)
    result = {"relearned_rows": len(taught), "measured_rows": len(held),
              "curve": relearning_curve(model, taught, held, config)}
    benign = data.retain[:len(taught)]
    if not config.eval.attacks.benign_relearn:
        result["benign_curve"] = absent("not measured (eval.attacks.benign_relearn)")
    else:
        result["benign_curve"] = relearning_curve(model, benign, held, config) if benign else \
            absent("the data has no retain rows to relearn on")
    return result


def halves(rows: Sequence[QA]) -> tuple[tuple[QA, ...], tuple[QA, ...]]:
    """(the first half, relearned; the second, measured), in the data's order."""
    middle = (len(rows) + 1) // 2
    return tuple(rows[:middle]), tuple(rows[middle:])


def relearning_curve(model: AttackedModel, taught: Sequence[QA], held: Sequence[QA], config) -> list[dict]:
    """After each step count, the held-out rows' greedy forget ROUGE-L and leak share; the model as it was after."""
    examples = [model.prompt.example(row.question, row.answer) for row in taught]
    curve, done = [], 0
    with model.changed_weights():
        for steps in config.eval.attacks.relearn_steps:
            if steps > done:
                model.relearn(examples, steps - done, config.target.lr, config.target.batch_size)
                done = steps
            curve.append({"steps": steps, **greedy_rouge_and_leak(model, {"forget_rouge_l": asked(model, held)}, held,
                                                                  config)})
    return curve
