"""Stage one (TOFU's): fine-tune the base model on the full split until it knows the facts.

The result, the *target model*, is cached under a key of everything that determines it (base weights,
data, settings, prompt format, library versions, the code that trains it), so a second run with the same inputs reuses it.
"""
from __future__ import annotations

import json
import time
from importlib.metadata import version
from pathlib import Path
from typing import Iterator, Sequence

from pmc_unlearning.configs import FinetuneConfig
from pmc_unlearning.models.fingerprint import fingerprint_code
from pmc_unlearning.models.prompting import PromptFormat, Style
from pmc_unlearning.storage.files import settings_key, write_folder_atomically
from pmc_unlearning.trainer.trainer import Trainer, steps_per_epoch

# What trains the target: the trainer, and the model code that builds prompts and loads weights.
FINETUNE_CODE = ("trainer", "models")


def target_cache_key(model_fingerprint: str, data_fingerprint: str, config: FinetuneConfig, precision: str,
                     prompt: dict) -> str:
    """`prompt` is `PromptFormat.describe()`: the style and its template."""
    settings = {
        "model": model_fingerprint,
        "data": data_fingerprint,
        "finetune": config.model_dump(mode="json"),
        "precision": precision,
        "prompt": prompt,
        "versions": {name: version(name) for name in ("torch", "transformers")},
        "code": fingerprint_code(FINETUNE_CODE),
    }
    return settings_key(settings)


def finetune_target(
    base_dir: Path | str,
    pairs: Sequence[tuple[str, str]],
    config: FinetuneConfig,
    out_dir: Path | str,
    precision: str = "auto",
    threads: int | None = None,
    prompt_style: Style = "plain",
) -> Iterator[dict]:
    """Fine-tune on (question, answer) pairs put to the model in `prompt_style`, and save to `out_dir` atomically
    (with the style recorded, so that later runs prompt the model as it learned).

    A generator: it yields each epoch's record as the epoch ends (as a Ray task it streams them to the driver's
    progress bar) and saves after the last, so it must be run to the end."""
    out_dir = Path(out_dir)
    started = time.perf_counter()
    trainer = Trainer(base_dir, precision=precision, threads=threads, seed=config.seed)
    prompt = PromptFormat(trainer.tokenizer, prompt_style)
    examples = [prompt.example(q, a) for q, a in pairs]
    per_epoch = steps_per_epoch(len(examples), config.batch_size)
    trainer.configure_optimizer(config.lr, config.weight_decay, warmup_steps=round(config.warmup_epochs * per_epoch))
    log = []
    for epoch in range(1, config.epochs + 1):
        log.append({"epoch": epoch, **trainer.sft_epoch(examples, config.batch_size),
                    "elapsed_s": round(time.perf_counter() - started, 2)})
        if epoch < config.epochs:
            yield log[-1]

    def save(folder: Path) -> None:
        trainer.save(folder)
        prompt.record(folder)
        (folder / "finetune_log.json").write_text(json.dumps({"config": config.model_dump(mode="json"), "epochs": log}, indent=1))

    # Whole or not at all: a crash never leaves a folder later runs would trust. (The caller holds the build
    # lock, see orchestrator.pipeline.ensure_finetuned, so that concurrent jobs fine-tune once.)
    write_folder_atomically(out_dir, save)
    yield log[-1]  # the last epoch's once the folder is there
