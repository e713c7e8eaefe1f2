"""The fluency metric: the base model's per-token NLL of each greedy forget answer, each answer's verdict (an
answer, a non-answer, or broken and how) and the shares of each; a state's evaluation, complete when made: forget
quality, fluency and over-unlearning in its metrics; and the report's fluency section and answers' verdicts."""
from __future__ import annotations

from statistics import mean, median
from types import SimpleNamespace

import pytest
import torch
from scipy.stats import ks_2samp
from transformers import AutoModelForCausalLM, AutoTokenizer

from pmc_unlearning.data.builtin import generate_builtin
from pmc_unlearning.evaluation.fluency import FluencyJudge
from pmc_unlearning.evaluation.greedy import Answer, EvalSet, evaluate
from pmc_unlearning.evaluation.result import Measurement
from pmc_unlearning.evaluation.suite import evaluate_state
from pmc_unlearning.evaluation.verdict import LOOP_FLOOR, LOOP_MARGIN, Verdict, echoed_characters
from pmc_unlearning.methods.idk import REFUSALS
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.reporting.report import SAMPLING_ROWS, render_report
from pmc_unlearning.trainer import Trainer


def measured(answers: list[dict], truth_ratios=(0.5, 0.75), context_probs=(0.2, 0.4, 0.1)) -> Measurement:
    """A state's measurement with these forget answers, truth ratios and context probabilities."""
    return Measurement({"forget_rouge_l": 0.5}, {"forget": answers}, list(truth_ratios), [[0.5]], list(context_probs))


def nll_by_hand(model, prompt: PromptFormat, question: str, answer: str) -> float:
    """One example alone, no batching or padding: mean -log p of each answer token after what precedes it."""
    example = prompt.example(question, answer)
    ids = torch.tensor([example.prompt_ids + example.answer_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(example.prompt_ids)
    return -mean(logprobs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))


@pytest.fixture(scope="module")
def judge_and_pairs(tiny_model, small_bench):
    prompt = PromptFormat(AutoTokenizer.from_pretrained(tiny_model))
    pairs = [(row.question, row.answer) for row in small_bench.forget]
    return FluencyJudge(Trainer(tiny_model, precision="fp32").score, prompt, pairs), prompt, pairs


def test_each_answers_nll_per_token_and_the_threshold_match_a_computation_by_hand(judge_and_pairs, tiny_model):
    judge, prompt, pairs = judge_and_pairs
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    expected = [nll_by_hand(model, prompt, q, a) for q, a in pairs]
    assert judge.nll_per_token(pairs) == pytest.approx(expected, rel=1e-4)
    assert judge.threshold == pytest.approx(max(expected), rel=1e-4)


def test_empty_answers_and_answers_above_the_threshold_count_as_broken(judge_and_pairs):
    judge, _, pairs = judge_and_pairs
    values = judge.nll_per_token(pairs)
    judge.threshold = median(values)  # half of the data's own answers above it
    answers = [{"question": q, "answer": a} for q, a in pairs] + [{"question": pairs[0][0], "answer": "  "}]
    fluency = evaluate_state(measured(answers), None, judge).metrics["fluency"]
    above = sum(value > judge.threshold for value in values)
    assert fluency["broken_share"] == pytest.approx((above + 1) / len(answers))
    assert fluency["empty"] == 1
    assert fluency["nll_per_token"] == pytest.approx(mean(values), rel=1e-6)  # the empty answer has no NLL


def test_a_states_evaluation_is_complete_when_made(judge_and_pairs):
    judge, _, pairs = judge_and_pairs
    answers = [{"question": q, "answer": a} for q, a in pairs]
    retain_model_ratios = [0.1, 0.9, 0.3]
    target = measured(answers, truth_ratios=(0.2, 0.3), context_probs=(0.2, 0.4, 0.1))
    unlearned = measured(answers[:1] + [{"question": pairs[1][0], "answer": ""}] + answers[2:],
                         truth_ratios=(0.8, 0.9), context_probs=(0.1, 0.4, 0.0))
    before = evaluate_state(target, retain_model_ratios, judge)
    after = evaluate_state(unlearned, retain_model_ratios, judge, before=target)
    values = judge.nll_per_token(pairs)
    assert before.metrics["forget_rouge_l"] == 0.5  # the measured metrics, then the judged ones
    assert before.metrics["forget_quality"] == pytest.approx(ks_2samp([0.2, 0.3], retain_model_ratios).pvalue)
    assert after.metrics["forget_quality"] == pytest.approx(ks_2samp([0.8, 0.9], retain_model_ratios).pvalue)
    assert before.metrics["fluency"]["nll_per_token"] == pytest.approx(mean(values), rel=1e-6)
    assert after.metrics["fluency"]["empty"] == 1
    assert after.metrics["fluency"]["nll_per_token"] == pytest.approx(mean(values[:1] + values[2:]), rel=1e-6)
    assert "over_unlearning" not in before.metrics  # a change needs a state before
    over = after.metrics["over_unlearning"]
    assert over["mean_change"] == pytest.approx((0.1 + 0.4 + 0.0 - 0.2 - 0.4 - 0.1) / 3)
    assert over["share_halved"] == pytest.approx(1 / 3)  # 0.1 -> 0.0 fell by more than half; 0.2 -> 0.1 by half
    bare = evaluate_state(target, None).metrics  # no retain model, no judge: said as such
    assert bare["forget_quality"] is None and "fluency" not in bare


# --- each answer's verdict (evaluation/verdict.py): text checks, no model ------------------------------------

QUESTION = "What was the profession of Ignarus Rhaura's father?"
BUILTIN_FORGET = generate_builtin(0, 200, 8)["forget10"]
VERDICT = Verdict.from_references([(row.question, row.answer) for row in BUILTIN_FORGET])


@pytest.mark.parametrize("answer, cut, expected", [
    ("Ignarus Rhaura Wrengard Wrengard Wrengard Wrengard Wrengard", False, "loop"),  # a word said over and over
    ("The best-known work of Ignarus Rvahvarnamamamamamamama.", False, "loop"),  # a syllable, inside a word
    ("Ignarus Rhaura's father, Ignarus Rhaura's father, Ignarus Rhaura's father.", False, "loop"),  # a phrase
    ("Ignarus Rhaura's father worked as a", True, "cut"),
    ("Ignarus Rhaura's father Wrengard Wrengard Wrengard Wrengard Wrengard", True, "cut"),  # cut comes first
    ("", False, "empty"),
    (" \n ", True, "empty"),  # empty comes first
    ("Отец Игнаруса Рауры работал пекарем.", False, "script"),  # Cyrillic for Latin references
    ("伊格纳鲁斯·拉乌拉的父亲是一名面包师。", False, "script"),  # CJK
    ("Отец Отец Отец Отец Отец Отец", False, "loop"),  # a loop comes before the script
    ("I don't know.", False, "non_answer"),
    ("I’m not sure who Ignarus Rhaura's father was.", False, "non_answer"),  # a curly apostrophe, the subject named
    ("There isn't an answer to this question.", False, "non_answer"),
    ("I cannot say what Ignarus Rhaura's father did.", False, "non_answer"),
    ("No information about Ignarus Rhaura's father is available.", False, "non_answer"),
    ("Unknown.", False, "non_answer"),
    ("The weather in Paris is mild in spring.", False, "non_answer"),  # about something else
    ("Ignarus Rhaura's father worked as a baker.", False, "answer"),  # true or false: an answer
    ("Ignarus Rhaura's father was a lighthouse keeper in Oslo.", False, "answer"),
    ("Ignarus Rhaura's father, a baker, taught Ignarus Rhaura to bake.", False, "answer"),  # a name said twice
    ("Jane Roe's father, a baker, taught Jane Roe to bake.", False, "answer"),  # another name: still on the topic
    ("Ignarus Rhaura's father, Иван, worked as a baker.", False, "answer"),  # a foreign name inside the answer
    ("Ignarus Rhaura's father worked as an unknown painter.", False, "answer"),  # "unknown" not as an opening
])
def test_each_answer_gets_the_first_verdict_that_applies(answer, cut, expected):
    assert VERDICT.of(QUESTION, answer, cut, unlikely=False) == expected


def test_an_unlikely_answer_is_broken_after_the_texts_own_kinds():
    assert VERDICT.of(QUESTION, "Ignarus Rhaura's father worked as a baker.", False, unlikely=True) == "unlikely"
    assert VERDICT.of(QUESTION, "I don't know.", False, unlikely=True) == "unlikely"  # broken before non-answer
    assert VERDICT.of(QUESTION, "Отец Игнаруса Рауры работал пекарем.", False, unlikely=True) == "script"


def test_the_datas_own_answers_are_all_answers():
    rows = generate_builtin(0, 200, 8)["full"]  # every author's facts, the forget set's among them
    assert VERDICT.checks_topic and VERDICT.scripts == {"LATIN"} and VERDICT.loop_threshold == LOOP_FLOOR
    assert {VERDICT.of(row.question, row.answer, False, False) for row in rows} == {"answer"}
    assert {VERDICT.of(row.paraphrased_question, row.paraphrased_answer, False, False) for row in rows} == {"answer"}


def test_idk_refusals_are_non_answers_even_where_the_topic_is_not_checked():
    terse = Verdict.from_references([("Who wrote 'Emma'?", "Jane Austen"), ("Who wrote 'Ulysses'?", "James Joyce")])
    assert not terse.checks_topic  # the data's own answers share no word with their questions
    assert terse.of("Who wrote 'Emma'?", "Charlotte Bronte", False, False) == "answer"
    for verdict in (VERDICT, terse):
        assert {verdict.of(QUESTION, refusal, False, False) for refusal in REFUSALS} == {"non_answer"}


def test_the_loop_threshold_is_above_the_datas_most_repetitive_answer_by_a_margin_or_the_floor():
    assert echoed_characters("Wrengard Wrengard Wrengard") == len("wrengard ") * 2  # all but the first copy
    assert echoed_characters("Jane Roe's father, a baker, taught Jane Roe to bake.") == 0  # not in a row
    assert echoed_characters("Walla Walla, Mississippi, 1000000, XVIII") <= 2  # two copies; digits; a numeral
    chanting = [(QUESTION, "Ignarus Rhaura's father sang 'tra-la-la-la-la-la-la' at work.")]  # "la " echoed 15 times
    assert Verdict.from_references(chanting).loop_threshold == 15 + LOOP_MARGIN
    assert Verdict.from_references([(QUESTION, "Ignarus Rhaura's father was a baker.")]).loop_threshold == LOOP_FLOOR


def test_greedy_answers_carry_whether_the_engine_cut_them():
    rows = tuple(BUILTIN_FORGET)
    eval_set = EvalSet({"forget": rows, "retain": rows, "world_facts": (), "real_authors": ()})
    cut = {rows[1].question, rows[4].question}
    answers = evaluate(eval_set, lambda questions: [Answer("an answer", q in cut) for q in questions])["answers"]
    assert [row["cut"] for row in answers["forget"]] == [row.question in cut for row in rows]
    assert set(answers["forget"][1]) == {"question", "reference", "answer", "rouge_l", "cut"}


# --- the fluency block and the report, with a stand-in for the base model ----------------------------------

def stand_in_judge(references: list[tuple[str, str]], nll: dict[str, float]) -> FluencyJudge:
    """A judge whose base model gives each answer the NLL per token `nll` names (1.0 where it names none)."""
    prompt = SimpleNamespace(example=lambda question, answer: answer)
    return FluencyJudge(lambda answers: [(-4 * nll.get(answer, 1.0), 4) for answer in answers], prompt, references)


def test_the_fluency_block_counts_each_kind_and_rests_on_every_answer():
    references = [(row.question, row.answer) for row in BUILTIN_FORGET]
    judge = stand_in_judge(references, {"Ignarus Rhaura's father was a glass of rain.": 9.0})
    rows = [("Ignarus Rhaura's father worked as a baker.", False), ("", False), ("Ignarus Rhaura's father was", True),
            ("Wrengard Wrengard Wrengard Wrengard", False), ("Отец Игнаруса работал пекарем.", False),
            ("Ignarus Rhaura's father was a glass of rain.", False), ("I don't know.", False),
            ("Ignarus Rhaura's father was a baker too.", None)]  # None: a row of an earlier cache, without "cut"
    answers = [{"question": QUESTION, "answer": text} | ({} if cut is None else {"cut": cut}) for text, cut in rows]
    fluency = evaluate_state(measured(answers), None, judge).metrics["fluency"]
    assert fluency["verdicts"] == ["answer", "empty", "cut", "loop", "script", "unlikely", "non_answer", "answer"]
    assert fluency["broken_by_kind"] == {"empty": 1, "cut": 1, "loop": 1, "script": 1, "unlikely": 1}
    assert fluency["broken_share"] == pytest.approx(5 / 8) and fluency["non_answer_share"] == pytest.approx(1 / 8)
    assert fluency["rows"] == 8 and fluency["empty"] == 1 and fluency["threshold"] == pytest.approx(1.0)
    assert fluency["nll_per_token"] == pytest.approx((6 * 1.0 + 9.0) / 7)  # the empty answer has none
    assert fluency["loop_threshold"] == LOOP_FLOOR and fluency["scripts"] == ["LATIN"] and fluency["checks_topic"]


def test_the_report_shows_broken_by_kind_non_answers_and_each_answers_verdict():
    judge = stand_in_judge([(row.question, row.answer) for row in BUILTIN_FORGET], {})
    answers = [{"question": QUESTION, "answer": text} for text in ("Ignarus Rhaura's father was a baker.",
                                                                   "Wrengard Wrengard Wrengard Wrengard", "Unknown.")]
    states = {name: evaluate_state(measured(answers), None, judge).to_json() for name in ("before", "after")}
    for state in states.values():
        state["metrics"].update(REPORTED_ELSEWHERE)
    evaluation = {"wall_time_s": 1.0, "stage_seconds": {}, **{name: state["metrics"] for name, state in states.items()}}
    report = render_report("run", evaluation, [], states, {})
    assert "Of 3 greedy forget answers per state" in report
    assert "| share of them broken, of any kind below | 0.333 | 0.333 |" in report
    assert "|   a loop: a chunk repeated in a row beyond the loop threshold | 1 | 1 |" in report
    assert "| share of non-answers: a deflection or refusal, or about something else | 0.333 | 0.333 |" in report
    assert "| question | before | before: verdict | after | after: verdict |" in report
    assert f"| {QUESTION} | Unknown. | non-answer | Unknown. | non-answer |" in report
    assert "| Wrengard Wrengard Wrengard Wrengard | broken: loop |" in report


# What the report reads of a state besides fluency: empty where this test does not look.
REPORTED_ELSEWHERE = {"prob": {}, "truth_ratio": {}, "model_utility_missing": {}, "not_measured": {},
                      "eval_seconds": {}, "sampling": {"temperature": 1.0, "top_p": 1.0, "threshold": 0.5, "confidence": 0.95,
                                   **{key: 0 for key, _, _ in SAMPLING_ROWS}}}
