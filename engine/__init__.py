"""Sampling: the vLLM engine that generates candidates and greedy answers, and takes weight updates."""
from pmc_unlearning.engine.sampler import MAX_BANNED, Completion, Sampler

__all__ = ["MAX_BANNED", "Completion", "Sampler"]
