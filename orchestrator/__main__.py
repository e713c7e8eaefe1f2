"""Command line: `python -m orchestrator {unlearn,eval,compare} [--config FILE] [--set key.sub=value ...]`
and `python -m orchestrator batch BATCH_FILE [--set key.sub=value ...]`.

unlearn: target fine-tune (cached), unlearning (PMC, or `method=` a baseline), full evaluation, report.
eval:    the full evaluation of a model folder as it is (MODEL=...), same eval.json and report.
compare: every method of --methods on the same target model, as a batch, in runs/compare-<name>/.
batch:   the trials of a batch file (configs/batch/) on Ray Tune, report in runs/<batch>/ (--set: every trial).

Bad input (config, data, model folder, arguments) is refused before anything is written: one line
`error: ...` naming the culprit, exit code 2. A job that fails later (an actor died) exits with 1.
"""
from __future__ import annotations

import argparse
import json
import sys

from configs import CONFIG_DIR, METHODS, ConfigError, load_method_config
from configs.batch import Batch, load_batch
from data import DataError
from models import ModelError
from orchestrator.errors import JobError
from orchestrator.inputs import check_inputs
from telemetry.console import captured, show, summary_lines


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, like every other refusal (argparse would print the usage first); --help shows the usage."""
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m orchestrator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("unlearn", "target fine-tune (cached), unlearning, evaluation, report"),
                       ("eval", "evaluate a model folder without unlearning"),
                       ("compare", "every method on the same target, side by side")):
        job = commands.add_parser(name, help=text)
        job.add_argument("--config", default=str(CONFIG_DIR / "default.yaml"), help="YAML preset (default: %(default)s)")
        job.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override one setting, e.g. --set pmc.epochs=5 (repeatable)")
        if name == "compare":
            job.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: %(default)s)")
    batch_command = commands.add_parser("batch", help="a batch file's trials on Ray Tune")
    batch_command.add_argument("file", help="batch file, e.g. configs/batch/smoke.yaml")
    batch_command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting of every trial (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.command in ("batch", "compare"):
            if args.command == "batch":
                batch = load_batch(args.file, args.overrides)
            else:
                from orchestrator.compare import comparison_batch

                batch = comparison_batch(args.config, args.overrides, chosen_methods(args.methods))
            check_batch_inputs(batch)
            from orchestrator.batch import run_batch

            folder = run_batch(batch)
        else:
            config = load_method_config(args.config, args.overrides)
            check_inputs(config)  # data and model folder, in a second: the job's heavy imports come after
            # From the imports on, what the libraries print goes to the run's log.txt, not the console
            # (VERBOSE=1: both); the console gets progress bars and the summary (telemetry/console.py).
            with captured():
                from orchestrator.pipeline import run_evaluation, run_unlearning  # heavy imports once the config is sound

                folder = (run_unlearning if args.command == "unlearn" else run_evaluation)(config)
                for line in summary_lines(json.loads((folder / "eval.json").read_text()), folder):
                    show(line)
    except (ConfigError, DataError, ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except JobError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"done: {folder}/report.md")
    return 0


def check_batch_inputs(batch: Batch) -> None:
    """Every trial's data and model folder, checked before the first trial starts (each distinct pair once)."""
    seen = set()
    for trial in batch.trials:
        config = batch.trial_config(trial)
        key = (config.model, config.data)
        if key not in seen:
            seen.add(key)
            check_inputs(config)


def chosen_methods(text: str) -> list[str]:
    """The methods of `--methods a,b`, checked before anything runs: a comparison needs at least one, and
    a method given twice would run twice into the same folder."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    valid = ", ".join(METHODS)
    if not methods:
        raise ConfigError(f"--methods: no method given; valid ones are {valid}")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"--methods: unknown {unknown}; valid ones are {valid}")
    repeated = sorted({m for m in methods if methods.count(m) > 1})
    if repeated:
        raise ConfigError(f"--methods: {repeated} given more than once")
    return methods


if __name__ == "__main__":
    sys.exit(main())
