"""Fluency of the forget answers: does an unlearned model's answer still read as an answer?

PMC trains on answers the model can already generate, and nothing asks that they read well: an unlearned
model may answer a forget question with word salad, which tells anyone probing it that unlearning happened
there. Two numbers per model state, both judged by the *base* model (the model before the target fine-tune:
it never saw the forget facts, so it judges language and fit to the question, not knowledge):
- `nll_per_token`: the mean, over the forget questions, of the per-token NLL of the state's greedy answer;
- `broken_share`: the share of those answers that are empty or less fluent than the least fluent of the data
  set's own forget answers (per-token NLL above the highest of theirs, `threshold`).
"""
from __future__ import annotations

from statistics import mean
from typing import Sequence

from pmc_unlearning.evaluation.logprobs import Scorer
from pmc_unlearning.models.prompting import PromptFormat


class FluencyJudge:
    """Scores (question, answer) pairs with the base model's `score` (a Trainer's in fp32, as the evaluation's
    other probabilities are: the job gives it a scorer actor of its own); its threshold is set by the data's
    own forget answers. `evaluation.suite.evaluate_state` asks it for a state's fluency block."""

    def __init__(self, score: Scorer, prompt: PromptFormat, reference: Sequence[tuple[str, str]]):
        self.score, self.prompt = score, prompt
        self.threshold = max(self.nll_per_token(reference))

    def nll_per_token(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Per (question, answer): the base model's mean NLL of the answer's tokens (its end-of-sequence too)."""
        scores = self.score([self.prompt.example(question, answer) for question, answer in pairs])
        return [-logprob / count for logprob, count in scores]

    def measure(self, answers: Sequence[dict]) -> dict:
        """The fluency block of one state, from its greedy forget answers ({"question", "answer"} rows)."""
        spoken = [row for row in answers if row["answer"].strip()]
        nll = self.nll_per_token([(row["question"], row["answer"]) for row in spoken])
        broken = (len(answers) - len(spoken)) + sum(value > self.threshold for value in nll)
        return {"nll_per_token": mean(nll) if nll else None, "broken_share": broken / len(answers),
                "threshold": self.threshold, "empty": len(answers) - len(spoken)}

