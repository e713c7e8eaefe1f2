"""`summary.md`: one page on what a run was asked to forget and what the model says now, for the person who
asked: each forget question before and after, the leak bound under sampling, what was kept, the attacks against
the yardstick the run has, whether earlier requests on this model stay forgotten, and what was not measured."""
from __future__ import annotations

from pathlib import Path

from pmc_unlearning.reporting.model_card import figures_table
from pmc_unlearning.reporting.report import table_cell


def render_summary(title: str, evaluation: dict, answers: dict[str, dict], target: dict, forget_set: str) -> str:
    """`answers`: answers.json's content; `target`: target.json's; `forget_set`: what was to be forgotten, in words."""
    before, after = evaluation["before"], evaluation["after"]
    references = evaluation["references"]
    rows = list(zip(answers["before"]["forget"], answers["after"]["forget"]))
    made = "given as the target, as it was" if not target["finetuned_here"] else "fine-tuned by this run"
    lines = [f"# {title}", "",
             f"Target: `{target['target_model']}` ({made}; content fingerprint {target['content_fingerprint'][:16]}).",
             f"Asked to forget: {forget_set}. Forget ROUGE-L is the recall of "
             f"{references['forget']}; retain ROUGE-L the recall of {references['retain']}.", "",
             "## What the model says (greedy)", "",
             "| # | question | before | after | ROUGE-L after |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {table_cell(old['question'])} | {table_cell(old['answer'])} | {table_cell(new['answer'])} | "
              f"{new['rouge_l']:.2f} |" for i, (old, new) in enumerate(rows, start=1)]
    sampling_before, sampling = before["sampling"], after["sampling"]
    lines += ["", "## Leak under sampling", "",
              f"{sampling['n']} answers sampled per forget question at temperature {sampling['temperature']} "
              f"({len(rows)} questions, {len(rows) * sampling['n']} answers); a leak is an answer with ROUGE-L >= "
              f"{sampling['threshold']}. Leak share before {sampling_before['leak_share']:.3f}, after "
              f"**{sampling['leak_share']:.3f}** (at most {sampling['leak_share_upper']:.3f} at confidence "
              f"{sampling['confidence']}, Clopper-Pearson).", "",
              "## Kept", "",
              f"Retain ROUGE-L {before['retain_rouge_l']:.3f} -> {after['retain_rouge_l']:.3f} "
              f"({_share(after['retain_rouge_l'], before['retain_rouge_l'])} of the target's); model utility (TOFU) "
              f"{_number(before['model_utility'])} -> {_number(after['model_utility'])}.", "",
              "## Figures and attacks", "",
              "The yardstick of \"as if never learned\" is the retain model where the run has one"
              + ("." if "retain_model" in evaluation else "; this run has none, so the target is the only reference."),
              "", *figures_table(evaluation)]
    lines += _earlier(evaluation.get("earlier_requests", []))
    not_measured = {**after["not_measured"], **after.get("model_utility_missing", {})}
    if not_measured:
        lines += ["", "## Not measured", ""] + [f"- {name}: {why}" for name, why in not_measured.items()]
    return "\n".join(lines) + "\n"


def _earlier(earlier: list[dict]) -> list[str]:
    if not earlier:
        return []
    lines = ["", "## Earlier requests on this model: still forgotten?", "",
             "| run | questions | forget ROUGE-L | leak share (upper bound) |", "|---|---|---|---|"]
    for entry in earlier:
        if "not_measured" in entry:
            lines.append(f"| {entry['run']} | n/a | n/a | n/a: {entry['not_measured']} |")
        else:
            sampling = entry["sampling"]
            lines.append(f"| {entry['run']} | {entry['rows']} | {entry['forget_rouge_l']:.3f} | "
                         f"{sampling['leak_share']:.3f} ({sampling['leak_share_upper']:.3f}) |")
    return lines


def _share(value: float, of: float) -> str:
    return f"{100 * value / of:.1f} %" if of else "n/a"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def write_summary(path: Path, title: str, evaluation: dict, answers: dict[str, dict], target: dict,
                  forget_set: str) -> None:
    path.write_text(render_summary(title, evaluation, answers, target, forget_set))
