import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch

from pmc_unlearning.methods import dpo, grad_ascent, npo, simnpo
from pmc_unlearning.methods.dpo import dpo_loss
from pmc_unlearning.methods.grad_ascent import grad_ascent_loss
from pmc_unlearning.methods.npo import npo_loss
from pmc_unlearning.methods.rmu import activation_distance, random_unit_vector, steered_layer
from pmc_unlearning.methods.simnpo import simnpo_loss
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.trainer.losses import answer_nll, mean_token_entropy, nll, pack, sequence_logprobs

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


def test_pack_sharing_prompts_holds_a_run_of_one_prompt_once_and_lets_each_answer_see_it_and_its_own_tokens_only():
    shared = [Example((5, 6), (8, 9)), Example((5, 6), (3,)), Example((5, 6), ()), Example((7,), (4, 2))]
    batch = pack(shared, share_prompts=True)
    assert batch.input_ids.tolist() == [[5, 6, 8, 9, 3, 7, 4, 2]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 2, 0, 1, 2]]  # each answer where it would be alone
    assert batch.predicting.tolist() == [1, 2, 1, 5, 6]  # the prompt's last token predicts every first token
    assert batch.targets.tolist() == [8, 9, 3, 4, 2]
    assert batch.sequence.tolist() == [0, 0, 1, 3, 3]
    assert batch.size == 4
    seen = [[j for j, sees in enumerate(row) if sees] for row in batch.attention_mask[0, 0].tolist()]
    assert seen == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 4], [5], [5, 6], [5, 6, 7]]
    with pytest.raises(ValueError, match="example 1 of the batch has an empty prompt"):
        pack([EXAMPLES[0], Example(prompt_ids=(), answer_ids=(3,))], share_prompts=True)


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
        assert count == len(example.answer_ids)
        assert total == pytest.approx(logprob_alone(trainer.model, example), rel=1e-4, abs=1e-4)


def logprob_alone(model, example: Example) -> float:
    """The summed log-probability of `example`'s answer, the example run through `model` on its own (full logits,
    no packing, no position ids)."""
    ids = torch.tensor([[*example.prompt_ids, *example.answer_ids]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(example.prompt_ids)
    return sum(logp[start + i - 1, token].item() for i, token in enumerate(example.answer_ids))


def test_answers_that_share_their_prompt_score_as_if_each_were_alone(tiny_model, small_bench):
    """`shared_prompts` (several answers to each question, as PMC's judge scores its candidates): the same
    log-probabilities as each example run through the model on its own."""
    from pmc_unlearning.models.prompting import PromptFormat
    from pmc_unlearning.trainer import Trainer

    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    fmt = PromptFormat(trainer.tokenizer)
    rows = small_bench.retain[:3]
    examples = [fmt.example(q.question, a.answer) for q in rows for a in rows]  # three answers to each question
    shared = trainer.score(examples, batch_size=5, shared_prompts=True)  # a batch may end inside a run
    for example, (total, count) in zip(examples, shared):
        assert count == len(example.answer_ids)
        assert total == pytest.approx(logprob_alone(trainer.model, example), rel=1e-4, abs=1e-4)
    # Eager attention adds a mask to the scores instead of reading booleans: there the prompts are not shared.
    trainer.model.set_attn_implementation("eager")
    eager = trainer.score(examples, batch_size=5, shared_prompts=True)
    for example, (total, count) in zip(examples, eager):
        assert total == pytest.approx(logprob_alone(trainer.model, example), rel=1e-4, abs=1e-4)


# ---- baselines: hand-computable values ---------------------------------------------------------------



def test_grad_ascent_is_minus_the_token_mean_nll():
    logprobs, counts = torch.tensor([-2.0, -6.0]), torch.tensor([2, 4])
    assert grad_ascent_loss(logprobs, counts).item() == pytest.approx(-(2.0 + 6.0) / 6)


def test_npo_by_hand():
    beta = 0.1
    theta, reference = torch.tensor([-10.0, -4.0]), torch.tensor([-8.0, -8.0])
    # -(2/beta) * mean(log sigmoid(-beta * (theta - ref))): differences -2 and +4
    expected = -(2 / beta) * (math.log(1 / (1 + math.exp(-0.2))) + math.log(1 / (1 + math.exp(0.4)))) / 2
    assert npo_loss(theta, reference, beta).item() == pytest.approx(expected, rel=1e-6)
    # At the reference the loss is (2/beta) * log 2, and lowering the likelihood lowers the loss.
    assert npo_loss(reference, reference, beta).item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)
    assert npo_loss(reference - 5, reference, beta).item() < npo_loss(reference, reference, beta).item()


def test_simnpo_uses_length_normalised_logprobs_and_the_margin():
    beta, gamma = 4.5, 0.125
    logprobs, counts = torch.tensor([-3.0, -8.0]), torch.tensor([3, 4])  # normalised: -1 and -2
    expected = -(2 / beta) * sum(math.log(1 / (1 + math.exp(-(beta * n - gamma)))) for n in (1.0, 2.0)) / 2
    assert simnpo_loss(logprobs, counts, beta, gamma).item() == pytest.approx(expected, rel=1e-6)


def test_npo_gradient_fades_far_below_the_reference_while_gradient_ascent_does_not():
    reference = torch.tensor([-10.0])
    near, far = torch.tensor([-10.0], requires_grad=True), torch.tensor([-200.0], requires_grad=True)
    npo_loss(near, reference, 0.1).backward()
    npo_loss(far, reference, 0.1).backward()
    assert abs(far.grad.item()) < 1e-6 < abs(near.grad.item())
    ga = torch.tensor([-200.0], requires_grad=True)
    grad_ascent_loss(ga, torch.tensor([1])).backward()
    assert ga.grad.item() == pytest.approx(1.0)


def test_dpo_by_hand():
    beta = 0.5
    # Two questions: log-ratios (model - reference) of the preferred and of the rejected answer.
    preferred, rejected = torch.tensor([1.0, -2.0]), torch.tensor([-3.0, 0.5])
    sigmoid = lambda x: 1 / (1 + math.exp(-x))
    expected = -(2 / beta) * (math.log(sigmoid(0.5 * 4.0)) + math.log(sigmoid(0.5 * -2.5))) / 2
    assert dpo_loss(preferred, rejected, beta).item() == pytest.approx(expected, rel=1e-6)
    # At the reference (both ratios 0) it is (2/beta) log 2, as NPO's; preferring the refusal more lowers it.
    zero = torch.zeros(2)
    assert dpo_loss(zero, zero, beta).item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)
    assert dpo_loss(zero + 1, zero, beta).item() < dpo_loss(zero, zero, beta).item()
    assert dpo_loss(zero, zero + 1, beta).item() > dpo_loss(zero, zero, beta).item()


def test_dpo_objective_pairs_each_refusal_with_its_own_answer():
    """The forget examples come as (preferred, rejected) per question; the reference's log-probabilities are
    subtracted from each before the pair is compared."""
    logprobs = torch.tensor([-2.0, -5.0, -4.0, -1.0])  # question 0: refusal, answer; question 1: refusal, answer
    reference = torch.tensor([-3.0, -4.0, -4.0, -2.0])
    step = fake_step(logprobs, torch.tensor([2, 3, 2, 1]), reference, items=2)
    # ratios: q0 (1, -1): margin 2; q1 (0, 1): margin -1
    expected = -(2 / 0.1) * (math.log(1 / (1 + math.exp(-0.2))) + math.log(1 / (1 + math.exp(0.1)))) / 2
    assert dpo.objective(step, beta=0.1)["forget_loss"].item() == pytest.approx(expected, rel=1e-6)


def test_rmu_activation_distance_by_hand():
    activations = torch.tensor([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]])  # tokens of sequences 0, 0, 1
    targets = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    # per token (mean over 2 dimensions): 2, 1, 4; per sequence (mean over its tokens): 1.5, 4
    sequence = torch.tensor([0, 0, 1])
    assert activation_distance(activations, targets, sequence, 2).item() == pytest.approx((1.5 + 4) / 2)
    assert activation_distance(activations, targets, sequence, 2, sequences=4).item() == pytest.approx((1.5 + 4) / 4)


def test_rmu_steers_towards_a_fixed_seeded_unit_vector_at_a_layer_in_range():
    u = random_unit_vector(576, seed=0)
    assert u.norm().item() == pytest.approx(1.0) and (u >= 0).all()
    assert torch.equal(u, random_unit_vector(576, seed=0)) and not torch.equal(u, random_unit_vector(576, seed=1))
    assert [steered_layer(0.25, layers) for layers in (30, 4)] == [7, 1]
    assert [steered_layer(share, 4) for share in (0.0, 1.0)] == [0, 3]


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



def fake_step(logprobs, counts, reference, items, tokens=None, retain=(torch.zeros(0), torch.zeros(0, dtype=torch.long))):
    """What an objective reads of a trainer's Step, given directly."""
    return SimpleNamespace(forget_logprobs=lambda: (logprobs, counts), retain_logprobs=lambda: retain,
                           reference_logprobs=lambda: reference, items=items,
                           forget_tokens=int(counts.sum()) if tokens is None else tokens, retain_tokens=0)


OBJECTIVES = {"nll": answer_nll, "grad_ascent": grad_ascent.objective, "npo": partial(npo.objective, beta=0.5),
              "simnpo": partial(simnpo.objective, beta=0.5, gamma=0.1), "dpo": partial(dpo.objective, beta=0.5)}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_forget_loss_over_the_shares_of_a_batch_sums_to_the_whole_batchs(name):
    """What N ranks of a trainer group compute: each its items (DPO's: a pair of examples each), normalised by
    the whole batch's size."""
    logprobs, counts = torch.tensor([-3.0, -8.0, -1.5, -6.0, -2.0, -7.0]), torch.tensor([3, 4, 1, 5, 2, 2])
    reference = torch.tensor([-2.0, -9.0, -1.0, -6.5, -4.0, -6.0])
    per_item = 2 if name == "dpo" else 1
    items = len(logprobs) // per_item
    step = lambda rank, ranks: fake_step(*(
        torch.cat([t[i * per_item:(i + 1) * per_item] for i in range(rank, items, ranks)])
        for t in (logprobs, counts, reference)), items=items, tokens=int(counts.sum()))
    whole = OBJECTIVES[name](step(0, 1))["forget_loss"]
    shares = [OBJECTIVES[name](step(rank, 2))["forget_loss"] for rank in range(2)]
    assert sum(shares).item() == pytest.approx(whole.item(), rel=1e-6)
    assert nll(logprobs[::2], counts[::2], tokens=17) + nll(logprobs[1::2], counts[1::2], tokens=17) == pytest.approx(
        nll(logprobs, counts).item(), rel=1e-6)


# ---- what RMU asks of the trainer ---------------------------------------------------------------------


def test_activations_are_a_decoder_layers_output_at_the_answer_tokens(tiny_model, small_bench):
    """Checked against each example alone through Hugging Face's own hidden states (hidden_states[L + 1] is
    layer L's output)."""
    from pmc_unlearning.models.prompting import PromptFormat
    from pmc_unlearning.trainer import Trainer

    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    fmt = PromptFormat(trainer.tokenizer)
    examples = [fmt.example(r.question, r.answer) for r in small_bench.retain[:3]]
    with torch.no_grad():
        packed, batch = trainer.activations(examples, layer=1)
        alone = [trainer.model(input_ids=torch.tensor([[*e.prompt_ids, *e.answer_ids]]), output_hidden_states=True)
                 .hidden_states[2][0, len(e.prompt_ids):] for e in examples]
    assert torch.allclose(packed, torch.cat(alone), atol=1e-5)
    assert batch.sequence.tolist() == [i for i, e in enumerate(examples) for _ in e.answer_ids]


def test_train_only_keeps_every_other_parameter_out_of_training_and_refuses_what_is_not_there(tiny_model):
    from pmc_unlearning.trainer import Trainer

    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    trainer.train_only("mlp.down_proj.weight", [2, 3])
    assert {n for n, p in trainer.model.named_parameters() if p.requires_grad} == {
        "model.layers.2.mlp.down_proj.weight", "model.layers.3.mlp.down_proj.weight"}
    with pytest.raises(ValueError, match=r"layers \[3, 4\] asked of a model with 4 decoder layers"):
        trainer.train_only("mlp.down_proj.weight", [3, 4])
    with pytest.raises(ValueError, match="no parameter 'mlp.out.weight'"):
        trainer.train_only("mlp.out.weight", [0])
