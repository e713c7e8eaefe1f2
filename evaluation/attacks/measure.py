"""What several attacks measure on a model state: greedy ROUGE-L on sets of prompts and the leak share under
sampling on a set of rows, with their intervals, from one engine call (its decoding steps serve every prompt at
once: fewer steps than a call per set)."""
from __future__ import annotations

from typing import Mapping, Sequence

from pmc_unlearning.data import QA
from pmc_unlearning.evaluation.attacks.intervals import mean, share
from pmc_unlearning.evaluation.attacks.model import AttackedModel
from pmc_unlearning.evaluation.rouge import rouge_l_recall

Asked = tuple[Sequence[Sequence[int]], Sequence[str]]  # prompts (token ids) and the references their answers meet


def asked(model: AttackedModel, rows: Sequence[QA]) -> Asked:
    """`rows`' questions in the model's format, and their answers."""
    return [model.prompt.prompt(row.question) for row in rows], [row.answer for row in rows]


def greedy_rouge_and_leak(model: AttackedModel, greedy: Mapping[str, Asked], leak: Sequence[QA], config) -> dict:
    """For each name of `greedy`, the mean ROUGE-L recall of the greedy answers to its prompts against its
    references, with its bootstrap interval over questions; with `leak` rows, `leak_share` too: the share of
    `eval.attacks.sampling_n` answers per row, sampled at temperature 1, whose ROUGE-L reaches
    `eval.leak_threshold`, with its Clopper-Pearson interval (over all answers, as the evaluation's own)."""
    prompts = [prompt for prompts, _ in greedy.values() for prompt in prompts]
    answers, samples = model.answers(prompts, [model.prompt.prompt(row.question) for row in leak],
                                     config.eval.attacks.sampling_n)
    answers, results = iter(answers), {}
    for name, (prompts, references) in greedy.items():
        results[name] = mean([rouge_l_recall(ref, next(answers)) for ref in references],
                             config.eval.attacks.bootstrap, config.eval.seed)
    if leak:
        scores = [rouge_l_recall(row.answer, answer) for row, answers in zip(leak, samples, strict=True)
                  for answer in answers]
        results["leak_share"] = share(sum(score >= config.eval.leak_threshold for score in scores), len(scores))
    return results
