"""The PNG figures of a run's report: rounds of unlearning, ROUGE-L under sampling, over-unlearning, attacks."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def write_plots(folder: Path, states: dict[str, dict], rounds: list[dict],
                attacks: dict[str, dict] | None = None) -> dict[str, str]:
    """Draw every figure the data allows; returns {figure: file name} for the report. `attacks`: the attacked
    models' results by column title (reporting/report.py attacked_models)."""
    plots = {}
    if attacks and any("curve" in a.get("relearn", {}) or "levels" in a.get("quantize", {}) for a in attacks.values()):
        plots["attacks"] = _save(_attacks_figure(attacks), folder / "attacks.png")
    if rounds:
        plots["rounds"] = _save(_rounds_figure(rounds), folder / "rounds.png")
    if any(state["sample_scores"] for state in states.values()):
        plots["sampling"] = _save(_sampling_figure(states), folder / "sampling.png")
    if "before" in states and "after" in states and states["before"]["context_probs"]:
        plots["over_unlearning"] = _save(_over_unlearning_figure(states["before"], states["after"]),
                                         folder / "over_unlearning.png")
    return plots


def _save(figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def _rounds_figure(rounds: list[dict]):
    numbers = [r["round"] for r in rounds]
    if "selected_score_mean" not in rounds[0]:  # a baseline: no selection, losses only
        figure, right = plt.subplots(figsize=(6, 3.8))
        _losses(right, numbers, rounds)
        return figure
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(numbers, [r["selected_score_mean"] for r in rounds], marker="o", label="mean selected score")
    left.plot(numbers, [r["questions_at_zero"] / r["questions"] for r in rounds],
              marker=".", linestyle="--", label="share of questions at score 0")
    left.set(title="Selection per round", xlabel="round", ylabel="ROUGE-L recall vs original / share", ylim=(-0.02, 1.02))
    left.legend()
    _losses(right, numbers, rounds)
    return figure


def _losses(axis, numbers: list[int], rounds: list[dict]) -> None:
    axis.plot(numbers, [r["forget_loss"] for r in rounds], marker="o", label="forget loss (PMC: NLL of selected answers)")
    retain = "retain_nll" if "retain_nll" in rounds[0] else "retain_loss"  # RMU's is an activation distance
    axis.plot(numbers, [r[retain] for r in rounds], marker="o", label=retain.replace("_", " ").replace("nll", "NLL"))
    axis.set(title="Training losses per round", xlabel="round", ylabel="loss (NLL: nats per answer token)")
    axis.legend()


def _sampling_figure(states: dict[str, dict]):
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    bins = [i / 20 for i in range(21)]
    for name, state in states.items():
        scores = [s for question in state["sample_scores"] for s in question]
        axis.hist(scores, bins=bins, alpha=0.55, label=f"{name} ({len(scores)} samples)")
    sampling = next(iter(states.values()))["metrics"]["sampling"]
    axis.set(title=f"Forget questions under sampling (T={sampling['temperature']}, top_p={sampling['top_p']})",
             xlabel="ROUGE-L recall against the true answer", ylabel="number of sampled answers")
    axis.legend()
    return figure


def _over_unlearning_figure(before: dict, after: dict):
    changes = [a - b for b, a in zip(before["context_probs"], after["context_probs"])]
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    axis.hist(changes, bins=40, color="tab:purple")
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set(title=f"Forget-answer tokens in unrelated text ({len(changes)} contexts)",
             xlabel="p_unlearned(token | context) - p_target(token | context)", ylabel="number of contexts")
    return figure


def _attacks_figure(attacks: dict[str, dict]):
    """Left: each model's relearning curve (held-out forget ROUGE-L against steps on the other half, with its
    interval); right: forget ROUGE-L at each quantization level, a bar per model."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, results in attacks.items():
        curve = results.get("relearn", {}).get("curve")
        if curve:
            steps = [point["steps"] for point in curve]
            values = [point["forget_rouge_l"]["value"] for point in curve]
            errors = [[v - point["forget_rouge_l"]["interval"][0] for v, point in zip(values, curve)],
                      [point["forget_rouge_l"]["interval"][1] - v for v, point in zip(values, curve)]]
            left.errorbar(steps, values, yerr=errors, marker="o", capsize=3, label=name)
    left.set(title="Relearning on half of the forget set", xlabel="optimizer steps on the other half",
             ylabel="forget ROUGE-L, held-out half", ylim=(-0.02, 1.02))
    left.legend()
    with_levels = {name: r["quantize"]["levels"] for name, r in attacks.items() if "levels" in r.get("quantize", {})}
    levels = list(next(iter(with_levels.values()), {}))
    width = 0.8 / max(1, len(with_levels))
    for i, (name, by_level) in enumerate(with_levels.items()):
        right.bar([x + i * width for x in range(len(levels))],
                  [by_level[level]["forget_rouge_l"]["value"] if level in by_level else 0 for level in levels],
                  width, label=name)
    right.set_xticks([x + width * (len(with_levels) - 1) / 2 for x in range(len(levels))],
                     [f"{level}-bit" for level in levels])
    right.set(title="Round-to-nearest quantization", ylabel="forget ROUGE-L", ylim=(0, 1.02))
    right.legend()
    return figure
