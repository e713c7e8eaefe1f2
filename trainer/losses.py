"""Batching and the losses. Only answer tokens count.

A rank of a trainer group computes a loss on its share of a batch; each loss therefore takes the size of
the whole batch (`tokens`, `sequences`; default: the share's own) and normalises by it, so that the ranks'
losses sum to the whole batch's loss and N ranks make the update one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from pmc_unlearning.models.prompting import Example

if TYPE_CHECKING:  # the trainer imports this module
    from pmc_unlearning.trainer.trainer import Step


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
    # (1, 1, N, N), True where a position may attend; only where examples share their prompt (`pack`)
    attention_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        mask = None if self.attention_mask is None else self.attention_mask.to(device)
        return Batch(self.input_ids.to(device), self.position_ids.to(device), self.predicting.to(device),
                     self.targets.to(device), self.sequence.to(device), self.size, mask)


def pack(examples: Sequence[Example], share_prompts: bool = False) -> Batch:
    """The examples in one row (`Batch`). `share_prompts`: each run of consecutive examples with one prompt holds
    it once; their answers follow it one after the other, each at the positions it would have after the prompt
    alone, and an explicit mask lets each answer see the prompt and its own earlier tokens only. Many answers to
    one question (PMC's candidates) then cost one prompt."""
    ids, positions, predicting, targets, sequence = [], [], [], [], []
    sees = []  # with share_prompts: per position, the positions it may attend to
    prompt_ids, prompt_at = None, 0
    for row, example in enumerate(examples):
        if not example.prompt_ids:  # its first answer token would be predicted by the example before it
            raise ValueError(f"example {row} of the batch has an empty prompt")
        if not share_prompts or example.prompt_ids != prompt_ids:
            prompt_ids, prompt_at = example.prompt_ids, len(ids)
            if share_prompts:
                sees += [range(prompt_at, prompt_at + i + 1) for i in range(len(prompt_ids))]
            ids += prompt_ids
            positions += range(len(prompt_ids))
        start, prompt = len(ids), range(prompt_at, prompt_at + len(prompt_ids))
        if share_prompts:
            sees += [[*prompt, *range(start, start + i + 1)] for i in range(len(example.answer_ids))]
        ids += example.answer_ids
        positions += range(len(prompt_ids), len(prompt_ids) + len(example.answer_ids))
        # the prompt's last token predicts the first answer token
        predicting += [prompt.stop - 1, *range(start, start + len(example.answer_ids) - 1)][:len(example.answer_ids)]
        targets += example.answer_ids
        sequence += [row] * len(example.answer_ids)
    mask = None
    if share_prompts:
        mask = torch.zeros(len(ids), len(ids), dtype=torch.bool)
        for position, seen in enumerate(sees):
            mask[position, list(seen)] = True
        mask = mask[None, None]
    as_tensor = lambda values: torch.tensor(values, dtype=torch.long)
    return Batch(as_tensor([ids]), as_tensor([positions]), as_tensor(predicting), as_tensor(targets),
                 as_tensor(sequence), len(examples), mask)


def token_logprobs(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The log-probability of every answer token (A,), from the logits at `batch.predicting` (A, vocabulary)."""
    return -torch.nn.functional.cross_entropy(logits.float(), batch.targets, reduction="none")


def sequence_logprobs(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: the summed log-probability of its answer tokens, and how many there are, from the logits
    at `batch.predicting` (A, vocabulary)."""
    each = token_logprobs(logits, batch)
    sums = torch.zeros(batch.size, dtype=each.dtype, device=logits.device)
    return sums.index_add(0, batch.sequence, each), torch.bincount(batch.sequence, minlength=batch.size)


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


# ---- objectives any method may use (see Trainer.unlearn_step) ---------------------------------------------

def retain_nll(step: Step) -> torch.Tensor:
    """The retain term most methods take: the token mean NLL of the retain rows' answers."""
    return nll(*step.retain_logprobs(), step.retain_tokens)


def answer_nll(step: Step) -> dict[str, torch.Tensor]:
    """Fine-tune towards the forget examples' answers (PMC: its selected answers; IDK: refusals) while keeping
    the retain rows' answers."""
    return {"forget_loss": nll(*step.forget_logprobs(), step.forget_tokens), "retain_nll": retain_nll(step)}
