"""Benchmark: in-loop candidate sampling through vLLM against HF `generate`, same model, prompts and settings.

    make bench                      # the cached target model of `make unlearn` (run that first)
    .venv/bin/python scripts/bench_sampling.py --model-dir PATH --questions 10 --n 16

Prints one table: seconds, generated tokens, tokens/s for each engine, and the speed-up.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import torch

from pmc_unlearning.configs import EngineConfig, load_config
from pmc_unlearning.engine import Sampler
from pmc_unlearning.models.hardware import resolve_engine_dtype, resolve_precision
from pmc_unlearning.orchestrator.pipeline import finetuned_dir, prepare
from pmc_unlearning.trainer import Trainer


def cached_target(config) -> Path:
    """The target model the config's `make unlearn` fine-tuned (and cached)."""
    bench, base_dir, prompt = prepare(config)
    folder = finetuned_dir(base_dir, bench.fingerprint(), prompt, config)
    if not (folder / "config.json").is_file():
        raise SystemExit(f"no cached target model at {folder}: run `make unlearn` first, or pass --model-dir")
    return folder


def time_vllm(model_dir: Path, prompts, n: int, temperature: float, top_p: float, engine: EngineConfig):
    sampler = Sampler(model_dir, engine)
    sampler.sample(prompts[:1], 1, temperature, top_p)  # warm-up
    start = time.perf_counter()
    out = sampler.sample(prompts, n, temperature, top_p)
    seconds = time.perf_counter() - start
    return seconds, sum(len(c.token_ids) for cands in out for c in cands)


def time_hf(model_dir: Path, prompts, n: int, temperature: float, top_p: float, max_new_tokens: int, precision: str):
    trainer = Trainer(model_dir, precision=precision)
    model, tokens = trainer.model.eval(), 0
    start = time.perf_counter()
    with torch.no_grad(), trainer.autocast():
        for prompt in prompts:  # one prompt at a time, n samples each, as the reference loop does
            ids = torch.tensor([list(prompt)])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature,
                                 top_p=top_p, num_return_sequences=n, max_new_tokens=max_new_tokens,
                                 pad_token_id=trainer.pad_id)
            tokens += sum(answer_length(row, trainer.tokenizer.eos_token_id) for row in out[:, ids.shape[1]:].tolist())
    return time.perf_counter() - start, tokens


def answer_length(ids: list[int], eos: int) -> int:
    """Generated tokens up to and including the first end-of-sequence (the rest is padding)."""
    return ids.index(eos) + 1 if eos in ids else len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--questions", type=int, default=10, help="forget questions to sample for")
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    config = load_config(args.config)
    model_dir = args.model_dir or cached_target(config)
    bench, _, prompt = prepare(config)
    prompts = [prompt.prompt(row.question) for row in bench.forget[: args.questions]]
    n, pmc = args.n or config.pmc.num_samples, config.pmc
    vllm_s, vllm_tokens = time_vllm(model_dir, prompts, n, pmc.temperature, pmc.top_p, config.engine)
    hf_s, hf_tokens = time_hf(model_dir, prompts, n, pmc.temperature, pmc.top_p, config.engine.max_new_tokens, config.precision)
    print(f"\nmodel {model_dir}; {len(prompts)} prompts x n={n}, temperature {pmc.temperature}, top_p {pmc.top_p}, "
          f"max {config.engine.max_new_tokens} new tokens, {torch.get_num_threads()} threads\n")
    print("| engine | seconds | generated tokens | tokens/s |\n|---|---|---|---|")
    print(f"| vLLM ({resolve_engine_dtype(config.engine.dtype)}) | {vllm_s:.2f} | {vllm_tokens} | {vllm_tokens / vllm_s:.0f} |")
    print(f"| HF generate ({resolve_precision(config.precision)}) | {hf_s:.2f} | {hf_tokens} | {hf_tokens / hf_s:.0f} |")
    print(f"\nvLLM speed-up: {hf_s / vllm_s:.1f}x in time, {(vllm_tokens / vllm_s) / (hf_tokens / hf_s):.1f}x in tokens/s")


if __name__ == "__main__":
    main()
