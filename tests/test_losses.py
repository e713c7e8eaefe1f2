import math

import pytest
import torch

from models.prompting import Example
from trainer.losses import IGNORE, collate, nll, sequence_logprobs

EXAMPLES = [Example(prompt_ids=(5, 6, 7), answer_ids=(8, 9)), Example(prompt_ids=(5,), answer_ids=(3, 4, 2))]


def test_collate_labels_only_answer_tokens():
    batch = collate(EXAMPLES, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 3, 4, 2, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert batch.labels.tolist() == [[IGNORE, IGNORE, IGNORE, 8, 9], [IGNORE, 3, 4, 2, IGNORE]]


def test_sequence_logprobs_sum_only_answer_positions():
    torch.manual_seed(0)
    batch = collate(EXAMPLES, pad_id=0)
    logits = torch.randn(2, 5, 11)
    sums, counts = sequence_logprobs(logits, batch.labels)
    # Independent computation: position t's logits predict token t + 1; sum over answer tokens by hand.
    expected = []
    for row, example in enumerate(EXAMPLES):
        start = len(example.prompt_ids)
        total = 0.0
        for offset, token in enumerate(example.answer_ids):
            probs = torch.softmax(logits[row, start + offset - 1], dim=-1)
            total += math.log(probs[token].item())
        expected.append(total)
    assert sums.tolist() == pytest.approx(expected, rel=1e-5)
    assert counts.tolist() == [2, 3]
    assert nll(sums, counts).item() == pytest.approx(-sum(expected) / 5, rel=1e-5)


def test_prompt_and_padding_logits_do_not_change_the_loss():
    torch.manual_seed(1)
    batch = collate(EXAMPLES, pad_id=0)
    logits = torch.randn(2, 5, 11)
    changed = logits.clone()
    changed[0, :2] = torch.randn(2, 11) * 50  # positions predicting prompt tokens
    changed[1, 4] = torch.randn(11) * 50  # the padding position
    assert torch.allclose(sequence_logprobs(logits, batch.labels)[0], sequence_logprobs(changed, batch.labels)[0])
