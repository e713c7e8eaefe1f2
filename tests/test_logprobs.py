"""TOFU's probability metrics: the Trainer's scores against HF's own loss, and the split tables by hand."""
from __future__ import annotations

import math

import pytest
import torch

from pmc_unlearning.data import QA
from pmc_unlearning.evaluation.greedy import EvalSet
from pmc_unlearning.evaluation.logprobs import logprob_metrics
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer


def test_trainer_score_equals_hf_loss_on_answer_tokens(tiny_model, small_bench):
    trainer = Trainer(tiny_model, precision="fp32")
    examples = [PromptFormat(trainer.tokenizer).example(r.question, r.answer) for r in small_bench.full[:5]]
    scores = trainer.score(examples, batch_size=2)  # batches with padding
    for example, (logprob, count) in zip(examples, scores):
        ids = torch.tensor([example.prompt_ids + example.answer_ids])
        labels = ids.clone()
        labels[0, : len(example.prompt_ids)] = -100
        with torch.no_grad():
            hf_mean_nll = trainer.model(input_ids=ids, labels=labels).loss.item()
        assert count == len(example.answer_ids)
        assert -logprob / count == pytest.approx(hf_mean_nll, rel=1e-4)


class FixedScores:
    """Scores chosen per answer text, so every probability below is known in advance."""

    def __init__(self, mean_nll_by_answer: dict[str, float]):
        self.mean_nll = mean_nll_by_answer
        self.tokenizer = None

    def __call__(self, examples):
        return [(-self.mean_nll[self.text(e)] * 2, 2) for e in examples]

    def text(self, example):
        return self.tokenizer.decode(example.answer_ids, skip_special_tokens=True).strip()


def test_split_tables_by_hand(tiny_model):
    trainer = Trainer(tiny_model, precision="fp32")
    forget = QA("q1", "alpha", "pq1", "beta", ("gamma", "delta"))
    world = QA("q2", "epsilon", None, None, ("zeta",))
    scorer = FixedScores({"alpha": 0.1, "beta": 0.5, "gamma": 1.0, "delta": 2.0, "epsilon": 0.2, "zeta": 0.7})
    scorer.tokenizer = trainer.tokenizer
    result = logprob_metrics(EvalSet({"forget": (forget,), "retain": (), "world_facts": (world,), "real_authors": ()}),
                             PromptFormat(trainer.tokenizer), scorer)
    p = {name: math.exp(-nll) for name, nll in scorer.mean_nll.items()}
    assert result["prob"]["forget"] == pytest.approx(p["alpha"])
    ratio = math.sqrt(p["gamma"] * p["delta"]) / p["beta"]  # geometric mean of perturbed over paraphrased
    assert result["forget_truth_ratios"] == pytest.approx([ratio])
    assert result["truth_ratio"]["forget"] == pytest.approx(min(ratio, 1 / ratio))
    assert result["prob"]["world_facts"] == pytest.approx(p["epsilon"] / (p["epsilon"] + p["zeta"]))
    world_ratio = p["zeta"] / p["epsilon"]  # the original answer stands in for a paraphrase
    assert result["truth_ratio"]["world_facts"] == pytest.approx(max(0.0, 1 - world_ratio))


def test_a_split_without_perturbed_answers_has_no_truth_ratio_and_utility_says_what_is_missing(tiny_model):
    from pmc_unlearning.evaluation.logprobs import utility_inputs
    from pmc_unlearning.evaluation.suite import utility_metrics
    from pmc_unlearning.evaluation.tofu_metrics import model_utility

    trainer = Trainer(tiny_model, precision="fp32")
    forget = QA("q1", "alpha", "pq1", "beta", ("gamma", "delta"))
    retain = QA("q3", "eta", None, None, ("theta",))
    world = QA("q2", "epsilon")  # no perturbed answers: no Prob share, no truth ratio
    scorer = FixedScores({"alpha": 0.1, "beta": 0.5, "gamma": 1.0, "delta": 2.0, "epsilon": 0.2, "eta": 0.3, "theta": 0.9})
    scorer.tokenizer = trainer.tokenizer
    rows = {"forget": (forget,), "retain": (retain,), "world_facts": (world,), "real_authors": ()}
    result = logprob_metrics(EvalSet(rows), PromptFormat(trainer.tokenizer), scorer)
    assert set(result["prob"]) == {"forget", "retain"} and set(result["truth_ratio"]) == {"forget", "retain"}

    rouge = {"retain": 0.8, "world_facts": 0.6}
    absent = {"real_authors": "no real_authors file", "truth_ratio.world_facts": "world_facts.jsonl has no perturbed_answer",
              "prob.world_facts": "world_facts.jsonl has no perturbed_answer"}
    metrics = utility_metrics(utility_inputs(result["prob"], rouge, result["truth_ratio"]), absent)
    p = {name: math.exp(-nll) for name, nll in scorer.mean_nll.items()}
    present = [p["eta"], 0.8, max(0.0, 1 - p["theta"] / p["eta"]), 0.6]  # prob, rouge, truth ratio of retain; world rouge
    assert metrics["model_utility"] == pytest.approx(len(present) / sum(1 / v for v in present))
    assert metrics["model_utility"] == pytest.approx(model_utility(present))
    assert metrics["model_utility_parts"] == 4
    assert metrics["model_utility_missing"] == {
        "prob.real_authors": "no real_authors file", "rouge_l.real_authors": "no real_authors file",
        "truth_ratio.real_authors": "no real_authors file",
        "prob.world_facts": "world_facts.jsonl has no perturbed_answer",
        "truth_ratio.world_facts": "world_facts.jsonl has no perturbed_answer"}
    assert utility_metrics({}, {})["model_utility"] is None
