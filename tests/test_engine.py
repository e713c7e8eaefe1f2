"""The real vLLM engine against HF transformers on the tiny model: same greedy ids, before and after a weight push."""
from __future__ import annotations

import gc
import os
import subprocess
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForCausalLM

from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
from pmc_unlearning.cluster.weight_sync import (
    PROBE_TEXT,
    PushNotServed,
    check_probe,
    check_push,
    connect_weight_transfer,
    sync_weights,
)
from pmc_unlearning.configs import EngineConfig
from pmc_unlearning.engine import Sampler
from pmc_unlearning.models.prompting import Example, PromptFormat
from pmc_unlearning.trainer import Trainer
from pmc_unlearning.transfer.weight_transfer import create_private_file, remove_stale_files

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

ENGINE = EngineConfig(dtype="float32", max_model_len=128, max_new_tokens=16, kv_cache_memory_bytes=64 * 2**20)


@pytest.fixture(scope="module")
def tied_tiny(tiny_model, tmp_path_factory):
    """The tiny model with its output head tied to the input embedding, as SmolLM2 has it."""
    config = AutoConfig.from_pretrained(tiny_model)
    config.tie_word_embeddings = True
    model = AutoModelForCausalLM.from_config(config)
    source = AutoModelForCausalLM.from_pretrained(tiny_model)
    model.load_state_dict({k: v for k, v in source.state_dict().items() if k != "lm_head.weight"}, strict=False)
    model.tie_weights()
    folder = tmp_path_factory.mktemp("tied-tiny")
    model.save_pretrained(folder)
    Trainer(tiny_model).tokenizer.save_pretrained(folder)
    return folder


def prompts(trainer, bench, count=8):
    return [PromptFormat(trainer.tokenizer).prompt(row.question) for row in bench.full[:count]]


@pytest.mark.parametrize("variant, path", [("untied", "state dict"), ("tied", "state dict"), ("untied", "shm"), ("tied", "shm")])
def test_vllm_greedy_matches_hf_before_and_after_a_weight_push(variant, path, tiny_model, tied_tiny, small_bench):
    """Both ways into the engine: a state dict (what travels through Ray's object store) and vLLM's
    weight-transfer interface with the shared-memory backend, pushed twice (the mapping is reused)."""
    folder = tiny_model if variant == "untied" else tied_tiny
    trainer = Trainer(folder, precision="fp32", seed=0)
    sampler = Sampler(folder, ENGINE)
    questions = prompts(trainer, small_bench)
    engine_ids = lambda: [list(c.token_ids) for c in sampler.greedy(questions)]

    before = engine_ids()
    assert before == trainer.greedy(questions, ENGINE.max_new_tokens)

    # A few large steps so that every greedy answer changes; then the engine must follow the trainer.
    trainer.configure_optimizer(lr=5e-3, weight_decay=0.0, warmup_steps=0)
    examples = [PromptFormat(trainer.tokenizer).example(row.question, row.answer) for row in small_bench.full[:8]]
    trainers, samplers = TrainerGroup([trainer]), SamplerGroup([sampler])
    if path == "shm":
        connect_weight_transfer(trainers, samplers, "float32")
        [sender] = trainer.weight_sender.engines
        assert not Path(sender.path).exists()  # unlinked once the engine mapped it: nothing can be left behind
    trainer.sft_step(examples)
    with pytest.raises(PushNotServed, match="engine 0 does not serve the weights the trainer pushed"):
        check_push(trainer.weights_fingerprint("float32"), samplers.served_fingerprints())  # not pushed yet
    sync_weights(trainers, samplers, "float32")  # checks the push itself
    assert engine_ids() == trainer.greedy(questions, ENGINE.max_new_tokens)
    compared = set(trainer.weights_fingerprint("float32")) & set(sampler.served_fingerprints()[0])
    assert "model.norm.weight" in compared  # what the check compares: here the norms and the embedding
    for _ in range(2):
        trainer.sft_step(examples)
    sync_weights(trainers, samplers, "float32")
    after = engine_ids()
    assert after == trainer.greedy(questions, ENGINE.max_new_tokens)
    assert sum(a != b for a, b in zip(after, before)) >= len(questions) // 2

    if variant == "tied":  # the engine's head must have moved with the embedding it is tied to
        assert trainer.model.lm_head.weight.data_ptr() == trainer.model.model.embed_tokens.weight.data_ptr()
    sampler = None  # the engine freed now, not when the closure above goes
    gc.collect()


def test_an_engine_whose_linear_layers_stayed_stale_fails_the_push_check_that_its_fingerprints_pass(tiny_model):
    """vLLM's CPU engine keeps its linear layers where fingerprints cannot see them: a push that reached the norms
    and the embedding but not those layers passes `check_push` and must fail `check_probe`; a whole push passes
    both, and the engine's probe log-probabilities then lie within a thousandth of the trainer's."""
    trainer = Trainer(tiny_model, precision="fp32", seed=0)
    sampler = Sampler(tiny_model, ENGINE)
    ids, before = trainer.probe_logprobs(PROBE_TEXT)
    assert len(ids) > 20 and len(before) == len(ids) - 1
    check_probe(before, [sampler.probe_logprobs(ids)], "float32")
    trainer.configure_optimizer(lr=1e-3, weight_decay=0.0, warmup_steps=0)
    trainer.sft_step([PromptFormat(trainer.tokenizer).example("What is the probe?", "A text both sides score.")])
    weights = trainer.export_weights("float32")
    sampler.load_weights({name: t for name, t in weights.items() if not name.endswith("proj.weight")})
    check_push(trainer.weights_fingerprint("float32"), [sampler.served_fingerprints()])  # what it can see is new
    _, after = trainer.probe_logprobs(PROBE_TEXT)
    with pytest.raises(PushNotServed, match="^engine 0 does not serve the weights the trainer pushed \\(its "
                                            "log-probabilities of a probe text differ"):
        check_probe(after, [sampler.probe_logprobs(ids)], "float32")
    sync_weights(TrainerGroup([trainer]), SamplerGroup([sampler]), "float32")  # every weight: both checks pass
    assert max(abs(a - b) for a, b in zip(after, sampler.probe_logprobs(ids))) < 1e-3
    sampler = None
    gc.collect()


def test_sampling_returns_n_candidates_with_token_ids_and_text_and_seeds_them(tiny_model, small_bench):
    trainer = Trainer(tiny_model, precision="fp32")
    sampler = Sampler(tiny_model, ENGINE)
    questions = prompts(trainer, small_bench, 3)
    candidates = sampler.sample(questions, n=5, temperature=1.5, top_p=1.0, logprobs=True)
    assert [len(c) for c in candidates] == [5, 5, 5]
    for completion in [c for cands in candidates for c in cands]:
        assert 1 <= len(completion.token_ids) <= ENGINE.max_new_tokens
        # finished: ended on end-of-sequence, not cut at max_new_tokens
        assert completion.finished == (completion.token_ids[-1] == trainer.tokenizer.eos_token_id)
        # vLLM holds back a trailing incomplete UTF-8 byte sequence, which decode() shows as U+FFFD
        assert completion.text == trainer.tokenizer.decode(completion.token_ids, skip_special_tokens=True).rstrip("\ufffd")
    assert len({c.token_ids for c in candidates[0]}) > 1  # temperature 1.5 on a random model: diverse
    # Each candidate's log-probability is the model's own, before temperature: what the trainer computes.
    examples = [Example(q, c.token_ids) for q, cands in zip(questions, candidates) for c in cands]
    by_trainer = [total for total, _ in trainer.score(examples)]
    assert [c.logprob for cands in candidates for c in cands] == pytest.approx(by_trainer, rel=1e-3, abs=1e-3)

    # A seeded request draws the same whatever the engine sampled before; the engine's own stream moves on.
    ids = lambda out: [[c.token_ids for c in cands] for cands in out]
    seeded = ids(sampler.sample(questions, 4, 1.0, 1.0, seed=7))
    assert sampler.sample(questions[:1], 1, 1.0, 1.0)[0][0].logprob is None  # not asked for: not computed
    assert ids(sampler.sample(questions, 4, 1.0, 1.0)) != ids(sampler.sample(questions, 4, 1.0, 1.0))
    assert ids(sampler.sample(questions, 4, 1.0, 1.0, seed=7)) == seeded
    assert len(set(seeded[0])) > 1  # the n draws of one seeded request still differ
    # Greedy and seeded answers from one engine call are those of the two calls apart.
    greedy, sampled = sampler.greedy_and_sample(questions, questions[1:], 4, 1.0, 1.0, seed=7)
    assert [c.token_ids for c in greedy] == [c.token_ids for c in sampler.greedy(questions)]
    assert ids(sampled) == seeded[1:]

    # More prompt tokens than one engine step takes: on the CPU the prompts must not be split over steps,
    # whose seeded generators vLLM cannot rewind there (it crashed: "CPU Generator does not use offset").
    long_prompts = [PromptFormat(trainer.tokenizer).prompt(" ".join(row.question for row in small_bench.full[i:i + 6]))
                    for i in range(0, 60, 6)]
    assert sum(len(p) for p in long_prompts) * 32 > sampler.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens
    first = ids(sampler.sample(long_prompts, 32, 1.0, 1.0, seed=3))
    assert ids(sampler.sample(long_prompts, 32, 1.0, 1.0, seed=3)) == first

    # vLLM's rendezvous file is in a folder of the engine's own, private, and goes with the engine.
    scratch = sampler.scratch
    assert scratch.stat().st_mode & 0o777 == 0o700 and [f.name[:10] for f in scratch.iterdir()] == ["vllm_dist_"]
    del sampler
    gc.collect()
    assert not scratch.exists()



def test_the_shared_file_is_private_and_stale_ones_of_dead_jobs_are_removed(tmp_path):
    old_umask = os.umask(0)  # the mode must not depend on the umask
    try:
        path = Path(create_private_file(str(tmp_path), "pmc-weights", 1000))
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_size == 1000
    assert path.name.startswith(f"pmc-weights-{os.getpid()}-")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"pmc-weights-{dead.pid}-0123"
    stale.write_bytes(b"x")
    other = tmp_path / "pmc-weightsX-1-0123"  # not of this prefix
    other.write_bytes(b"x")
    assert remove_stale_files(str(tmp_path), "pmc-weights") == [str(stale)]
    assert path.exists() and other.exists() and not stale.exists()  # the live process's file stays
