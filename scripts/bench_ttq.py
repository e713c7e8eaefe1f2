"""Time to a forgotten model: the project's PMC job against the reference-style loop (scripts/reference_pmc.py),
same target, same settings, back to back; prints both loops' times, their ratio and both after-metrics.

    make bench-ttq [CONFIG=configs/default.yaml] [SET="pmc.stop.patience=2 ..."]

1. `python -m pmc_unlearning.orchestrator unlearn` on CONFIG (run `ttq-project`): its unlearning stage is the project's loop
   (the target and its evaluation come from the cache, or are built first).
2. The reference-style loop on the same target folder, forget prompts, original answers and retain rows,
   with the same PMC settings; its model is saved and evaluated by `python -m pmc_unlearning.orchestrator eval` (run
   `ttq-reference`), the same evaluation the project's run got.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from reference_pmc import reference_unlearn  # this script's neighbour (scripts/ is the script's own path)
from transformers import AutoTokenizer

from pmc_unlearning.configs import load_config
from pmc_unlearning.orchestrator.pipeline import prepare

PROJECT = Path(__file__).resolve().parents[1]

HEADLINE = ("forget_rouge_l", "retain_rouge_l", "model_utility")
SAMPLED = ("max_rouge_l", "leak_share")  # evaluation under sampling


def orchestrator(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", *args], cwd=PROJECT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--set", action="append", default=[], help="key=value, for both loops")
    args = parser.parse_args()
    overrides = [item for setting in args.set for item in ("--set", setting)]
    config = load_config(PROJECT / args.config, args.set)
    runs = PROJECT / config.runs_dir

    orchestrator("unlearn", "--config", args.config, *overrides, "--set", "name=ttq-project")
    project = json.loads((runs / "ttq-project" / "eval.json").read_text())
    answers = json.loads((runs / "ttq-project" / "answers.json").read_text())
    target_dir = Path(project["target_model"])

    bench, _, prompt = prepare(config)
    forget_prompts = [prompt.prompt(row.question) for row in bench.forget]
    retain = [prompt.example(row.question, row.answer) for row in bench.retain]
    originals = [row["answer"] for row in answers["before"]["forget"]]
    started = time.perf_counter()
    model, seconds = reference_unlearn(target_dir, forget_prompts, originals, retain, config.pmc,
                                       config.engine.max_new_tokens)
    reference_loop = time.perf_counter() - started
    folder = runs / "ttq-reference-model"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(target_dir).save_pretrained(folder)
    prompt.record(folder)
    orchestrator("eval", "--config", args.config, *overrides, "--set", f"model={folder}", "--set", "name=ttq-reference")
    reference = json.loads((runs / "ttq-reference" / "eval.json").read_text())

    project_loop = project["stage_seconds"]["unlearning"]
    rows = [("loop seconds", f"{project_loop:.1f}", f"{reference_loop:.1f}"),
            ("  of which sampling", "", f"{seconds['sampling']:.1f}"),
            ("  of which training", "", f"{seconds['training']:.1f}"),
            ("engine start (project only)", f"{project['stage_seconds']['engine_start']:.1f}", ""),
            *[(f"{key} (target {project['before'][key]:.3f})", f"{project['after'][key]:.3f}",
               f"{reference['model'][key]:.3f}") for key in HEADLINE if project["before"].get(key) is not None],
            *[(f"sampled {key} (target {project['before']['sampling'][key]:.3f})",
               f"{project['after']['sampling'][key]:.3f}", f"{reference['model']['sampling'][key]:.3f}")
              for key in SAMPLED]]
    print(f"\n{'':38}{'project':>10}{'reference':>11}")
    for name, ours, theirs in rows:
        print(f"{name:38}{ours:>10}{theirs:>11}")
    print(f"ratio project / reference loop: {project_loop / reference_loop:.2f} "
          f"({(project_loop + project['stage_seconds']['engine_start']) / reference_loop:.2f} with the engine start)")
    retained = project["after"]["retain_rouge_l"] / project["before"]["retain_rouge_l"]
    print(f"project: forget ROUGE-L {project['after']['forget_rouge_l']:.3f} (<= 0.05: "
          f"{'yes' if project['after']['forget_rouge_l'] <= 0.05 else 'no'}), retain {retained:.0%} of the target's")


if __name__ == "__main__":
    main()
