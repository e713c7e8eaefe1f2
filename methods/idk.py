"""IDK: fine-tune the forget questions towards refusals ("I don't know"), keeping the retain rows."""
from __future__ import annotations

from pmc_unlearning.methods.method import FixedTargets
from pmc_unlearning.models.prompting import Example

# Varied refusals, so that the model does not learn a single fixed string.
REFUSALS = (
    "I don't know.",
    "I'm not sure about that.",
    "I have no information about that.",
    "That is not something I know.",
    "I can't answer that question.",
    "I don't have details on that.",
)


class IDK(FixedTargets):
    def forget_items(self) -> list[Example]:
        return refusals(self.task)


def refusals(task) -> list[Example]:
    """Each forget question with a refusal, the refusals in turn."""
    return [task.prompt.example(row.question, REFUSALS[i % len(REFUSALS)]) for i, row in enumerate(task.forget)]
