"""TOFU-style benchmarks: built in, from the Hugging Face Hub, or from a folder."""

from .builtin import generate_builtin
from .loader import load_benchmark
from .schema import FORGET_SPLITS, QA, Benchmark, DataError

__all__ = ["FORGET_SPLITS", "QA", "Benchmark", "DataError", "generate_builtin", "load_benchmark"]
