"""Command line: `python -m orchestrator {unlearn,eval} [--config FILE] [--set key.sub=value ...]`.

unlearn: target fine-tune (cached), PMC unlearning, full evaluation before and after, report.
eval:    the full evaluation of a model folder as it is (MODEL=...), same eval.json and report.
"""
from __future__ import annotations

import argparse
import sys

from configs import CONFIG_DIR, ConfigError, load_config
from data import DataError
from models import ModelError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("unlearn", "target fine-tune (cached), PMC unlearning, evaluation, report"),
                       ("eval", "evaluate a model folder without unlearning")):
        job = commands.add_parser(name, help=text)
        job.add_argument("--config", default=str(CONFIG_DIR / "default.yaml"), help="YAML preset (default: %(default)s)")
        job.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override one setting, e.g. --set pmc.epochs=5 (repeatable)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        from orchestrator.pipeline import run_evaluation, run_unlearning  # heavy imports once the config is sound

        folder = (run_unlearning if args.command == "unlearn" else run_evaluation)(config)
    except (ConfigError, DataError, ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done: {folder}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
