import math

import pytest
import torch

from pmc_unlearning.models.prompting import Example
from pmc_unlearning.trainer.losses import (
    FORGET_LOSSES,
    ForgetTerms,
    grad_ascent,
    mean_token_entropy,
    nll,
    npo,
    pack,
    sequence_logprobs,
    simnpo,
)

EXAMPLES = [Example(prompt_ids=(5, 6, 7), answer_ids=(8, 9)), Example(prompt_ids=(5,), answer_ids=(3, 4, 2))]


def test_pack_puts_examples_in_one_row_with_their_own_positions_and_answer_targets():
    batch = pack(EXAMPLES)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 5, 3, 4, 2]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 3]]
    # Position t predicts token t + 1: the last prompt token predicts the first answer token.
    assert batch.predicting.tolist() == [2, 3, 5, 6, 7]
    assert batch.targets.tolist() == [8, 9, 3, 4, 2]
    assert batch.sequence.tolist() == [0, 0, 1, 1, 1]
    assert batch.size == 2


def test_pack_refuses_an_empty_prompt_by_its_row():
    with pytest.raises(ValueError, match="example 1 of the batch has an empty prompt"):
        pack([EXAMPLES[0], Example(prompt_ids=(), answer_ids=(3,))])


def test_sequence_logprobs_sum_each_examples_answer_tokens():
    torch.manual_seed(0)
    batch = pack(EXAMPLES + [Example(prompt_ids=(1,), answer_ids=())])  # an empty answer: 0 tokens, sum 0
    logits = torch.randn(5, 11)  # one row per answer-predicting position
    sums, counts = sequence_logprobs(logits, batch)
    by_hand = [math.log(torch.softmax(logits[i], dim=-1)[token].item()) for i, token in enumerate(batch.targets)]
    expected = [sum(by_hand[:2]), sum(by_hand[2:]), 0.0]
    assert sums.tolist() == pytest.approx(expected, rel=1e-5)
    assert counts.tolist() == [2, 3, 0]
    assert nll(sums, counts).item() == pytest.approx(-sum(expected) / 5, rel=1e-5)


def test_a_packed_batch_scores_each_example_as_if_it_were_alone(tiny_model, small_bench):
    """No example sees another in the packed row: the trainer's batched log-probabilities equal each example
    run through the model on its own (full logits, no packing, no position ids)."""
    from pmc_unlearning.models.prompting import PromptFormat
    from pmc_unlearning.trainer import Trainer

    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    fmt = PromptFormat(trainer.tokenizer)
    examples = [fmt.example(r.question, r.answer) for r in small_bench.retain[:5]]
    packed = trainer.score(examples, batch_size=5)
    for example, (total, count) in zip(examples, packed):
        ids = torch.tensor([[*example.prompt_ids, *example.answer_ids]])
        with torch.no_grad():
            logp = torch.log_softmax(trainer.model(input_ids=ids).logits[0].float(), dim=-1)
        start = len(example.prompt_ids)
        alone = sum(logp[start + i - 1, token].item() for i, token in enumerate(example.answer_ids))
        assert count == len(example.answer_ids)
        assert total == pytest.approx(alone, rel=1e-4, abs=1e-4)


# ---- baselines: hand-computable values ---------------------------------------------------------------



def test_grad_ascent_is_minus_the_token_mean_nll():
    logprobs, counts = torch.tensor([-2.0, -6.0]), torch.tensor([2, 4])
    assert grad_ascent(logprobs, counts).item() == pytest.approx(-(2.0 + 6.0) / 6)


def test_npo_by_hand():
    beta = 0.1
    theta, reference = torch.tensor([-10.0, -4.0]), torch.tensor([-8.0, -8.0])
    # -(2/beta) * mean(log sigmoid(-beta * (theta - ref))): differences -2 and +4
    expected = -(2 / beta) * (math.log(1 / (1 + math.exp(-0.2))) + math.log(1 / (1 + math.exp(0.4)))) / 2
    assert npo(theta, reference, beta).item() == pytest.approx(expected, rel=1e-6)
    # At the reference the loss is (2/beta) * log 2, and lowering the likelihood lowers the loss.
    assert npo(reference, reference, beta).item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)
    assert npo(reference - 5, reference, beta).item() < npo(reference, reference, beta).item()


def test_simnpo_uses_length_normalised_logprobs_and_the_margin():
    beta, gamma = 4.5, 0.125
    logprobs, counts = torch.tensor([-3.0, -8.0]), torch.tensor([3, 4])  # normalised: -1 and -2
    expected = -(2 / beta) * sum(math.log(1 / (1 + math.exp(-(beta * n - gamma)))) for n in (1.0, 2.0)) / 2
    assert simnpo(logprobs, counts, beta, gamma).item() == pytest.approx(expected, rel=1e-6)


def test_npo_gradient_fades_far_below_the_reference_while_gradient_ascent_does_not():
    reference = torch.tensor([-10.0])
    near, far = torch.tensor([-10.0], requires_grad=True), torch.tensor([-200.0], requires_grad=True)
    npo(near, reference, 0.1).backward()
    npo(far, reference, 0.1).backward()
    assert abs(far.grad.item()) < 1e-6 < abs(near.grad.item())
    ga = torch.tensor([-200.0], requires_grad=True)
    grad_ascent(ga, torch.tensor([1])).backward()
    assert ga.grad.item() == pytest.approx(1.0)


# ---- the entropy regulariser --------------------------------------------------------------------------



def test_mean_token_entropy_by_hand():
    logits = torch.full((3, 4), -1e4)
    logits[0] = 0.0  # uniform over 4: entropy log 4
    logits[1, 1] = 0.0  # one certain token: entropy 0
    logits[2, :2] = torch.tensor([math.log(1), math.log(3)])  # p = (1/4, 3/4)
    two_way = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert mean_token_entropy(logits).item() == pytest.approx((math.log(4) + two_way) / 3, rel=1e-5)
    assert mean_token_entropy(logits, tokens=6).item() == pytest.approx((math.log(4) + two_way) / 6, rel=1e-5)
    assert mean_token_entropy(logits[:0]).item() == 0.0


def test_entropy_weights_enter_the_trainers_loss_with_their_sign(tiny_model, small_bench):
    from pmc_unlearning.models.prompting import PromptFormat
    from pmc_unlearning.trainer import Trainer

    def forget_entropy_after_steps(weights):
        trainer = Trainer(tiny_model, precision="fp32", seed=0, entropy_weights=weights)
        forget = [PromptFormat(trainer.tokenizer).example(r.question, r.answer) for r in small_bench.forget]
        retain = [PromptFormat(trainer.tokenizer).example(r.question, r.answer) for r in small_bench.retain[:4]]
        trainer.configure_optimizer(1e-3, 0.0, warmup_steps=0)
        first = trainer.unlearn_step(forget, retain, 1.0)
        for _ in range(4):
            last = trainer.unlearn_step(forget, retain, 1.0)
        return first, last

    first, widened = forget_entropy_after_steps((-5.0, 0.5))
    assert first["loss"] == pytest.approx(first["forget_loss"] + first["retain_nll"] - 5 * first["forget_entropy"]
                                          + 0.5 * first["retain_entropy"], rel=1e-5)
    assert "forget_entropy" not in forget_entropy_after_steps((0.0, 0.0))[0]
    sharpened = forget_entropy_after_steps((5.0, 0.0))[1]
    # Same seed, same data: only the regulariser's sign differs, and the forget entropy moves the way it says.
    assert widened["forget_entropy"] > sharpened["forget_entropy"] + 0.1


# ---- shares of a batch (the ranks of a trainer group) -------------------------------------------------



@pytest.mark.parametrize("name", sorted(FORGET_LOSSES))
def test_each_forget_loss_over_the_shares_of_a_batch_sums_to_the_whole_batchs(name):
    """What N ranks of a trainer group compute: each its rows, normalised by the whole batch's size."""
    logprobs, counts = torch.tensor([-3.0, -8.0, -1.5, -6.0, -2.0]), torch.tensor([3, 4, 1, 5, 2])
    reference = torch.tensor([-2.0, -9.0, -1.0, -6.5, -4.0])
    terms = lambda part: ForgetTerms(logprobs[part], counts[part], tokens=int(counts.sum()), sequences=5, beta=0.5,
                                     gamma=0.1, reference=lambda: reference[part])
    whole = FORGET_LOSSES[name](terms(slice(None)))
    shares = [FORGET_LOSSES[name](terms(slice(rank, None, 2))) for rank in range(2)]
    assert sum(shares).item() == pytest.approx(whole.item(), rel=1e-6)
    assert nll(logprobs[::2], counts[::2], tokens=15) + nll(logprobs[1::2], counts[1::2], tokens=15) == pytest.approx(
        nll(logprobs, counts).item(), rel=1e-6)
