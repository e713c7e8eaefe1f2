"""Benchmark: the Trainer's PMC and fine-tune steps, and the weight export, on whatever device torch sees.

    .venv/bin/python scripts/bench_trainer.py --model-dir .cache/smollm2-135m-instruct
    python3 scripts/bench_trainer.py --model-dir CONFIG_ONLY_FOLDER --random-init   # e.g. on a GPU machine

`--random-init` builds the architecture from config.json with random weights (step time does not depend on
the values), so a folder with only config and tokenizer files is enough. Prints one table per precision.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.data import load_benchmark
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.trainer import Trainer


def with_random_weights(config_dir: Path) -> Path:
    """A full model folder (random weights) next to a folder that holds only config and tokenizer files."""
    folder = Path(tempfile.mkdtemp(prefix="random-weights-"))
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(folder)
    return folder


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, optimizer state)
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    model_dir = with_random_weights(args.model_dir) if args.random_init else args.model_dir
    bench = load_benchmark()
    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {device}; torch {torch.__version__}; model {args.model_dir}\n")
    print("| precision | PMC step (4 selected + 4 retain) s | fine-tune step (batch 8) s | weight export s | peak GPU memory GiB |")
    print("|---|---|---|---|---|")
    for precision in args.precisions.split(","):
        trainer = Trainer(model_dir, precision=precision)
        trainer.configure_optimizer(lr=1e-5, weight_decay=0.01, warmup_steps=0)
        rows = [PromptFormat(trainer.tokenizer).example(r.question, r.answer) for r in bench.full]
        pmc = timed(lambda: trainer.unlearn_step(rows[:4], rows[4:8], 1.0), args.repeats)
        sft = timed(lambda: trainer.sft_step(rows[:8]), args.repeats)
        export = timed(lambda: trainer.export_weights("bfloat16"), args.repeats)
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
        print(f"| {precision} | {pmc:.3f} | {sft:.3f} | {export:.3f} | {peak:.2f} |")
        trainer = None  # freed before the next precision's model loads
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
