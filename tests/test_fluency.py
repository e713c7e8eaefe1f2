"""The fluency metric: the base model's per-token NLL of each greedy forget answer, and the share it calls broken."""
from __future__ import annotations

from statistics import mean, median

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.evaluation.fluency import FluencyJudge, add_fluency
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer


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
    state = {"metrics": {}, "answers": {"forget": answers}}
    add_fluency(state, judge)
    fluency = state["metrics"]["fluency"]
    above = sum(value > judge.threshold for value in values)
    assert fluency["broken_share"] == pytest.approx((above + 1) / len(answers))
    assert fluency["empty"] == 1
    assert fluency["nll_per_token"] == pytest.approx(mean(values), rel=1e-6)  # the empty answer has no NLL
