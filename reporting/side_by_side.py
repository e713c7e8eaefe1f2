"""`make report RUNS="runs/a runs/b ..."`: finished runs side by side, one table and one figure.

    python -m pmc_unlearning.reporting.side_by_side runs/a runs/b [--out runs/comparison]

Each run contributes its final model state (`after` for unlearning runs, `model` for evaluations).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class Column(NamedTuple):
    label: str
    read: Callable[[dict], float | None]  # from a state's metrics (eval.json's block)
    bounds: tuple[float, float] = (0.0, 1.0)  # the metric's range: intervals of it stay inside


def headline(key: str) -> Callable[[dict], float | None]:
    """An attack's headline figure (evaluation/attacks/) from a state's metrics; None where not run."""
    return lambda m: (m.get("attacks_headline") or {}).get(key)


# The attacks' headline figures; lower is more robust (PrivLeak: nearer 0, as the retain model), which the
# fourth takeaway reads through `distance`.
ATTACK_COLUMNS = (
    Column("forget ROUGE-L after relearning", headline("relearned_forget_rouge_l")),
    Column("forget ROUGE-L at 4 bits", headline("quantized_forget_rouge_l")),
    Column("PrivLeak", headline("privleak"), (-1.0, float("inf"))),
    Column("extraction strength", headline("extraction_strength")),
    Column("forget ROUGE-L with a prefill", headline("prefill_forget_rouge_l")),
)
COLUMNS = (
    Column("forget ROUGE-L", lambda m: m["forget_rouge_l"]),
    Column("unlearn quality (0-1)", lambda m: None if m["unlearn_quality"] is None else m["unlearn_quality"] / 100),
    Column("utility (0-1)", lambda m: m["utility"] / 100),
    Column("retain ROUGE-L", lambda m: m["retain_rouge_l"]),
    Column("model utility", lambda m: m["model_utility"]),
    Column("forget quality", lambda m: m.get("forget_quality")),
    Column("max ROUGE-L under sampling", lambda m: m["sampling"]["max_rouge_l"]),
    Column("leak share", lambda m: m["sampling"]["leak_share"]),
    Column("over-unlearning: share halved", lambda m: (m.get("over_unlearning") or {}).get("share_halved")),
    Column("forget answers broken", lambda m: (m.get("fluency") or {}).get("broken_share")),
    # n/a in the eval.json of runs from before non-answers were counted
    Column("forget non-answers", lambda m: (m.get("fluency") or {}).get("non_answer_share")),
    *ATTACK_COLUMNS,
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


def write_comparison(runs: dict[str, Path], out: Path, reference: tuple[str, dict] | None = None,
                     settings: dict[str, list[str]] | None = None) -> None:
    """One table, one figure and compare.json (name -> final eval state) for finished runs.

    `reference` (label, metrics), e.g. the target model before unlearning, is shown first for scale;
    `settings` (name -> the overrides each run had) goes into the table of runs.
    """
    states = {name: final_state(run)[1] for name, run in runs.items()}
    shown = dict([reference]) | states if reference else states
    table = {name: [column.read(m) for column in COLUMNS] for name, m in shown.items()}
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Runs side by side", "", "| run | " + " | ".join(column.label for column in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {name} | " + " | ".join("n/a" if v is None else f"{v:.3g}" for v in values) + " |"
              for name, values in table.items()]
    lines += ["", "![comparison](comparison.png)", "", "| run | folder | settings | wall time (s) | unlearning (s) |",
              "|---|---|---|---|---|"]
    for name, run in runs.items():
        evaluation = json.loads((run / "eval.json").read_text())
        lines.append(f"| {name} | {run} | {' '.join((settings or {}).get(name, [])) or 'preset'} | "
                     f"{evaluation.get('wall_time_s', 'n/a')} | {evaluation.get('stage_seconds', {}).get('unlearning', 'n/a')} |")
    lines += paper_takeaways(states)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "compare.json").write_text(json.dumps(states, indent=1))
    plot(table, out / "comparison.png")
    print(f"wrote {out / 'report.md'}")


def paper_takeaways(states: dict[str, dict], spread: dict[str, dict] | None = None) -> list[str]:
    """The paper's three comparative claims, and a fourth of ours, checked on these runs (markdown lines; none
    without pmc).

    (1) PMC's forget ROUGE-L is at or below each baseline's while its utility is at or above; (2) under
    sampling PMC's max ROUGE-L and leak share are below gradient ascent's, NPO's and IDK's; (3) gradient
    ascent and gradient difference halve the forget tokens' probability in at least 1.5 times as many
    unrelated contexts as PMC does; (4) PMC is at least as robust as each baseline under each attack (its
    headline figure at or below the baseline's; PrivLeak nearer 0). "At or below" allows 0.005 for rounding.
    `states` may be the means of several seeds per method; `spread` (method -> the same metrics' standard
    deviations) is then shown beside each figure, so a verdict can be read against the seed spread behind it,
    and a (4) that fails by less than the two spreads together says so.
    """
    if "pmc" not in states or len(states) < 2:
        return []
    pmc, verdict = states["pmc"], lambda ok: "holds" if ok else "**does not hold**"

    def shown(name: str, read, digits: int = 3) -> str:
        value = f"{read(states[name]):.{digits}f}"
        deviation = read(spread[name]) if spread and name in spread else None
        return f"{value} ± {deviation:.{digits}f}" if deviation is not None else value

    forget, utility = (lambda m: m["forget_rouge_l"]), (lambda m: m["utility"])
    max_rouge, leak = (lambda m: m["sampling"]["max_rouge_l"]), (lambda m: m["sampling"]["leak_share"])
    halved = lambda m: (m.get("over_unlearning") or {}).get("share_halved")
    lines = ["", "## The paper's three takeaways, and the attacks', on these runs", ""]
    for name, m in states.items():
        if name != "pmc":
            ok = forget(pmc) <= forget(m) + 0.005 and utility(pmc) >= utility(m) - 0.5
            lines.append(f"- (1) vs {name}: forget ROUGE-L {shown('pmc', forget)} vs {shown(name, forget)}, "
                         f"utility {shown('pmc', utility, 1)} vs {shown(name, utility, 1)}: {verdict(ok)}")
    for name in ("grad_ascent", "npo", "idk"):
        if name in states:
            ok = max_rouge(pmc) < max_rouge(states[name]) and leak(pmc) < leak(states[name])
            lines.append(f"- (2) vs {name}: max ROUGE-L under sampling {shown('pmc', max_rouge)} vs "
                         f"{shown(name, max_rouge)}, leak share {shown('pmc', leak)} vs {shown(name, leak)}: {verdict(ok)}")
    for name in ("grad_ascent", "grad_diff"):
        if name in states and halved(pmc) is not None and halved(states[name]) is not None:
            ok = halved(states[name]) >= 1.5 * halved(pmc)
            lines.append(f"- (3) {name} vs pmc: share of unrelated contexts where a forget token's probability halved "
                         f"{shown(name, halved)} vs {shown('pmc', halved)}: {verdict(ok)}")
    for name in states:
        if name != "pmc":
            lines += robustness_takeaway(states, spread or {}, name, shown)
    return lines


def distance(column: Column, metrics: dict) -> float | None:
    """How far an attack got (lower: more robust): its headline figure, PrivLeak's distance from 0."""
    value = column.read(metrics)
    return None if value is None else abs(value) if column.bounds[0] < 0 else value


def robustness_takeaway(states: dict[str, dict], spread: dict[str, dict], name: str, shown) -> list[str]:
    """(4) against one baseline: per attack both figures and whether PMC's is at or below (or within the seeds'
    spread of) the baseline's."""
    parts, holds = [], True
    for column in ATTACK_COLUMNS:
        mine, theirs = distance(column, states["pmc"]), distance(column, states[name])
        if mine is None or theirs is None:
            continue
        ok = mine <= theirs + 0.005
        holds &= ok
        deviation = sum(abs(column.read(spread[m]) or 0) for m in ("pmc", name) if m in spread)
        note = "" if ok else " (within the seeds' spread)" if mine - theirs <= deviation else " (not)"
        parts.append(f"{column.label} {shown('pmc', column.read)} vs {shown(name, column.read)}{note}")
    if not parts:
        return []
    return [f"- (4) vs {name}, under each attack: " + "; ".join(parts) + f": {'holds' if holds else '**does not hold**'}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs/comparison"))
    args = parser.parse_args(argv)
    write_comparison({run.name: run for run in args.runs}, args.out)
    return 0


def plot(table: dict[str, list], path: Path) -> None:
    shown = [i for i, column in enumerate(COLUMNS) if column.bounds == (0.0, 1.0)
             and any(values[i] is not None for values in table.values())]
    figure, axis = plt.subplots(figsize=(max(7, 1.6 * len(shown)), 4))
    width = 0.8 / len(table)
    for k, (name, values) in enumerate(table.items()):
        axis.bar([i + k * width for i in range(len(shown))], [values[i] or 0 for i in shown], width, label=name)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(shown))], [COLUMNS[i].label for i in shown], rotation=20, ha="right")
    axis.set(title="Final model state of each run", ylabel="score (each metric's own scale, 0-1)", ylim=(0, 1.05))
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
