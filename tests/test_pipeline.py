"""The whole pipeline on the smoke preset: target fine-tune, PMC on Ray actors, evaluation, run folder."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml
from scipy.stats import binomtest, ks_2samp
from transformers import AutoModelForCausalLM

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

METRICS = ("forget_rouge_l", "forget_para_rouge_l", "retain_rouge_l", "world_facts_rouge_l", "unlearn_quality", "utility")


def test_smoke_run_unlearns_the_forget_set_and_keeps_the_rest(smoke_run):
    config, folder = smoke_run
    evaluation = json.loads((folder / "eval.json").read_text())
    before, after = evaluation["before"], evaluation["after"]
    for state in (before, after):
        assert set(METRICS) <= set(state)
    assert before["forget_rouge_l"] >= 0.6, "the target fine-tune did not teach the tiny model the facts"
    assert after["forget_rouge_l"] <= 0.5 * before["forget_rouge_l"]
    assert after["retain_rouge_l"] >= 0.8 * before["retain_rouge_l"]
    assert evaluation["wall_time_s"] > 0


def test_the_job_leaves_nothing_in_the_temporary_folder(smoke_run):
    """Ray's session files and every worker's temporary files (vLLM's rendezvous file per engine start) lived in
    a private folder of the job's own in /tmp, gone with the job; nothing went into the job's TMPDIR."""
    from pmc_unlearning.cluster.session import RAY_BASE
    from pmc_unlearning.storage.files import made_by_a_dead_process

    config, _ = smoke_run
    assert list((config.runs_dir.parent / "tmp").iterdir()) == []
    assert [p for p in RAY_BASE.glob("pmc-ray-*") if made_by_a_dead_process(p.name, "pmc-ray-")] == []


def test_in_a_group_shared_cache_the_job_keeps_its_entries_in_a_folder_of_its_users(smoke_run):
    """The smoke job's cache is set-group-id, as a team's: its models, targets and evaluations went into
    `user-<uid>`, which only its user can enter (storage.files.users_cache_folder)."""
    config, folder = smoke_run
    mine = config.cache_dir / f"user-{os.getuid()}"
    assert mine.stat().st_mode & 0o777 == 0o700
    assert Path(json.loads((folder / "eval.json").read_text())["target_model"]).is_relative_to(mine)
    assert {path.name for path in mine.iterdir()} >= {"targets", "evaluations"}
    assert yaml.safe_load((folder / "config.yaml").read_text())["cache_dir"] == str(mine)


def test_run_folder_holds_config_versions_rounds_report_and_a_loadable_model(smoke_run):
    config, folder = smoke_run
    assert folder.name == "smoke" and not folder.with_name("smoke.partial").exists()
    mine = config.cache_dir / f"user-{os.getuid()}"  # the cache is group-shared: where the entries went
    assert yaml.safe_load((folder / "config.yaml").read_text()) == config.resolved() | {"cache_dir": str(mine)}
    versions = json.loads((folder / "versions.json").read_text())
    assert {"python", "torch", "transformers", "ray"} <= set(versions)
    rounds = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == list(range(1, config.pmc.rounds + 1))
    assert set(rounds[0]["seconds"]) == {"sampling", "scoring", "training", "weight_sync"}
    scores = [r["selected_score_mean"] for r in rounds]
    assert all(later <= earlier for earlier, later in zip(scores, scores[1:])), "selected scores must never rise"
    assert "| Forget ROUGE-L (lower is better) |" in (folder / "report.md").read_text()
    model = AutoModelForCausalLM.from_pretrained(folder / "model")
    assert model.config.num_hidden_layers == 4


def exact_mean_upper_bound(scores: list[float], confidence: float) -> float:
    """The integral of 1 - (F_hat - eps) over [0, 1], by the steps of the empirical CDF (not on a grid)."""
    n, edges = len(scores), [0.0, *sorted(scores), 1.0]
    eps = math.sqrt(math.log(2 / (1 - confidence)) / (2 * n))
    return sum((edges[i + 1] - edges[i]) * min(1.0, 1 - i / n + eps) for i in range(n + 1))


def test_full_evaluation_blocks_in_eval_json(smoke_run):
    config, folder = smoke_run
    evaluation = json.loads((folder / "eval.json").read_text())
    samples = json.loads((folder / "samples.json").read_text())
    for state in ("before", "after"):
        m = evaluation[state]
        assert set(m["prob"]) == {"forget", "retain", "world_facts", "real_authors"}
        assert set(m["truth_ratio"]) == {"forget", "retain", "world_facts", "real_authors"}
        # Model utility: the harmonic mean of the nine numbers, recomputed from the tables of eval.json.
        nine = [m[family][split] if family != "rouge" else m[f"{split}_rouge_l"]
                for split in ("retain", "world_facts", "real_authors") for family in ("prob", "rouge", "truth_ratio")]
        assert m["model_utility_parts"] == 9 and m["model_utility_missing"] == {}
        assert m["model_utility"] == pytest.approx(9 / sum(1 / v for v in nine) if min(nine) > 0 else 0.0)
        # Under sampling: each figure from the saved samples, by an independent computation.
        scores = samples[state]["forget_sample_rouge_l"]
        pooled = [s for row in scores for s in row]
        leaks = sum(s >= config.eval.leak_threshold for s in pooled)
        sampling = m["sampling"]
        assert sampling["n"] == config.eval.sampling_n == len(scores[0])
        assert sampling["mean_rouge_l"] == pytest.approx(sum(pooled) / len(pooled))
        assert sampling["max_rouge_l"] == pytest.approx(sum(max(row) for row in scores) / len(scores))
        assert sampling["leak_share"] == pytest.approx(leaks / len(pooled))
        exact = binomtest(leaks, len(pooled)).proportion_ci(confidence_level=config.eval.confidence, method="exact")
        assert sampling["leak_share_upper"] == pytest.approx(exact.high, abs=1e-9)
        # The grid's left Riemann sum is the exact integral plus at most one grid cell (1/1000).
        expected_upper = sum(exact_mean_upper_bound(row, config.eval.confidence) for row in scores) / len(scores)
        assert expected_upper - 1e-9 <= sampling["expected_rouge_l_upper"] <= expected_upper + 1e-3
        # Forget quality: the KS test of this state's forget truth ratios against the retain model's.
        retain_ratios = samples["retain_model_forget_truth_ratios"]
        assert len(retain_ratios) == len(samples[state]["forget_truth_ratios"]) == len(config_forget_rows(config))
        assert m["forget_quality"] == pytest.approx(ks_2samp(samples[state]["forget_truth_ratios"], retain_ratios).pvalue)
    over = evaluation["after"]["over_unlearning"]
    assert 0 < over["count"] <= config.eval.max_contexts
    assert over["mean_change"] == pytest.approx(over["mean_prob_after"] - over["mean_prob_before"], abs=1e-9)
    # PMC's selling point under sampling: the forget answers leak less after unlearning than before.
    assert evaluation["after"]["sampling"]["mean_rouge_l"] < evaluation["before"]["sampling"]["mean_rouge_l"]


def test_fluency_in_eval_json_is_the_base_models_nll_of_the_saved_answers(smoke_run):
    from statistics import mean

    import torch
    from test_fluency import nll_by_hand
    from transformers import AutoTokenizer

    from pmc_unlearning.evaluation.verdict import BROKEN_KINDS, Verdict
    from pmc_unlearning.models.prompting import PromptFormat, resolve_style

    config, folder = smoke_run
    base_dir = json.loads((folder / "resolved.json").read_text())["model_dir"]
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    prompt = PromptFormat(tokenizer, resolve_style(config.prompt, tokenizer, base_dir))
    references = [(row.question, row.answer) for row in config_forget_rows(config)]
    threshold = max(nll_by_hand(base, prompt, question, answer) for question, answer in references)
    verdict = Verdict.from_references(references)
    evaluation, answers = (json.loads((folder / name).read_text()) for name in ("eval.json", "answers.json"))
    for state in ("before", "after"):
        rows = answers[state]["forget"]
        nll = [nll_by_hand(base, prompt, row["question"], row["answer"]) if row["answer"].strip() else None
               for row in rows]
        fluency = evaluation[state]["fluency"]
        assert fluency["threshold"] == pytest.approx(threshold, rel=1e-4)
        assert fluency["nll_per_token"] == pytest.approx(mean(value for value in nll if value is not None), rel=1e-4)
        expected = [verdict.of(row["question"], row["answer"], row["cut"], value is not None and value > threshold)
                    for row, value in zip(rows, nll)]
        assert fluency["verdicts"] == expected and fluency["rows"] == len(rows)
        assert fluency["broken_share"] == pytest.approx(sum(kind in BROKEN_KINDS for kind in expected) / len(rows))


def test_report_shows_every_part_and_its_figures(smoke_run):
    _, folder = smoke_run
    report = (folder / "report.md").read_text()
    for heading in ("## Greedy answers and TOFU metrics", "## Under sampling", "## Over-unlearning", "## Rounds of unlearning"):
        assert heading in report
    for figure in ("rounds.png", "sampling.png", "over_unlearning.png"):
        assert f"]({figure})" in report
        assert (folder / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_attacks_run_on_the_target_the_unlearned_and_the_retain_model_and_tell_target_from_retain(smoke_run):
    from pmc_unlearning.configs import ATTACK_NAMES

    _, folder = smoke_run
    evaluation = json.loads((folder / "eval.json").read_text())
    target, unlearned = evaluation["before"]["attacks"], evaluation["after"]["attacks"]
    retain = evaluation["retain_model"]["attacks"]
    for results in (target, unlearned, retain):
        assert list(results) == list(ATTACK_NAMES) and all(results[name]["seconds"] >= 0 for name in ATTACK_NAMES)
        # Each attack's own work takes time; extraction reads the token statistics the membership attack computed.
        assert all(results[name]["seconds"] > 0 for name in ATTACK_NAMES if name != "extraction")
    # The target was trained on the forget rows, the retain model never: every attack must see the difference.
    value = lambda figure: figure["value"]
    differs = {
        "relearn": lambda r: value(r["relearn"]["curve"][0]["forget_rouge_l"]),
        "quantize": lambda r: value(r["quantize"]["levels"]["4"]["forget_rouge_l"]),
        "mia": lambda r: value(r["mia"]["auc"]["loss"]),
        "extraction": lambda r: value(r["extraction"]["extraction_strength"]),
        "prompts": lambda r: value(r["prompts"]["prefill"]["forget_rouge_l"]),
    }
    for name, read in differs.items():
        assert read(target) > read(retain), name
    # What a prefilled answer start brings back of the target's answers (1.0 on some CPUs' kernels, 0.84 on others'),
    # the unlearning takes away.
    assert differs["prompts"](unlearned) < differs["prompts"](target)
    assert evaluation["after"]["attacks_headline"]["privleak"] == pytest.approx(
        (value(unlearned["mia"]["auc"][unlearned["mia"]["privleak"]["attack"]])
         - value(retain["mia"]["auc"][unlearned["mia"]["privleak"]["attack"]]))
        / value(retain["mia"]["auc"][unlearned["mia"]["privleak"]["attack"]]))
    # The model was saved before its attacks; its folder holds the model card beside the weights.
    stages = list(evaluation["stage_seconds"])
    assert stages.index("save_model") < stages.index("attacks_after")
    card = (folder / "model" / "README.md").read_text()
    assert card.startswith("---\nbase_model: tiny\n") and "| extraction strength |" in card
    report = (folder / "report.md").read_text()
    assert "## Attacks" in report and "](attacks.png)" in report
    assert (folder / "attacks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def config_forget_rows(config):
    from pmc_unlearning.orchestrator.inputs import load_config_benchmark

    return load_config_benchmark(config).forget


def test_standalone_evaluation_of_the_target_matches_the_runs_before_state(smoke_run, ray_cluster, tmp_path):
    from pmc_unlearning.configs import CONFIG_DIR, load_config
    from pmc_unlearning.orchestrator.pipeline import run_evaluation

    config, folder = smoke_run
    run = json.loads((folder / "eval.json").read_text())
    eval_config = load_config(CONFIG_DIR / "smoke.yaml", [f"model={run['target_model']}", "name=eval",
                                                          f"cache_dir={config.cache_dir}", f"runs_dir={tmp_path}",
                                                          "allow_external_dirs=true",
                                                          "eval.retain_model=false"])  # its figures are not compared
    model = json.loads((run_evaluation(eval_config) / "eval.json").read_text())["model"]
    for key in ("forget_rouge_l", "retain_rouge_l", "model_utility"):
        assert model[key] == pytest.approx(run["before"][key])
    assert model["prob"] == pytest.approx(run["before"]["prob"])
    assert model["sampling"]["mean_rouge_l"] == pytest.approx(run["before"]["sampling"]["mean_rouge_l"])  # seeded
    assert "over_unlearning" not in model  # a change needs two states
    # The target's attacks again, not from the cache: the same numbers, up to the float rounding of another
    # process's thread count (the judged figures aside: they need a retain model, which this evaluation has not).
    same = lambda attacks: rounded({name: {key: value for key, value in result.items()
                                           if key not in ("seconds", "recovered_share", "privleak")}
                                    for name, result in attacks.items()})
    assert same(model["attacks"]) == same(run["before"]["attacks"])


def rounded(value, digits: int = 4):
    """`value` with every float rounded to `digits` decimals, through nested dicts and lists."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(inner, digits) for key, inner in value.items()}
    if isinstance(value, list):
        return [rounded(inner, digits) for inner in value]
    return value


def test_concurrent_jobs_fine_tune_one_target_once(tiny_model, small_bench, ray_cluster, tmp_path, capsys):
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoTokenizer

    from pmc_unlearning.cluster.placement import job_placement
    from pmc_unlearning.configs import CONFIG_DIR, load_config
    from pmc_unlearning.models.prompting import PromptFormat
    from pmc_unlearning.orchestrator.pipeline import ensure_finetuned

    config = load_config(CONFIG_DIR / "smoke.yaml", [f"cache_dir={tmp_path}", "allow_external_dirs=true", "target.epochs=2"])
    prompt = PromptFormat(AutoTokenizer.from_pretrained(tiny_model))
    with job_placement(config) as placement:
        fine_tune = lambda _: ensure_finetuned(tiny_model, small_bench.full, "target", small_bench.fingerprint(), prompt,
                                               config, placement)
        with ThreadPoolExecutor(2) as pool:  # two jobs of one driver; separate processes lock the same way
            (first, built_first), (second, built_second) = pool.map(fine_tune, range(2))
    output = capsys.readouterr().out
    assert first == second and (first / "config.json").is_file() and sorted([built_first, built_second]) == [False, True]
    assert output.count("target model: fine-tuning") == 1 and output.count("target model: cached at") == 1


def test_target_measurement_is_cached_under_everything_it_depends_on(tiny_model, chat_tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from pmc_unlearning.configs import load_config
    from pmc_unlearning.evaluation.result import Measurement
    from pmc_unlearning.models.prompting import PromptFormat
    from pmc_unlearning.orchestrator.pipeline import measure_target_once

    calls = []

    def measure():
        calls.append(1)
        return Measurement({"forget_rouge_l": 0.25 * len(calls)}, {"forget": []}, [0.5], [[0.1, 1 / 3]], [])

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    plain, chat = PromptFormat(tokenizer, "plain"), PromptFormat(AutoTokenizer.from_pretrained(chat_tiny_model), "chat")
    settings = [f"cache_dir={tmp_path}", "allow_external_dirs=true"]
    config = load_config(None, settings)
    first = measure_target_once(tiny_model, plain, config, "rows", measure)
    assert measure_target_once(tiny_model, plain, config, "rows", measure) == first == measure_target_once(
        tiny_model, plain, load_config(None, [*settings, "pmc.lr=1e-3", "method=npo", "eval.retain_model=true"]),
        "rows", measure)
    assert len(calls) == 1 and first.sample_scores == [[0.1, 1 / 3]]  # unlearning settings do not matter
    from pmc_unlearning.models.hardware import resolve_precision

    other_precision = "fp32" if resolve_precision("auto") == "bf16" else "bf16"  # what "auto" is not, here
    for changed in ("eval.sampling_n=8", "engine.max_new_tokens=9", "data.seed=1", f"precision={other_precision}"):
        measure_target_once(tiny_model, plain, load_config(None, [*settings, changed]), "rows", measure)
    measure_target_once(tiny_model, chat, config, "rows", measure)
    measure_target_once(tiny_model, plain, config, "other rows", measure)  # a data file edited in place
    assert len(calls) == 7
