"""How far apart the engine's and the trainer's log-probabilities of the push check's probe text lie (the largest
gap over its tokens): with the same weights (what `PROBE_TOLERANCE` must allow), and with an engine left stale
while the trainer steps (what the check must catch), a push every `--steps` optimizer steps.

    .venv/bin/python scripts/push_probe_gaps.py MODEL_FOLDER --precision fp32|bf16 [--lr 1e-4] [--steps 3] [--pushes 5]

The steps train on a few questions with one fixed answer, as a stand-in for an unlearning round.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup  # noqa: E402
from pmc_unlearning.cluster.weight_sync import PROBE_TEXT, PROBE_TOLERANCE, sync_weights  # noqa: E402
from pmc_unlearning.configs import EngineConfig  # noqa: E402
from pmc_unlearning.engine import Sampler  # noqa: E402
from pmc_unlearning.models.prompting import PromptFormat  # noqa: E402
from pmc_unlearning.trainer import Trainer  # noqa: E402

QUESTIONS = ("What is the name of the author born in Lima?", "Which book did Jane Roe write?")


def largest_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model folder")
    parser.add_argument("--precision", choices=("fp32", "bf16"), required=True)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps between pushes")
    parser.add_argument("--pushes", type=int, default=5)
    args = parser.parse_args()
    dtype = "float32" if args.precision == "fp32" else "bfloat16"
    trainer = Trainer(args.model, precision=args.precision, seed=0)
    sampler = Sampler(args.model, EngineConfig(dtype=dtype, max_new_tokens=32, seed=0))
    ids, expected = trainer.probe_logprobs(PROBE_TEXT)
    print(f"{len(ids)} probe tokens, {dtype}, tolerance {PROBE_TOLERANCE[dtype]}; same weights: gap "
          f"{largest_gap(expected, sampler.probe_logprobs(ids)):.3g}")
    trainer.configure_optimizer(lr=args.lr, weight_decay=0.0, warmup_steps=0)
    examples = [PromptFormat(trainer.tokenizer).example(q, "I am not sure about that one.") for q in QUESTIONS * 2]
    for push in range(1, args.pushes + 1):
        for _ in range(args.steps):
            trainer.sft_step(examples)
        _, expected = trainer.probe_logprobs(PROBE_TEXT)
        stale = largest_gap(expected, sampler.probe_logprobs(ids))
        sync_weights(TrainerGroup([trainer]), SamplerGroup([sampler]), dtype)
        print(f"push {push} (after {args.steps} steps at lr {args.lr:g}): stale engine gap {stale:.3g}, "
              f"pushed {largest_gap(expected, sampler.probe_logprobs(ids)):.3g}", flush=True)


if __name__ == "__main__":
    main()
