"""One entry point for every data source, and the rules every benchmark meets when it loads.

Every source goes through the same checks (data/checks.py) before anything trains. A broken rule
is a DataError naming the file or hub config, the 1-based row and the field:

- `question` and `answer` are non-empty strings; paraphrases are strings; `perturbed_answer` is a
  list of non-empty strings (TOFU's lone string is accepted as a list of one); other fields are ignored.
- Forget rows carry `paraphrased_question`, `paraphrased_answer` and `perturbed_answer`: the
  paraphrased-forget ROUGE, the forget truth ratio and forget quality need them.
- eval_retain, world_facts and real_authors carry `perturbed_answer` on every row or on none. Some but
  not all is refused; none is allowed, and their truth ratio (and on world_facts and real_authors,
  Prob) is recorded in `Benchmark.absent`, with the reason, for the evaluation to report as n/a.
- No question appears twice in one split: two answers to one question make the benchmark contradictory.
- Every forget question is in `full`, with the same answer: the target model is fine-tuned on full, so
  it must have learnt what is to be forgotten, as it is to be forgotten.
- Every retain question is in `full`: the retain split is the part of full that is kept.
- No forget question is in the retain split or in eval_retain: a question cannot be both forgotten
  and retained.

- Holdout rows (about authors the target never saw) are not in `full`, so none is a forget or retain question.

A data folder's world_facts, real_authors and holdoutXX files are optional (as TOFU's holdoutXX config is); a
missing one is recorded in `Benchmark.absent` under the Benchmark field's name.
"""

from __future__ import annotations

from pathlib import Path

from pmc_unlearning.data.builtin import builtin_splits
from pmc_unlearning.data.checks import check_splits
from pmc_unlearning.data.folder import load_folder_splits
from pmc_unlearning.data.hub import TOFU_REPO, load_tofu_splits
from pmc_unlearning.data.schema import BENCHMARK_SPLITS, Benchmark, DataError, SplitRows, check_forget_split


def _read_source(source: str, forget_split: str, *, seed: int, num_authors: int, facts_per_author: int,
                 domain: str, tofu_path: str, revision: str | None) -> tuple[dict[str, SplitRows], dict[str, str]]:
    """(splits by Benchmark field, absent optional splits -> why)."""
    retain_split = check_forget_split(forget_split)
    if source == "builtin":
        return builtin_splits(forget_split, retain_split, seed=seed, num_authors=num_authors,
                              facts_per_author=facts_per_author, domain=domain), {}
    if source == "tofu":
        return load_tofu_splits(forget_split, retain_split, tofu_path=tofu_path, revision=revision)
    if Path(source).is_dir():
        return load_folder_splits(Path(source), forget_split, retain_split)
    raise DataError(f"unknown data source {source!r}: use 'builtin', 'tofu' or the path of an existing folder")


def load_benchmark(source: str = "builtin", forget_split: str = "forget10", *, seed: int = 0,
                   num_authors: int = 20, facts_per_author: int = 5, domain: str = "authors",
                   tofu_path: str = TOFU_REPO, revision: str | None = None) -> Benchmark:
    """`source` is "builtin" (generated offline), "tofu" or a folder path.

    seed, num_authors, facts_per_author and domain ("authors" or "companies", data/builtin.py) only shape the
    builtin benchmark; the domain is in its rows, so the two never share a fingerprint. tofu_path and revision
    only shape "tofu": a hub id or a local folder laid out as the hub repository, and the hub revision
    to pin (None: the newest).
    """
    splits, absent = _read_source(source, forget_split, seed=seed, num_authors=num_authors,
                                  facts_per_author=facts_per_author, domain=domain, tofu_path=tofu_path,
                                  revision=revision)
    absent |= check_splits(splits)
    rows = {name: splits[name].rows if name in splits else () for name in BENCHMARK_SPLITS}
    origins = {name: (split.where, split.row_numbers) for name, split in splits.items()}
    return Benchmark(source=source, forget_split=forget_split, **rows, absent=absent, origins=origins)
