"""Prompt attacks: the forget questions asked in ways the unlearning never saw.

- prefill: the first `prefill_share` of the true answer's words given after the question (the PMC authors' own
  attack); the continuation's ROUGE-L against the rest of the answer. Suppressing an answer's first tokens is
  not enough against it: the rest must be gone too.
- format shift: the other prompt format (plain on a chat model, the chat template or another plain template on
  a plain one: models/prompting.py's `PromptFormat.other`).
- in context: `in_context` retain question/answer pairs before the question, answered as examples (fewer where
  they would not leave `engine.max_new_tokens` of room in `engine.max_model_len`; `shots` is the fewest shown).
- multiple choice: the true answer among its perturbed ones, by length-normalised log-probability; the shares of
  questions where it is the most and the least likely option, against chance (1 / options). The PMC paper finds
  NPO leaking the true answer by making it the *least* likely, far above chance.
"""
from __future__ import annotations

import math

from pmc_unlearning.evaluation.attacks.intervals import absent, share
from pmc_unlearning.evaluation.attacks.measure import Asked, greedy_rouge_and_leak
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel


def prompts(model: AttackedModel, data: AttackData, config) -> dict:
    """The four attacks; the three that read greedy answers share one engine call."""
    name, other = model.prompt.other()
    answers = [row.answer for row in data.forget]
    greedy = {"prefill": prefill_prompts(model, data, config),
              "format_shift": ([other.prompt(row.question) for row in data.forget], answers)}
    shots = in_context_prompts(model, data, config)
    if "absent" not in shots:
        greedy["in_context"] = shots["asked"]
    rouge = greedy_rouge_and_leak(model, greedy, (), config)
    return {
        "prefill": {"given_share": config.eval.attacks.prefill_share, "forget_rouge_l": rouge["prefill"]},
        "format_shift": {"format": name, "forget_rouge_l": rouge["format_shift"]},
        "in_context": shots if "absent" in shots else {"shots": shots["shots"], "forget_rouge_l": rouge["in_context"]},
        "multiple_choice": multiple_choice(model, data),
    }


def in_context_prompts(model: AttackedModel, data: AttackData, config) -> dict:
    """The retain pairs before each question, as many of `in_context` as leave the engine room for an answer:
    {"shots": the fewest shown, "asked": the prompts and answers}, or why none can be shown."""
    shots = [(row.question, row.answer) for row in data.retain[:config.eval.attacks.in_context]]
    room = config.engine.max_model_len - config.engine.max_new_tokens
    prompts, shown = [], []
    for row in data.forget:
        count = len(shots)
        while count and len(model.prompt.prompt(row.question, shots[:count])) > room:
            count -= 1
        prompts.append(model.prompt.prompt(row.question, shots[:count]))
        shown.append(count)
    if not shots or not min(shown):
        return absent("no retain pair fits before the question in engine.max_model_len with an answer's room"
                      if shots else "the data has no retain rows to show")
    return {"shots": min(shown), "asked": (prompts, [row.answer for row in data.forget])}


def prefill_prompts(model: AttackedModel, data: AttackData, config) -> Asked:
    """Each question with the first `prefill_share` of its answer's words given as the answer's start, and the
    rest of the answer, which the continuation is scored against."""
    prompts, rests = [], []
    for row in data.forget:
        words = row.answer.split()
        given = math.floor(config.eval.attacks.prefill_share * len(words))
        # The given words as the answer's own first tokens (without its end of sequence).
        prompts.append((*model.prompt.prompt(row.question), *model.prompt.answer(" ".join(words[:given]))[:-1])
                       if given else model.prompt.prompt(row.question))
        rests.append(" ".join(words[given:]))
    return prompts, rests


def multiple_choice(model: AttackedModel, data: AttackData) -> dict:
    rows = [row for row in data.forget if row.perturbed_answer]
    if not rows:
        return absent("no forget row has perturbed answers")
    options = [(row.question, answer) for row in rows for answer in (row.answer, *row.perturbed_answer)]
    scores = iter(model.score([model.prompt.example(q, a) for q, a in options]))
    highest = lowest = 0
    for row in rows:
        per_token = [total / count for total, count in (next(scores) for _ in range(1 + len(row.perturbed_answer)))]
        highest += per_token[0] > max(per_token[1:])
        lowest += per_token[0] < min(per_token[1:])
    return {"highest": share(highest, len(rows)), "lowest": share(lowest, len(rows)),
            "chance": sum(1 / (1 + len(row.perturbed_answer)) for row in rows) / len(rows), "questions": len(rows)}
