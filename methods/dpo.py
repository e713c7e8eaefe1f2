"""DPO with a refusal as the preferred answer: the PMC paper's DPO baseline (as in TOFU and open-unlearning).

Each forget question is a preference pair: preferred, a refusal (IDK's, in turn); rejected, the data set's
answer. DPO raises the preferred answer's likelihood relative to the frozen target and lowers the rejected
one's, + lambda * NLL of a paired retain row. The loss, on summed answer log-probabilities,

    -(2/beta) * mean log sigmoid(beta * [(log p_theta(pref) - log p_ref(pref)) - (log p_theta(rej) - log p_ref(rej))])

is open-unlearning's (`compute_dpo_loss`): DPO's loss scaled by 2/beta, as NPO's is, which NPO is the
rejected-only case of.
"""
from __future__ import annotations

from functools import partial

import torch

from pmc_unlearning.methods.idk import refusals
from pmc_unlearning.methods.method import FixedTargets
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.trainer.losses import retain_nll
from pmc_unlearning.trainer.trainer import Step


def dpo_loss(preferred_ratios: torch.Tensor, rejected_ratios: torch.Tensor, beta: float,
             pairs: int | None = None) -> torch.Tensor:
    """The mean over pairs of -(2/beta) log sigmoid(beta * (preferred - rejected)), each ratio the summed answer
    log-probability under the model minus the reference's."""
    terms = torch.nn.functional.logsigmoid(beta * (preferred_ratios - rejected_ratios))
    return -(2 / beta) * terms.sum() / (len(terms) if pairs is None else pairs)


def objective(step: Step, beta: float) -> dict[str, torch.Tensor]:
    logprobs, _ = step.forget_logprobs()
    ratios = (logprobs - step.reference_logprobs()).view(-1, 2)  # a row per question: preferred, rejected
    return {"forget_loss": dpo_loss(ratios[:, 0], ratios[:, 1], beta, step.items), "retain_nll": retain_nll(step)}


class DPO(FixedTargets):
    def forget_items(self) -> list[tuple[Example, Example]]:
        truths = super().forget_items()
        return list(zip(refusals(self.task), truths))

    def prepare(self, trainer) -> None:
        trainer.freeze_reference()  # the target, as it is before the first step

    @property
    def objective(self):
        return partial(objective, beta=self.config.baseline.dpo_beta)
