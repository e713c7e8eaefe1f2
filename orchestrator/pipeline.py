"""The jobs, as recipes: unlearning (data, model, target fine-tune, PMC on Ray, evaluation, report) and
the standalone evaluation of a model folder."""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import ray
from transformers import AutoTokenizer

from pmc_unlearning.cluster.actors import ActorFailed, ActorProxy, ActorTimeout, one_line_cause, release
from pmc_unlearning.cluster.groups import start_samplers, start_trainers
from pmc_unlearning.cluster.placement import Placement, job_placement
from pmc_unlearning.cluster.session import ray_session
from pmc_unlearning.cluster.weight_sync import set_up_weight_transfer
from pmc_unlearning.configs import RunConfig
from pmc_unlearning.data import QA, Benchmark
from pmc_unlearning.data.corpus import load_corpus
from pmc_unlearning.evaluation.fluency import FluencyJudge, add_fluency
from pmc_unlearning.evaluation.greedy import EvalSet, build_eval_set
from pmc_unlearning.evaluation.logprobs import logprob_metrics
from pmc_unlearning.evaluation.over_unlearning import collect_contexts, forget_token_ids
from pmc_unlearning.evaluation.plots import write_plots
from pmc_unlearning.evaluation.report import write_report
from pmc_unlearning.evaluation.suite import add_forget_quality, add_over_unlearning, evaluate_state
from pmc_unlearning.methods.baselines import forget_targets, unlearn_baseline
from pmc_unlearning.methods.pmc import unlearn
from pmc_unlearning.models import fingerprint_folder, resolve_model
from pmc_unlearning.models.checks import check_prompt_lengths, check_tokenizer_fits_model
from pmc_unlearning.models.fingerprint import EVALUATION_CODE, TRAINING_CODE, fingerprint_code
from pmc_unlearning.models.hardware import resolve_precision
from pmc_unlearning.models.prompting import PromptFormat, resolve_style
from pmc_unlearning.orchestrator.inputs import benchmark_texts, load_checked_benchmark
from pmc_unlearning.orchestrator.ownership import EVALUATE, UNLEARN, holding
from pmc_unlearning.orchestrator.run_folder import RunFolder, check_run_folders, package_versions
from pmc_unlearning.storage.files import build_folder_once, building, settings_key
from pmc_unlearning.telemetry.console import Progress, captured, keep_log, show
from pmc_unlearning.telemetry.errors import JobError
from pmc_unlearning.telemetry.timing import StageTimer
from pmc_unlearning.trainer import Trainer
from pmc_unlearning.trainer.finetune import finetune_target, target_cache_key


@captured()
def run_unlearning(config: RunConfig, report: Callable[[dict], None] | None = None, fresh: bool = False) -> Path:
    """The whole job; `report` also gets each round's metrics (a batch trial passes them on to Ray Tune);
    `fresh`: start over where a partial run of other settings holds resumable work. Its output, and what
    Ray forwards from its actors, goes into the run's log.txt (telemetry/console.py)."""
    with holding(config.runs_dir, config.name):
        return _run_unlearning(config, report, fresh)


def _run_unlearning(config: RunConfig, report: Callable[[dict], None] | None, fresh: bool) -> Path:
    started, timer = time.perf_counter(), StageTimer()
    with timer("setup"):  # everything that can refuse bad input, before anything is written
        check_run_folders(config, UNLEARN, fresh)
        bench, base_dir, prompt = prepare(config)
        eval_set = build_eval_set(bench, config.eval.retain_subset, config.eval.seed)
        forget_prompts = [prompt.prompt(row.question) for row in bench.forget]
        retain = [prompt.example(row.question, row.answer) for row in bench.retain]
        contexts = over_unlearning_contexts(prompt, bench, config)
    run = RunFolder(config, extra=resolved_settings(base_dir, prompt, bench), kind=UNLEARN, fresh=fresh)
    keep_log(run.path / "log.txt")
    show(f"run folder (while running): {run.path}" + (f", resuming after round {run.resumed}" if run.resumed else ""))

    with ray_session(), job_placement(config) as placement, actor_failures(run, timer) as actors:
        with timer("target_finetune"):
            target_dir, finetuned_now = ensure_finetuned(base_dir, bench.full, "target", bench.fingerprint(), prompt,
                                                         config, placement)
            target_built = run.target_record(target_dir, finetuned_now)
        with timer("retain_model"):
            retain_ratios = retain_model_ratios(base_dir, bench, eval_set, prompt, config, placement, actors)
        with timer("engine_start"), Progress("engine and trainer start", total=1) as starting:
            sampler = start_samplers(target_dir, config, placement)
            actors += sampler.members
            trainer = start_trainers(target_dir, config, placement, seed=config.pmc.seed)
            actors += trainer.members
            check_shared_storage(run.path, trainer)
            engine_dtype = sampler.weight_dtype()  # also waits until the engines are up
            placed = placement.record(actors)
            transfer = set_up_weight_transfer(config.engine.weight_transfer, trainer, sampler, placed, engine_dtype,
                                              config.engine.tensor_parallel_size)
            run.write_json("placement.json", {**placed, "weight_transfer": transfer})
            starting.update()
        evaluate_now = lambda label: evaluate_with(sampler, trainer, eval_set, prompt, contexts, config, label)
        with timer("eval_before"):
            before = evaluate_target_once(target_dir, prompt, config, lambda: evaluate_now("evaluation (target)"))
        originals = [row["answer"] for row in before["answers"]["forget"]]
        print(f"target model: {headline(before)}", flush=True)

        with timer("unlearning"), Progress(f"unlearning ({config.method})", config.pmc.epochs, "rounds",
                                           initial=run.resumed or 0) as rounds_done:
            def log_round(record: dict) -> None:
                run.append_metrics(record)
                if report:
                    report(record)
                selected = "selected_score_mean" in record  # PMC's; the baselines select nothing
                print(f"{config.method} round {record['epoch']}: loss {record['loss']:.3f}"
                      + (f", selected score {record['selected_score_mean']:.3f}, at zero {record['questions_at_zero']}"
                         f"/{record['questions']}" if selected else "")
                      + f", seconds {record['seconds']}", flush=True)
                rounds_done.update(1, (f"selected score {record['selected_score_mean']:.3f}, " if selected else "")
                                   + f"loss {record['loss']:.3f}")
            if config.method == "pmc":
                unlearn(sampler, trainer, forget_prompts, originals, retain, config.pmc, engine_dtype,
                        log=log_round, checkpoints=run.checkpoints)
            else:
                unlearn_baseline(config.method, sampler, trainer, forget_targets(config.method, prompt, bench.forget),
                                 retain, config.pmc, config.baseline, engine_dtype, log=log_round,
                                 checkpoints=run.checkpoints)
            run.checkpoints.wait(trainer)

        with timer("eval_after"):
            after = evaluate_now(f"evaluation (after {config.method})")
        with timer("save_model"):
            trainer.save(str((run.path / "model").resolve()))
            prompt.record(run.path / "model")
    for state in (before, after):
        add_forget_quality(state, retain_ratios)
    add_over_unlearning(before, after)
    with timer("fluency"):  # judged by the base model, which never saw the forget facts
        base = Trainer(base_dir, precision="fp32", threads=config.threads)
        judge = FluencyJudge(lambda examples: base.score(examples, config.eval.score_batch_size), prompt,
                             [(row.question, row.answer) for row in bench.forget])
        for state in (before, after):
            add_fluency(state, judge)
    print(f"after {config.method}: {headline(after)}", flush=True)

    evaluation = {"before": before["metrics"], "after": after["metrics"],
                  "wall_time_s": round(time.perf_counter() - started, 2), "stage_seconds": timer.seconds,
                  "checkpoint_seconds": round(run.checkpoints.seconds, 2), "resumed_after_round": run.resumed,
                  "target_model": str(target_dir), "target_finetuned": target_built}
    rounds = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    write_outputs(run, f"Unlearning run '{config.name}': {config.method} on {config.model}", evaluation,
                  {"before": before, "after": after}, rounds, retain_ratios)
    return run.finish()


@captured()
def run_evaluation(config: RunConfig) -> Path:
    """Evaluate a model folder as it is (no fine-tune, no unlearning): the same eval.json and report."""
    with holding(config.runs_dir, config.name):
        return _run_evaluation(config)


def _run_evaluation(config: RunConfig) -> Path:
    started, timer = time.perf_counter(), StageTimer()
    with timer("setup"):
        check_run_folders(config, EVALUATE)
        bench, model_dir, prompt = prepare(config)
        eval_set = build_eval_set(bench, config.eval.retain_subset, config.eval.seed)
        contexts = over_unlearning_contexts(prompt, bench, config)
    run = RunFolder(config, extra=resolved_settings(model_dir, prompt, bench), kind=EVALUATE, fresh=True)
    keep_log(run.path / "log.txt")
    show(f"run folder (while running): {run.path}")
    with ray_session(), job_placement(config) as placement, actor_failures(run, timer) as actors:
        with timer("retain_model"):
            retain_ratios = retain_model_ratios(model_dir, bench, eval_set, prompt, config, placement, actors)
        with timer("evaluation"):
            sampler = start_samplers(model_dir, config, placement)
            actors += sampler.members
            trainer = start_trainers(model_dir, config, placement, seed=0)
            actors += trainer.members
            run.write_json("placement.json", placement.record(actors))
            state = evaluate_with(sampler, trainer, eval_set, prompt, contexts, config, "evaluation")
    add_forget_quality(state, retain_ratios)
    print(f"model: {headline(state)}", flush=True)
    evaluation = {"model": state["metrics"], "wall_time_s": round(time.perf_counter() - started, 2),
                  "stage_seconds": timer.seconds, "model_dir": str(model_dir)}
    write_outputs(run, f"Evaluation of {config.model}", evaluation, {"model": state}, [], retain_ratios)
    return run.finish()


def prepare(config: RunConfig) -> tuple[Benchmark, Path, PromptFormat]:
    """The checked benchmark, the model folder and the prompt format it is put questions in."""
    bench = load_checked_benchmark(config)
    model_dir = resolve_model(config.model, config.cache_dir, tokenizer_corpus=benchmark_texts(bench),
                              revision=config.model_revision, progress=Progress)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    check_tokenizer_fits_model(tokenizer, model_dir)
    prompt = PromptFormat(tokenizer, resolve_style(config.prompt, tokenizer, model_dir))
    check_prompt_lengths(prompt, bench, config.engine.max_model_len, config.engine.max_new_tokens)
    return bench, model_dir, prompt


def resolved_settings(model_dir: Path, prompt: PromptFormat, bench: Benchmark) -> dict:
    """What the run resolved at run time, saved beside its config: the model folder (for a hub model its
    snapshot, named by commit), the prompt format, the metrics the data cannot give (and why)."""
    return {"model_dir": str(model_dir), "prompt": prompt.describe(), "absent_metrics": dict(bench.absent),
            "data_fingerprint": bench.fingerprint()}


def write_outputs(run: RunFolder, title: str, evaluation: dict, states: dict[str, dict], rounds: list[dict],
                  retain_ratios: list[float] | None) -> None:
    run.write_json("eval.json", evaluation)
    run.write_json("answers.json", {name: state["answers"] for name, state in states.items()})
    run.write_json("samples.json", {
        **{name: {"forget_sample_rouge_l": state["sample_scores"], "context_probs": state["context_probs"],
                  "forget_truth_ratios": state["forget_truth_ratios"]} for name, state in states.items()},
        "retain_model_forget_truth_ratios": retain_ratios})
    plots = write_plots(run.path, states, rounds)
    write_report(run.path / "report.md", title, evaluation, rounds, states, plots)


def headline(state: dict) -> str:
    m = state["metrics"]
    utility = "n/a" if m["model_utility"] is None else f"{m['model_utility']:.3f}"
    return (f"forget ROUGE-L {m['forget_rouge_l']:.3f}, retain ROUGE-L {m['retain_rouge_l']:.3f}, "
            f"model utility {utility}, max ROUGE-L under sampling {m['sampling']['max_rouge_l']:.3f}")


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
        show(f"{role} model: fine-tuning {base_dir} on {len(rows)} rows ({prompt.style} prompts) -> {folder}")
        pairs = [(row.question, row.answer) for row in rows]
        task = ray.remote(finetune_target).options(**placement.options(f"{role} fine-tune"))
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


def retain_model_ratios(base_dir: Path, bench: Benchmark, eval_set: EvalSet, prompt: PromptFormat, config: RunConfig,
                        placement: Placement, actors: list[ActorProxy]) -> list[float] | None:
    """Forget-set truth ratios of the retain model (the base fine-tuned on the retain split only), if asked for."""
    if not config.eval.retain_model:
        return None
    fingerprint = hashlib.sha256(f"retain-only:{bench.fingerprint()}".encode()).hexdigest()
    folder, _ = ensure_finetuned(base_dir, bench.retain, "retain", fingerprint, prompt, config, placement)
    scorer = start_trainers(folder, config, placement, seed=0, role="retain-model scorer", ranks=1)
    actors += scorer.members
    forget_only = EvalSet({"forget": eval_set.rows["forget"], "retain": (), "world_facts": (), "real_authors": ()})
    try:
        return logprob_metrics(forget_only, prompt, lambda ex: scorer.score(ex, config.eval.score_batch_size))["forget_truth_ratios"]
    finally:
        release(*scorer.members)
        for member in scorer.members:
            actors.remove(member)


def check_shared_storage(folder: Path, trainers) -> None:
    """Every trainer rank writes its full states, and rank 0 the model, into the run folder, on whatever node it
    runs: refuse a run folder the driver's node does not share with theirs, before any of that is written."""
    token = secrets.token_hex(8)
    trainers.write_probe(str(folder.resolve()), token)
    for rank in range(len(trainers.members)):
        probe = folder / f".storage-probe-{rank}"
        seen = probe.read_text() if probe.is_file() else None
        probe.unlink(missing_ok=True)
        if seen != token:
            raise JobError(f"runs_dir {folder.parent} is not shared between this node and trainer rank {rank}'s: "
                           "put runs_dir on storage every node mounts at the same path (see docker/cluster.yaml)")


def evaluate_with(sampler, trainer, eval_set: EvalSet, prompt: PromptFormat, contexts, config: RunConfig,
                  label: str) -> dict:
    """The full evaluation of the model state the two actors hold now (they hold the same weights); `label`
    names it on the console."""
    return evaluate_state(eval_set, prompt, greedy_answerer(sampler, prompt), sampler,
                          lambda examples: trainer.score(examples, config.eval.score_batch_size), contexts, config.eval,
                          label)


def evaluate_target_once(target_dir: Path, prompt: PromptFormat, config: RunConfig, evaluate: Callable[[], dict]) -> dict:
    """The target model's full evaluation: cached under a key of everything it depends on, so the methods
    of `make compare` and repeated runs evaluate the same target once. Exact, not approximate: greedy
    answers and scores are deterministic and the evaluation's sampling is seeded per request."""
    settings = {"target": fingerprint_folder(target_dir), "data": config.data.model_dump(mode="json"),
                "engine": config.engine.model_dump(mode="json"), "prompt": prompt.describe(),
                "eval": config.eval.model_dump(mode="json", exclude={"retain_model"}),  # forget quality comes after
                "precision": resolve_precision(config.precision), "versions": package_versions(),
                "code": fingerprint_code(TRAINING_CODE + EVALUATION_CODE)}
    folder = config.cache_dir / "evaluations" / settings_key(settings)
    if folder.is_dir():
        show(f"target model evaluation: cached at {folder}")
    build_folder_once(folder, lambda tmp: (tmp / "state.json").write_text(json.dumps(evaluate())))
    return json.loads((folder / "state.json").read_text())


def greedy_answerer(sampler, prompt: PromptFormat):
    def answer(questions: list[str]) -> list[str]:
        return [c.text.strip() for c in sampler.greedy([prompt.prompt(q) for q in questions])]
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
