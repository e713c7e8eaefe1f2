"""The PMC loop itself, on the real engine and trainer without Ray: when it samples and when it pushes weights."""
from __future__ import annotations

import gc
import math

import pytest

from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
from pmc_unlearning.configs import CONFIG_DIR, load_config
from pmc_unlearning.configs.schema import JudgeConfig, StopConfig
from pmc_unlearning.engine import Sampler
from pmc_unlearning.evaluation.rouge import content_recall, rouge_l_recall
from pmc_unlearning.methods import pmc as pmc_module
from pmc_unlearning.methods.method import Task
from pmc_unlearning.methods.pmc import PMC
from pmc_unlearning.methods.rounds import run_rounds
from pmc_unlearning.models.prompting import Example, PromptFormat
from pmc_unlearning.trainer import Trainer

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick


@pytest.fixture(scope="module")
def engine_and_trainer(tiny_model):
    config = load_config(CONFIG_DIR / "smoke.yaml")
    sampler, trainer = Sampler(tiny_model, config.engine), Trainer(tiny_model, precision="fp32", seed=0)
    yield config, sampler, trainer
    del sampler
    gc.collect()


def run_pmc(engine_and_trainer, small_bench, **settings):
    """PMC on four forget rows, four candidates each, the smoke preset's other settings but `settings`."""
    config, sampler, trainer = engine_and_trainer
    prompt = PromptFormat(trainer.tokenizer)
    rows = small_bench.forget[:4]
    retain = [prompt.example(row.question, row.answer) for row in small_bench.retain[:4]]
    originals = [row.answer for row in rows]
    job = config.model_copy(update={"pmc": config.pmc.model_copy(update={"num_samples": 4, **settings})})
    records = []
    run_rounds(PMC(job, Task(prompt, rows, retain, originals)), SamplerGroup([sampler]), TrainerGroup([trainer]),
               sampler.weight_dtype(), records.append)
    return records, sampler, [prompt.prompt(row.question) for row in rows], originals


def test_resample_every_samples_only_every_kth_round_and_pushes_weights_only_before_the_engine_is_used(
        engine_and_trainer, small_bench):
    # min_len above any answer's length adds exp(-words) > 0 to every score: no question is ever done, so every
    # sampling round samples all four.
    records, *_ = run_pmc(engine_and_trainer, small_bench, rounds=5, resample_every=2, min_len=1000)

    assert [r["round"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["sampled_questions"] for r in records] == [4, 0, 4, 0, 4]
    assert [r["candidates"] for r in records] == [16, 0, 16, 0, 16]
    # Weights go to the engine after rounds 2 and 4 (it samples in 3 and 5) and after the last (evaluation).
    pushed = [r["seconds"]["weight_sync"] > 0 for r in records]
    assert pushed == [False, True, False, True, True]
    # Between sampling rounds the selections stay what they were.
    assert records[1]["selected_score_mean"] == records[0]["selected_score_mean"]
    assert records[3]["selected_score_mean"] == records[2]["selected_score_mean"]


def test_the_stop_rule_ends_pmc_once_the_greedy_check_has_held_for_patience_rounds(engine_and_trainer, small_bench):
    stop = {"patience": 2, "threshold": 1.0}  # every round passes once all questions are at zero
    records, sampler, prompts, originals = run_pmc(engine_and_trainer, small_bench, rounds=12,
                                                         stop=StopConfig(**stop))
    held = 0
    for record in records:  # the rule, recomputed from each round's own figures
        held = held + 1 if record["questions_at_zero"] == 4 and record["greedy_forget_score"] <= 1.0 else 0
        assert record["stop_held"] == held
        assert record["seconds"]["weight_sync"] > 0  # the check needs the new weights every round
    assert held == 2 and records[-1]["stopped"] and not any(r["stopped"] for r in records[:-1])
    assert len(records) < 12
    # The last check, computed again from the engine's answers now.
    answers = sampler.greedy(prompts)
    expected = sum(rouge_l_recall(o, a.text) for o, a in zip(originals, answers)) / 4
    assert records[-1]["greedy_forget_score"] == pytest.approx(expected)


def test_without_a_passing_check_pmc_runs_every_round(engine_and_trainer, small_bench):
    # min_len 1000: every candidate is penalised, so no question ever reaches zero and the rule never holds.
    records, *_ = run_pmc(engine_and_trainer, small_bench, rounds=3, min_len=1000,
                                stop=StopConfig(patience=1, threshold=1.0))
    assert [r["round"] for r in records] == [1, 2, 3]
    assert [r["stop_held"] for r in records] == [0, 0, 0]


def test_a_judged_round_keeps_per_question_the_pick_recomputed_from_its_candidates_under_an_independent_base_model(
        engine_and_trainer, small_bench, tiny_model):
    """Content scoring, a judge of the two least similar candidates and its cap, recomputed by hand: the scores,
    the judge's NLL from a Trainer of its own on the base model, the cap from the retain answers, the choice."""
    config, sampler, trainer = engine_and_trainer
    prompt = PromptFormat(trainer.tokenizer)
    rows = small_bench.forget[:4]
    retain = [prompt.example(row.question, row.answer) for row in small_bench.retain[:4]]
    originals = [row.answer for row in rows]
    settings = {"num_samples": 4, "rounds": 1, "score": "content", "judge": JudgeConfig(candidates=2, cap=True)}
    job = config.model_copy(update={"pmc": config.pmc.model_copy(update=settings)})
    pmc = PMC(job, Task(prompt, rows, retain, originals, str(tiny_model)))
    drawn = []  # the engine's candidates, as the round got them
    group = SamplerGroup([sampler])
    sample = group.sample
    group.sample = lambda *args, **kwargs: drawn.append(sample(*args, **kwargs)) or drawn[-1]
    records = []
    run_rounds(pmc, group, TrainerGroup([trainer]), sampler.weight_dtype(), records.append)

    base = Trainer(tiny_model, precision="fp32", seed=0)
    nll = lambda examples: [-logprob / count for logprob, count in base.score(examples)]  # noqa: E731
    threshold = max(nll(retain))
    assert pmc.cache.threshold == pytest.approx(threshold, rel=1e-5)
    for question, candidates in enumerate(drawn[0]):
        scores = [content_recall(originals[question], c.text, rows[question].question) for c in candidates]
        judged = sorted(range(4), key=lambda i: (scores[i], i))[:2]
        fluency = dict(zip(judged, nll([Example(prompt.prompt(rows[question].question), candidates[i].token_ids)
                                        for i in judged])))
        fluency = {i: value if candidates[i].finished else math.inf for i, value in fluency.items()}  # cut: no answer
        eligible = [i for i in judged if fluency[i] <= threshold] or judged
        expected = min(eligible, key=lambda i: (scores[i], fluency[i]))
        assert pmc.cache.best[question].completion.text == candidates[expected].text
        assert pmc.cache.best[question].score == pytest.approx(scores[expected])
    assert records[0]["seconds"]["judging"] > 0


def test_avoiding_the_original_samples_no_token_of_its_words_and_the_same_call_unbanned_does(
        engine_and_trainer, small_bench):
    """`avoid_original`: the round's candidates hold none of the tokens of the original answer's words (as written,
    lower-case, capitalised; with and without a leading space), derived here from the tokenizer; the same call
    without the ban draws some of them, so the ban, not chance, keeps them out."""
    config, sampler, trainer = engine_and_trainer
    tokenizer = trainer.tokenizer
    prompt = PromptFormat(tokenizer)
    rows = small_bench.forget[:4]
    originals = [row.answer for row in rows]
    job = config.model_copy(update={"pmc": config.pmc.model_copy(update={"num_samples": 8, "rounds": 1,
                                                                         "avoid_original": True})})
    pmc = PMC(job, Task(prompt, rows, [prompt.example(row.question, row.answer) for row in small_bench.retain[:4]],
                        originals))
    drawn, unbanned = [], []  # the round's candidates, and the same call's without the ban, from the same weights
    group = SamplerGroup([sampler])
    sample = group.sample

    def both(*args, **kwargs):
        unbanned.append(sample(*args, **{**kwargs, "banned": None}))
        drawn.append(sample(*args, **kwargs))
        return drawn[-1]
    group.sample = both
    run_rounds(pmc, group, TrainerGroup([trainer]), sampler.weight_dtype(), lambda record: None)

    def pieces(original: str) -> set[int]:
        words = "".join(c if c.isalnum() else " " for c in original).split()
        return {token for word in words for form in {word, word.lower(), word[0].upper() + word[1:].lower()}
                for spaced in ("", " ") for token in tokenizer(spaced + form, add_special_tokens=False)["input_ids"]}

    sampled_pieces = 0
    for original, candidates, free in zip(originals, drawn[0], unbanned[0]):
        banned = pieces(original)
        assert not any(set(c.token_ids) & banned for c in candidates), original
        sampled_pieces += sum(len(set(c.token_ids) & banned) for c in free)
    assert sampled_pieces > 0


def test_an_original_with_more_word_tokens_than_vllm_bans_in_one_request_is_refused_by_its_question(
        engine_and_trainer, small_bench, monkeypatch):
    """vLLM's GPU runner takes at most 1024 logit-bias entries a request; the tiny model's vocabulary is too small
    to pass that, so the limit is lowered to what the first original needs."""
    config, _, trainer = engine_and_trainer
    prompt = PromptFormat(trainer.tokenizer)
    rows = small_bench.forget[:2]
    originals = [rows[0].answer, f"{rows[0].answer} {rows[1].answer} and more besides"]
    limit = len(pmc_module.word_tokens(trainer.tokenizer, originals[0]))
    monkeypatch.setattr(pmc_module, "MAX_BANNED", limit)
    job = config.model_copy(update={"pmc": config.pmc.model_copy(update={"avoid_original": True})})
    with pytest.raises(ValueError, match=rf"the original answer to forget question 1 has \d+ word tokens to ban, more "
                                         rf"than vLLM takes in one request's logit bias \({limit}\)"):
        PMC(job, Task(prompt, rows, [], originals))
