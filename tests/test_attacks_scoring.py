"""The attacks' scores and figures against independent computations: AUC against scipy's Mann-Whitney U,
Min-K % and Min-K %++ by hand from a model's logits, extraction strength and exact memorization by hand, the
halves of relearning, and intervals that stay inside each metric's range."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from pmc_unlearning.data import QA
from pmc_unlearning.evaluation.attacks import headline, judge_attacks
from pmc_unlearning.evaluation.attacks.extraction import extraction_strength
from pmc_unlearning.evaluation.attacks.intervals import bootstrap, mean, share
from pmc_unlearning.evaluation.attacks.mia import auc, lowest_mean, membership_scores
from pmc_unlearning.evaluation.attacks.relearn import halves
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer


@pytest.mark.parametrize("seed", range(4))
def test_auc_is_mann_whitneys_u_over_the_pairs(seed):
    rng = np.random.default_rng(seed)
    members, others = rng.integers(0, 6, 15).astype(float), rng.integers(0, 6, 11).astype(float)  # with ties
    u = mannwhitneyu(members, others, alternative="two-sided").statistic
    assert auc(members, others) == pytest.approx(u / (15 * 11))
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0 and auc(np.array([1.0]), np.array([1.0])) == 0.5


def test_membership_scores_by_hand_from_the_models_logits(tiny_model, small_bench):
    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    prompt = PromptFormat(trainer.tokenizer)
    row = small_bench.forget[0]
    example = prompt.example(row.question, row.answer)
    stats = trainer.token_statistics([example])[0]
    ids = torch.tensor([[*example.prompt_ids, *example.answer_ids]])
    with torch.no_grad():
        logits = trainer.model(input_ids=ids).logits[0].double()
    start, chosen, standardised = len(example.prompt_ids), [], []
    for i, token in enumerate(example.answer_ids):
        logp = torch.log_softmax(logits[start + i - 1], dim=-1)
        mu = (logp.exp() * logp).sum()
        sigma = ((logp.exp() * (logp - mu) ** 2).sum()).sqrt()
        chosen.append(logp[token].item())
        standardised.append(((logp[token] - mu) / sigma).item())
    k = math.ceil(0.4 * len(chosen))
    scores = membership_scores(stats, row.answer, 0.4)
    assert scores["loss"] == pytest.approx(sum(chosen) / len(chosen), abs=1e-4)
    assert scores["min_k"] == pytest.approx(sum(sorted(chosen)[:k]) / k, abs=1e-4)
    assert scores["min_k_plus_plus"] == pytest.approx(sum(sorted(standardised)[:k]) / k, abs=1e-3)
    import zlib
    assert scores["zlib"] == pytest.approx(sum(chosen) / len(zlib.compress(row.answer.encode())), abs=1e-4)


def test_lowest_mean_takes_at_least_one_value():
    assert lowest_mean(np.array([5.0, 1.0, 3.0, 2.0]), 0.5) == 1.5
    assert lowest_mean(np.array([5.0, 1.0]), 0.01) == 1.0


@pytest.mark.parametrize(("top", "expected"), [
    ([True, True, True], 1.0),  # the answer follows from the question alone
    ([False, True, True, True], 0.75),  # after its first token
    ([True, False, True], 1 - 2 / 3),  # a miss in the middle: only the last token follows
    ([True, True, False], 0.0),  # not even the last token
])
def test_extraction_strength_by_hand(top, expected):
    assert extraction_strength(top) == pytest.approx(expected)


def test_halves_relearn_the_first_rows_and_measure_the_rest():
    rows = tuple(QA(f"q{i}?", f"a{i}.") for i in range(5))
    taught, held = halves(rows)
    assert taught == rows[:3] and held == rows[3:]


def test_intervals_stay_inside_the_metrics_range():
    assert share(0, 10)["interval"][0] == 0.0 and share(10, 10)["interval"][1] == 1.0
    near_zero = mean([0.0] * 9 + [0.01], 500, 0)
    assert 0.0 <= near_zero["interval"][0] <= near_zero["value"] <= near_zero["interval"][1] <= 1.0
    perfect = bootstrap([[2.0, 3.0], [0.0, 1.0]], auc, 500, 0, bounds=(0.0, 1.0))
    assert perfect["value"] == 1.0 and perfect["interval"] == [1.0, 1.0]
    assert bootstrap([[1.0, 2.0, 3.0]], np.mean, 200, 7) == bootstrap([[1.0, 2.0, 3.0]], np.mean, 200, 7)


def curve(*values):
    return [{"steps": s, "forget_rouge_l": {"value": v}} for s, v in zip((0, 5), values)]


def test_recovered_share_and_privleak_set_a_state_against_the_target_and_the_retain_model():
    auc_of = lambda value: {"auc": {"loss": {"value": value}, "min_k": {"value": value - 0.1}}}
    state = {"relearn": {"curve": curve(0.0, 0.5)}, "mia": auc_of(0.6)}
    target = {"relearn": {"curve": curve(1.0, 0.9)}, "mia": auc_of(0.95)}
    retain = {"relearn": {"curve": curve(0.1, 0.3)}, "mia": auc_of(0.5)}
    judged = judge_attacks(state, target, retain)
    assert judged["relearn"]["recovered_share"] == {"value": pytest.approx((0.5 - 0.3) / (0.9 - 0.3)), "steps": 5}
    assert judged["mia"]["privleak"] == {"value": pytest.approx((0.6 - 0.5) / 0.5), "attack": "loss"}
    assert "recovered_share" not in state["relearn"]  # the state's own results are left as they were
    alone = judge_attacks(state, target, None)
    assert alone["relearn"]["recovered_share"]["value"] is None and "retain model" in alone["mia"]["privleak"]["absent"]


def test_headline_picks_the_fewest_bits_and_the_largest_relearn():
    attacks = {"relearn": {"curve": curve(0.2, 0.7)},
               "quantize": {"levels": {"8": {"forget_rouge_l": {"value": 0.2}},
                                       "4": {"forget_rouge_l": {"value": 0.4}}}},
               "prompts": {"prefill": {"forget_rouge_l": {"value": 0.3}}}}
    assert headline(attacks) == {"relearned_forget_rouge_l": 0.7, "quantized_forget_rouge_l": 0.4, "privleak": None,
                                 "extraction_strength": None, "prefill_forget_rouge_l": 0.3}
