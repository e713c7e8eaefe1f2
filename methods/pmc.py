"""Partial Model Collapse: unlearning by fine-tuning on the model's own, least-revealing answers.

Read top to bottom, this is the algorithm of Scholten et al. (and of their reference implementation):

    originals <- the target model's greedy answers to the forget questions
    repeat for `epochs` passes over the forget set:
        1. sample `num_samples` answers from the CURRENT model for every question not yet at score 0
        2. score each candidate: ROUGE-L recall of the original answer in it (+ optional length penalty)
        3. select the lowest-scoring candidate (with `fluent_max_nll`: among the fluent ones);
           keep it only if it does not score above the cached one
        4. fine-tune on the selected answers + lambda * NLL of random retain rows (never on the secret)
        5. push the new weights to the sampling engine, so the next round samples the changed model
        6. (with `stop.patience`) stop early once every question is at score 0 and the greedy forget answers'
           ROUGE-L against the originals has stayed <= `stop.threshold` for `patience` rounds

The sampler and trainer are groups (cluster/groups.py) of engines and trainer ranks, Ray actors or,
alone, plain objects: the loop is the same. The retain NLL is what keeps the collapse *partial*. Each
question's candidates in each round are drawn with a seed of their own, so a round samples the same
whatever the engine did before (a cached or fresh evaluation, a resumed job): with `checkpoints`, a killed
job resumes after its last round.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pmc_unlearning.cluster.weight_sync import sync_weights
from pmc_unlearning.configs import PMCConfig
from pmc_unlearning.evaluation.rouge import rouge_l_recall
from pmc_unlearning.methods.checkpoint import Checkpoints
from pmc_unlearning.methods.selection import SelectionCache
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.telemetry.timing import StageTimer
from pmc_unlearning.trainer.trainer import steps_per_epoch

STAGES = ("sampling", "scoring", "training", "weight_sync")


def unlearn(
    sampler,
    trainer,
    forget_prompts: Sequence[tuple[int, ...]],
    originals: Sequence[str],
    retain: Sequence[Example],
    config: PMCConfig,
    engine_dtype: str,
    log: Callable[[dict], None] = lambda record: None,
    checkpoints: Checkpoints | None = None,
) -> SelectionCache:
    cache = SelectionCache(originals, config.min_len, config.fluent_max_nll)
    per_epoch = steps_per_epoch(len(forget_prompts), config.batch_size)
    trainer.configure_optimizer(config.lr, config.weight_decay, warmup_steps=round(config.warmup_epochs * per_epoch))
    first, held = 1, 0  # held: rounds in a row that passed the stop rule's check
    served = 0  # the round whose weights the engine serves (0: the target's)
    if checkpoints and (saved := checkpoints.resume(trainer)):  # a resumed job: on from its last round
        sampler.rest()
        for trained_on in saved.replay:  # the rounds since the last full trainer state, trained again exactly
            cache.restore(trained_on)
            trainer.unlearn_epoch(training_examples(forget_prompts, cache), retain, config.lambda_, config.batch_size)
        cache.restore(saved.selections)
        first, held = saved.round + 1, saved.records[-1].get("stop_held", 0)
        sync_weights(trainer, sampler, engine_dtype)
        served = saved.round

    for epoch in range(first, config.epochs + 1):
        timer = StageTimer()
        resample = (epoch - 1) % config.resample_every == 0
        pending = cache.pending() if resample else []

        with timer("sampling"):  # 1.
            sampled_from = served if pending else None  # the weights the candidates come from, for the record
            candidates = sampler.sample([forget_prompts[i] for i in pending], config.num_samples, config.temperature,
                                        config.top_p, seed=[sampling_seed(config.seed, epoch, i) for i in pending],
                                        logprobs=config.fluent_max_nll is not None) if pending else []
        with timer("scoring"):  # 2. and 3.
            for question, question_candidates in zip(pending, candidates):
                cache.offer(question, question_candidates)
        with timer("training"):  # 4. (an engine sharing the trainer's GPU rests meanwhile)
            sampler.rest()
            losses = trainer.unlearn_epoch(training_examples(forget_prompts, cache), retain, config.lambda_,
                                           config.batch_size)
        if epoch == config.epochs or config.stop.patience or samples_next_epoch(epoch, cache, config):
            with timer("weight_sync"):  # 5. (only when the engine will be used: sampling, the check, evaluation)
                sync_weights(trainer, sampler, engine_dtype)
                served = epoch
        if config.stop.patience:
            with timer("stop_check"):  # 6.
                check = greedy_forget_score(sampler, forget_prompts, originals)

        scores = [sel.score for sel in cache.selections()]
        record = {
            "epoch": epoch,
            "questions": len(forget_prompts),
            "sampled_questions": len(pending),
            "candidates": len(pending) * config.num_samples,
            "sampled_from_round": sampled_from,
            "selected_score_mean": sum(scores) / len(scores),
            "selected_score_max": max(scores),
            "questions_at_zero": sum(score == 0 for score in scores),
            **losses,
            "seconds": {stage: timer.seconds.get(stage, 0.0) for stage in STAGES},
        }
        if config.stop.patience:
            collapsed = record["questions_at_zero"] == len(forget_prompts) and check <= config.stop.threshold
            held = held + 1 if collapsed else 0
            record.update(greedy_forget_score=check, stop_held=held, stopped=held >= config.stop.patience)
            record["seconds"]["stop_check"] = timer.seconds["stop_check"]
        if checkpoints:
            checkpoints.save(trainer, epoch, record, cache.to_records())
        log(record)
        if config.stop.patience and held >= config.stop.patience:
            break
    return cache


def greedy_forget_score(sampler, forget_prompts: Sequence[tuple[int, ...]], originals: Sequence[str]) -> float:
    """The stop rule's check: mean ROUGE-L recall of the original answers in the current model's greedy answers
    (the model's own earlier answers, as in selection; the data set's answers are for the evaluation only)."""
    answers = sampler.greedy(forget_prompts)
    return sum(rouge_l_recall(original, answer.text) for original, answer in zip(originals, answers)) / len(originals)


def training_examples(forget_prompts: Sequence[tuple[int, ...]], cache: SelectionCache) -> list[Example]:
    """Each forget question with its selected answer: what a round fine-tunes on."""
    return [Example(forget_prompts[i], sel.completion.token_ids) for i, sel in enumerate(cache.selections())]


def samples_next_epoch(epoch: int, cache: SelectionCache, config: PMCConfig) -> bool:
    return epoch % config.resample_every == 0 and bool(cache.pending())


def sampling_seed(seed: int, epoch: int, question: int) -> int:
    """The seed of one question's candidates in one round. Hashed (numpy's SeedSequence), not added: vLLM
    seeds the n candidates of a request seed, seed + 1, ..., so consecutive seeds would share draws."""
    return int(np.random.SeedSequence([seed, epoch, question]).generate_state(1)[0])
