"""The attacks on a real engine and trainer (the tiny model, without Ray): each gives the model back as it found
it, the same numbers on a second run, and a quantized engine serves exactly the rounded weights."""
from __future__ import annotations

import gc
from functools import partial

import pytest
import torch

from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
from pmc_unlearning.cluster.weight_sync import sync_weights
from pmc_unlearning.configs import CONFIG_DIR, load_config
from pmc_unlearning.engine import Sampler
from pmc_unlearning.evaluation.attacks import run_attacks
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer


@pytest.fixture(scope="module")
def attacked(tiny_model, small_bench):
    """(an AttackedModel of the tiny model, its data, the smoke config, the trainer)."""
    config = load_config(CONFIG_DIR / "smoke.yaml")
    sampler, trainer = Sampler(tiny_model, config.engine), Trainer(tiny_model, precision="fp32", seed=0)
    samplers, trainers = SamplerGroup([sampler]), TrainerGroup([trainer])
    dtype = sampler.weight_dtype()
    model = AttackedModel(samplers, trainers, partial(sync_weights, trainers, samplers, dtype),
                          PromptFormat(trainer.tokenizer), 16, 0)
    data = AttackData(small_bench.forget, small_bench.retain[:8], small_bench.holdout, small_bench.absent)
    yield model, data, config, trainer
    del model, samplers, sampler
    gc.collect()


def without_seconds(results: dict) -> dict:
    return {name: {key: value for key, value in result.items() if key != "seconds"} for name, result in results.items()}


def test_every_attack_leaves_the_model_as_it_found_it_and_repeats_its_numbers(attacked):
    model, data, config, trainer = attacked
    prompts = [model.prompt.prompt(row.question) for row in data.forget]
    weights = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    answers = model.answers(prompts)[0]

    first = run_attacks(model, data, config)
    assert list(first) == ["relearn", "quantize", "mia", "extraction", "prompts"]
    assert all(torch.equal(weights[name], value) for name, value in trainer.model.state_dict().items())
    assert model.answers(prompts)[0] == answers  # the engine serves the trainer's weights again
    assert without_seconds(run_attacks(model, data, config)) == without_seconds(first)


def test_a_quantized_model_is_served_rounded_then_restored(attacked):
    """The engine answers as the trainer's own generate does with the rounded weights (the reference path), which
    differs from the full-precision answers; afterwards both are back to full precision."""
    model, data, config, trainer = attacked
    prompts = [model.prompt.prompt(row.question) for row in data.forget]
    weights = {name: value.clone() for name, value in trainer.model.state_dict().items()}

    def served() -> list[list[int]]:
        model.serve()
        return [list(c.token_ids) for c in model.sampler.greedy(prompts)]

    full = served()
    with model.changed_weights():
        model.quantize(2, 4)  # coarse enough to change the tiny model's answers
        rounded = served()
        assert rounded != full and rounded == trainer.greedy(prompts, config.engine.max_new_tokens)
    assert served() == full
    assert all(torch.equal(weights[name], value) for name, value in trainer.model.state_dict().items())


def test_the_engines_are_given_changed_weights_once_and_only_when_they_answer(attacked):
    model, data, _, _ = attacked
    prompts = [model.prompt.prompt(row.question) for row in data.forget[:2]]
    push, pushes = model.push, []
    model.push = lambda: (pushes.append(1), push())
    try:
        with model.changed_weights():
            model.quantize(8, 4)
            model.quantize(4, 4)
            assert pushes == []  # nothing answered yet
            model.answers(prompts)
            model.answers(prompts)
            assert len(pushes) == 1
        model.serve()
        model.serve()
        assert len(pushes) == 2  # the restored weights, once
    finally:
        model.push = push


def test_mia_is_absent_with_the_datas_reason_without_a_holdout_split(attacked):
    model, data, config, _ = attacked
    from pmc_unlearning.evaluation.attacks.mia import mia

    reason = "no holdout10 file in /some/folder"
    assert mia(model, AttackData(data.forget, data.retain, (), {"holdout": reason}), config) == {"absent": reason}


def test_in_context_shows_as_many_retain_pairs_as_leave_room_for_an_answer(attacked):
    """With too little room for all the pairs before some question, each prompt shows the most pairs that
    leave `engine.max_new_tokens` free in `engine.max_model_len` (a chat prompt with three overflowed the smoke
    engine on the TOFU copy), and the figure names the fewest shown."""
    from pmc_unlearning.evaluation.attacks.prompts import in_context_prompts

    model, data, config, _ = attacked
    shots = [(row.question, row.answer) for row in data.retain[:config.eval.attacks.in_context]]
    length = lambda question, count: len(model.prompt.prompt(question, shots[:count]))
    # Room for two pairs before the longest question: the third no longer fits there.
    longest = max(data.forget, key=lambda row: length(row.question, 3)).question
    room = length(longest, 2)
    tight = config.model_copy(update={"engine": config.engine.model_copy(
        update={"max_model_len": room + config.engine.max_new_tokens})})
    fitting = [max(k for k in range(len(shots) + 1) if length(row.question, k) <= room) for row in data.forget]

    result = in_context_prompts(model, data, tight)
    assert result["shots"] == min(fitting) == 2
    assert result["asked"] == ([model.prompt.prompt(row.question, shots[:k]) for row, k in zip(data.forget, fitting)],
                               [row.answer for row in data.forget])
