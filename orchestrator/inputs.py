"""What a job reads before it starts: the benchmark and the model. Light on purpose (no torch, no Ray, no
vLLM): the command line checks them first, so bad input is refused in a second, before anything is written."""
from __future__ import annotations

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.data import Benchmark, load_benchmark
from pmc_unlearning.models import check_model_source


def load_config_benchmark(config: RunConfig) -> Benchmark:
    data = config.data
    return load_benchmark(data.source, data.forget_split, seed=data.seed, num_authors=data.num_authors,
                          facts_per_author=data.facts_per_author, tofu_path=data.tofu_path, revision=data.revision)


def load_checked_benchmark(config: RunConfig) -> Benchmark:
    """The benchmark, loaded and checked, after the model source was checked (a DataError or ModelError)."""
    check_model_source(config.model)
    return load_config_benchmark(config)


def benchmark_texts(bench: Benchmark) -> list[str]:
    """Every string of the benchmark: the corpus a locally trained tokenizer learns from."""
    rows = bench.full + bench.world_facts + bench.real_authors
    return [text for row in rows for text in (row.question, row.answer, row.paraphrased_question,
                                              row.paraphrased_answer, *row.perturbed_answer) if text]
