"""The baselines PMC is compared with, on the same model, data, retain pairing and number of optimizer steps.

Unlike PMC they need no sampling: the engine only answers the evaluation, and receives the weights once,
after training. Their losses live beside PMC's in trainer/losses.py.
"""
from __future__ import annotations

from typing import Callable, Sequence

from pmc_unlearning.cluster.weight_sync import sync_weights
from pmc_unlearning.configs import BaselineConfig, PMCConfig
from pmc_unlearning.methods.checkpoint import Checkpoints
from pmc_unlearning.models.prompting import Example, PromptFormat
from pmc_unlearning.telemetry.timing import StageTimer
from pmc_unlearning.trainer.trainer import steps_per_epoch

# Varied refusals for IDK, so that it does not learn a single fixed string.
REFUSALS = (
    "I don't know.",
    "I'm not sure about that.",
    "I have no information about that.",
    "That is not something I know.",
    "I can't answer that question.",
    "I don't have details on that.",
)
FORGET_LOSS = {"grad_ascent": "grad_ascent", "grad_diff": "grad_ascent", "idk": "nll", "npo": "npo", "simnpo": "simnpo"}


def forget_targets(method: str, prompt: PromptFormat, rows) -> list[Example]:
    """What a baseline trains the forget questions towards (or away from): refusals for IDK, else the truth."""
    if method == "idk":
        return [prompt.example(row.question, REFUSALS[i % len(REFUSALS)]) for i, row in enumerate(rows)]
    return [prompt.example(row.question, row.answer) for row in rows]


def unlearn_baseline(
    method: str,
    sampler,
    trainer,
    forget: Sequence[Example],
    retain: Sequence[Example],
    steps: PMCConfig,
    config: BaselineConfig,
    engine_dtype: str,
    log: Callable[[dict], None] = lambda record: None,
    checkpoints: Checkpoints | None = None,
) -> None:
    beta, gamma = (config.simnpo_beta, config.simnpo_gamma) if method == "simnpo" else (config.npo_beta, 0.0)
    if method == "npo":
        trainer.freeze_reference()
    per_epoch = steps_per_epoch(len(forget), steps.batch_size)
    trainer.configure_optimizer(config.lr, steps.weight_decay, warmup_steps=round(steps.warmup_epochs * per_epoch))
    paired = [] if method == "grad_ascent" else retain  # plain gradient ascent has no retain term
    train_round = lambda: trainer.unlearn_epoch(forget, paired, config.lambda_, steps.batch_size,
                                                forget_loss=FORGET_LOSS[method], beta=beta, gamma=gamma)
    saved = checkpoints.resume(trainer) if checkpoints else None  # a resumed job: on from its last round
    sampler.rest()  # an engine sharing the trainer's GPU rests until the push after the last round
    if saved:
        for _ in saved.replay:  # the rounds since the last full trainer state, trained again exactly
            train_round()
        sync_weights(trainer, sampler, engine_dtype)  # the engine still holds the target's weights
    for epoch in range((saved.round if saved else 0) + 1, steps.epochs + 1):
        timer = StageTimer()
        with timer("training"):
            losses = train_round()
        if epoch == steps.epochs:
            with timer("weight_sync"):
                sync_weights(trainer, sampler, engine_dtype)
        record = {"epoch": epoch, "questions": len(forget), **losses,
                  "seconds": {stage: timer.seconds.get(stage, 0.0) for stage in ("training", "weight_sync")}}
        if checkpoints:
            checkpoints.save(trainer, epoch, record)
        log(record)
