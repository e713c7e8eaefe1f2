"""What several attacks measure on a model state: greedy ROUGE-L and the leak share under sampling on a set of
rows, with their intervals."""
from __future__ import annotations

from typing import Sequence

from pmc_unlearning.data import QA
from pmc_unlearning.evaluation.attacks.intervals import mean, share
from pmc_unlearning.evaluation.attacks.model import AttackedModel
from pmc_unlearning.evaluation.rouge import rouge_l_recall


def greedy_rouge(model: AttackedModel, rows: Sequence[QA], config, prompts: Sequence[Sequence[int]] | None = None,
                 references: Sequence[str] | None = None) -> dict:
    """Mean ROUGE-L recall of the greedy answers to `rows` (their questions in the model's format, or `prompts`)
    against their answers (or `references`), with its bootstrap interval over questions."""
    prompts = prompts if prompts is not None else [model.prompt.prompt(row.question) for row in rows]
    references = references if references is not None else [row.answer for row in rows]
    answers = model.greedy(prompts)
    return mean([rouge_l_recall(ref, answer) for ref, answer in zip(references, answers, strict=True)],
                config.eval.attacks.bootstrap, config.eval.seed)


def leak_share(model: AttackedModel, rows: Sequence[QA], config) -> dict:
    """The share of `eval.attacks.sampling_n` answers per row, sampled at temperature 1, whose ROUGE-L reaches
    `eval.leak_threshold`, with its Clopper-Pearson interval (over all answers, as the evaluation's own)."""
    samples = model.sample([model.prompt.prompt(row.question) for row in rows], config.eval.attacks.sampling_n)
    scores = [rouge_l_recall(row.answer, answer) for row, answers in zip(rows, samples, strict=True)
              for answer in answers]
    return share(sum(score >= config.eval.leak_threshold for score in scores), len(scores))
