"""What a job reads before it starts: its data (a benchmark or a forget request) and the model. Light on purpose
(no torch, no Ray, no vLLM): the command line checks them first, so bad input is refused in a second, before
anything is written."""
from __future__ import annotations

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.data import Benchmark, load_benchmark
from pmc_unlearning.data.reference_facts import real_authors, world_facts
from pmc_unlearning.data.request import Request, load_request
from pmc_unlearning.models import check_model_source


def load_config_benchmark(config: RunConfig) -> Benchmark:
    data = config.data
    return load_benchmark(data.source, data.forget_split, seed=data.seed, num_authors=data.num_authors,
                          facts_per_author=data.facts_per_author, domain=data.domain, tofu_path=data.tofu_path,
                          revision=data.revision)


def load_config_data(config: RunConfig) -> Benchmark | Request:
    """The forget request `data.forget` names, else the benchmark the data settings describe."""
    if config.data.forget is not None:
        return load_request(config.data.forget, config.data.keep)
    return load_config_benchmark(config)


def load_checked_data(config: RunConfig) -> Benchmark | Request:
    """The data, loaded and checked, after the model source was checked (a DataError or ModelError)."""
    check_model_source(config.model)
    return load_config_data(config)


def benchmark_texts(data: Benchmark | Request) -> list[str]:
    """Every string of the data: the corpus a locally trained tokenizer learns from."""
    if isinstance(data, Request):
        rows = (*data.forget.rows, *data.keep.rows, *world_facts(), *real_authors())
    else:
        rows = data.full + data.world_facts + data.real_authors
    return [text for row in rows for text in (row.question, row.answer, row.paraphrased_question,
                                              row.paraphrased_answer, *row.perturbed_answer) if text]
