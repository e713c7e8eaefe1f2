"""Forget requests on a given target: what each form of request costs and keeps, on the built-in benchmark.

    .venv/bin/python scripts/request_study.py --default-run runs/<a finished default job> [--seeds 0 1 2]

The target is the default job's (SmolLM2-135M-Instruct fine-tuned on the built-in 20-author benchmark), given
as MODEL with target.finetune=false:
  (a) the full benchmark rows, through the benchmark path: eval.json compared with the default job's, number by
      number (times aside): the same figures without a fine-tune;
  (b) forget questions and answers (JSON Lines), (c) forget questions only with KEEP questions only (the
      benchmark's retain questions, no answers), (d) forget questions only, no KEEP (the default retain set: the
      neighbour questions and the built-in general questions), (general) forget questions only with KEEP = the
      built-in general questions alone (what the default was before the neighbours): each over the seeds, with the unlearned model's retain ROUGE-L on the benchmark's retain split
      measured aside (`eval` on its model/, the same rows the default job's evaluation used);
then two requests in sequence: (d)'s first seed's model unlearns the questions of two other authors, and the
first request's questions are checked after it. Prints one table; every run stays in runs/request-*.
Attacks are left out of (b)-(d) and the sequence (eval.attacks.run=[]) to keep the study short; (a) runs them.
`--cases` and `--seeds` split the study (two side by side, PMC_THREADS=1 each); `--table` runs nothing and prints
(b)-(d) from the runs already made, mean ± std over the seeds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pmc_unlearning.configs import load_config
from pmc_unlearning.data.general_questions import GENERAL_QUESTIONS
from pmc_unlearning.orchestrator.inputs import load_config_benchmark

PROJECT = Path(__file__).resolve().parents[1]
NO_ATTACKS = ["eval.attacks.run=[]"]
GREEDY_ONLY = ["eval.max_contexts=0", "eval.sampling_n=1"]  # the aside evaluation reads greedy figures only
CASES = ("a", "b", "c", "d", "general", "second")
SEED_CASES = ("b", "c", "d", "general")
TIME_KEYS = ("seconds", "wall_time_s", "stage_seconds", "eval_seconds")


def orchestrator(command: str, settings: list[str]) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]
    subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", command, *args], cwd=PROJECT, check=True)


def evaluation(name: str) -> dict:
    return json.loads((PROJECT / "runs" / name / "eval.json").read_text())


def differences(ours, theirs, path: str = "") -> list[str]:
    """The paths at which two eval.json trees differ, times and the fields only one of them has aside."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [found for key in ours.keys() & theirs.keys() if not any(word in key for word in TIME_KEYS)
                for found in differences(ours[key], theirs[key], f"{path}.{key}")]
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [found for i, (a, b) in enumerate(zip(ours, theirs)) for found in differences(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {ours!r} != {theirs!r}"]


def write_requests(folder: Path) -> dict[str, list[str]]:
    """The request files of (b)-(d) and of the second request, from the built-in benchmark: {case: settings}."""
    bench = load_config_benchmark(load_config(PROJECT / "configs" / "default.yaml"))
    (folder / "forget.jsonl").write_text("".join(json.dumps({"question": r.question, "answer": r.answer}) + "\n"
                                                 for r in bench.forget))
    (folder / "forget.txt").write_text("".join(r.question + "\n" for r in bench.forget))
    (folder / "keep.txt").write_text("".join(r.question + "\n" for r in bench.retain))
    (folder / "general.txt").write_text("".join(question + "\n" for question in GENERAL_QUESTIONS))
    forgotten = {r.question for r in bench.forget}
    others = [r for r in bench.full if r.question not in forgotten][:len(bench.forget)]  # the next two authors
    (folder / "second.txt").write_text("".join(r.question + "\n" for r in others))
    return {"b": [f"data.forget={folder / 'forget.jsonl'}"],
            "c": [f"data.forget={folder / 'forget.txt'}", f"data.keep={folder / 'keep.txt'}"],
            "d": [f"data.forget={folder / 'forget.txt'}"],
            "general": [f"data.forget={folder / 'forget.txt'}", f"data.keep={folder / 'general.txt'}"],
            "second": [f"data.forget={folder / 'second.txt'}"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-run", type=Path, required=True, help="a finished default job's run folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES,
                        help="which parts to run (two studies side by side: split the cases between them)")
    parser.add_argument("--table", action="store_true", help="run nothing: the table of the runs already made, "
                                                             "per case, mean and std over the seeds")
    args = parser.parse_args()
    default = json.loads((args.default_run / "eval.json").read_text())
    target = default["target_model"]
    given = [f"model={target}", "target.finetune=false", "allow_external_dirs=true"]
    target_retain = default["before"]["retain_rouge_l"]
    if args.table:
        summary_table(args.cases, args.seeds, target_retain)
        return

    if "a" in args.cases:
        orchestrator("unlearn", [*given, "eval.retain_base=smollm2-135m", "name=request-a"])
        changed = differences(evaluation("request-a"), default)
        print(f"(a) full rows, target given: {len(changed)} figures differ from {args.default_run}/eval.json"
              + "".join(f"\n    {line}" for line in changed[:20]))

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = write_requests(Path(folder))
        for case in [case for case in SEED_CASES if case in args.cases]:
            for seed in args.seeds:
                name = f"request-{case}-seed-{seed}"
                orchestrator("unlearn", [*given, *files[case], *NO_ATTACKS, f"pmc.seed={seed}", f"name={name}"])
                orchestrator("eval", [f"model=runs/{name}/model", f"name={name}-aside", *NO_ATTACKS, *GREEDY_ONLY,
                                      "allow_external_dirs=true"])
                rows.append((case, seed, evaluation(name), evaluation(f"{name}-aside")))
        if "second" in args.cases:
            first = f"request-d-seed-{args.seeds[0]}"
            orchestrator("unlearn", [f"model=runs/{first}/model", "target.finetune=false", *files["second"],
                                     *NO_ATTACKS, "name=request-second", "allow_external_dirs=true"])
    if rows:
        print_table(rows, target_retain)
    if "second" in args.cases:
        print_second()


def print_second() -> None:
    second = evaluation("request-second")
    own = second["after"]
    print(f"second request (run request-second): its own forget ROUGE-L {own['forget_rouge_l']:.3f}, leak share "
          f"{own['sampling']['leak_share']:.3f}")
    for earlier in second["earlier_requests"]:
        sampling = earlier.get("sampling", {})
        print(f"  the first request after it ({earlier['run']}, {earlier.get('rows')} questions): forget ROUGE-L "
              f"{earlier.get('forget_rouge_l')}, leak share {sampling.get('leak_share')} (upper "
              f"{sampling.get('leak_share_upper')}){'; ' + earlier['not_measured'] if 'not_measured' in earlier else ''}")


def summary_table(cases: list[str], seeds: list[int], target_retain: float) -> None:
    """Per case: forget ROUGE-L, leak share, retain aside (% of the target's) as mean ± std over the seeds found."""
    print("| case | seeds | forget ROUGE-L | leak share | retain aside, % of the target's | unlearning s | evaluation "
          "after s | job s |")
    print("|---|---|---|---|---|---|---|---|")
    for case in [case for case in SEED_CASES if case in cases]:
        found = [seed for seed in seeds if (PROJECT / "runs" / f"request-{case}-seed-{seed}-aside" / "eval.json").is_file()]
        runs = [evaluation(f"request-{case}-seed-{seed}") for seed in found]
        asides = [evaluation(f"request-{case}-seed-{seed}-aside")["model"] for seed in found]
        figures = [[run["after"]["forget_rouge_l"] for run in runs], [run["after"]["sampling"]["leak_share"] for run in runs],
                   [100 * aside["retain_rouge_l"] / target_retain for aside in asides],
                   [run["stage_seconds"]["unlearning"] for run in runs], [run["stage_seconds"]["eval_after"] for run in runs],
                   [run["wall_time_s"] for run in runs]]
        if found:
            print(f"| {case} | {' '.join(map(str, found))} | "
                  + " | ".join(mean_std(values, digits) for values, digits in zip(figures, (3, 3, 1, 0, 0, 0))) + " |")


def mean_std(values: list[float], digits: int) -> str:
    mean = f"{statistics.mean(values):.{digits}f}"
    return f"{mean} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else mean


def print_table(rows: list[tuple[str, int, dict, dict]], target_retain: float) -> None:
    print("| case | seed | forget ROUGE-L (vs reference) | leak share (upper) | retain ROUGE-L aside (% of target) | "
          "forget ROUGE-L aside (vs TOFU answers) | seconds per stage |")
    print("|---|---|---|---|---|---|---|")
    for case, seed, run, aside in rows:
        after, model = run["after"], aside["model"]
        stages = ", ".join(f"{stage} {seconds:.0f}" for stage, seconds in run["stage_seconds"].items())
        print(f"| {case} | {seed} | {after['forget_rouge_l']:.3f} | {after['sampling']['leak_share']:.3f} "
              f"({after['sampling']['leak_share_upper']:.3f}) | {model['retain_rouge_l']:.3f} "
              f"({100 * model['retain_rouge_l'] / target_retain:.1f} %) | {model['forget_rouge_l']:.3f} | {stages} |")


if __name__ == "__main__":
    main()
