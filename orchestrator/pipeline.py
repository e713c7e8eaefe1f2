"""The jobs, as recipes: unlearning (data, model, target fine-tune, PMC on Ray, evaluation, report) and
the standalone evaluation of a model folder. Both start from `open_job` (checked inputs, run folder, Ray
session and placement, the job's actors)."""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import ray
from transformers import AutoTokenizer

from pmc_unlearning.cluster.actors import ActorFailed, ActorProxy, ActorTimeout, one_line_cause, release
from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup, start_samplers, start_trainers
from pmc_unlearning.cluster.placement import Placement, job_placement
from pmc_unlearning.cluster.session import ray_session
from pmc_unlearning.cluster.weight_sync import set_up_weight_transfer, sync_weights
from pmc_unlearning.configs import ConfigError, RunConfig
from pmc_unlearning.data import QA, Benchmark
from pmc_unlearning.data.corpus import load_corpus
from pmc_unlearning.data.request import Request
from pmc_unlearning.evaluation.attacks import headline, judge_attacks, run_attacks
from pmc_unlearning.evaluation.attacks.model import AttackData, AttackedModel
from pmc_unlearning.evaluation.fluency import FluencyJudge
from pmc_unlearning.evaluation.greedy import Answer, EvalSet, build_eval_set
from pmc_unlearning.evaluation.logprobs import Scorer, logprob_metrics
from pmc_unlearning.evaluation.over_unlearning import Context, collect_contexts, forget_token_ids
from pmc_unlearning.evaluation.result import Measurement, StateEvaluation
from pmc_unlearning.evaluation.suite import evaluate_state, measure_forgetting, measure_state
from pmc_unlearning.methods import make_method
from pmc_unlearning.methods.method import Task
from pmc_unlearning.methods.rounds import run_rounds
from pmc_unlearning.models import fingerprint_folder, resolve_model
from pmc_unlearning.models.checks import check_prompt_lengths, check_tokenizer_fits_model
from pmc_unlearning.models.fingerprint import EVALUATION_CODE, TRAINING_CODE, content_fingerprint, fingerprint_code
from pmc_unlearning.models.hardware import resolve_engine_dtype, resolve_precision
from pmc_unlearning.models.prompting import PromptFormat, resolve_style
from pmc_unlearning.orchestrator.inputs import benchmark_texts, load_checked_data
from pmc_unlearning.orchestrator.lineage import earlier_requests, lineage_of, write_lineage, write_request_record
from pmc_unlearning.orchestrator.ownership import EVALUATE, UNLEARN, holding
from pmc_unlearning.orchestrator.run_folder import RunFolder, check_run_folders, package_versions
from pmc_unlearning.reporting.model_card import card_base_model, write_model_card
from pmc_unlearning.reporting.plots import write_plots
from pmc_unlearning.reporting.report import attacked_models, write_report
from pmc_unlearning.reporting.summary import write_summary
from pmc_unlearning.storage.files import (
    NotPrivate,
    build_folder_once,
    building,
    sees_probe,
    settings_key,
    users_cache_folder,
    write_probe,
)
from pmc_unlearning.telemetry.console import Progress, captured, keep_log, log_state, show
from pmc_unlearning.telemetry.errors import JobError, Refused
from pmc_unlearning.telemetry.timing import StageTimer
from pmc_unlearning.trainer.finetune import finetune_target, target_cache_key

Group = TypeVar("Group", SamplerGroup, TrainerGroup)


@captured()
def run_unlearning(config: RunConfig, report: Callable[[dict], None] | None = None, fresh: bool = False) -> Path:
    """The whole job; `report` also gets each round's metrics (a batch trial passes them on to Ray Tune);
    `fresh`: start over where a partial run of other settings holds resumable work. Its output, and what
    Ray forwards from its actors, goes into the run's log.txt (telemetry/console.py)."""
    with holding(config.runs_dir, config.name):
        return _run_unlearning(with_users_cache(config), report, fresh)


def _run_unlearning(config: RunConfig, report: Callable[[dict], None] | None, fresh: bool) -> Path:
    with open_job(config, UNLEARN, fresh) as job:
        run, timer, prompt, bench = job.run, job.timer, job.prompt, job.bench  # as the rounds' block reads them
        with timer("target_finetune"):
            target_dir, target_built = fine_tune_target(job)
        with timer("retain_model"):
            retain_ratios, retain_attacks = retain_model_state(job)
        with timer("engine_start"):
            sampler, trainer, engine_dtype = start_engine_and_trainer(job, target_dir)
        with timer("eval_before"):
            before = measure_target_once(target_dir, prompt, config, bench.fingerprint(),
                                         lambda: measure(job, sampler, trainer, "evaluation (target)"))
        log_state("target model", before.metrics)
        with timer("attacks_before"):
            before_attacks = attack_once(job, target_dir, "target", lambda: attack(job, sampler, trainer, engine_dtype))
        retain = [prompt.example(row.question, row.answer) for row in bench.retain]
        originals = [row["answer"] for row in before.answers["forget"]]

        with timer("unlearning"), Progress(f"unlearning ({config.method})", config.pmc.rounds, "rounds",
                                           initial=run.resumed or 0) as rounds_done:
            def log_round(record: dict) -> None:
                run.append_metrics(record)
                if report:
                    report(record)
                selected = "selected_score_mean" in record  # PMC's; the baselines select nothing
                print(f"{config.method} round {record['round']}: loss {record['loss']:.3f}"
                      + (f", selected score {record['selected_score_mean']:.3f}, at zero {record['questions_at_zero']}"
                         f"/{record['questions']}" if selected else "")
                      + f", seconds {record['seconds']}", flush=True)
                rounds_done.update(1, (f"selected score {record['selected_score_mean']:.3f}, " if selected else "")
                                   + f"loss {record['loss']:.3f}")
            method = make_method(config, Task(prompt, bench.forget, retain, originals, str(job.base_dir)))
            run_rounds(method, sampler, trainer, engine_dtype, log=log_round, checkpoints=run.checkpoints)
            run.checkpoints.wait(trainer)

        with timer("eval_after"):
            after = measure(job, sampler, trainer, f"evaluation (after {config.method})")
            earlier = earlier_requests_after(job, target_dir, sampler)
        with timer("save_model"):
            save_model(job, trainer)
        with timer("attacks_after"):  # on the trainer's copy in memory: the saved model stays as it is
            after_attacks = attack(job, sampler, trainer, engine_dtype)
        job.release(sampler, trainer)  # the fluency judge works in their room
        with timer("fluency"), fluency_judge(job) as judge:
            states = {"before": evaluate_state(before, retain_ratios, judge,
                                               attacks=judge_attacks(before_attacks, before_attacks, retain_attacks)),
                      "after": evaluate_state(after, retain_ratios, judge, before=before,
                                              attacks=judge_attacks(after_attacks, before_attacks, retain_attacks))}
    log_state(f"after {config.method}", states["after"].metrics)
    evaluation = {"before": states["before"].metrics, "after": states["after"].metrics,
                  **retain_model_block(retain_attacks), **job.times(),
                  "checkpoint_seconds": round(run.checkpoints.seconds, 2), "resumed_after_round": run.resumed,
                  "target_model": str(target_dir), "target_finetuned": target_built,
                  "references": job.references, **({"earlier_requests": earlier} if earlier else {})}
    write_outputs(run, f"Unlearning run '{config.name}': {config.method} on {config.model}", evaluation, states,
                  recorded_rounds(run), retain_ratios)
    record_request(job, target_dir, states, evaluation)
    return run.finish()


@captured()
def run_evaluation(config: RunConfig) -> Path:
    """Evaluate a model folder as it is (no fine-tune, no unlearning): the same eval.json and report."""
    with holding(config.runs_dir, config.name):
        return _run_evaluation(with_users_cache(config))


def _run_evaluation(config: RunConfig) -> Path:
    with open_job(config, EVALUATE, fresh=True) as job:
        with job.timer("retain_model"):
            retain_ratios, retain_attacks = retain_model_state(job)
        with job.timer("engine_start"):  # connected for pushes as a run's: the attacks push weights
            sampler, trainer, engine_dtype = start_engine_and_trainer(job, job.model_dir)
        with job.timer("evaluation"):
            measured = measure(job, sampler, trainer, "evaluation")
        with job.timer("attacks"):
            attacks = judge_attacks(attack(job, sampler, trainer, engine_dtype), {}, retain_attacks)
            model = evaluate_state(measured, retain_ratios, attacks=attacks)
    log_state("model", model.metrics)
    evaluation = {"model": model.metrics, **retain_model_block(retain_attacks), **job.times(),
                  "model_dir": str(job.model_dir)}
    write_outputs(job.run, f"Evaluation of {config.model}", evaluation, {"model": model}, [], retain_ratios)
    return job.run.finish()


@dataclass
class Job:
    """What both recipes start from: the checked inputs (`model_dir`: the model the job starts from; `base_dir`:
    the one its target was made from, see `base_model_dir`; `bench`: the benchmark, or the forget `request` made
    into one), the run folder, the stage timer, the Ray placement and the job's actors."""
    config: RunConfig
    bench: Benchmark
    request: Request | None
    model_dir: Path
    base_dir: Path
    prompt: PromptFormat
    eval_set: EvalSet
    contexts: list[Context]
    run: RunFolder
    timer: StageTimer
    placement: Placement
    actors: list[ActorProxy]
    started: float  # time.perf_counter()'s

    def add(self, group: Group) -> Group:
        """`group`'s actors become the job's: named when one fails, released when the job ends."""
        self.actors += group.members
        return group

    def release(self, *groups: SamplerGroup | TrainerGroup) -> None:
        """Release `groups` before the job ends (their bundle's room is needed)."""
        for group in groups:
            release(*group.members)
            for member in group.members:
                self.actors.remove(member)

    def times(self) -> dict:
        return {"wall_time_s": round(time.perf_counter() - self.started, 2), "stage_seconds": self.timer.seconds}

    @property
    def references(self) -> dict[str, str]:
        """What the greedy ROUGE-L of the forget and retain rows is computed against (eval.json's `references`)."""
        if self.request:
            return self.request.references()
        return {"forget": f"the data's answers ({len(self.bench.forget)} rows)",
                "retain": f"the data's answers ({len(self.eval_set.rows['retain'])} rows)"}


@contextmanager
def open_job(config: RunConfig, kind: str, fresh: bool) -> Iterator[Job]:
    """A job of `kind` set up: everything that can refuse bad input checked before anything is written, then its
    run folder (the log goes there from now on), a Ray session and the job's placement; its actors are
    released when the block ends, and a failing one ends the job in one line (`actor_failures`)."""
    started, timer = time.perf_counter(), StageTimer()
    with timer("setup"):
        check_run_folders(config, kind, fresh)
        data, model_dir, prompt = prepare(config)
        base_dir = base_model_dir(config, kind, model_dir, data)
        request = data if isinstance(data, Request) else None
        inputs = None if request else evaluation_inputs(data, prompt, config)  # a request's: once answered
    resolved = resolved_settings(config, model_dir, prompt, data, base_dir)
    run = RunFolder(config, extra=resolved, kind=kind, fresh=fresh)
    keep_log(run.path / "log.txt")
    show(f"run folder (while running): {run.path}" + (f", resuming after round {run.resumed}" if run.resumed else ""))
    with ray_session(), job_placement(config) as placement, actor_failures(run, timer) as actors:
        if request:
            with timer("target_answers"):
                inputs = evaluation_inputs(answered_request(request, model_dir, prompt, config, placement, actors),
                                           prompt, config)
        bench, eval_set, contexts = inputs
        yield Job(config, bench, request, model_dir, base_dir, prompt, eval_set, contexts, run, timer, placement,
                  actors, started)


def evaluation_inputs(bench: Benchmark, prompt: PromptFormat, config: RunConfig) -> tuple[Benchmark, EvalSet,
                                                                                        list[Context]]:
    """The benchmark with the rows every state of the run is evaluated on and its over-unlearning contexts."""
    return bench, build_eval_set(bench, config.eval.retain_subset, config.eval.seed), over_unlearning_contexts(
        prompt, bench, config)


def fine_tune_target(job: Job) -> tuple[Path, bool]:
    """The target model's folder (the base fine-tuned on the full split; `model` itself where it is the target,
    target.finetune=false), and whether the run recorded it as fine-tuned by itself (a resumed run keeps its first
    attempt's record). target.json records it with its content fingerprint."""
    if job.config.target.finetune:
        folder, finetuned_now = ensure_finetuned(job.model_dir, job.bench.full, "target", job.bench.fingerprint(),
                                                 job.prompt, job.config, job.placement)
    else:
        folder, finetuned_now = job.model_dir, False
        show(f"target model: {folder} as it is (target.finetune=false)")
    return folder, job.run.target_record(folder, finetuned_now, content_fingerprint(folder))


def start_engine_and_trainer(job: Job, model_dir: Path) -> tuple[SamplerGroup, TrainerGroup, str]:
    """The job's engines and trainer ranks on `model_dir`, connected for weight pushes, and the engines' weight
    dtype; where each runs goes into placement.json."""
    config = job.config
    with Progress("engine and trainer start", total=1) as starting:
        sampler = job.add(start_samplers(model_dir, config, job.placement))
        trainer = job.add(start_trainers(model_dir, config, job.placement, seed=config.pmc.seed))
        check_shared_storage(job.run.path, trainer)
        engine_dtype = sampler.weight_dtype()  # also waits until the engines are up
        placed = job.placement.record(job.actors)
        transfer = set_up_weight_transfer(config.engine.weight_transfer, trainer, sampler, placed, engine_dtype,
                                          config.engine.tensor_parallel_size)
        job.run.write_json("placement.json", {**placed, "weight_transfer": transfer})
        starting.update()
    return sampler, trainer, engine_dtype


def measure(job: Job, sampler, trainer, label: str) -> Measurement:
    """The measurement of the model state the two actors hold now (they hold the same weights); `label` names
    it on the console."""
    return measure_state(job.eval_set, job.prompt, greedy_answerer(sampler, job.prompt), sampler,
                         scoring(job, trainer), job.contexts,
                         job.config.eval, label)


def scoring(job: Job, trainer: TrainerGroup) -> Scorer:
    """The log-probabilities of `trainer`'s model, in the evaluation's batches."""
    return lambda examples: trainer.score(examples, job.config.eval.score_batch_size)


def save_model(job: Job, trainer) -> None:
    trainer.save(str((job.run.path / "model").resolve()))
    job.prompt.record(job.run.path / "model")


@contextmanager
def scorer(job: Job, model_dir: Path, role: str, precision: str | None = None) -> Iterator[Scorer]:
    """The `score` of a one-rank trainer on `model_dir` that only scores, in trainer rank 0's bundle (the job's
    trainers must not hold it then). One of the job's actors while the block runs, so that its failure ends
    the job as any actor's does; released when the block is done."""
    group = job.add(start_trainers(model_dir, job.config, job.placement, seed=0, role=role, ranks=1,
                                   precision=precision))
    yield scoring(job, group)
    job.release(group)


@contextmanager
def fluency_judge(job: Job) -> Iterator[FluencyJudge]:
    """The judge of fluency (evaluation/fluency.py): the base model, which never saw the forget facts, scoring
    in fp32 whatever the run trains in."""
    with scorer(job, job.base_dir, "fluency judge", precision="fp32") as score:
        yield FluencyJudge(score, job.prompt, [(row.question, row.answer) for row in job.bench.forget])


def retain_model_state(job: Job) -> tuple[list[float] | None, dict | None]:
    """The retain model's (the base fine-tuned on the retain split only) forget-set truth ratios, for forget
    quality, and its attack results, the yardstick of "as if never learned"; both cached, so that a job whose
    retain model was measured before starts no actor for it; (None, None) unless eval.retain_model."""
    if not job.config.eval.retain_model:
        return None, None
    bench = job.bench
    fingerprint = hashlib.sha256(f"retain-only:{bench.fingerprint()}".encode()).hexdigest()
    folder, _ = ensure_finetuned(job.base_dir, bench.retain, "retain", fingerprint, job.prompt, job.config,
                                 job.placement)
    forget_only = EvalSet({"forget": job.eval_set.rows["forget"], "retain": (), "world_facts": (), "real_authors": ()})

    trainers: list[TrainerGroup] = []

    def retain_trainer() -> TrainerGroup:  # one for both, started only if one of them is not cached
        if not trainers:
            trainers.append(job.add(start_trainers(folder, job.config, job.placement, seed=0,
                                                   role="retain model trainer")))
        return trainers[0]

    def attacked() -> dict:  # the attacks give the trainer back as they found it, for the truth ratios
        sampler = job.add(start_samplers(folder, job.config, job.placement, label="retain model sampler"))
        try:
            return attack(job, sampler, retain_trainer(), sampler.weight_dtype())
        finally:
            job.release(sampler)

    def truth_ratios() -> list[float]:
        return logprob_metrics(forget_only, job.prompt, scoring(job, retain_trainer()))["forget_truth_ratios"]

    try:
        attacks = attack_once(job, folder, "retain model", attacked) if job.config.eval.attacks.run else {}
        ratios = cached_json(measurement_folder(job.prompt, job.config, bench.fingerprint(), "retain_model", folder),
                             "forget_truth_ratios.json", "retain model forget truth ratios", truth_ratios)
    finally:
        job.release(*trainers)
    return ratios, attacks


def earlier_requests_after(job: Job, target_dir: Path, sampler) -> list[dict]:
    """Whether the requests that made the target (its lineage) stay forgotten on the state the engines hold now:
    each one's forget ROUGE-L against the answers it was scored against, and its leak under sampling; where its
    record cannot be read, why."""
    results = []
    for entry, rows, why in earlier_requests(lineage_of(target_dir)):
        measured = ({"not_measured": why} if rows is None else
                    measure_forgetting(rows, job.prompt, greedy_answerer(sampler, job.prompt), sampler, job.config.eval))
        results.append({"run": entry["run"], **measured})
    return results


def record_request(job: Job, target_dir: Path, states: dict[str, StateEvaluation], evaluation: dict) -> None:
    """The unlearned model's lineage and card, a request's record (its questions and the answers they were scored
    against), and the run's one-page summary (summary.md)."""
    config, run, bench = job.config, job.run, job.bench
    target = json.loads((run.path / "target.json").read_text())
    entry = {"run": str(run.final.resolve()), "method": config.method, "target": str(target_dir),
             "target_fingerprint": target["content_fingerprint"], "forget_questions": len(bench.forget)}
    if job.request:
        entry["request_fingerprint"] = job.request.fingerprint()
        write_request_record(run.path, entry["request_fingerprint"], bench.forget, job.references)
        forget_set = f"the forget request {job.request.forget.where} ({len(bench.forget)} questions)"
    else:
        entry["data_fingerprint"] = bench.fingerprint()
        forget_set = f"the forget set `{config.data.source} {config.data.forget_split}` ({len(bench.forget)} questions)"
    lineage = write_lineage(run.path / "model", lineage_of(target_dir), entry)
    write_model_card(run.path / "model", config.model, config.method, forget_set, not config.target.finetune,
                     evaluation, lineage)
    write_summary(run.path / "summary.md", f"Run '{config.name}': what {config.method} made the model forget",
                  evaluation, {name: state.measured.answers for name, state in states.items()}, target, forget_set)


def retain_model_block(attacks: dict | None) -> dict:
    """eval.json's `retain_model` block: the retain model's attack results, where the run has a retain model."""
    return {} if attacks is None else {"retain_model": {"attacks": attacks, "attacks_headline": headline(attacks)}}


def attack(job: Job, sampler, trainer, dtype: str) -> dict:
    """The attacks `eval.attacks.run` names on the state the job's engines and trainer ranks hold now; they give
    it back as they found it (evaluation/attacks/model.py)."""
    model = AttackedModel(sampler, trainer, lambda: sync_weights(trainer, sampler, dtype), job.prompt,
                          job.config.eval.score_batch_size, job.config.eval.seed)
    data = AttackData(job.eval_set.rows["forget"], job.eval_set.rows["retain"], job.bench.holdout, job.bench.absent)
    return run_attacks(model, data, job.config)


def attack_once(job: Job, model_dir: Path, role: str, compute: Callable[[], dict]) -> dict:
    """The attack results of a model the job did not make (the target, the retain model): cached under a key of
    everything they depend on, so repeated runs and the methods of `make compare` pay for them once."""
    config = job.config
    settings = {**evaluation_settings(job.prompt, config, job.bench.fingerprint(), exclude={"retain_model"}),
                "model": fingerprint_folder(model_dir), "holdout": job.bench.holdout_fingerprint(),
                "relearn": {"lr": config.target.lr, "batch_size": config.target.batch_size}}
    return cached_json(config.cache_dir / "attacks" / settings_key(settings), "attacks.json", f"{role} attacks",
                       compute)


def cached_json(folder: Path, file: str, what: str, compute: Callable[[], Any]) -> Any:
    """`compute()`'s result, kept as `folder`/`file` (built once when jobs need it at the same time)."""
    if folder.is_dir():
        show(f"{what}: cached at {folder}")
    build_folder_once(folder, lambda tmp: (tmp / file).write_text(json.dumps(compute())))
    return json.loads((folder / file).read_text())


def recorded_rounds(run: RunFolder) -> list[dict]:
    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]


def write_outputs(run: RunFolder, title: str, evaluation: dict, states: dict[str, StateEvaluation],
                  rounds: list[dict], retain_ratios: list[float] | None) -> None:
    run.write_json("eval.json", evaluation)
    run.write_json("answers.json", {name: state.measured.answers for name, state in states.items()})
    run.write_json("samples.json", {
        **{name: {"forget_sample_rouge_l": state.measured.sample_scores, "context_probs": state.measured.context_probs,
                  "forget_truth_ratios": state.measured.forget_truth_ratios} for name, state in states.items()},
        "retain_model_forget_truth_ratios": retain_ratios})
    read = {name: state.to_json() for name, state in states.items()}  # as the report and the figures read them
    plots = write_plots(run.path, read, rounds, attacked_models(evaluation, read))
    write_report(run.path / "report.md", title, evaluation, rounds, read, plots)


def with_users_cache(config: RunConfig) -> RunConfig:
    """`config` whose cache_dir is this user's own: in a group-shared cache, a folder of the user's inside it."""
    try:
        folder = users_cache_folder(config.cache_dir)
    except NotPrivate as err:
        raise Refused(str(err)) from None
    return config if folder == config.cache_dir else config.model_copy(update={"cache_dir": folder})


def prepare(config: RunConfig) -> tuple[Benchmark | Request, Path, PromptFormat]:
    """The checked data (a benchmark, or a forget request that the target will complete), the model folder and
    the prompt format it is put questions in."""
    data = load_checked_data(config)
    model_dir = resolve_model(config.model, config.cache_dir, tokenizer_corpus=benchmark_texts(data),
                              revision=config.model_revision, progress=Progress)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    check_tokenizer_fits_model(tokenizer, model_dir)
    prompt = PromptFormat(tokenizer, resolve_style(config.prompt, tokenizer, model_dir))
    # A request's questions as its benchmark asks them (the answers, not known yet, play no part in the check).
    asked = data.benchmark(dict.fromkeys(data.unanswered(), "")) if isinstance(data, Request) else data
    check_prompt_lengths(prompt, asked, config.engine.max_model_len, config.engine.max_new_tokens)
    return data, model_dir, prompt


def base_model_dir(config: RunConfig, kind: str, model_dir: Path, data: Benchmark | Request) -> Path:
    """The model the job's target was made from: the retain model starts from it, and an unlearning job's judges
    of fluency score with it (it never knew the forget facts). `model` itself where the job fine-tunes its target.
    Where `model` is the target (`make eval`, target.finetune=false): `eval.retain_base`, or, where a retain model
    is asked for, the base_model its model card names (refused where neither says); else the target itself, so
    that a card naming a hub model never starts a download only for the judge."""
    if kind == UNLEARN and config.target.finetune:
        return model_dir
    name = config.eval.retain_base or (card_base_model(model_dir) if config.eval.retain_model else None)
    if name is None:
        if config.eval.retain_model:
            raise ConfigError(f"eval.retain_model: the retain model starts from the model the target was made from, "
                              f"and {model_dir} has no model card naming its base_model: set "
                              "eval.retain_base=<a model name or folder>")
        return model_dir
    return resolve_model(name, config.cache_dir, tokenizer_corpus=benchmark_texts(data), progress=Progress)


def resolved_settings(config: RunConfig, model_dir: Path, prompt: PromptFormat, data: Benchmark | Request,
                      base_dir: Path) -> dict:
    """What the run resolved at run time, saved beside its config: the model folder (for a hub model its
    snapshot, named by commit) and its fingerprint (a local folder's files change under the same path), the
    base model where it is another, the prompt format, the metrics the data cannot give (and why), the data's
    fingerprint (a request's: of what the user gave), and the precisions "auto" became on this machine."""
    return {"model_dir": str(model_dir), "model_fingerprint": fingerprint_folder(model_dir),
            **({"base_dir": str(base_dir)} if base_dir != model_dir else {}),
            "prompt": prompt.describe(), "absent_metrics": dict(data.absent), "data_fingerprint": data.fingerprint(),
            "precision": resolve_precision(config.precision), "engine_dtype": resolve_engine_dtype(config.engine.dtype)}


def resolved_now(config: RunConfig, kind: str = UNLEARN) -> dict:
    """What a job of `config` would resolve now (`resolved_settings`): what a finished run must match to be reused."""
    config = with_users_cache(config)
    data, model_dir, prompt = prepare(config)
    return resolved_settings(config, model_dir, prompt, data, base_model_dir(config, kind, model_dir, data))


def answered_request(request: Request, target_dir: Path, prompt: PromptFormat, config: RunConfig,
                     placement: Placement, actors: list[ActorProxy]) -> Benchmark:
    """The request as a benchmark: the target's greedy answers stand in for the answers it did not give (what the
    model said before). Cached under the target's fingerprint (as every cache: name, size, mtime of its weights),
    the questions, the engine, the prompt format and the code, so a request's questions are answered once per
    target; an engine of its own answers them (released before the job's engines start)."""
    questions = request.unanswered()

    def answer() -> dict[str, str]:
        group = start_samplers(target_dir, config, placement, label="target answers")
        actors.extend(group.members)
        try:
            return {question: said.text for question, said in zip(questions, greedy_answerer(group, prompt)(questions))}
        finally:
            release(*group.members)
            del actors[-len(group.members):]

    settings = {"target": fingerprint_folder(target_dir), "questions": questions, "prompt": prompt.describe(),
                "engine": config.engine.model_dump(mode="json"), "versions": package_versions(),
                "code": fingerprint_code(TRAINING_CODE)}
    answers = cached_json(config.cache_dir / "answers" / settings_key(settings), "answers.json",
                          f"the target's answers to {len(questions)} questions", answer) if questions else {}
    return request.benchmark(answers)


def over_unlearning_contexts(prompt: PromptFormat, bench: Benchmark, config: RunConfig):
    if config.eval.max_contexts == 0:
        return []
    tokens = forget_token_ids(prompt, [row.answer for row in bench.forget])
    return collect_contexts(prompt.tokenizer, load_corpus(config.eval.corpus, config.eval.corpus_revision), tokens,
                            max_contexts=config.eval.max_contexts, context_tokens=config.eval.context_tokens,
                            seed=config.eval.seed)


def finetuned_dir(base_dir: Path, rows_fingerprint: str, prompt: PromptFormat, config: RunConfig) -> Path:
    """Where the base model fine-tuned on these rows with these settings is (or will be) cached."""
    key = target_cache_key(fingerprint_folder(base_dir), rows_fingerprint, config.target,
                           resolve_precision(config.precision), prompt.describe())
    return (config.cache_dir / "targets" / key).resolve()


def ensure_finetuned(base_dir: Path, rows: Sequence[QA], role: str, rows_fingerprint: str, prompt: PromptFormat,
                     config: RunConfig, placement: Placement) -> tuple[Path, bool]:
    """The base model fine-tuned on `rows` (TOFU's first stage), and whether this call trained it: from the
    cache, or trained now as a Ray task in the trainer's bundle. Jobs that need the same model at the same
    time (the trials of a batch) fine-tune it once; the others wait and find it cached."""
    folder = finetuned_dir(base_dir, rows_fingerprint, prompt, config)
    with building(folder):
        if (folder / "config.json").is_file():
            show(f"{role} model: cached at {folder}")
            return folder, False
        where = placement.options(f"{role} fine-tune")
        check_shared_cache(config.cache_dir, folder.parent, f"the {role} fine-tune's",
                           lambda path, token: ray.get(ray.remote(write_probe).options(**where).remote(path, token)))
        show(f"{role} model: fine-tuning {base_dir} on {len(rows)} rows ({prompt.style} prompts) -> {folder}")
        pairs = [(row.question, row.answer) for row in rows]
        task = ray.remote(finetune_target).options(**where)
        epochs = config.target.epochs
        with Progress(f"{role} fine-tune", epochs, "epochs") as progress:
            for epoch_done in task.remote(str(base_dir), pairs, config.target, str(folder),
                                          resolve_precision(config.precision), config.threads, prompt.style):
                record = ray.get(epoch_done)  # streamed by the task as each epoch ends
                print(f"{role} fine-tune: epoch {record['epoch']}/{epochs}, loss {record['loss']:.4f}, "
                      f"{record['elapsed_s']} s", flush=True)
                progress.update(1, f"loss {record['loss']:.3f}")
    print(f"{role} model: final loss {record['loss']:.4f} after {record['elapsed_s']} s", flush=True)
    return folder, True


def check_shared_storage(folder: Path, trainers) -> None:
    """Every trainer rank writes its full states, and rank 0 the model, into the run folder, on whatever node it
    runs: refuse a run folder the driver's node does not share with theirs, before any of that is written."""
    token = secrets.token_hex(8)
    trainers.write_probe(str(folder.resolve()), token)
    for rank in range(len(trainers.members)):
        if not sees_probe(folder / f".storage-probe-{rank}", token):
            raise JobError(f"runs_dir {folder.parent} is not shared between this node and trainer rank {rank}'s: "
                           "put runs_dir on storage every node mounts at the same path (see docker/cluster.yaml)")


def check_shared_cache(cache_dir: Path, folder: Path, whose: str, write_there: Callable[[str, str], None]) -> None:
    """A fine-tune writes its model into `folder` of the cache on whatever node its bundle is on, and the job reads
    it here: refuse a cache_dir the driver's node does not share with that one (`whose`; `write_there(path,
    token)` writes a file there), before the fine-tune's minutes are spent."""
    token = secrets.token_hex(8)
    probe = folder / f".storage-probe-{token}"  # a name of this job's own: jobs share the cache
    write_there(str(probe.resolve()), token)
    if not sees_probe(probe, token):
        raise JobError(f"cache_dir {cache_dir} is not shared between this node and {whose}: put cache_dir on storage "
                       "every node mounts at the same path (see docker/cluster.yaml)")


def evaluation_settings(prompt: PromptFormat, config: RunConfig, rows: str, exclude: set[str]) -> dict:
    """What any cached result of evaluating a model depends on besides the model: data (its settings and `rows`,
    the fingerprint of the rows it loaded: a data file edited in place is other data), engine, prompt format, the
    `eval` settings but `exclude`, precision, packages and code (the caller adds the model's fingerprint)."""
    return {"data": {**config.data.model_dump(mode="json"), "rows": rows},
            "engine": config.engine.model_dump(mode="json"),
            "prompt": prompt.describe(), "eval": config.eval.model_dump(mode="json", exclude=exclude),
            "precision": resolve_precision(config.precision), "versions": package_versions(),
            "code": fingerprint_code(TRAINING_CODE + EVALUATION_CODE)}


def measure_target_once(target_dir: Path, prompt: PromptFormat, config: RunConfig, rows: str,
                        measure: Callable[[], Measurement]) -> Measurement:
    """The target model's measurement: cached under a key of everything it depends on, so the methods of
    `make compare` and repeated runs measure the same target once (each run judges it for itself). Exact, not
    approximate: greedy answers and scores are deterministic and the evaluation's sampling is seeded per
    request."""
    return Measurement.from_json(cached_json(measurement_folder(prompt, config, rows, "target", target_dir), "state.json",
                                             "target model evaluation", lambda: measure().to_json()))


def measurement_folder(prompt: PromptFormat, config: RunConfig, rows: str, role: str, model_dir: Path) -> Path:
    """Where the measurement of the model in `model_dir` (`role`: the target, the retain model) is cached: under a
    key of everything it depends on but what each run judges it by (the retain model, the attacks)."""
    settings = {**evaluation_settings(prompt, config, rows, exclude={"retain_model", "attacks"}),
                role: fingerprint_folder(model_dir)}
    return config.cache_dir / "evaluations" / settings_key(settings)


def greedy_answerer(sampler, prompt: PromptFormat):
    def answer(questions: list[str]) -> list[Answer]:
        return [Answer(c.text.strip(), not c.finished) for c in sampler.greedy([prompt.prompt(q) for q in questions])]
    return answer


@contextmanager
def actor_failures(run: RunFolder, timer: StageTimer) -> Iterator[list[ActorProxy]]:
    """The job's actors (the body adds them as it starts them): released on every path (an error, SIGTERM),
    and an actor that dies or raises ends the job with one line naming it, where the job was and the cause,
    the `.partial` folder kept for inspection and resume."""
    actors: list[ActorProxy] = []
    try:
        yield actors
    except (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError) as err:
        dead = [actor.label for actor in actors if not actor.alive()]
        who = f"the {' and the '.join(dead)} actor" if dead else "a Ray worker"  # a task's, such as the fine-tune
        cause = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise JobError(f"{who} died during {_where(run, timer)} ({cause}); the partial run is kept in {run.path}") from err
    except (ActorTimeout, ActorFailed) as err:
        raise JobError(f"{err} during {_where(run, timer)}; the partial run is kept in {run.path}") from err
    except ray.exceptions.RayTaskError as err:  # a task's, such as the fine-tune
        raise JobError(f"a Ray task raised {one_line_cause(err)} during {_where(run, timer)}; the partial run is "
                       f"kept in {run.path}") from err
    finally:
        for actor in actors:
            release(actor)


def _where(run: RunFolder, timer: StageTimer) -> str:
    where = timer.current or "the job"
    if where == "unlearning":
        where = f"unlearning round {len(run.checkpoints.records) + 1}"  # every round done has its record
    return where
