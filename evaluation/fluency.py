"""Fluency of the forget answers: does an unlearned model's answer still read as an answer?

PMC trains on answers the model can already generate, and nothing asks that they read well: an unlearned
model may answer a forget question with word salad, which tells anyone probing it that unlearning happened
there. Two numbers per model state, both judged by the *base* model (the model before the target fine-tune:
it never saw the forget facts, so it judges language and fit to the question, not knowledge):
- `nll_per_token`: the mean, over the forget questions, of the per-token NLL of the state's greedy answer;
- `broken_share`: the share of those answers that are empty or less fluent than the least fluent of the data
  set's own forget answers (per-token NLL above the highest of theirs, `threshold`).
"""
from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Sequence

import torch
from transformers import AutoModelForCausalLM

from models.prompting import PromptFormat
from trainer.losses import collate, sequence_logprobs


class FluencyJudge:
    """The base model, scoring (question, answer) pairs; its threshold is set by the data's forget answers."""

    def __init__(self, base_dir: Path, prompt: PromptFormat, reference: Sequence[tuple[str, str]], batch_size: int = 16):
        self.prompt, self.batch_size = prompt, batch_size
        tokenizer = prompt.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
        self.threshold = max(self.nll_per_token(reference))

    @torch.no_grad()
    def nll_per_token(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Per (question, answer): the base model's mean NLL of the answer's tokens (its end-of-sequence too)."""
        examples = [self.prompt.example(question, answer) for question, answer in pairs]
        values = []
        for start in range(0, len(examples), self.batch_size):
            batch = collate(examples[start:start + self.batch_size], self.pad_id)
            logits = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            sums, counts = sequence_logprobs(logits, batch.labels)
            values += (-sums / counts).tolist()
        return values

    def measure(self, answers: Sequence[dict]) -> dict:
        """The fluency block of one state, from its greedy forget answers ({"question", "answer"} rows)."""
        spoken = [row for row in answers if row["answer"].strip()]
        nll = self.nll_per_token([(row["question"], row["answer"]) for row in spoken])
        broken = (len(answers) - len(spoken)) + sum(value > self.threshold for value in nll)
        return {"nll_per_token": mean(nll) if nll else None, "broken_share": broken / len(answers),
                "threshold": self.threshold, "empty": len(answers) - len(spoken)}


def add_fluency(state: dict, judge: FluencyJudge) -> None:
    """The fluency of a state's greedy forget answers, into its metrics (a cached state gets it too)."""
    state["metrics"]["fluency"] = judge.measure(state["answers"]["forget"])
