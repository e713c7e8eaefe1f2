"""The PMC loop itself, on the real engine and trainer without Ray: when it samples and when it pushes weights."""
from __future__ import annotations

import gc

import pytest

from configs import CONFIG_DIR, load_config
from engine import Sampler
from models.prompting import PromptFormat
from orchestrator.groups import SamplerGroup, TrainerGroup
from orchestrator.pmc import unlearn
from trainer import Trainer


@pytest.fixture(scope="module")
def engine_and_trainer(tiny_model):
    config = load_config(CONFIG_DIR / "smoke.yaml")
    sampler, trainer = Sampler(tiny_model, config.engine), Trainer(tiny_model, precision="fp32", seed=0)
    yield config, sampler, trainer
    del sampler
    gc.collect()


def test_resample_every_samples_only_every_kth_epoch_and_pushes_weights_only_before_the_engine_is_used(
        engine_and_trainer, small_bench):
    config, sampler, trainer = engine_and_trainer
    prompt = PromptFormat(trainer.tokenizer)
    rows = small_bench.forget[:4]
    prompts = [prompt.prompt(row.question) for row in rows]
    retain = [prompt.example(row.question, row.answer) for row in small_bench.retain[:4]]
    originals = [row.answer for row in rows]
    # min_len above any answer's length adds exp(-words) > 0 to every score: no question is ever done, so every
    # sampling round samples all four.
    settings = config.pmc.model_copy(update={"epochs": 5, "resample_every": 2, "num_samples": 4, "min_len": 1000})
    records = []
    unlearn(SamplerGroup([sampler]), TrainerGroup([trainer]), prompts, originals, retain, settings, sampler.weight_dtype(),
            records.append)

    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["sampled_questions"] for r in records] == [4, 0, 4, 0, 4]
    assert [r["candidates"] for r in records] == [16, 0, 16, 0, 16]
    # Weights go to the engine after epochs 2 and 4 (it samples in 3 and 5) and after the last (evaluation).
    pushed = [r["seconds"]["weight_sync"] > 0 for r in records]
    assert pushed == [False, True, False, True, True]
    # Between sampling rounds the selections stay what they were.
    assert records[1]["selected_score_mean"] == records[0]["selected_score_mean"]
    assert records[3]["selected_score_mean"] == records[2]["selected_score_mean"]
