"""The search behind each baseline's default settings: a grid per method, scored by one trade-off.

    .venv/bin/python scripts/tune_baselines.py                       # default model, the grids below
    .venv/bin/python scripts/tune_baselines.py --config configs/smoke.yaml --grid idk:baseline.lr=1e-3,3e-3

Every point is a real run of the method on the cached target model, with the same number of optimizer
steps and retain pairing as `make compare` (`orchestrator.baselines.unlearn_baseline`), in one process: the
Trainer and the vLLM Sampler are the plain classes, a new Trainer per point. Each point is scored by greedy
answers only (the cheap part of the evaluation), on a retain subset drawn with another seed than the one
`make compare` reports on:

    trade-off = harmonic mean of (1 - forget ROUGE-L) and (utility / the target's utility)

so a point must both forget and keep what it knew; the best point per method is printed as the
`method_settings` block for the preset, and the whole table is written to runs/tune-<name>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs import CONFIG_DIR, load_config  # noqa: E402
from engine import Sampler  # noqa: E402
from evaluation.greedy import build_eval_set, evaluate  # noqa: E402
from orchestrator.actors import trainer_settings  # noqa: E402
from orchestrator.baselines import forget_targets, unlearn_baseline  # noqa: E402
from orchestrator.pipeline import ensure_finetuned, greedy_answerer, prepare, ray_session  # noqa: E402
from trainer import Trainer  # noqa: E402

GRIDS = {  # method -> (setting, values): the search behind configs/default.yaml's method_settings
    "grad_ascent": ("baseline.lr", ["1.0e-5", "3.0e-5", "5.0e-5", "1.0e-4"]),
    "grad_diff": ("baseline.lr", ["1.0e-5", "3.0e-5", "5.0e-5", "1.0e-4"]),
    "idk": ("baseline.lr", ["1.0e-5", "3.0e-5", "1.0e-4", "3.0e-4"]),
    "npo": ("baseline.lr", ["3.0e-5", "1.0e-4", "2.0e-4", "3.0e-4"]),
    "simnpo": ("baseline.lr", ["3.0e-5", "1.0e-4", "3.0e-4", "1.0e-3"]),
}


def harmonic(a: float, b: float) -> float:
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def parse_grid(text: str) -> tuple[str, tuple[str, list[str]]]:
    method, _, rest = text.partition(":")
    key, _, values = rest.partition("=")
    if not (method and key and values):
        raise SystemExit(f"--grid {text!r}: expected method:key.sub=v1,v2,...")
    return method, (key, values.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIG_DIR / "default.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--grid", action="append", default=[], metavar="METHOD:KEY=V1,V2",
                        help="replaces the built-in grids (repeatable, one per method)")
    args = parser.parse_args()
    grids = dict(map(parse_grid, args.grid)) if args.grid else GRIDS
    base = load_config(args.config, args.overrides)
    bench, base_dir, prompt = prepare(base)
    with ray_session():
        target = ensure_finetuned(base_dir, bench.full, "target", bench.fingerprint(), prompt, base)
    sampler = Sampler(target, base.engine)
    dtype = sampler.weight_dtype()
    eval_set = build_eval_set(bench, base.eval.retain_subset, base.eval.seed + 1)  # not the reported subset

    def greedy_metrics(trainer: Trainer) -> dict:
        sampler.load_weights(trainer.export_weights(dtype))
        return evaluate(eval_set, greedy_answerer(sampler, prompt))["metrics"]

    target_utility = greedy_metrics(Trainer(target, **trainer_settings(base, seed=0)))["utility"]
    retain = [prompt.example(row.question, row.answer) for row in bench.retain]
    points = []
    print(f"{'method':<12} {'setting':<22} {'forget':>7} {'utility':>8} {'trade-off':>9} {'seconds':>8}", flush=True)
    for method, (key, values) in grids.items():
        forget = forget_targets(method, prompt, bench.forget)
        for value in values:
            config = load_config(args.config, [*args.overrides, f"{key}={value}", f"method={method}"])
            started = time.perf_counter()
            trainer = Trainer(target, **trainer_settings(config, config.pmc.seed))
            unlearn_baseline(method, sampler, trainer, forget, retain, config.pmc, config.baseline, dtype)
            metrics = greedy_metrics(trainer)
            point = {"method": method, "setting": f"{key}={value}", "forget_rouge_l": metrics["forget_rouge_l"],
                     "utility_ratio": metrics["utility"] / target_utility,
                     "seconds": round(time.perf_counter() - started, 1)}
            point["trade_off"] = harmonic(1 - point["forget_rouge_l"], point["utility_ratio"])
            points.append(point)
            print(f"{method:<12} {point['setting']:<22} {point['forget_rouge_l']:>7.3f} {point['utility_ratio']:>8.3f} "
                  f"{point['trade_off']:>9.3f} {point['seconds']:>8.1f}", flush=True)
    best = {m: max((p for p in points if p["method"] == m), key=lambda p: p["trade_off"]) for m in grids}
    out = base.runs_dir / f"tune-{base.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": base.resolved(), "target_utility": target_utility, "points": points,
                               "best": {m: p["setting"] for m, p in best.items()}}, indent=1) + "\n")
    print(f"\nwritten: {out}\nmethod_settings:")
    for method, point in best.items():
        print(f"  {method}: [\"{point['setting']}\"]   # trade-off {point['trade_off']:.3f}")


if __name__ == "__main__":
    main()
