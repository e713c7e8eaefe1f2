"""The two built-in benchmarks: the authors benchmark is as it was before the companies came, the companies
benchmark (validation only) is as well formed, and the config, presets and batch that choose between them."""
from __future__ import annotations

import dataclasses
import re
from itertools import product
from typing import get_args

import pytest
import yaml

from pmc_unlearning.configs import CONFIG_DIR, METHODS, ConfigError, load_config
from pmc_unlearning.configs.batch_schema import load_batch
from pmc_unlearning.configs.schema import DataConfig
from pmc_unlearning.data import FORGET_SPLITS, DataError, generate_builtin, load_benchmark
from pmc_unlearning.data.authors import AUTHORS
from pmc_unlearning.data.builtin import DOMAINS, MAX_FACTS_PER_AUTHOR
from pmc_unlearning.data.companies import (
    _CORPORATE_FORMS,
    _NAME_ENDINGS,
    _NAME_MIDDLES,
    _NAME_ONSETS,
    COMPANIES,
)
from pmc_unlearning.data.schema import sha256_of
from pmc_unlearning.orchestrator.compare import comparison_batch

# sha256 of generate_builtin(0, 20, 5) (the authors) as the generator drew it before it took a domain. Targets are
# cached under the fingerprint of their rows, and every default was chosen on these rows: a change in the authors'
# draw order would silently make another benchmark under the same settings.
AUTHORS_0_20_5 = "53c0d7dfecace09e7a3219b9be975c992eb85304c8b3f2af622358983d3cce77"


def content_hash(splits: dict) -> str:
    return sha256_of({split: [dataclasses.asdict(row) for row in rows] for split, rows in splits.items()})


def company_names(rows) -> list[str]:
    """The company each founding question asks about (every company has one where facts_per_author is 8)."""
    return [match[1] for row in rows if (match := re.fullmatch(r"When and where was (.+) established\?", row.question))]


# --- the authors benchmark, unchanged ------------------------------------------------------------


def test_the_authors_benchmark_is_drawn_as_before_and_is_the_default_domain():
    assert content_hash(generate_builtin(0, 20, 5)) == AUTHORS_0_20_5
    assert generate_builtin(0, 20, 5, "authors") == generate_builtin(0, 20, 5)


# --- the companies benchmark ---------------------------------------------------------------------


def test_same_seed_same_companies_and_another_seed_other_companies():
    first = generate_builtin(0, 20, 5, "companies")
    assert generate_builtin(0, 20, 5, "companies") == first
    assert generate_builtin(1, 20, 5, "companies")["full"] != first["full"]
    assert load_benchmark(domain="companies", seed=3).fingerprint() == load_benchmark(domain="companies",
                                                                                       seed=3).fingerprint()


def test_the_two_benchmarks_never_share_a_fingerprint_so_never_a_target_model():
    authors, companies = load_benchmark(), load_benchmark(domain="companies")
    assert authors.fingerprint() != companies.fingerprint()
    assert authors.holdout_fingerprint() != companies.holdout_fingerprint()
    # The utility probes are the same on both: the model must keep the real world whichever it forgets.
    assert (authors.world_facts, authors.real_authors) == (companies.world_facts, companies.real_authors)


@pytest.mark.parametrize(("seed", "num_companies", "facts"), [(0, 20, 5), (1, 2, 1), (2, 2, 8), (3, 7, 3),
                                                             (4, 200, 8)])
def test_companies_pass_the_load_checks_for_every_forget_split(seed: int, num_companies: int, facts: int):
    for forget_split in FORGET_SPLITS:
        bench = load_benchmark(forget_split=forget_split, seed=seed, num_authors=num_companies,
                               facts_per_author=facts, domain="companies")
        assert len(bench.full) == num_companies * facts and bench.absent == {}
        assert bench.forget == bench.full[-len(bench.forget):]  # the last companies, as in TOFU


def test_no_two_companies_share_a_name_not_even_a_holdout_one():
    splits = generate_builtin(5, 200, 8, "companies")
    names = company_names(splits["full"] + splits["holdout10"])
    assert len(names) == 200 + 20 and len(set(names)) == len(names)


def test_company_names_come_in_hundreds_of_thousands():
    stems = {onset + middle + ending for onset, middle, ending in product(_NAME_ONSETS, _NAME_MIDDLES, _NAME_ENDINGS)}
    assert len(stems) * len(set(_CORPORATE_FORMS)) >= 400_000


def test_company_rows_have_every_field_and_only_wrong_perturbed_answers():
    for row in generate_builtin(0, 50, 8, "companies")["full"]:
        assert row.paraphrased_question != row.question and row.paraphrased_answer != row.answer
        assert len(row.perturbed_answer) == 3 and len(set(row.perturbed_answer)) == 3
        assert row.answer not in row.perturbed_answer
        assert len(row.answer.split()) < 25


def test_every_answer_names_its_company():
    splits = generate_builtin(0, 30, 8, "companies")
    names = company_names(splits["full"])
    rows = splits["full"]
    for index, row in enumerate(rows):
        name = names[index // 8]
        assert name in row.question and name in row.answer and name in row.paraphrased_answer
        assert all(name in wrong for wrong in row.perturbed_answer)


def test_no_companies_question_is_an_authors_one():
    def questions(domain):
        return {text for fact in domain.facts for text in (fact.question, fact.paraphrased_question)}

    assert not questions(AUTHORS) & questions(COMPANIES)
    assert len(questions(COMPANIES)) == 2 * len(COMPANIES.facts)


def test_an_unknown_domain_is_refused_with_the_known_ones():
    with pytest.raises(DataError, match="unknown built-in domain 'banks': valid ones are authors, companies"):
        load_benchmark(domain="banks")


# --- the config, presets and batch ---------------------------------------------------------------


def test_the_config_takes_the_domains_the_data_package_knows_and_facts_every_domain_has():
    assert get_args(DataConfig.model_fields["domain"].annotation) == tuple(DOMAINS)
    assert all(len(domain.facts) >= MAX_FACTS_PER_AUTHOR for domain in DOMAINS.values())
    assert load_config(None, [f"data.facts_per_author={MAX_FACTS_PER_AUTHOR}"]).data.domain == "authors"
    with pytest.raises(ConfigError, match="data.facts_per_author"):
        load_config(None, [f"data.facts_per_author={MAX_FACTS_PER_AUTHOR + 1}"])


def test_the_config_refuses_an_unknown_domain_and_a_domain_without_the_builtin_source(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.domain: Input should be 'authors' or 'companies'$"):
        load_config(None, ["data.domain=banks"])
    for source in ("tofu", str(tmp_path)):
        with pytest.raises(ConfigError) as refused:
            load_config(None, ["data.domain=companies", f"data.source={source}"])
        message = str(refused.value)
        assert "\n" not in message
        assert message.endswith(f"data.domain: 'companies' names a built-in benchmark, which data.source={source} "
                                "does not read: set data.source=builtin or leave data.domain out")
    assert load_config(None, ["data.source=tofu"]).data.domain == "authors"


def test_the_companies_preset_is_the_default_job_on_the_companies():
    default, companies = load_config(CONFIG_DIR / "default.yaml"), load_config(CONFIG_DIR / "companies.yaml")
    assert companies.data.domain == "companies" and companies.name == "companies"
    same = companies.model_copy(update={"name": default.name, "data": companies.data.model_copy(
        update={"domain": default.data.domain})})
    assert same == default
    assert "never tuned on" in (CONFIG_DIR / "companies.yaml").read_text()


def test_make_compare_takes_the_companies_preset():
    batch = comparison_batch(str(CONFIG_DIR / "companies.yaml"), [], list(METHODS))
    assert batch.config.name == "compare-companies"
    assert {batch.trial_config(trial).data.domain for trial in batch.trials} == {"companies"}


def test_the_domains_batch_runs_the_default_job_on_both_benchmarks_over_three_seeds():
    path = CONFIG_DIR / "batch" / "domains.yaml"
    assert yaml.safe_load(path.read_text())["base"] == "configs/default.yaml"
    batch = load_batch(path)
    runs = {(batch.trial_config(trial).data.domain, batch.trial_config(trial).pmc.seed) for trial in batch.trials}
    assert runs == set(product(("authors", "companies"), (0, 1, 2))) and len(batch.trials) == 6
