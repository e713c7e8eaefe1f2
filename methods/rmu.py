"""RMU (representation misdirection for unlearning, Li et al.'s WMDP paper), as open-unlearning defines it.

At one decoder layer L, the forget examples' activations are driven towards c * u, u a fixed random unit
vector (uniform entries, normalised; seeded by `pmc.seed`) and c the steering coefficient, while the retain
examples' activations are held at the frozen target's: the loss is

    MSE(h_L(forget), c * u) + alpha * MSE(h_L(retain), h_L^target(retain))

each MSE the mean over answer tokens (the tokens open-unlearning's labels mark) of the mean squared
difference per dimension, averaged per sequence and then over sequences. Only the MLP output weights of
layers L-2, L-1 and L train (open-unlearning's class default, after the WMDP code).
"""
from __future__ import annotations

from functools import partial

import torch

from pmc_unlearning.methods.method import FixedTargets
from pmc_unlearning.trainer.trainer import Step

TRAINED = "mlp.down_proj.weight"  # of each trained layer
LAYERS_BELOW = 2  # layers trained below L


def random_unit_vector(size: int, seed: int) -> torch.Tensor:
    """The fixed direction RMU steers to: uniform [0, 1) entries, normalised, the same for a seed everywhere."""
    vector = torch.rand(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    return vector / vector.norm()


def activation_distance(activations: torch.Tensor, targets: torch.Tensor, sequence: torch.Tensor, count: int,
                        sequences: int | None = None) -> torch.Tensor:
    """Mean over `count` sequences (normalised by `sequences`, the whole batch's, if given) of each one's mean
    over its tokens of the mean squared difference per dimension. `activations`, `targets`: (tokens, hidden);
    `sequence`: each token's sequence, 0 to count - 1."""
    per_token = (activations.float() - targets.float()).pow(2).mean(dim=-1)
    sums = torch.zeros(count, dtype=per_token.dtype, device=per_token.device).index_add(0, sequence, per_token)
    per_sequence = sums / torch.bincount(sequence, minlength=count).clamp(min=1)
    return per_sequence.sum() / max(count if sequences is None else sequences, 1)


def objective(step: Step, layer: int, steering: float, seed: int) -> dict[str, torch.Tensor]:
    k = len(step.forget)
    activations, batch = step.activations(step.forget + step.retain, layer)  # both in one pass
    in_forget = batch.sequence < k
    control = steering * random_unit_vector(activations.shape[-1], seed).to(activations.device)
    forget = activation_distance(activations[in_forget], control.expand_as(activations[in_forget]),
                                 batch.sequence[in_forget], k, step.items)
    frozen, _ = step.activations(step.retain, layer, frozen=True)
    retain = activation_distance(activations[~in_forget], frozen, batch.sequence[~in_forget] - k, len(step.retain),
                                 step.items)
    return {"forget_loss": forget, "retain_loss": retain}


def steered_layer(share: float, layers: int) -> int:
    """`baseline.rmu_layer` (a share of the depth) as a layer index, counted from 0."""
    return round(share * (layers - 1))


class RMU(FixedTargets):
    def prepare(self, trainer) -> None:
        self.layer = steered_layer(self.config.baseline.rmu_layer, trainer.decoder_layer_count())
        trainer.freeze_reference()  # the target, as it is before the first step
        trainer.train_only(TRAINED, range(max(self.layer - LAYERS_BELOW, 0), self.layer + 1))

    @property
    def lambda_(self) -> float:
        return self.config.baseline.rmu_alpha

    @property
    def objective(self):
        return partial(objective, layer=self.layer, steering=self.config.baseline.rmu_steering,
                       seed=self.config.pmc.seed)
