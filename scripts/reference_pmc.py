"""A reference-style PMC loop, kept to measure the project's pipeline against (`make bench-ttq`).

It runs the algorithm the way the authors' implementation does, in one process, with no engine and no
actors: inside each training step, HF `generate` samples the candidates for that step's pending forget
questions from the model being trained; selection is the project's own (same score, same cache, so only the
execution differs); the step takes NLL(selected answer | question) and lambda * NLL(retain row) in two
forward passes, then one AdamW step (same rate, warm-up and weight decay as the project's trainer).
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.configs import PMCConfig
from pmc_unlearning.engine import Completion
from pmc_unlearning.methods.selection import SelectionCache
from pmc_unlearning.models.prompting import Example
from pmc_unlearning.trainer.trainer import steps_per_epoch


def reference_unlearn(model_dir: Path, forget_prompts: Sequence[tuple[int, ...]], originals: Sequence[str],
                      retain: Sequence[Example], config: PMCConfig, max_new_tokens: int,
                      log: Callable[[dict], None] = print) -> tuple[AutoModelForCausalLM, dict[str, float]]:
    """PMC on `model_dir` as the reference runs it; the trained model and the seconds spent sampling/training."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = round(config.warmup_rounds * steps_per_epoch(len(forget_prompts), config.batch_size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (warmup + 1)))
    cache = SelectionCache(originals, config.min_len, config.fluent_max_nll)
    seconds = {"sampling": 0.0, "training": 0.0}

    for round_ in range(1, config.rounds + 1):
        order = list(range(len(forget_prompts)))
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            questions = order[start:start + config.batch_size]
            began = time.perf_counter()
            pending = set(cache.pending())
            for question in [q for q in questions if q in pending]:
                cache.offer(question, sample(model, tokenizer, forget_prompts[question], config, max_new_tokens, pad_id))
            seconds["sampling"] += time.perf_counter() - began

            began = time.perf_counter()
            selected = [Example(forget_prompts[q], cache.best[q].completion.token_ids) for q in questions]
            paired = [retain[rng.randrange(len(retain))] for _ in questions]
            loss = answer_nll(model, selected, pad_id) + config.lambda_ * answer_nll(model, paired, pad_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seconds["training"] += time.perf_counter() - began
        scores = [sel.score for sel in cache.selections()]
        log({"round": round_, "selected_score_mean": sum(scores) / len(scores),
             "questions_at_zero": sum(score == 0 for score in scores), "loss": loss.item(),
             "seconds": {stage: round(value, 2) for stage, value in seconds.items()}})
    return model, seconds


@torch.no_grad()
def sample(model, tokenizer, prompt: Sequence[int], config: PMCConfig, max_new_tokens: int,
           pad_id: int) -> list[Completion]:
    """`num_samples` answers to one question from the model as it is now (HF generate, the reference's way);
    with `fluent_max_nll` set, each with its log-probability before temperature and top-p, as the engine's."""
    with_logprobs = config.fluent_max_nll is not None
    model.eval()
    input_ids = torch.tensor([list(prompt)])
    output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=True,
                            temperature=config.temperature, top_p=config.top_p, num_return_sequences=config.num_samples,
                            max_new_tokens=max_new_tokens, pad_token_id=pad_id, return_dict_in_generate=True,
                            output_logits=with_logprobs)
    model.train()
    answers = output.sequences[:, input_ids.shape[1]:]
    token_logprobs = (torch.stack(output.logits, dim=1).float().log_softmax(dim=-1).gather(-1, answers[..., None])[..., 0]
                      if with_logprobs else torch.zeros(answers.shape))
    completions = []
    for row, logprobs in zip(answers.tolist(), token_logprobs.tolist()):
        end = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
        ids = tuple(row[:end])
        completions.append(Completion(ids, tokenizer.decode(ids, skip_special_tokens=True),
                                      sum(logprobs[:end]) if with_logprobs else None))
    return completions


def answer_nll(model, examples: Sequence[Example], pad_id: int) -> torch.Tensor:
    """The token-mean NLL of the examples' answers: one forward pass of its own over a right-padded batch,
    Hugging Face's own loss on labels that are -100 outside the answers (the reference's data collator)."""
    length = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    input_ids = torch.full((len(examples), length), pad_id)
    labels = torch.full((len(examples), length), -100)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        ids = [*example.prompt_ids, *example.answer_ids]
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention_mask[row, :len(ids)] = 1
        labels[row, len(example.prompt_ids):len(ids)] = torch.tensor(example.answer_ids)
    return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
