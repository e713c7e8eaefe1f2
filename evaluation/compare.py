"""`make report RUNS="runs/a runs/b ..."`: finished runs side by side, one table and one figure.

    python -m evaluation.compare runs/a runs/b [--out runs/comparison]

Each run contributes its final model state (`after` for unlearning runs, `model` for evaluations).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = (  # (label, how to read it from a state's metrics)
    ("forget ROUGE-L", lambda m: m["forget_rouge_l"]),
    ("unlearn quality (0-1)", lambda m: m["unlearn_quality"] / 100),
    ("retain ROUGE-L", lambda m: m["retain_rouge_l"]),
    ("model utility", lambda m: m["model_utility"]),
    ("forget quality", lambda m: m.get("forget_quality")),
    ("max ROUGE-L under sampling", lambda m: m["sampling"]["max_rouge_l"]),
    ("leak share", lambda m: m["sampling"]["leak_share"]),
    ("over-unlearning: share halved", lambda m: (m.get("over_unlearning") or {}).get("share_halved")),
)


def final_state(run: Path) -> tuple[str, dict]:
    path = run / "eval.json"
    if not path.is_file():
        raise SystemExit(f"{run}: no eval.json (is it a finished run folder?)")
    evaluation = json.loads(path.read_text())
    for state in ("after", "model"):
        if state in evaluation:
            return state, evaluation[state]
    raise SystemExit(f"{path}: holds neither an 'after' nor a 'model' state")


def write_comparison(runs: dict[str, Path], out: Path) -> None:
    """One table, one figure and compare.json (name -> final eval state) for finished runs."""
    states = {name: final_state(run)[1] for name, run in runs.items()}
    table = {name: [read(m) for _, read in COLUMNS] for name, m in states.items()}
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Runs side by side", "", "| run | " + " | ".join(label for label, _ in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {name} | " + " | ".join("n/a" if v is None else f"{v:.3g}" for v in values) + " |"
              for name, values in table.items()]
    lines += ["", "![comparison](comparison.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "compare.json").write_text(json.dumps(states, indent=1))
    plot(table, out / "comparison.png")
    print(f"wrote {out / 'report.md'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs/comparison"))
    args = parser.parse_args(argv)
    write_comparison({run.name: run for run in args.runs}, args.out)
    return 0


def plot(table: dict[str, list], path: Path) -> None:
    shown = [i for i, (label, _) in enumerate(COLUMNS) if any(values[i] is not None for values in table.values())]
    figure, axis = plt.subplots(figsize=(max(7, 1.6 * len(shown)), 4))
    width = 0.8 / len(table)
    for k, (name, values) in enumerate(table.items()):
        axis.bar([i + k * width for i in range(len(shown))], [values[i] or 0 for i in shown], width, label=name)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(shown))], [COLUMNS[i][0] for i in shown], rotation=20, ha="right")
    axis.set(title="Final model state of each run", ylabel="score (each metric's own scale, 0-1)", ylim=(0, 1.05))
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
