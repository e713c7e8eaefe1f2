"""Partial Model Collapse: unlearning by fine-tuning on the model's own, least-revealing answers.

Read top to bottom, this is the algorithm of Scholten et al. (and of their reference implementation):

    originals <- the target model's greedy answers to the forget questions
    repeat for `rounds` passes over the forget set:
        1. sample `num_samples` answers from the CURRENT model for every question not yet at score 0 (with
           `avoid_original`: none holding a token of the original answer's words)
        2. score each candidate: ROUGE-L recall of the original answer in it (+ optional length penalty;
           with `score: content`, of the original's content beyond the question)
        3. select the lowest-scoring candidate (with `fluent_max_nll`: among the fluent ones; with a `judge`:
           the most fluent under the base model among the least similar); keep it only if it does not score
           above the cached one
        4. fine-tune on the selected answers + lambda * NLL of random retain rows (never on the secret)
        5. push the new weights to the sampling engine, so the next round samples the changed model
        6. (with `stop.patience`) stop early once every question is at score 0 and the greedy forget answers'
           ROUGE-L against the originals has stayed <= `stop.threshold` for `patience` rounds

Steps 1-4 are `train_round`; the round driver (methods/rounds.py) makes the push of step 5 whenever
`uses_engine_after` says the engine is used next; step 6 is `finish_round`. The sampler and trainer are
groups (cluster/groups.py) of engines and trainer ranks, Ray actors or, alone, plain objects: the loop is
the same. The retain NLL is what keeps the collapse *partial*. Each question's candidates in each round
are drawn with a seed of their own, so a round samples the same whatever the engine did before (a cached
or fresh evaluation, a resumed job): with checkpoints, a killed job resumes after its last round.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.engine import MAX_BANNED
from pmc_unlearning.evaluation.rouge import rouge_l_recall
from pmc_unlearning.methods.checkpoint import Saved
from pmc_unlearning.methods.method import Method, Task
from pmc_unlearning.methods.selection import SelectionCache, least_similar
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.telemetry.timing import StageTimer

STAGES = ("sampling", "scoring", "training", "weight_sync")
JUDGE_BATCH = 16  # candidates per forward pass of the judge


class PMC(Method):
    def __init__(self, config: RunConfig, task: Task):
        super().__init__(config, task)
        self.settings = config.pmc
        self.forget_prompts = [task.prompt.prompt(row.question) for row in task.forget]
        self.cache = SelectionCache(task.originals, self.settings.min_len, self.settings.fluent_max_nll,
                                    [row.question for row in task.forget] if self.settings.score == "content" else None)
        self.banned = ([word_tokens(task.prompt.tokenizer, original) for original in task.originals]
                       if self.settings.avoid_original else None)
        for question, banned in enumerate(self.banned or ()):
            if len(banned) > MAX_BANNED:
                raise ValueError(f"pmc.avoid_original: the original answer to forget question {question} has "
                                 f"{len(banned)} word tokens to ban, more than vLLM takes in one request's logit bias "
                                 f"({MAX_BANNED}); lower engine.max_new_tokens or leave avoid_original off")
        self.held = 0  # rounds in a row that passed the stop rule's check
        self.stages = (STAGES + (("judging",) if self.settings.judge.candidates else ())
                       + (("stop_check",) if self.settings.stop.patience else ()))

    def prepare(self, trainer) -> None:
        judge = self.settings.judge
        if judge.candidates:  # the base model, frozen beside the trained one: a judge of fluency that does not drift
            if not self.task.base_model:
                raise ValueError("pmc.judge.candidates needs the base model's folder (Task.base_model)")
            trainer.load_judge(self.task.base_model)
            if judge.cap:  # the least fluent of the retain answers (PMC never reads the forget set's answers)
                self.cache.threshold = max(judged_nll(trainer, self.task.retain))

    @property
    def lr(self) -> float:
        return self.settings.lr

    def train_round(self, round_: int, sampler, trainer, timer: StageTimer, served: int) -> dict:
        settings = self.settings
        resample = (round_ - 1) % settings.resample_every == 0
        pending = self.cache.pending() if resample else []

        with timer("sampling"):  # 1.
            candidates = sampler.sample([self.forget_prompts[i] for i in pending], settings.num_samples,
                                        settings.temperature, settings.top_p,
                                        seed=[sampling_seed(settings.seed, round_, i) for i in pending],
                                        logprobs=settings.fluent_max_nll is not None,
                                        banned=None if self.banned is None else [self.banned[i] for i in pending]
                                        ) if pending else []
        with timer("scoring"):  # 2.
            scores = [self.cache.score(question, question_candidates)
                      for question, question_candidates in zip(pending, candidates)]
        with timer("judging"):
            judged = self.judge(trainer, pending, candidates, scores)
        with timer("scoring"):  # 3.
            for question, question_candidates, question_scores, question_judged in zip(pending, candidates, scores,
                                                                                       judged):
                self.cache.offer(question, question_candidates, question_scores, question_judged)
        with timer("training"):  # 4. (an engine sharing the trainer's GPU rests meanwhile)
            sampler.rest()
            losses = self.train(trainer)

        scores = [sel.score for sel in self.cache.selections()]
        return {
            "questions": len(self.forget_prompts),
            "sampled_questions": len(pending),
            "candidates": len(pending) * settings.num_samples,
            "sampled_from_round": served if pending else None,  # the weights the candidates come from
            "selected_score_mean": sum(scores) / len(scores),
            "selected_score_max": max(scores),
            "questions_at_zero": sum(score == 0 for score in scores),
            **losses,
        }

    def judge(self, trainer, pending: Sequence[int], candidates: Sequence, scores: Sequence[dict[int, float]]
              ) -> list[dict[int, float] | None]:
        """Per pending question, the judge's NLL per token of its least similar candidates (None: no judge)."""
        count = self.settings.judge.candidates
        if not count:
            return [None] * len(pending)
        chosen = [least_similar(question_scores, count) for question_scores in scores]
        # A candidate cut at max_new_tokens is no answer (often a loop, which reads as fluent per token): it is
        # not judged and counts as the least fluent.
        judged = [dict.fromkeys(indices, math.inf) for indices in chosen]
        finished = [(k, i) for k, indices in enumerate(chosen) for i in indices if candidates[k][i].finished]
        examples = [Example(self.forget_prompts[pending[k]], candidates[k][i].token_ids) for k, i in finished]
        for (k, i), nll in zip(finished, judged_nll(trainer, examples, shared_prompts=True)):
            judged[k][i] = nll
        return judged

    def train(self, trainer) -> dict:
        return trainer.unlearn_round(training_examples(self.forget_prompts, self.cache), self.task.retain,
                                     self.settings.lambda_, self.settings.batch_size)

    def uses_engine_after(self, round_: int) -> bool:  # 5. (the engine samples next round, or checks now)
        return bool(self.settings.stop.patience) or samples_next_round(round_, self.cache, self.settings.resample_every)

    def finish_round(self, round_: int, sampler, timer: StageTimer, record: dict) -> bool:  # 6.
        stop = self.settings.stop
        if not stop.patience:
            return False
        with timer("stop_check"):
            check = greedy_forget_score(sampler, self.forget_prompts, self.task.originals)
        collapsed = record["questions_at_zero"] == len(self.forget_prompts) and check <= stop.threshold
        self.held = self.held + 1 if collapsed else 0
        record.update(greedy_forget_score=check, stop_held=self.held, stopped=self.held >= stop.patience)
        return self.held >= stop.patience

    def trained_on(self) -> list[dict | None]:
        return self.cache.to_records()

    def replay_round(self, trainer, trained_on: list[dict | None]) -> None:
        self.cache.restore(trained_on)
        self.train(trainer)

    def resume(self, saved: Saved) -> None:
        self.cache.restore(saved.selections)
        self.held = saved.records[-1].get("stop_held", 0)


def greedy_forget_score(sampler, forget_prompts: Sequence[tuple[int, ...]], originals: Sequence[str]) -> float:
    """The stop rule's check: mean ROUGE-L recall of the original answers in the current model's greedy answers
    (the model's own earlier answers, as in selection; the data set's answers are for the evaluation only)."""
    answers = sampler.greedy(forget_prompts)
    return sum(rouge_l_recall(original, answer.text) for original, answer in zip(originals, answers)) / len(originals)


def judged_nll(trainer, examples: Sequence[Example], shared_prompts: bool = False) -> list[float]:
    """The judge's (Trainer.load_judge) NLL per token of each example's answer (its end-of-sequence too);
    `shared_prompts`: consecutive examples of one question read it once (Trainer.score)."""
    return [-logprob / count for logprob, count in trainer.score(examples, JUDGE_BATCH, judge=True,
                                                                 shared_prompts=shared_prompts)]


def word_tokens(tokenizer, text: str) -> tuple[int, ...]:
    """The tokens of every word of `text` as written, lower-case and capitalised, each with and without a leading
    space: banned while sampling (`avoid_original`), a word of `text` can only come out spelt from other pieces,
    which the score still catches."""
    forms = {form for word in re.findall(r"[^\W_]+", text) for form in (word, word.lower(), word.capitalize())}
    return tuple(sorted({token for form in forms for spaced in (form, " " + form)
                         for token in tokenizer.encode(spaced, add_special_tokens=False)}))


def training_examples(forget_prompts: Sequence[tuple[int, ...]], cache: SelectionCache) -> list[Example]:
    """Each forget question with its selected answer: what a round fine-tunes on."""
    return [Example(forget_prompts[i], sel.completion.token_ids) for i, sel in enumerate(cache.selections())]


def samples_next_round(round_: int, cache: SelectionCache, resample_every: int) -> bool:
    return round_ % resample_every == 0 and bool(cache.pending())


def sampling_seed(seed: int, round_: int, question: int) -> int:
    """The seed of one question's candidates in one round. Hashed (numpy's SeedSequence), not added: vLLM
    seeds the n candidates of a request seed, seed + 1, ..., so consecutive seeds would share draws."""
    return int(np.random.SeedSequence([seed, round_, question]).generate_state(1)[0])
