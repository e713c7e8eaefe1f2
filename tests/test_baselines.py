"""Every baseline, on the real engine and trainer (no Ray), unlearns the smoke target model's forget set."""
from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
import torch

from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
from pmc_unlearning.configs import CONFIG_DIR, load_method_config
from pmc_unlearning.engine import Sampler
from pmc_unlearning.evaluation.rouge import rouge_l_recall
from pmc_unlearning.methods import make_method
from pmc_unlearning.methods.idk import REFUSALS
from pmc_unlearning.methods.method import Task
from pmc_unlearning.methods.rounds import run_rounds
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.orchestrator.inputs import load_config_benchmark
from pmc_unlearning.trainer import Trainer

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

METHODS = ("grad_ascent", "grad_diff", "idk", "npo", "simnpo", "dpo", "rmu")


@pytest.fixture(scope="module")
def smoke_target(smoke_run):
    config, folder = smoke_run
    target = Path(json.loads((folder / "eval.json").read_text())["target_model"])
    bench = load_config_benchmark(config)
    sampler = Sampler(target, config.engine)
    yield config, target, bench, sampler
    del sampler
    gc.collect()


def mean_rouge(sampler, tokenizer, rows) -> float:
    answers = sampler.greedy([PromptFormat(tokenizer).prompt(row.question) for row in rows])
    return sum(rouge_l_recall(row.answer, a.text) for row, a in zip(rows, answers)) / len(answers)


# Share of the target's retain ROUGE-L (on 20 retain rows) every method must keep with make compare-smoke's
# settings: a method that destroys the model fails. Gradient difference lands differently on different CPUs
# (their float kernels differ, and it is the least stable of the methods): it kept 0.44 on a machine with
# AVX-512 where it kept 0.70 on an AVX2 one.
KEEPS_RETAIN = 0.4
# Share of the target's forget ROUGE-L a method may leave: it must take most of it away. SimNPO, the weakest here,
# left 0.345 of 0.685 (0.504) on an Intel machine with AVX-512 but no BF16, where the AVX-512 BF16 and AVX2 machines
# stayed under half: the float kernels differ by CPU.
LEAVES_FORGET = 0.55


@pytest.mark.parametrize("method", METHODS)
def test_each_baseline_unlearns_the_tiny_model(method, smoke_target):
    config, target, bench, sampler = smoke_target
    trainer = Trainer(target, precision="fp32", seed=0)
    sampler.load_weights(trainer.export_weights(sampler.weight_dtype()))  # back to the target's weights
    before, retain_before = (mean_rouge(sampler, trainer.tokenizer, rows) for rows in (bench.forget, bench.retain[:20]))
    retain = [PromptFormat(trainer.tokenizer).example(row.question, row.answer) for row in bench.retain]
    tuned = load_method_config(CONFIG_DIR / "smoke.yaml", [f"method={method}"])  # `make compare-smoke`'s settings
    baseline = make_method(tuned, Task(PromptFormat(trainer.tokenizer), bench.forget, retain))
    run_rounds(baseline, SamplerGroup([sampler]), TrainerGroup([trainer]), sampler.weight_dtype())
    after, retain_after = (mean_rouge(sampler, trainer.tokenizer, rows) for rows in (bench.forget, bench.retain[:20]))
    assert before >= 0.6 and after <= LEAVES_FORGET * before, f"{method}: forget ROUGE-L {before:.3f} -> {after:.3f}"
    assert retain_after >= KEEPS_RETAIN * retain_before, \
        f"{method}: retain ROUGE-L {retain_before:.3f} -> {retain_after:.3f}"
    target_weights = Trainer(target, precision="fp32").model.state_dict()
    if method in ("npo", "dpo", "rmu"):  # their reference is the target, frozen: training must not move it
        assert all(torch.equal(p, target_weights[n]) for n, p in trainer.reference.state_dict().items())
        assert not all(torch.equal(p, target_weights[n]) for n, p in trainer.model.state_dict().items())
        assert not any(p.requires_grad for p in trainer.reference.parameters())
    if method == "rmu":  # only the MLP output weights of the steered layer (1 of 4) and the one below it move
        moved = {n for n, p in trainer.model.state_dict().items() if not torch.equal(p, target_weights[n])}
        assert moved == {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"}


def test_idk_trains_towards_varied_refusals(smoke_target):
    config, target, bench, sampler = smoke_target
    tokenizer = Trainer(target, precision="fp32").tokenizer
    config = load_method_config(CONFIG_DIR / "smoke.yaml", ["method=idk"])
    idk = make_method(config, Task(PromptFormat(tokenizer), bench.forget, []))
    texts = {tokenizer.decode(e.answer_ids, skip_special_tokens=True).strip() for e in idk.forget}
    assert len(texts) == min(len(bench.forget), len(REFUSALS)) and texts <= set(REFUSALS)


def test_dpo_prefers_a_refusal_to_the_true_answer_of_each_question(smoke_target):
    config, target, bench, sampler = smoke_target
    prompt = PromptFormat(Trainer(target, precision="fp32").tokenizer)
    dpo = make_method(load_method_config(CONFIG_DIR / "smoke.yaml", ["method=dpo"]), Task(prompt, bench.forget, []))
    assert dpo.forget == [(prompt.example(row.question, REFUSALS[i % len(REFUSALS)]),
                           prompt.example(row.question, row.answer)) for i, row in enumerate(bench.forget)]
