"""`report.md`: what a person reads after a run — the before/after table and where the time went."""
from __future__ import annotations

from pathlib import Path

ROWS = (
    ("forget_rouge_l", "Forget ROUGE-L (lower is better)", "{:.3f}"),
    ("forget_para_rouge_l", "Forget ROUGE-L, paraphrased", "{:.3f}"),
    ("retain_rouge_l", "Retain ROUGE-L", "{:.3f}"),
    ("world_facts_rouge_l", "World facts ROUGE-L", "{:.3f}"),
    ("real_authors_rouge_l", "Real authors ROUGE-L", "{:.3f}"),
    ("unlearn_quality", "Unlearn quality (%)", "{:.1f}"),
    ("utility", "Utility (%)", "{:.1f}"),
)


def render_report(title: str, evaluation: dict, rounds: list[dict], examples: list[dict]) -> str:
    before, after = evaluation["before"], evaluation["after"]
    lines = [f"# {title}", "", f"Wall time: {evaluation['wall_time_s']:.1f} s "
             f"({', '.join(f'{k} {v:.1f} s' for k, v in evaluation['stage_seconds'].items())}).", "",
             "## Before and after unlearning (greedy answers)", "",
             "| metric | target model | after PMC | change |", "|---|---|---|---|"]
    for key, label, fmt in ROWS:
        if key in before and key in after:
            lines.append(f"| {label} | {fmt.format(before[key])} | {fmt.format(after[key])} | {fmt.format(after[key] - before[key])} |")
    lines += ["", "## Rounds", "", "| epoch | sampled | mean selected score | at zero | loss | retain NLL | "
              "sampling s | scoring s | training s | weight sync s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        s = r["seconds"]
        lines.append(f"| {r['epoch']} | {r['sampled_questions']} | {r['selected_score_mean']:.3f} | {r['questions_at_zero']} | "
                     f"{r['loss']:.3f} | {r['retain_nll']:.3f} | {s['sampling']:.2f} | {s['scoring']:.2f} | "
                     f"{s['training']:.2f} | {s['weight_sync']:.2f} |")
    totals = {stage: sum(r["seconds"][stage] for r in rounds) for stage in rounds[0]["seconds"]} if rounds else {}
    if totals:
        lines += ["", "Time in the loop: " + ", ".join(f"{k} {v:.1f} s" for k, v in totals.items()) + "."]
    lines += ["", "## Forget questions: what the model said", "", "| question | before | after |", "|---|---|---|"]
    for ex in examples:
        lines.append(f"| {_cell(ex['question'])} | {_cell(ex['before'])} | {_cell(ex['after'])} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def write_report(path: Path, title: str, evaluation: dict, rounds: list[dict], examples: list[dict]) -> None:
    path.write_text(render_report(title, evaluation, rounds, examples))
