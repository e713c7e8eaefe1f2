"""Checks the folder a finished run leaves (make image-smoke runs it on the smoke job made in the image).

    python3 scripts/check_run_folder.py runs/NAME [--same-as runs/OTHER]

Needs only the standard library (it runs on the host, outside the project's venv). Exits 1 with the missing or
wrong items named; with --same-as, the two runs' headline metrics must be equal.
"""

import argparse
import json
import math
import sys
from pathlib import Path

REQUIRED_FILES = ("eval.json", "report.md", "log.txt", "config.yaml", "versions.json", "placement.json")


def problems(folder: Path) -> list[str]:
    if not folder.is_dir():
        return [f"{folder}: no such run folder (the job did not finish: see its output above)"]
    found = [f"{folder}: {name} is missing" for name in REQUIRED_FILES if not (folder / name).is_file()]
    if (folder / "eval.json").is_file():
        for key, value in headline(folder).items():
            if not math.isfinite(value):
                found.append(f"{folder / 'eval.json'}: {key} is {value}")
    return found


# Wall-clock figures differ between any two runs; every other number is the job's result.
TIMING_WORDS = ("seconds", "wall_time")


def headline(folder: Path) -> dict[str, float]:
    """Every number in eval.json but the timings, by its dotted path."""
    numbers: dict[str, float] = {}

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and not any(word in path for word in TIMING_WORDS):
            numbers[path] = float(value)

    walk(json.loads((folder / "eval.json").read_text()), "")
    return numbers


def differences(folder: Path, other: Path) -> list[str]:
    ours, theirs = headline(folder), headline(other)
    return [f"{key}: {ours.get(key)} in {folder}, {theirs.get(key)} in {other}"
            for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--same-as", type=Path, help="another run of the same config: its eval.json must be equal")
    args = parser.parse_args()
    found = problems(args.folder)
    if args.same_as and not found:
        found = problems(args.same_as) or differences(args.folder, args.same_as)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if not found:
        print(f"{args.folder}: complete ({', '.join(REQUIRED_FILES)}), metrics finite"
              + (f", equal to {args.same_as}'s" if args.same_as else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
