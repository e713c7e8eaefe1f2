"""The search behind each baseline's default settings: a grid per method, scored by one trade-off.

    .venv/bin/python scripts/tune_baselines.py                       # default model, the grids below
    .venv/bin/python scripts/tune_baselines.py --config configs/smoke.yaml --grid idk:baseline.lr=1e-3,3e-3

The search is a Ray Tune grid search: one trial per point (and one for the target model itself), each in a
placement group of its own like a batch trial (cluster/placement.py), `--concurrent` at a time. Every
point is a real run of the method on the cached target model, with the same number of optimizer steps and
retain pairing as `make compare` (`methods.rounds.run_rounds`), on the sampler and trainer
actors of a job. Each point is scored by greedy answers only (the cheap part of the evaluation), on a retain
subset drawn with another seed than the one `make compare` reports on:

    trade-off = harmonic mean of (1 - forget ROUGE-L) and (utility / the target's utility)

so a point must both forget and keep what it knew; the best point per method is printed as the
`method_settings` block for the preset, and the whole table is written to runs/tune-<name>.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ray import tune

from pmc_unlearning.cluster.actors import release
from pmc_unlearning.cluster.bundles import bundle_cpus, trial_bundles
from pmc_unlearning.cluster.groups import start_samplers, start_trainers
from pmc_unlearning.cluster.placement import cluster_has_gpus, job_placement
from pmc_unlearning.cluster.session import ray_session
from pmc_unlearning.cluster.weight_sync import sync_weights
from pmc_unlearning.configs import CONFIG_DIR, load_config
from pmc_unlearning.evaluation.greedy import build_eval_set, evaluate
from pmc_unlearning.methods import make_method
from pmc_unlearning.methods.method import Task
from pmc_unlearning.methods.rounds import run_rounds
from pmc_unlearning.orchestrator.batch import TRIAL_ENV
from pmc_unlearning.orchestrator.pipeline import ensure_finetuned, greedy_answerer, prepare

GRIDS = {  # method -> (setting, values): the search behind configs/default.yaml's method_settings
    "grad_ascent": ("baseline.lr", ["1.0e-5", "3.0e-5", "5.0e-5", "1.0e-4"]),
    "grad_diff": ("baseline.lr", ["1.0e-5", "3.0e-5", "5.0e-5", "1.0e-4"]),
    "idk": ("baseline.lr", ["1.0e-5", "3.0e-5", "1.0e-4", "3.0e-4"]),
    "npo": ("baseline.lr", ["3.0e-5", "1.0e-4", "2.0e-4", "3.0e-4"]),
    "simnpo": ("baseline.lr", ["3.0e-5", "1.0e-4", "3.0e-4", "1.0e-3"]),
    "dpo": ("baseline.lr", ["1.0e-5", "3.0e-5", "1.0e-4", "3.0e-4"]),  # IDK's grid: it too fine-tunes on refusals
    "rmu": ("baseline.lr", ["3.0e-5", "1.0e-4", "3.0e-4", "1.0e-3"]),  # only three weight matrices train
}
TARGET = "target"  # the point that scores the target model itself: each trade-off's reference


def harmonic(a: float, b: float) -> float:
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def parse_grid(text: str) -> tuple[str, tuple[str, list[str]]]:
    method, _, rest = text.partition(":")
    key, _, values = rest.partition("=")
    if not (method and key and values):
        raise SystemExit(f"--grid {text!r}: expected method:key.sub=v1,v2,...")
    return method, (key, values.split(","))


def score_point(params: dict) -> None:
    """One point, in its Tune trial: the method with its setting on the target, then the greedy metrics."""
    point = params["point"]
    config = load_config(params["config"], [*params["overrides"], *point["overrides"]])
    bench, base_dir, prompt = prepare(config)
    eval_set = build_eval_set(bench, config.eval.retain_subset, config.eval.seed + 1)  # not the reported subset
    started = time.perf_counter()
    with job_placement(config) as placement:
        target, _ = ensure_finetuned(base_dir, bench.full, "target", bench.fingerprint(), prompt, config, placement)
        sampler = start_samplers(target, config, placement)
        trainer = start_trainers(target, config, placement, seed=config.pmc.seed)
        try:
            dtype = sampler.weight_dtype()
            if point["method"] != TARGET:
                retain = [prompt.example(row.question, row.answer) for row in bench.retain]
                run_rounds(make_method(config, Task(prompt, bench.forget, retain)), sampler, trainer, dtype)
            sync_weights(trainer, sampler, dtype)
            metrics = evaluate(eval_set, greedy_answerer(sampler, prompt))["metrics"]
        finally:
            release(*sampler.members, *trainer.members)
    tune.report({"forget_rouge_l": metrics["forget_rouge_l"], "utility": metrics["utility"],
                 "seconds": round(time.perf_counter() - started, 1)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIG_DIR / "default.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--grid", action="append", default=[], metavar="METHOD:KEY=V1,V2",
                        help="replaces the built-in grids (repeatable, one per method)")
    parser.add_argument("--concurrent", type=int, default=2, help="points run at a time (default: %(default)s)")
    args = parser.parse_args()
    grids = dict(map(parse_grid, args.grid)) if args.grid else GRIDS
    config_path = str(Path(args.config).resolve())
    base = load_config(config_path, args.overrides)
    runs_dir = base.runs_dir.resolve()
    overrides = [*args.overrides, f"cache_dir={base.cache_dir.resolve()}", "allow_external_dirs=true"]
    # Each point under a name of its own: its actors are named after it (cluster/actors.py).
    points = [{"method": TARGET, "setting": "", "overrides": [f"name={base.name}-{TARGET}"]}]
    points += [{"method": method, "setting": f"{key}={value}",
                "overrides": [f"{key}={value}", f"method={method}", f"name={base.name}-{method}-{i}-{j}"]}
               for i, (method, (key, values)) in enumerate(grids.items()) for j, value in enumerate(values)]
    bundles = trial_bundles(base, 1.0, gpus=False)
    with ray_session(num_cpus=args.concurrent * bundle_cpus(bundles), env=TRIAL_ENV):
        bundles = trial_bundles(base, 1.0, cluster_has_gpus())
        results = tune.Tuner(
            tune.with_resources(score_point, tune.PlacementGroupFactory(bundles, strategy="PACK")),
            param_space={"point": tune.grid_search(points), "config": config_path, "overrides": overrides},
            tune_config=tune.TuneConfig(max_concurrent_trials=args.concurrent),
            run_config=tune.RunConfig(name=f"tune-{base.name}", storage_path=str(runs_dir), verbose=1),
        ).fit()
    failed = [result.config["point"]["setting"] or TARGET for result in results if result.error]
    if failed:
        raise SystemExit(f"points failed: {failed} (see {runs_dir / f'tune-{base.name}'})")
    scored = [{**result.config["point"], **result.metrics} for result in results]
    target_utility = next(p["utility"] for p in scored if p["method"] == TARGET)
    table = []
    print(f"{'method':<12} {'setting':<22} {'forget':>7} {'utility':>8} {'trade-off':>9} {'seconds':>8}")
    for p in (p for p in scored if p["method"] != TARGET):
        point = {"method": p["method"], "setting": p["setting"], "forget_rouge_l": p["forget_rouge_l"],
                 "utility_ratio": p["utility"] / target_utility, "seconds": p["seconds"]}
        point["trade_off"] = harmonic(1 - point["forget_rouge_l"], point["utility_ratio"])
        table.append(point)
        print(f"{point['method']:<12} {point['setting']:<22} {point['forget_rouge_l']:>7.3f} {point['utility_ratio']:>8.3f} "
              f"{point['trade_off']:>9.3f} {point['seconds']:>8.1f}")
    best = {m: max((p for p in table if p["method"] == m), key=lambda p: p["trade_off"]) for m in grids}
    out = runs_dir / f"tune-{base.name}.json"
    out.write_text(json.dumps({"config": base.resolved(), "target_utility": target_utility, "points": table,
                               "best": {m: p["setting"] for m, p in best.items()}}, indent=1) + "\n")
    print(f"\nwritten: {out}\nmethod_settings:")
    for method, point in best.items():
        print(f"  {method}: [\"{point['setting']}\"]   # trade-off {point['trade_off']:.3f}")


if __name__ == "__main__":
    main()
