"""The whole unlearning job, as a recipe: data, model, target fine-tune, PMC on Ray, evaluation, report."""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ray
from transformers import AutoTokenizer

from configs import RunConfig
from data import Benchmark, load_benchmark
from evaluation.greedy import build_eval_set, evaluate
from evaluation.report import write_report
from models import fingerprint_folder, resolve_model
from models.hardware import resolve_precision
from models.prompting import encode_example, encode_prompt
from orchestrator.actors import actor_options, start_sampler, start_trainer
from orchestrator.pmc import unlearn
from orchestrator.run_folder import RunFolder
from orchestrator.timing import StageTimer
from trainer.finetune import finetune_target, target_cache_key


def run_unlearning(config: RunConfig) -> Path:
    started = time.perf_counter()
    timer = StageTimer()
    run = RunFolder(config)
    print(f"run folder (while running): {run.path}", flush=True)

    with timer("setup"):
        bench = load_benchmark(config.data.source, config.data.forget_split, seed=config.data.seed,
                               num_authors=config.data.num_authors, facts_per_author=config.data.facts_per_author)
        base_dir = resolve_model(config.model, config.cache_dir, tokenizer_corpus=benchmark_texts(bench))
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        eval_set = build_eval_set(bench, config.eval.retain_subset, config.eval.seed)
        forget_prompts = [encode_prompt(tokenizer, row.question) for row in bench.forget]
        retain = [encode_example(tokenizer, row.question, row.answer) for row in bench.retain]

    with ray_session():
        with timer("target_finetune"):
            target_dir = ensure_target_model(base_dir, bench, config)
        with timer("engine_start"):
            sampler = start_sampler(target_dir, config)
            trainer = start_trainer(target_dir, config, seed=config.pmc.seed)
            engine_dtype = sampler.weight_dtype()  # also waits until the engine is up
            answer = greedy_answerer(sampler, tokenizer)
        with timer("eval_before"):
            before = evaluate(eval_set, answer)
        originals = [row["answer"] for row in before["answers"]["forget"]]
        print(f"target model: {before['metrics']}", flush=True)

        with timer("unlearning"):
            def log_round(record: dict) -> None:
                run.append_metrics(record)
                print(f"round {record['epoch']}: score {record['selected_score_mean']:.3f}, "
                      f"at zero {record['questions_at_zero']}/{len(forget_prompts)}, {record['seconds']}", flush=True)
            unlearn(sampler, trainer, forget_prompts, originals, retain, config.pmc, engine_dtype, log_round)

        with timer("eval_after"):
            after = evaluate(eval_set, answer)
        with timer("save_model"):
            trainer.save(str((run.path / "model").resolve()))
    print(f"after PMC: {after['metrics']}", flush=True)

    evaluation = {
        "before": before["metrics"],
        "after": after["metrics"],
        "wall_time_s": round(time.perf_counter() - started, 2),
        "stage_seconds": timer.seconds,
        "target_model": str(target_dir),
    }
    run.write_json("eval.json", evaluation)
    run.write_json("answers.json", {"before": before["answers"], "after": after["answers"]})
    rounds = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    examples = [{"question": b["question"], "before": b["answer"], "after": a["answer"]}
                for b, a in zip(before["answers"]["forget"], after["answers"]["forget"])]
    write_report(run.path / "report.md", f"PMC unlearning run '{config.name}' ({config.model})", evaluation, rounds, examples)
    return run.finish()


def benchmark_texts(bench: Benchmark) -> list[str]:
    """Every string of the benchmark: the corpus a locally trained tokenizer learns from."""
    rows = bench.full + bench.world_facts + bench.real_authors
    return [text for row in rows for text in (row.question, row.answer, row.paraphrased_question,
                                              row.paraphrased_answer, *row.perturbed_answer) if text]


def target_model_dir(base_dir: Path, bench: Benchmark, config: RunConfig) -> Path:
    """Where the target model for this base model, data and fine-tune setting is (or will be) cached."""
    precision = resolve_precision(config.precision)
    key = target_cache_key(fingerprint_folder(base_dir), bench.fingerprint(), config.target, precision)
    return (config.cache_dir / "targets" / key).resolve()


def ensure_target_model(base_dir: Path, bench: Benchmark, config: RunConfig) -> Path:
    """The base model fine-tuned on the full split: from the cache, or trained now (as a Ray task)."""
    target_dir = target_model_dir(base_dir, bench, config)
    if (target_dir / "config.json").is_file():
        print(f"target model: cached at {target_dir}", flush=True)
        return target_dir
    print(f"target model: fine-tuning {base_dir} on {len(bench.full)} rows -> {target_dir}", flush=True)
    pairs = [(row.question, row.answer) for row in bench.full]
    task = ray.remote(finetune_target).options(**actor_options(config))
    log = ray.get(task.remote(str(base_dir), pairs, config.target, str(target_dir),
                              resolve_precision(config.precision), config.threads))
    print(f"target model: final loss {log[-1]['loss']:.4f} after {log[-1]['elapsed_s']} s", flush=True)
    return target_dir


def greedy_answerer(sampler, tokenizer):
    def answer(questions: list[str]) -> list[str]:
        return [c.text.strip() for c in sampler.greedy([encode_prompt(tokenizer, q) for q in questions])]
    return answer


@contextmanager
def ray_session() -> Iterator[None]:
    """Join the cluster named by RAY_ADDRESS, or start (and later stop) a local Ray instance."""
    if ray.is_initialized():
        yield
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()
