"""Fluency of the forget answers: does an unlearned model's answer still read as an answer?

PMC trains on answers the model can already generate, and nothing asks that they read well: an unlearned
model may answer a forget question with word salad, loops or refusals, which tell anyone probing it that
unlearning happened there. The *base* model (the model before the target fine-tune: it never saw the forget
facts, so it judges language and fit to the question, not knowledge) scores each greedy answer, and each answer
gets a verdict (evaluation/verdict.py: an answer, a non-answer, or broken and how). Per model state:
- `nll_per_token`: the mean, over the non-empty answers, of the per-token NLL of the state's greedy answer;
- `threshold`: the highest per-token NLL of the data set's own forget answers; an answer above it is `unlikely`;
- `loop_threshold`, `scripts`, `checks_topic`: the yardsticks of a loop, of another writing system and of an
  answer about something else, from the same answers (evaluation/verdict.py);
- `verdicts`: each forget answer's verdict, in the order of the forget answers;
- `broken_by_kind`: how many answers are broken of each kind (empty, cut, loop, script, unlikely), and `empty`
  (the first of them, under its earlier name);
- `broken_share`, `non_answer_share`: the shares of broken answers and of non-answers, of `rows` answers.
"""
from __future__ import annotations

from statistics import mean
from typing import Sequence

from pmc_unlearning.evaluation.logprobs import Scorer
from pmc_unlearning.evaluation.verdict import BROKEN_KINDS, NON_ANSWER, Verdict
from pmc_unlearning.models.prompting import PromptFormat


class FluencyJudge:
    """Scores (question, answer) pairs with the base model's `score` (a Trainer's in fp32, as the evaluation's
    other probabilities are: the job gives it a scorer actor of its own); its thresholds are set by the data's
    own forget answers. `evaluation.suite.evaluate_state` asks it for a state's fluency block."""

    def __init__(self, score: Scorer, prompt: PromptFormat, reference: Sequence[tuple[str, str]]):
        self.score, self.prompt = score, prompt
        self.threshold = max(self.nll_per_token(reference))
        self.verdict = Verdict.from_references(reference)

    def nll_per_token(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Per (question, answer): the base model's mean NLL of the answer's tokens (its end-of-sequence too)."""
        scores = self.score([self.prompt.example(question, answer) for question, answer in pairs])
        return [-logprob / count for logprob, count in scores]

    def measure(self, answers: Sequence[dict]) -> dict:
        """The fluency block of one state, from its greedy forget answers ({"question", "answer"} rows, with
        "cut" where the engine stopped the answer at max_new_tokens; rows of earlier caches lack it: not cut)."""
        spoken = [row for row in answers if row["answer"].strip()]
        nll = self.nll_per_token([(row["question"], row["answer"]) for row in spoken])
        scored = iter(nll)
        per_row = [next(scored) if row["answer"].strip() else None for row in answers]  # an empty answer has none
        verdicts = [self.verdict.of(row["question"], row["answer"], row.get("cut", False),
                                    value is not None and value > self.threshold)
                    for row, value in zip(answers, per_row)]
        by_kind = {kind: verdicts.count(kind) for kind in BROKEN_KINDS}
        return {"nll_per_token": mean(nll) if nll else None, "broken_share": sum(by_kind.values()) / len(answers),
                "threshold": self.threshold, "empty": by_kind["empty"], "broken_by_kind": by_kind,
                "non_answer_share": verdicts.count(NON_ANSWER) / len(answers), "rows": len(answers),
                "loop_threshold": self.verdict.loop_threshold, "scripts": sorted(self.verdict.scripts),
                "checks_topic": self.verdict.checks_topic, "verdicts": verdicts}
