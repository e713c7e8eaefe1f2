"""The trainer group on a GPU machine: step time, peak memory and the full-state-dict hand-over for
Llama-3.2-1B- and 3B-shaped models with random weights, in bf16 autocast over fp32 master weights.

Run by scripts/device_check.sh under torchrun, one process per GPU (NCCL); on the CPU it runs the same code
with gloo (`--shapes tiny`), which is how it is checked here. Needs torch and transformers only: no vLLM,
no Ray (a device machine has neither). Prints a table; writes device_check.json to $OUT when set.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tokenizers import Tokenizer, models
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from pmc_unlearning.models.prompting import Example
from pmc_unlearning.trainer import Trainer

LLAMA_32 = {"vocab_size": 128256, "num_key_value_heads": 8, "max_position_embeddings": 2048, "rope_theta": 500000.0,
            "tie_word_embeddings": True}
SHAPES = {  # Meta's published Llama-3.2 shapes
    "1b": {**LLAMA_32, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32},
    "3b": {**LLAMA_32, "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24},
    "tiny": {**LLAMA_32, "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}
PROMPT_TOKENS, ANSWER_TOKENS = 64, 48  # a TOFU question in a chat template; PMC's default answer cap


def random_model_folder(shape: str) -> Path:
    """An HF folder with a random model of `shape` (bf16 on disk; the Trainer loads fp32 master weights)."""
    folder = Path(tempfile.mkdtemp(prefix=f"device-check-{shape}-"))
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(LlamaConfig(**SHAPES[shape])).to(torch.bfloat16)
    model.save_pretrained(folder)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<pad>")),
                                        pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(folder)
    return folder


def examples(count: int, vocab: int, rng: random.Random) -> list[Example]:
    return [Example(tuple(rng.randrange(3, vocab) for _ in range(PROMPT_TOKENS)),
                    tuple(rng.randrange(3, vocab) for _ in range(ANSWER_TOKENS))) for _ in range(count)]


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    dist.barrier()


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up: optimizer state, allocator, kernels
    times = []
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - started)
    return times


def check(shape: str, batch: int, repeats: int) -> dict:
    rank, world = dist.get_rank(), dist.get_world_size()
    folder = random_model_folder(shape) if rank == 0 else None
    holder = [str(folder)]
    dist.broadcast_object_list(holder)
    started = time.perf_counter()
    trainer = Trainer(holder[0], precision="bf16", seed=0)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    trainer.join_group(None, rank, world)  # torchrun's process group
    load_s = time.perf_counter() - started
    trainer.configure_optimizer(1e-5, 0.01, warmup_steps=0)
    rng = random.Random(0)
    forget, retain = examples(batch, SHAPES[shape]["vocab_size"], rng), examples(batch, SHAPES[shape]["vocab_size"], rng)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    steps = timed(lambda: trainer.unlearn_step(forget, retain, 1.0), repeats)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    handover = timed(lambda: trainer.export_weights("bfloat16"), max(1, repeats // 2))
    return {"shape": shape, "ranks": world, "parameters_b": round(parameters / 1e9, 3), "batch": f"{batch}+{batch}",
            "load_and_shard_s": round(load_s, 2), "step_s_median": round(statistics.median(steps), 4),
            "step_s_all": [round(t, 4) for t in steps], "peak_gib_per_rank": round(peak, 2),
            "full_state_dict_bf16_s": round(statistics.median(handover), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="1b,3b")
    parser.add_argument("--batch", type=int, default=4, help="forget rows per step (each with a retain row)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if cuda else "gloo")
    results = [check(shape, args.batch, args.repeats) for shape in args.shapes.split(",")]
    if dist.get_rank() == 0:
        device = torch.cuda.get_device_name() if cuda else "cpu"
        print(f"\n{device}; torch {torch.__version__}; {dist.get_world_size()} rank(s), "
              f"{'nccl' if cuda else 'gloo'}; bf16 autocast, fp32 master weights, AdamW\n")
        print("| shape | params (B) | ranks | batch | step (s) | peak GiB/rank | full state dict bf16 (s) | load+shard (s) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['shape']} | {r['parameters_b']} | {r['ranks']} | {r['batch']} | {r['step_s_median']} | "
                  f"{r['peak_gib_per_rank']} | {r['full_state_dict_bf16_s']} | {r['load_and_shard_s']} |")
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "device_check.json").write_text(json.dumps(results, indent=1))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
