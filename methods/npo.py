"""NPO (negative preference optimisation): push the forget answers below the frozen target's likelihood,
with a push that fades once they are well below it (unlike gradient ascent), + lambda * retain NLL."""
from __future__ import annotations

from functools import partial

import torch

from pmc_unlearning.methods.method import FixedTargets
from pmc_unlearning.trainer.losses import retain_nll
from pmc_unlearning.trainer.trainer import Step


def npo_loss(forget_logprobs: torch.Tensor, reference_logprobs: torch.Tensor, beta: float,
             sequences: int | None = None) -> torch.Tensor:
    """-(2/beta) * mean log sigmoid(-beta * (log p_theta(y|x) - log p_ref(y|x))), on summed answer log-probabilities."""
    terms = torch.nn.functional.logsigmoid(-beta * (forget_logprobs - reference_logprobs))
    return -(2 / beta) * terms.sum() / (len(terms) if sequences is None else sequences)


def objective(step: Step, beta: float) -> dict[str, torch.Tensor]:
    logprobs, _ = step.forget_logprobs()
    return {"forget_loss": npo_loss(logprobs, step.reference_logprobs(), beta, step.items),
            "retain_nll": retain_nll(step)}


class NPO(FixedTargets):
    def prepare(self, trainer) -> None:
        trainer.freeze_reference()  # the target, as it is before the first step

    @property
    def objective(self):
        return partial(objective, beta=self.config.baseline.npo_beta)
