"""TOFU-style benchmarks: built in, from the Hugging Face Hub, or from a folder."""

from pmc_unlearning.data.builtin import generate_builtin
from pmc_unlearning.data.loader import load_benchmark
from pmc_unlearning.data.schema import FORGET_SPLITS, QA, Benchmark, DataError

__all__ = ["FORGET_SPLITS", "QA", "Benchmark", "DataError", "generate_builtin", "load_benchmark"]
