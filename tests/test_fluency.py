"""The fluency metric: the base model's per-token NLL of each greedy forget answer, and the share it calls broken;
and a state's evaluation, complete when made: forget quality, fluency and over-unlearning in its metrics."""
from __future__ import annotations

from statistics import mean, median

import pytest
import torch
from scipy.stats import ks_2samp
from transformers import AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.evaluation.fluency import FluencyJudge
from pmc_unlearning.evaluation.result import Measurement
from pmc_unlearning.evaluation.suite import evaluate_state
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer


def measured(answers: list[dict], truth_ratios=(0.5, 0.75), context_probs=(0.2, 0.4, 0.1)) -> Measurement:
    """A state's measurement with these forget answers, truth ratios and context probabilities."""
    return Measurement({"forget_rouge_l": 0.5}, {"forget": answers}, list(truth_ratios), [[0.5]], list(context_probs))


def nll_by_hand(model, prompt: PromptFormat, question: str, answer: str) -> float:
    """One example alone, no batching or padding: mean -log p of each answer token after what precedes it."""
    example = prompt.example(question, answer)
    ids = torch.tensor([example.prompt_ids + example.answer_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(example.prompt_ids)
    return -mean(logprobs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))


@pytest.fixture(scope="module")
def judge_and_pairs(tiny_model, small_bench):
    prompt = PromptFormat(AutoTokenizer.from_pretrained(tiny_model))
    pairs = [(row.question, row.answer) for row in small_bench.forget]
    return FluencyJudge(Trainer(tiny_model, precision="fp32").score, prompt, pairs), prompt, pairs


def test_each_answers_nll_per_token_and_the_threshold_match_a_computation_by_hand(judge_and_pairs, tiny_model):
    judge, prompt, pairs = judge_and_pairs
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    expected = [nll_by_hand(model, prompt, q, a) for q, a in pairs]
    assert judge.nll_per_token(pairs) == pytest.approx(expected, rel=1e-4)
    assert judge.threshold == pytest.approx(max(expected), rel=1e-4)


def test_empty_answers_and_answers_above_the_threshold_count_as_broken(judge_and_pairs):
    judge, _, pairs = judge_and_pairs
    values = judge.nll_per_token(pairs)
    judge.threshold = median(values)  # half of the data's own answers above it
    answers = [{"question": q, "answer": a} for q, a in pairs] + [{"question": pairs[0][0], "answer": "  "}]
    fluency = evaluate_state(measured(answers), None, judge).metrics["fluency"]
    above = sum(value > judge.threshold for value in values)
    assert fluency["broken_share"] == pytest.approx((above + 1) / len(answers))
    assert fluency["empty"] == 1
    assert fluency["nll_per_token"] == pytest.approx(mean(values), rel=1e-6)  # the empty answer has no NLL


def test_a_states_evaluation_is_complete_when_made(judge_and_pairs):
    judge, _, pairs = judge_and_pairs
    answers = [{"question": q, "answer": a} for q, a in pairs]
    retain_model_ratios = [0.1, 0.9, 0.3]
    target = measured(answers, truth_ratios=(0.2, 0.3), context_probs=(0.2, 0.4, 0.1))
    unlearned = measured(answers[:1] + [{"question": pairs[1][0], "answer": ""}] + answers[2:],
                         truth_ratios=(0.8, 0.9), context_probs=(0.1, 0.4, 0.0))
    before = evaluate_state(target, retain_model_ratios, judge)
    after = evaluate_state(unlearned, retain_model_ratios, judge, before=target)
    values = judge.nll_per_token(pairs)
    assert before.metrics["forget_rouge_l"] == 0.5  # the measured metrics, then the judged ones
    assert before.metrics["forget_quality"] == pytest.approx(ks_2samp([0.2, 0.3], retain_model_ratios).pvalue)
    assert after.metrics["forget_quality"] == pytest.approx(ks_2samp([0.8, 0.9], retain_model_ratios).pvalue)
    assert before.metrics["fluency"]["nll_per_token"] == pytest.approx(mean(values), rel=1e-6)
    assert after.metrics["fluency"]["empty"] == 1
    assert after.metrics["fluency"]["nll_per_token"] == pytest.approx(mean(values[:1] + values[2:]), rel=1e-6)
    assert "over_unlearning" not in before.metrics  # a change needs a state before
    over = after.metrics["over_unlearning"]
    assert over["mean_change"] == pytest.approx((0.1 + 0.4 + 0.0 - 0.2 - 0.4 - 0.1) / 3)
    assert over["share_halved"] == pytest.approx(1 / 3)  # 0.1 -> 0.0 fell by more than half; 0.2 -> 0.1 by half
    bare = evaluate_state(target, None).metrics  # no retain model, no judge: said as such
    assert bare["forget_quality"] is None and "fluency" not in bare
