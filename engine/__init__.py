"""Sampling: the vLLM engine that generates candidates and greedy answers, and takes weight updates."""
from pmc_unlearning.engine.sampler import Completion, Sampler

__all__ = ["Completion", "Sampler"]
