"""`make batch BATCH=configs/batch/<file>.yaml`: many unlearning jobs on Ray Tune, one trial per job.

Each trial runs the job of `make unlearn` (orchestrator/pipeline.py) into `runs/<batch>/<trial>/`, inside
a placement group of its own: the trial's process, the sampler and the trainer (cluster/placement.py).
Tune runs `max_concurrent_trials` at a time and retries a trial that failed up to `max_failures` times; a
retried or interrupted trial resumes from its run folder's checkpoint. Trials that need the same target
model fine-tune it once (the cache's lock, storage/files.py). Per-round metrics go to Tune's loggers
(TensorBoard, and MLflow or Weights & Biases when asked for); `runs/<batch>/report.md` and `results.json`
gather every trial, failed ones with their error.

The same command again continues the batch: Tune restores its experiment (finished trials are not rerun,
interrupted ones resume, failed ones get another try), and a trial whose finished run folder holds its
exact config is not run again even without Tune's state.
"""
from __future__ import annotations

import importlib.util
import json
import os
from contextlib import ExitStack
from pathlib import Path

from ray import tune

from pmc_unlearning.cluster.bundles import bundle_cpus, trial_bundles
from pmc_unlearning.cluster.placement import cluster_has_gpus
from pmc_unlearning.cluster.session import ray_session
from pmc_unlearning.configs import ConfigError, load_method_config
from pmc_unlearning.configs.batch_schema import Batch, Trial
from pmc_unlearning.models.fingerprint import TRAINING_CODE, fingerprint_code
from pmc_unlearning.orchestrator.ownership import BATCH, claim, holding, mark
from pmc_unlearning.orchestrator.pipeline import resolved_now, run_unlearning
from pmc_unlearning.orchestrator.run_folder import finished_run
from pmc_unlearning.orchestrator.tune_state import (
    check_experiment,
    check_restorable,
    experiment_location,
    fresh_experiment,
)
from pmc_unlearning.reporting.batch_report import write_batch_report
from pmc_unlearning.storage.files import settings_key
from pmc_unlearning.telemetry.errors import JobError

# Tune would run each trial in its own folder under the experiment; the job's paths are absolute anyway,
# and the trial's files belong in its run folder.
TRIAL_ENV = {"RAY_CHDIR_TO_TRIAL_DIR": "0", "PYTHONUNBUFFERED": "1"}


def run_batch(batch: Batch) -> Path:
    """Run (or continue) the batch; returns runs/<batch>/ with its report."""
    callbacks = tracker_callbacks(batch)  # a tracker that is not installed is refused before anything runs
    with ExitStack() as held:
        held.enter_context(holding(batch.runs_dir.parent, batch.config.name))
        claim(batch.runs_dir, BATCH)
        batch.runs_dir.mkdir(parents=True, exist_ok=True)
        mark(batch.runs_dir, BATCH)
        if batch.config.storage_path is not None:  # Tune's state elsewhere: a lock of its own, beside it
            held.enter_context(holding(*experiment_location(batch)))
        return _run_batch(batch, callbacks)


def _run_batch(batch: Batch, callbacks: list) -> Path:
    print(f"batch {batch.config.name}: {len(batch.trials)} trials, {batch.config.max_concurrent_trials} at a time, "
          f"in {batch.runs_dir}", flush=True)
    # Ctrl-C stops a batch as it stops a job: a KeyboardInterrupt, one line, exit 130 (orchestrator/__main__.py),
    # the trials' run folders and Tune's state (saved as it goes) kept for the same command to continue. Tune's
    # own handler would end the experiment as if it were done, its trials reported unfinished (exit 1).
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    with ray_session(num_cpus=local_cpus_needed(batch), env=TRIAL_ENV):
        gpus = cluster_has_gpus()
        params = [trial_params(batch, trial, gpus) for trial in batch.trials]
        results = tuner(batch, params, callbacks).fit()
    errors = {result.config["trial"]["name"]: one_line(result.error) for result in results if result.error}
    records = [trial_record(batch, trial, errors.get(trial.name)) for trial in batch.trials]
    write_batch_report(batch.runs_dir, f"Batch '{batch.config.name}' ({batch.source})", records, batch.describe())
    unfinished = [f"{r['name']} ({r['status']}: {r['error']})" for r in records if r["status"] != "finished"]
    if unfinished:  # the report lists them too; the exit code tells a script
        raise JobError(f"{len(unfinished)} of {len(records)} trials did not finish: {'; '.join(unfinished)}; "
                       f"see {batch.runs_dir / 'report.md'}")
    return batch.runs_dir


def trial_params(batch: Batch, trial: Trial, gpus: bool) -> dict:
    config = batch.trial_config(trial)
    bundles = trial_bundles(config, batch.config.trial_cpus, gpus)
    return {"name": trial.name, "base": str(batch.base), "overrides": list(trial.overrides), "bundles": bundles}


def local_cpus_needed(batch: Batch) -> float:
    """Logical CPUs for a local Ray instance to hold `max_concurrent_trials` trials' groups at once."""
    per_trial = max(bundle_cpus(trial_bundles(batch.trial_config(t), batch.config.trial_cpus, False))
                    for t in batch.trials)
    return per_trial * min(batch.config.max_concurrent_trials, len(batch.trials))


def tuner(batch: Batch, params: list[dict], callbacks: list) -> tune.Tuner:
    """The batch's Tune experiment: restored when this batch (unchanged) was interrupted, else new. Another
    batch's is neither restored nor deleted, and state anybody else could have written is not restored."""
    check_experiment(batch)
    storage, name = experiment_location(batch)
    trainable = tune.with_resources(run_trial, resources=lambda spec: tune.PlacementGroupFactory(
        spec["trial"]["bundles"], strategy="PACK"))
    experiment, spec_file = storage / name, batch.runs_dir / "batch.json"
    spec = batch_identity(batch)
    same_batch = spec_file.is_file() and json.loads(spec_file.read_text()) == spec
    if same_batch and tune.Tuner.can_restore(str(experiment)):
        check_restorable(experiment)
        print(f"continuing the batch from {experiment}", flush=True)
        return tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True, resume_errored=True)
    fresh_experiment(batch)
    spec_file.write_text(json.dumps(spec, indent=1) + "\n")
    return tune.Tuner(
        trainable, param_space={"trial": tune.grid_search(params)},
        tune_config=tune.TuneConfig(max_concurrent_trials=batch.config.max_concurrent_trials,
                                    trial_name_creator=trial_name, trial_dirname_creator=trial_name),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), callbacks=callbacks, verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=batch.config.max_failures)))


def batch_identity(batch: Batch) -> dict:
    """What a rerun must share with the batch's Tune state to continue it: the batch, each trial's resolved
    config (a changed preset changes it) and the project's code."""
    configs = {trial.name: batch.trial_config(trial).resolved() for trial in batch.trials}
    return {**batch.describe(), "trial_configs": settings_key(configs), "code": fingerprint_code(TRAINING_CODE)}


def trial_name(trial) -> str:
    return trial.config["trial"]["name"]


def run_trial(params: dict) -> None:
    """One trial, in its Ray Tune process: the unlearning job, each round's metrics reported to Tune."""
    spec = params["trial"]
    config = load_method_config(spec["base"], spec["overrides"])
    folder = finished_run(config, lambda: resolved_now(config))  # the same settings, code, data, model, precision
    if folder:
        print(f"{spec['name']}: finished earlier, not run again ({folder})", flush=True)
    else:
        folder = run_unlearning(config, report=lambda record: tune.report(numbers(record)))
    after = json.loads((folder / "eval.json").read_text())["after"]
    tune.report({"finished": 1, **numbers(after)})


def numbers(record: dict, prefix: str = "") -> dict[str, float]:
    """The numeric entries of a (nested) record, flattened (`sampling/max_rouge_l`): what loggers can plot."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def trial_record(batch: Batch, trial: Trial, error: str | None) -> dict:
    """What the report needs of a trial: its settings, status, error and evaluation."""
    config = batch.trial_config(trial)
    folder = finished_run(config)
    status = "finished" if folder else "failed" if error else "not run"
    return {"name": trial.name, "group": trial.group, "settings": trial.settings, "seed": trial.seed,
            "status": status, "error": None if folder else error,
            "run_folder": str(folder or config.runs_dir / f"{config.name}.partial"),
            "eval": json.loads((folder / "eval.json").read_text()) if folder else None}


def one_line(error: BaseException) -> str:
    """The message a failed trial's exception ends with (Tune wraps it in Ray's traceback text)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def tracker_callbacks(batch: Batch) -> list:
    """Tune's logger callbacks for the trackers the batch asks for (TensorBoard is Tune's default)."""
    callbacks = []
    for tracker in batch.config.trackers:
        if importlib.util.find_spec(tracker) is None:
            raise ConfigError(f"{batch.source}: trackers: {tracker} is not installed (pip install {tracker})")
        if tracker == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            callbacks.append(MLflowLoggerCallback(experiment_name=batch.config.name))
        else:
            from ray.air.integrations.wandb import WandbLoggerCallback

            callbacks.append(WandbLoggerCallback(project=batch.config.name))
    return callbacks

