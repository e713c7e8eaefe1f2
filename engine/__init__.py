"""Sampling: the vLLM engine that generates candidates and greedy answers, and takes weight updates."""
from engine.sampler import Completion, Sampler

__all__ = ["Completion", "Sampler"]
