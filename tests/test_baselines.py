"""Every baseline, on the real engine and trainer (no Ray), unlearns the smoke target model's forget set."""
from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from configs import CONFIG_DIR, load_method_config
from engine import Sampler
from evaluation.rouge import rouge_l_recall
from models.prompting import encode_example, encode_prompt
from orchestrator.baselines import REFUSALS, forget_targets, unlearn_baseline
from orchestrator.pipeline import load_config_benchmark
from trainer import Trainer

METHODS = ("grad_ascent", "grad_diff", "idk", "npo", "simnpo")


@pytest.fixture(scope="module")
def smoke_target(smoke_run):
    config, folder = smoke_run
    target = Path(json.loads((folder / "eval.json").read_text())["target_model"])
    bench = load_config_benchmark(config)
    sampler = Sampler(target, config.engine)
    yield config, target, bench, sampler
    del sampler
    gc.collect()


def forget_rouge(sampler, tokenizer, bench) -> float:
    answers = sampler.greedy([encode_prompt(tokenizer, row.question) for row in bench.forget])
    return sum(rouge_l_recall(row.answer, a.text) for row, a in zip(bench.forget, answers)) / len(answers)


@pytest.mark.parametrize("method", METHODS)
def test_each_baseline_unlearns_the_tiny_model(method, smoke_target):
    config, target, bench, sampler = smoke_target
    trainer = Trainer(target, precision="fp32", seed=0)
    sampler.load_weights(trainer.export_weights(sampler.weight_dtype()))  # back to the target's weights
    before = forget_rouge(sampler, trainer.tokenizer, bench)
    retain = [encode_example(trainer.tokenizer, row.question, row.answer) for row in bench.retain]
    forget = forget_targets(method, trainer.tokenizer, bench.forget)
    tuned = load_method_config(CONFIG_DIR / "smoke.yaml", [f"method={method}"])  # `make compare-smoke`'s settings
    unlearn_baseline(method, sampler, trainer, forget, retain, tuned.pmc, tuned.baseline, sampler.weight_dtype())
    after = forget_rouge(sampler, trainer.tokenizer, bench)
    assert before >= 0.6 and after <= 0.5 * before, f"{method}: forget ROUGE-L {before:.3f} -> {after:.3f}"


def test_idk_trains_towards_varied_refusals(smoke_target):
    config, target, bench, sampler = smoke_target
    tokenizer = Trainer(target, precision="fp32").tokenizer
    texts = {tokenizer.decode(e.answer_ids, skip_special_tokens=True).strip() for e in forget_targets("idk", tokenizer, bench.forget)}
    assert len(texts) == min(len(bench.forget), len(REFUSALS)) and texts <= set(REFUSALS)
