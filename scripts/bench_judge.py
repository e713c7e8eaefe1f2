"""Benchmark: PMC's fluency judge scoring a round's candidates, each behind its own copy of the prompt against
one prompt per question (`Trainer.score(..., shared_prompts=True)`), same candidates, back to back.

    .venv/bin/python scripts/bench_judge.py                  # the cached target of `make unlearn` (run that first)
    .venv/bin/python scripts/bench_judge.py --model-dir PATH --n 64 --precision fp32

Samples n candidates per forget question from the target as `pmc.avoid_original` does, then times the base
model's NLL of all of them both ways and prints the seconds, the speed-up and the largest difference of an NLL
per token.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import torch
from bench_sampling import cached_target

from pmc_unlearning.configs import load_config
from pmc_unlearning.engine import Sampler
from pmc_unlearning.methods.pmc import JUDGE_BATCH, sampling_seed, word_tokens
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.orchestrator.pipeline import prepare
from pmc_unlearning.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--n", type=int, default=64, help="candidates per forget question")
    parser.add_argument("--precision", default="auto", help="the trainer's: auto (bf16 autocast where the CPU has "
                                                            "it), fp32")
    args = parser.parse_args()
    config = load_config(args.config)
    model_dir = args.model_dir or cached_target(config)
    bench, base_dir, prompt = prepare(config)
    prompts = [prompt.prompt(row.question) for row in bench.forget]
    sampler = Sampler(model_dir, config.engine)
    originals = [answer.text for answer in sampler.greedy(prompts)]
    candidates = sampler.sample(prompts, args.n, 1.0, 1.0, seed=[sampling_seed(0, 1, i) for i in range(len(prompts))],
                                banned=[word_tokens(prompt.tokenizer, original) for original in originals])
    del sampler
    trainer = Trainer(model_dir, precision=args.precision, seed=0)
    trainer.load_judge(base_dir)
    examples = [Example(p, c.token_ids) for p, cands in zip(prompts, candidates) for c in cands]
    seconds, nll = {}, {}
    for shared in (False, True):
        start = time.perf_counter()
        scores = trainer.score(examples, JUDGE_BATCH, judge=True, shared_prompts=shared)
        seconds[shared] = time.perf_counter() - start
        nll[shared] = [-total / count for total, count in scores]
    print(f"\n{len(examples)} candidates ({args.n} per question), judge {base_dir}, precision {args.precision}, "
          f"{torch.get_num_threads()} threads\n")
    print("| prompt | seconds |\n|---|---|")
    print(f"| one per candidate | {seconds[False]:.2f} |\n| one per question | {seconds[True]:.2f} |")
    print(f"\nspeed-up {seconds[False] / seconds[True]:.1f}x; largest NLL-per-token difference "
          f"{max(abs(a - b) for a, b in zip(nll[False], nll[True])):.2g}")


if __name__ == "__main__":
    main()
