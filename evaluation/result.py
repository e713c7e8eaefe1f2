"""One model state's evaluation, as types.

A state is evaluated in two steps, because they need different actors: `Measurement` is what the state's
own engine and trainer give (answers, probabilities, samples; the part the cache keeps for a target), and
`StateEvaluation` is that measurement judged against the run's references: the retain model's truth ratios
(forget quality), the base model (fluency) and the state before unlearning (over-unlearning). The base
model judges after the job's engine and trainer are gone, as it needs their room.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pmc_unlearning.evaluation.attacks import headline


@dataclass(frozen=True)
class Measurement:
    metrics: dict  # eval.json's block of the state, as far as the state alone gives it
    answers: dict[str, list[dict]]  # per split, the greedy answers ({"question", "answer", ...} rows)
    forget_truth_ratios: list[float]  # per forget question: TOFU's truth ratio (forget quality compares them)
    sample_scores: list[list[float]]  # per forget question: the ROUGE-L of each sampled answer
    context_probs: list[float]  # per unrelated context: p(forget-answer token | context)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Measurement:
        return cls(**data)


@dataclass(frozen=True)
class StateEvaluation:
    """A measured state and its judgements; None where the run has no such reference (no retain model, no
    judge, no state before this one)."""
    measured: Measurement
    forget_quality: float | None
    over_unlearning: dict | None = None
    fluency: dict | None = None
    attacks: dict | None = None  # evaluation/attacks/: each attack's results, judged against the retain model

    @property
    def metrics(self) -> dict:
        """eval.json's block of the state: forget quality always, the other judgements where made (the attacks
        with their headline figures, which the console and the comparison tables show)."""
        judged = {"over_unlearning": self.over_unlearning, "fluency": self.fluency, "attacks": self.attacks,
                  "attacks_headline": None if self.attacks is None else headline(self.attacks)}
        return {**self.measured.metrics, "forget_quality": self.forget_quality,
                **{key: value for key, value in judged.items() if value is not None}}

    def to_json(self) -> dict:
        """The state as report.md and the figures read it: the measurement with the judged metrics."""
        return {**self.measured.to_json(), "metrics": self.metrics}
