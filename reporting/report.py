"""`report.md`: what a person reads after a run — tables per model state, figures, rounds, answers."""
from __future__ import annotations

from pathlib import Path

from pmc_unlearning.evaluation.attacks.table import absences, attack_rows, cell
from pmc_unlearning.evaluation.verdict import BROKEN_KINDS
from pmc_unlearning.telemetry.console import value_at

GREEDY_ROWS = (
    ("forget_rouge_l", "Forget ROUGE-L (lower is better)", "{:.3f}"),
    ("forget_para_rouge_l", "Forget ROUGE-L, paraphrased", "{:.3f}"),
    ("retain_rouge_l", "Retain ROUGE-L", "{:.3f}"),
    ("world_facts_rouge_l", "World facts ROUGE-L", "{:.3f}"),
    ("real_authors_rouge_l", "Real authors ROUGE-L", "{:.3f}"),
    ("unlearn_quality", "Unlearn quality (%, PMC authors)", "{:.1f}"),
    ("utility", "Utility (%, PMC authors)", "{:.1f}"),
    ("model_utility", "Model utility (TOFU, harmonic mean of its 9 numbers)", "{:.3f}"),
    ("forget_quality", "Forget quality (TOFU, KS p-value vs retain model)", "{:.3g}"),
)
SAMPLING_ROWS = (
    ("n", "samples per forget question", "{:d}"),
    ("mean_rouge_l", "mean ROUGE-L over samples", "{:.3f}"),
    ("max_rouge_l", "max ROUGE-L over samples (leak@n, mean over questions)", "{:.3f}"),
    ("leak_share", "share of samples with ROUGE-L >= threshold", "{:.3f}"),
    ("leak_share_upper", "  its Clopper-Pearson upper bound", "{:.3f}"),
    ("expected_rouge_l_upper", "upper bound on E[ROUGE-L] (DKW)", "{:.3f}"),
    ("std_rouge_l_upper", "upper bound on std of ROUGE-L (DKW)", "{:.3f}"),
)
# (path in the fluency block, label, format); evaluation/verdict.py defines the verdicts
FLUENCY_ROWS = (
    (("nll_per_token",), "base model's NLL per token of the greedy forget answers (the non-empty ones)", "{:.3f}"),
    (("broken_share",), "share of them broken, of any kind below", "{:.3f}"),
    (("broken_by_kind", "empty"), "  empty", "{:d}"),
    (("broken_by_kind", "cut"), "  cut at max_new_tokens before the answer ended", "{:d}"),
    (("broken_by_kind", "loop"), "  a loop: a chunk repeated in a row beyond the loop threshold", "{:d}"),
    (("broken_by_kind", "script"), "  mostly in another writing system than the data's answers", "{:d}"),
    (("broken_by_kind", "unlikely"), "  unlikely: NLL per token above the threshold", "{:d}"),
    (("non_answer_share",), "share of non-answers: a deflection or refusal, or about something else", "{:.3f}"),
    (("threshold",), "threshold: the highest NLL per token of the data's own forget answers", "{:.3f}"),
    (("loop_threshold",), "loop threshold: characters repeated in a row (the data's own most, plus a margin)", "{:d}"),
)
OVER_UNLEARNING_ROWS = (
    ("count", "contexts", "{:d}"),
    ("mean_prob_before", "mean p(token \\| context), target", "{:.4f}"),
    ("mean_prob_after", "mean p(token \\| context), unlearned", "{:.4f}"),
    ("mean_change", "mean change", "{:+.4f}"),
    ("share_halved", "share of contexts whose probability fell by more than half", "{:.3f}"),
)
ROUND_COLUMNS = (
    ("round", "round", "{:d}"),
    ("sampled_questions", "sampled", "{:d}"),
    ("selected_score_mean", "mean selected score", "{:.3f}"),
    ("questions_at_zero", "at zero", "{:d}"),
    ("loss", "loss", "{:.3f}"),
    ("forget_loss", "forget loss", "{:.3f}"),
    ("retain_nll", "retain NLL", "{:.3f}"),
    ("retain_loss", "retain loss", "{:.3f}"),  # a retain term other than the NLL (RMU's activation distance)
)


def render_report(title: str, evaluation: dict, rounds: list[dict], states: dict[str, dict], plots: dict[str, str]) -> str:
    names = list(states)
    metrics = {name: evaluation[name] for name in names}
    lines = [f"# {title}", "", f"Wall time: {evaluation['wall_time_s']:.1f} s "
             f"({', '.join(f'{k} {v:.1f} s' for k, v in evaluation['stage_seconds'].items())}).", ""]
    lines += ["## Greedy answers and TOFU metrics", ""]
    if "references" in evaluation:  # an unlearning run's: what each ROUGE-L is the recall of
        lines += [f"Forget ROUGE-L is the recall of {evaluation['references']['forget']}; retain ROUGE-L of "
                  f"{evaluation['references']['retain']}.", ""]
    lines += [_header(names)]
    lines += [_row(label, [metrics[n].get(key) for n in names], fmt) for key, label, fmt in GREEDY_ROWS]
    for family in ("prob", "truth_ratio"):
        for split in metrics[names[0]][family]:
            lines.append(_row(f"{'Prob' if family == 'prob' else 'Truth ratio'}, {split}",
                              [metrics[n][family].get(split) for n in names], "{:.3f}"))
    lines += _not_measured(metrics[names[0]])
    sampling = metrics[names[0]]["sampling"]
    lines += ["", f"## Under sampling (T={sampling['temperature']}, top_p={sampling['top_p']}, leak threshold "
              f"ROUGE-L >= {sampling['threshold']}, confidence {sampling['confidence']})", "", _header(names)]
    lines += [_row(label, [metrics[n]["sampling"][key] for n in names], fmt) for key, label, fmt in SAMPLING_ROWS]
    if "sampling" in plots:
        lines += ["", f"![ROUGE-L under sampling]({plots['sampling']})"]
    if all("fluency" in metrics[n] for n in names):
        lines += _fluency({n: metrics[n]["fluency"] for n in names})
    over = metrics[names[-1]].get("over_unlearning")
    if over:
        lines += ["", "## Over-unlearning: forget-answer tokens in unrelated text", "", "| | |", "|---|---|"]
        lines += [f"| {label} | {fmt.format(over[key])} |" for key, label, fmt in OVER_UNLEARNING_ROWS]
        lines.append("| quantiles of the change (5/25/50/75/95 %) | "
                     + " / ".join(f"{over['quantiles'][q]:+.4f}" for q in ("q05", "q25", "q50", "q75", "q95")) + " |")
        if "over_unlearning" in plots:
            lines += ["", f"![over-unlearning]({plots['over_unlearning']})"]
    lines += _attacks(attacked_models(evaluation, states), plots)
    lines += _rounds(rounds, plots)
    lines += _answers(states)
    lines += ["", "Time per evaluation part (s): " + "; ".join(
        f"{n}: " + ", ".join(f"{k} {v:.1f}" for k, v in metrics[n]["eval_seconds"].items()) for n in names) + "."]
    return "\n".join(lines) + "\n"


def attacked_models(evaluation: dict, states: dict[str, dict]) -> dict[str, dict]:
    """{column title: attack results} of the run's models that were attacked: its states, then the retain model."""
    models = {name: states[name]["metrics"]["attacks"] for name in states if "attacks" in states[name]["metrics"]}
    if "retain_model" in evaluation:
        models["retain model"] = evaluation["retain_model"]["attacks"]
    return models


def _attacks(models: dict[str, dict], plots: dict[str, str]) -> list[str]:
    rows = attack_rows(models) if models else []
    if not rows:
        return []
    lines = ["", "## Attacks: can the forgotten answers be brought back? (evaluation/attacks/)", "",
             "Each figure with its 95 % interval (Clopper-Pearson for shares, a bootstrap over questions otherwise). "
             "The retain model never saw the forget set: it is the yardstick of \"as if never learned\".", "",
             _header(list(models))]
    lines += [f"| {label} | " + " | ".join(cell(value) for value in values) + " |" for label, values in rows]
    notes = absences(models)
    if notes:
        lines += ["", "Not measured (n/a): " + "; ".join(notes) + "."]
    if "attacks" in plots:
        lines += ["", f"![attacks]({plots['attacks']})"]
    return lines


def _fluency(blocks: dict[str, dict]) -> list[str]:
    """The fluency rows of each state (`blocks`: its fluency block), and what they rest on: the states answer
    the same forget questions, judged by the same yardsticks."""
    first = next(iter(blocks.values()))
    topic = ("an answer that shares no content word with its question is about something else" if first["checks_topic"]
             else "answers about something else are not looked for, as some of the data's own answers share no "
                  "content word with their questions")
    return ["", "## Fluency of the forget answers (judged by the base model, evaluation/fluency.py)", "",
            f"Of {first['rows']} greedy forget answers per state, each given one verdict (evaluation/verdict.py, "
            "in the table of forget answers below): broken (of the first kind below that applies), a non-answer, "
            f"or an answer. The data's own answers are written in {', '.join(first['scripts'])}; {topic}.", "",
            _header(list(blocks))] + [
        _row(label, [value_at(block, path) for block in blocks.values()], fmt) for path, label, fmt in FLUENCY_ROWS]


def _not_measured(metrics: dict) -> list[str]:
    """What the data could not give, said where the numbers are (the same for every state of a run)."""
    lines = []
    if metrics["model_utility_missing"]:
        lines += ["", f"Model utility here is the harmonic mean of {metrics['model_utility_parts']} of TOFU's 9 numbers; "
                      "missing: " + "; ".join(f"{part} ({why})" for part, why in metrics["model_utility_missing"].items()) + "."]
    if metrics["not_measured"]:
        lines += ["", "Not measured (n/a): " + "; ".join(f"{name}: {why}" for name, why in metrics["not_measured"].items()) + "."]
    return lines


def _header(names: list[str]) -> str:
    return f"| metric | {' | '.join(names)} |\n|---|{'---|' * len(names)}"


def _row(label: str, values: list, fmt: str) -> str:
    return f"| {label} | " + " | ".join("n/a" if v is None else fmt.format(v) for v in values) + " |"


def _rounds(rounds: list[dict], plots: dict[str, str]) -> list[str]:
    if not rounds:
        return []
    columns = [(key, label, fmt) for key, label, fmt in ROUND_COLUMNS if key in rounds[0]]
    stages = list(rounds[0]["seconds"])
    lines = ["", "## Rounds of unlearning", "", "| " + " | ".join([label for _, label, _ in columns] + [f"{s} s" for s in stages]) + " |",
             "|" + "---|" * (len(columns) + len(stages))]
    for r in rounds:
        lines.append("| " + " | ".join([fmt.format(r[key]) for key, _, fmt in columns]
                                       + [f"{r['seconds'][s]:.2f}" for s in stages]) + " |")
    totals = {stage: sum(r["seconds"][stage] for r in rounds) for stage in rounds[0]["seconds"]}
    lines += ["", "Time in the loop: " + ", ".join(f"{k} {v:.1f} s" for k, v in totals.items()) + "."]
    if "rounds" in plots:
        lines += ["", f"![rounds]({plots['rounds']})"]
    return lines


def _answers(states: dict[str, dict]) -> list[str]:
    """Each forget question and each state's answer, with its verdict where the state was judged for fluency."""
    names = list(states)
    verdicts = {n: states[n]["metrics"]["fluency"]["verdicts"] for n in names if "fluency" in states[n]["metrics"]}
    titles = [title for n in names for title in ([n, f"{n}: verdict"] if n in verdicts else [n])]
    lines = ["", "## Forget questions: what the model said (greedy)", "", f"| question | {' | '.join(titles)} |",
             f"|---|{'---|' * len(titles)}"]
    for i, row in enumerate(states[names[0]]["answers"]["forget"]):
        cells = [cell for n in names for cell in ([table_cell(states[n]["answers"]["forget"][i]["answer"])]
                                                  + ([verdict_label(verdicts[n][i])] if n in verdicts else []))]
        lines.append(f"| {table_cell(row['question'])} | " + " | ".join(cells) + " |")
    return lines


def verdict_label(verdict: str) -> str:
    """An answer's verdict as the table shows it: answer, non-answer, or broken: <its kind>."""
    return f"broken: {verdict}" if verdict in BROKEN_KINDS else verdict.replace("_", "-")


def table_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def write_report(path: Path, title: str, evaluation: dict, rounds: list[dict], states: dict[str, dict], plots: dict[str, str]) -> None:
    path.write_text(render_report(title, evaluation, rounds, states, plots))
