"""TOFU's probability metrics: the Trainer's scores against HF's own loss, and the split tables by hand."""
from __future__ import annotations

import math

import pytest
import torch

from data import QA
from evaluation.greedy import EvalSet
from evaluation.logprobs import logprob_metrics
from models.prompting import encode_example
from trainer import Trainer


def test_trainer_score_equals_hf_loss_on_answer_tokens(tiny_model, small_bench):
    trainer = Trainer(tiny_model, precision="fp32")
    examples = [encode_example(trainer.tokenizer, r.question, r.answer) for r in small_bench.full[:5]]
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
                             trainer.tokenizer, scorer)
    p = {name: math.exp(-nll) for name, nll in scorer.mean_nll.items()}
    assert result["prob"]["forget"] == pytest.approx(p["alpha"])
    ratio = math.sqrt(p["gamma"] * p["delta"]) / p["beta"]  # geometric mean of perturbed over paraphrased
    assert result["forget_truth_ratios"] == pytest.approx([ratio])
    assert result["truth_ratio"]["forget"] == pytest.approx(min(ratio, 1 / ratio))
    assert result["prob"]["world_facts"] == pytest.approx(p["epsilon"] / (p["epsilon"] + p["zeta"]))
    world_ratio = p["zeta"] / p["epsilon"]  # the original answer stands in for a paraphrase
    assert result["truth_ratio"]["world_facts"] == pytest.approx(max(0.0, 1 - world_ratio))
