"""Batching and the losses. Only answer tokens count.

A rank of a trainer group computes a loss on its share of a batch; each loss therefore takes the size of
the whole batch (`tokens`, `sequences`; default: the share's own) and normalises by it, so that the ranks'
losses sum to the whole batch's loss and N ranks make the update one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from pmc_unlearning.models.prompting import Example


@dataclass
class Batch:
    """Examples packed into one row, without padding. Each example's positions start again at 0, which Hugging
    Face models read as separate sequences (a block-diagonal causal mask: no example sees another). Only the
    positions whose logits predict an answer token get logits: the output head over a large vocabulary is a
    fifth of a small model's forward, and prompt positions never count."""

    input_ids: torch.Tensor  # (1, N): every example's prompt and answer ids, one after the other
    position_ids: torch.Tensor  # (1, N): 0, 1, ... within each example
    predicting: torch.Tensor  # (A,): the positions whose logits predict an answer token
    targets: torch.Tensor  # (A,): the answer token each of them predicts
    sequence: torch.Tensor  # (A,): the example each answer token belongs to
    size: int  # examples in the batch

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.input_ids.to(device), self.position_ids.to(device), self.predicting.to(device),
                     self.targets.to(device), self.sequence.to(device), self.size)


def pack(examples: Sequence[Example]) -> Batch:
    ids, positions, predicting, targets, sequence = [], [], [], [], []
    for row, example in enumerate(examples):
        if not example.prompt_ids:  # its first answer token would be predicted by the example before it
            raise ValueError(f"example {row} of the batch has an empty prompt")
        first = len(ids) + len(example.prompt_ids) - 1  # the prompt's last token predicts the first answer token
        ids += [*example.prompt_ids, *example.answer_ids]
        positions += range(len(example.prompt_ids) + len(example.answer_ids))
        predicting += range(first, first + len(example.answer_ids))
        targets += example.answer_ids
        sequence += [row] * len(example.answer_ids)
    as_tensor = lambda values: torch.tensor(values, dtype=torch.long)
    return Batch(as_tensor([ids]), as_tensor([positions]), as_tensor(predicting), as_tensor(targets),
                 as_tensor(sequence), len(examples))


def sequence_logprobs(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: the summed log-probability of its answer tokens, and how many there are, from the logits
    at `batch.predicting` (A, vocabulary)."""
    token_logprobs = -torch.nn.functional.cross_entropy(logits.float(), batch.targets, reduction="none")
    sums = torch.zeros(batch.size, dtype=token_logprobs.dtype, device=logits.device)
    return sums.index_add(0, batch.sequence, token_logprobs), torch.bincount(batch.sequence, minlength=batch.size)


def answer_tokens(examples: Sequence[Example]) -> int:
    """How many answer tokens a batch of examples has: the `tokens` of its token means."""
    return sum(len(example.answer_ids) for example in examples)


def nll(logprob_sums: torch.Tensor, token_counts: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Mean negative log-likelihood per answer token over the whole batch (HF's causal-LM loss)."""
    return -logprob_sums.sum() / max(int(token_counts.sum()) if tokens is None else tokens, 1)


def mean_token_entropy(logits: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Mean entropy (nats) of the next-token distributions in `logits` (answer positions, (A, vocabulary))."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)
    return entropy.sum() / max(entropy.numel() if tokens is None else tokens, 1)


# ---- the baselines PMC is compared with (each on summed answer log-probabilities per sequence) -----------

def grad_ascent(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
    """Gradient ascent: push the forget answers' likelihood down, i.e. minimise -NLL."""
    return -nll(forget_logprobs, forget_counts, tokens)


def npo(forget_logprobs: torch.Tensor, reference_logprobs: torch.Tensor, beta: float,
        sequences: int | None = None) -> torch.Tensor:
    """NPO: -(2/beta) * mean log sigmoid(-beta * (log p_theta(y|x) - log p_ref(y|x))), summed token log-probs.

    Unlike gradient ascent it saturates: once the model is well below the frozen reference, the push fades.
    """
    terms = torch.nn.functional.logsigmoid(-beta * (forget_logprobs - reference_logprobs))
    return -(2 / beta) * terms.sum() / (len(terms) if sequences is None else sequences)


def simnpo(forget_logprobs: torch.Tensor, forget_counts: torch.Tensor, beta: float, gamma: float,
           sequences: int | None = None) -> torch.Tensor:
    """SimNPO: NPO without a reference model, on length-normalised log-probabilities with a margin gamma."""
    normalised = forget_logprobs / forget_counts.clamp(min=1)
    terms = torch.nn.functional.logsigmoid(-beta * normalised - gamma)
    return -(2 / beta) * terms.sum() / (len(terms) if sequences is None else sequences)


# ---- the registry the trainer picks a method's forget loss from ------------------------------------------

@dataclass(frozen=True)
class ForgetTerms:
    """What a forget loss may use: this rank's sequences, the whole batch's size, and the method's settings."""
    logprobs: torch.Tensor  # summed answer log-probability per sequence
    counts: torch.Tensor  # answer tokens per sequence
    tokens: int  # answer tokens in the whole batch (all ranks)
    sequences: int  # sequences in the whole batch
    beta: float
    gamma: float
    reference: Callable[[], torch.Tensor]  # the frozen reference model's `logprobs` of the same sequences (NPO)


FORGET_LOSSES: dict[str, Callable[[ForgetTerms], torch.Tensor]] = {
    "nll": lambda t: nll(t.logprobs, t.counts, t.tokens),  # PMC (its selected answers) and IDK (refusals)
    "grad_ascent": lambda t: grad_ascent(t.logprobs, t.counts, t.tokens),
    "npo": lambda t: npo(t.logprobs, t.reference(), t.beta, t.sequences),
    "simnpo": lambda t: simnpo(t.logprobs, t.counts, t.beta, t.gamma, t.sequences),
}
