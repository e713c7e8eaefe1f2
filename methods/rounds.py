"""The round driver: every method's rounds, from the optimizer's set-up to each round's record.

A round is one pass over the forget set. The driver sets up the optimizer (warm-up over
`pmc.warmup_rounds`), resumes from a checkpoint (training the rounds since its last full trainer state
again, exactly), and after each round of the method pushes the weights to the engine whenever the engine is
used before the next training (and after the last round, for the evaluation), times the stages, records,
checkpoints and logs the round.
"""
from __future__ import annotations

import math
from typing import Callable

from pmc_unlearning.cluster.weight_sync import TrainingDiverged, sync_weights
from pmc_unlearning.methods.checkpoint import Checkpoints
from pmc_unlearning.methods.method import Method
from pmc_unlearning.telemetry.timing import StageTimer
from pmc_unlearning.trainer.trainer import steps_per_epoch


def run_rounds(method: Method, sampler, trainer, engine_dtype: str, log: Callable[[dict], None] = lambda record: None,
               checkpoints: Checkpoints | None = None) -> None:
    """`method`'s rounds on the trainer group, the engine (sampler group) getting the weights when it needs them."""
    schedule = method.schedule
    method.prepare(trainer)
    warmup_steps = round(schedule.warmup_rounds * steps_per_epoch(method.questions, schedule.batch_size))
    trainer.configure_optimizer(method.lr, schedule.weight_decay, warmup_steps=warmup_steps)
    served = resume(method, sampler, trainer, engine_dtype, checkpoints)  # the round whose weights the engine serves
    for round_ in range(served + 1, schedule.rounds + 1):
        timer = StageTimer()
        record = {"round": round_, **method.train_round(round_, sampler, trainer, timer, served)}
        if not math.isfinite(record["loss"]):
            raise TrainingDiverged(f"training diverged at round {round_}: the loss is {record['loss']}; try a lower "
                                   "learning rate")
        if round_ == schedule.rounds or method.uses_engine_after(round_):
            with timer("weight_sync"):
                try:
                    sync_weights(trainer, sampler, engine_dtype)
                except TrainingDiverged as diverged:
                    raise TrainingDiverged(f"{diverged} (at round {round_})") from None
                served = round_
        stop = method.finish_round(round_, sampler, timer, record)
        record["seconds"] = {stage: timer.seconds.get(stage, 0.0) for stage in method.stages}
        if checkpoints:
            checkpoints.save(trainer, round_, record, method.trained_on())
        log(record)
        if stop:
            break


def resume(method: Method, sampler, trainer, engine_dtype: str, checkpoints: Checkpoints | None) -> int:
    """A resumed job's state after its last checkpointed round, the engine serving its weights: that round
    (0: no checkpoint, the job starts from the target)."""
    saved = checkpoints.resume(trainer) if checkpoints else None
    if not saved:
        return 0
    sampler.rest()
    for trained_on in saved.replay:  # the rounds since the last full trainer state, trained again exactly
        method.replay_round(trainer, trained_on)
    method.resume(saved)
    sync_weights(trainer, sampler, engine_dtype)  # the engine still holds the target's weights
    return saved.round
