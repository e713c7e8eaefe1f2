"""What the attacks do to a model's weights, against computations by hand: round-to-nearest quantization, the
per-token statistics the membership and extraction attacks read, and relearning that a stash gives back."""
from __future__ import annotations

import math

import pytest
import torch

from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer
from pmc_unlearning.trainer.quantization import quantized


@pytest.mark.parametrize(("bits", "group", "columns"), [(8, 128, 256), (4, 128, 256), (4, 8, 20), (3, 5, 5)])
def test_quantized_weights_lie_on_each_groups_grid_within_half_a_step(bits, group, columns):
    weight = torch.randn(6, columns, generator=torch.Generator().manual_seed(bits))
    weight[2, :group] = 0.0  # an all-zero group stays zero
    levels = 2 ** (bits - 1) - 1
    out = quantized(weight, bits, group)
    for start in range(0, columns, group):  # the last group may be shorter
        w, q = weight[:, start:start + group], out[:, start:start + group]
        step = w.abs().amax(dim=1, keepdim=True) / levels
        assert torch.all((q - w).abs() <= step / 2 + 1e-6)
        on_grid = torch.where(step > 0, q / torch.where(step > 0, step, 1), 0)
        assert torch.allclose(on_grid, on_grid.round(), atol=1e-4) and on_grid.abs().max() <= levels + 1e-4
        largest = w.abs().argmax(dim=1)  # the largest magnitude is a level itself: kept exactly
        assert torch.allclose(q.gather(1, largest[:, None]), w.gather(1, largest[:, None]), atol=1e-6)
    assert torch.equal(out[2, :group], torch.zeros(group)) and out.dtype == weight.dtype


def test_a_group_wider_than_a_row_is_the_row():
    weight = torch.randn(4, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(quantized(weight, 4, 2**16), quantized(weight, 4, 20))


def test_fewer_bits_move_the_weights_further():
    weight = torch.randn(16, 256, generator=torch.Generator().manual_seed(0))
    errors = [(quantized(weight, bits, 128) - weight).abs().mean().item() for bits in (8, 4, 2)]
    assert errors == sorted(errors) and errors[0] < errors[1] / 8


def test_quantization_refuses_too_few_bits():
    with pytest.raises(ValueError, match="at least 2 bits"):
        quantized(torch.ones(2, 4), 1, 4)


@pytest.fixture
def trainer_and_examples(tiny_model, small_bench):
    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    prompt = PromptFormat(trainer.tokenizer)
    return trainer, [prompt.example(row.question, row.answer) for row in small_bench.forget]


def test_quantize_weights_rounds_the_decoder_layers_linear_weights_only(trainer_and_examples):
    trainer, _ = trainer_and_examples
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainer.quantize_weights(4, 16)
    after = trainer.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    linear = {f"{name}.weight" for name, module in trainer.model.named_modules()
              if isinstance(module, torch.nn.Linear) and ".layers." in name}
    assert changed == linear and linear
    for name in linear:
        assert torch.equal(after[name], quantized(before[name], 4, 16))


def test_token_statistics_match_the_full_distribution_computed_by_hand(trainer_and_examples):
    trainer, examples = trainer_and_examples
    statistics = trainer.token_statistics(examples[:5], batch_size=2)
    for example, stats in zip(examples[:5], statistics):
        ids = torch.tensor([[*example.prompt_ids, *example.answer_ids]])
        with torch.no_grad():
            logp = torch.log_softmax(trainer.model(input_ids=ids).logits[0].double(), dim=-1)
        start = len(example.prompt_ids)
        assert len(stats.logprob) == len(example.answer_ids)
        for i, token in enumerate(example.answer_ids):
            row = logp[start + i - 1]
            mean = sum(math.exp(x) * x for x in row.tolist())
            variance = sum(math.exp(x) * (x - mean) ** 2 for x in row.tolist())
            assert stats.logprob[i] == pytest.approx(row[token].item(), abs=1e-4)
            assert stats.mean[i] == pytest.approx(mean, abs=1e-4)
            assert stats.std[i] == pytest.approx(math.sqrt(variance), abs=1e-3)
            assert stats.top[i] == (int(row.argmax()) == token)
    summed = [sum(s.logprob) for s in statistics]
    assert summed == pytest.approx([total for total, _ in trainer.score(examples[:5])], abs=1e-3)


def test_relearning_raises_the_answers_likelihood_and_the_stash_gives_the_state_back(trainer_and_examples):
    trainer, examples = trainer_and_examples
    trainer.train_only("mlp.down_proj.weight", [0])  # as RMU leaves it: relearning trains every parameter
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trains = {name: p.requires_grad for name, p in trainer.model.named_parameters()}
    rng, torch_rng = trainer.rng.getstate(), torch.get_rng_state()
    likelihood = lambda: sum(total for total, _ in trainer.score(examples))

    start = likelihood()
    trainer.stash_state()
    trainer.relearn_steps(examples, 3, 1e-3, 4)
    relearned = likelihood()
    moved = [name for name, value in trainer.model.state_dict().items() if not torch.equal(before[name], value)]
    assert relearned > start + 1 and "model.embed_tokens.weight" in moved and len(moved) > len(trains) / 2
    trainer.restore_state()

    assert all(torch.equal(before[name], value) for name, value in trainer.model.state_dict().items())
    assert {name: p.requires_grad for name, p in trainer.model.named_parameters()} == trains
    assert trainer.rng.getstate() == rng and torch.equal(torch.get_rng_state(), torch_rng)
    assert likelihood() == pytest.approx(start, abs=1e-6)


def test_relearning_in_two_calls_is_the_same_as_in_one(tiny_model, trainer_and_examples):
    one, examples = trainer_and_examples
    one.stash_state()
    one.relearn_steps(examples, 4, 1e-3, 3)
    two = Trainer(tiny_model, precision="fp32", seed=0)
    two.stash_state()
    two.relearn_steps(examples, 1, 1e-3, 3)
    two.relearn_steps(examples, 3, 1e-3, 3)
    for (name, a), b in zip(one.model.state_dict().items(), two.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
