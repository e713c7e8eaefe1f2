"""A batch's report: `runs/<batch>/report.md`, `results.json` and figures, from its trials' records.

Trials that differ only by their seed form a group; each headline metric of the unlearned model gets the
group's mean, standard deviation and a 95 % interval for the mean (Student's t, from the seeds' spread).
Where groups differ by method alone, the paper's takeaways (reporting/side_by_side.py) are checked on the
group means, with the spread beside each figure. Failed trials are listed with their error.

A trial record (made by orchestrator/batch.py): name, group, settings, seed, status ("finished", "failed",
"not run"), error, run_folder, eval (the run's eval.json, or None).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

from pmc_unlearning.reporting.side_by_side import COLUMNS, paper_takeaways, plot  # noqa: E402

CONFIDENCE = 0.95


def summary(values: list[float], bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict:
    """mean, sample standard deviation and the 95 % t-interval of the mean (None for fewer than two values),
    the interval cut to the metric's `bounds` (a share's t-interval from two seeds reaches below 0 otherwise)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    if n < 2:
        return {"n": n, "mean": mean, "std": std, "ci95": None}
    half = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * std / math.sqrt(n)
    low, high = bounds
    return {"n": n, "mean": mean, "std": std, "ci95": [max(mean - half, low), min(mean + half, high)]}


def groups_of(trials: list[dict]) -> list[dict]:
    """The trials grouped by their settings (seed aside), in the batch's order, with each metric's summary."""
    groups: dict[str, dict] = {}
    for trial in trials:
        group = groups.setdefault(trial["group"], {"group": trial["group"], "settings": trial["settings"],
                                                   "trials": [], "finished": [], "failed": []})
        group["trials"].append(trial["name"])
        if trial["status"] == "finished":
            group["finished"].append(trial["eval"]["after"])
        elif trial["status"] == "failed":
            group["failed"].append(trial["name"])
    for group in groups.values():
        states = group.pop("finished")
        group["finished"] = len(states)
        group["metrics"] = {}
        for column in COLUMNS:
            values = [column.read(state) for state in states]
            if values and all(v is not None for v in values):
                group["metrics"][column.label] = summary(values, column.bounds)
        group["mean_state"] = aggregate(states, lambda values: summary(values)["mean"])
        group["std_state"] = aggregate(states, lambda values: summary(values)["std"])
    return list(groups.values())


def aggregate(states: list[dict], how) -> dict | None:
    """A metrics dict of the same shape whose numbers are `how` of the states' numbers (None where any lacks one)."""
    if not states:
        return None
    out = {}
    for key, first in states[0].items():
        values = [state.get(key) for state in states]
        if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            out[key] = aggregate(values, how)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = how(values)
    return out


def write_batch_report(folder: Path, title: str, trials: list[dict], batch: dict) -> None:
    groups = groups_of(trials)
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shown = [g for g in groups if g["finished"]]
    trade_off_plot(shown, shared_target(trials), figures / "trade_off.png")
    plot({g["group"]: [(g["metrics"].get(column.label) or {}).get("mean") for column in COLUMNS] for g in shown},
         figures / "metrics.png")
    results = {"batch": batch, "trials": trials,
               "groups": [{k: v for k, v in g.items() if k not in ("mean_state", "std_state")} for g in groups]}
    (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (folder / "report.md").write_text("\n".join(report_lines(title, trials, groups)) + "\n")
    print(f"wrote {folder / 'report.md'}", flush=True)


def report_lines(title: str, trials: list[dict], groups: list[dict]) -> list[str]:
    counts = {status: sum(t["status"] == status for t in trials) for status in ("finished", "failed", "not run")}
    lines = [f"# {title}", "", f"{len(trials)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), "",
             "## Groups (trials that differ only by seed): mean ± std over seeds, [95 % interval of the mean]", "",
             "| group | finished | " + " | ".join(column.label for column in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    target = shared_target(trials)
    if target:  # one target for all: shown first, for scale
        values = [column.read(target) for column in COLUMNS]
        lines.append("| target (before) | | " + " | ".join("n/a" if v is None else f"{v:.3g}" for v in values) + " |")
    for group in groups:
        cells = [cell(group["metrics"].get(column.label)) for column in COLUMNS]
        lines.append(f"| {group['group']} | {group['finished']}/{len(group['trials'])} | " + " | ".join(cells) + " |")
    lines += ["", "![trade-off](figures/trade_off.png)", "", "![metrics](figures/metrics.png)"]
    by_method = methods_compared(groups)
    if by_method:
        lines += paper_takeaways({m: g["mean_state"] for m, g in by_method.items()},  # spread: of two seeds or more
                                 {m: g["std_state"] for m, g in by_method.items() if g["finished"] > 1})
    lines += ["", "## Trials", "", "| trial | seed | status | run folder | unlearning (s) | error |", "|---|---|---|---|---|---|"]
    for trial in trials:
        seconds = (trial["eval"] or {}).get("stage_seconds", {}).get("unlearning", "")
        lines.append(f"| {trial['name']} | {'' if trial['seed'] is None else trial['seed']} | {trial['status']} | "
                     f"{trial['run_folder']} | {seconds} | {(trial['error'] or '').replace('|', '/')} |")
    return lines


def shared_target(trials: list[dict]) -> dict | None:
    """The target model's metrics (before unlearning) when every finished trial started from the same one."""
    finished = [t["eval"] for t in trials if t["status"] == "finished"]
    return finished[0]["before"] if finished and len({e["target_model"] for e in finished}) == 1 else None


def cell(metric: dict | None) -> str:
    if metric is None:
        return "n/a"
    text = f"{metric['mean']:.3g} ± {metric['std']:.2g}" if metric["n"] > 1 else f"{metric['mean']:.3g}"
    return text + (f" [{metric['ci95'][0]:.3g}, {metric['ci95'][1]:.3g}]" if metric["ci95"] else "")


def methods_compared(groups: list[dict]) -> dict[str, dict]:
    """method -> group, when the finished groups differ by their method and nothing else."""
    finished = [g for g in groups if g["finished"]]
    rest = [{k: v for k, v in g["settings"].items() if k != "method"} for g in finished]
    methods = [g["settings"].get("method") for g in finished]
    if len(finished) < 2 or None in methods or len(set(methods)) < len(methods) or any(r != rest[0] for r in rest):
        return {}
    return dict(zip(methods, finished))


def trade_off_plot(groups: list[dict], target: dict | None, path: Path) -> None:
    """Forget ROUGE-L against model utility, one point per group with its seed spread (std) as error bars, and
    the target model for reference. Where model utility is 0 or missing everywhere (a model too small to
    answer world facts), retain ROUGE-L stands in for it, and the axis says so."""
    utility = "model utility"
    if all(not (g["metrics"].get(utility) or {}).get("mean") for g in groups):
        utility = "retain ROUGE-L"
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for group in groups:
        x, y = group["metrics"].get("forget ROUGE-L"), group["metrics"].get(utility)
        if x and y:
            axis.errorbar(x["mean"], y["mean"], xerr=x["std"], yerr=y["std"], fmt="o", capsize=4, label=group["group"])
    reading = {column.label: column.read for column in COLUMNS}
    if target and reading[utility](target) is not None:
        axis.plot(reading["forget ROUGE-L"](target), reading[utility](target), "k*", markersize=12, label="target (before)")
    axis.set(title="Forgetting against utility (mean ± std over seeds)", xlabel="forget ROUGE-L (lower: more forgotten)",
             ylabel=f"{utility} (higher: more kept)")
    if groups:
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
