"""Command line: `python -m pmc_unlearning.orchestrator {unlearn,eval,compare} [--config FILE] [--set key.sub=value ...]`
and `python -m pmc_unlearning.orchestrator batch BATCH_FILE [--set key.sub=value ...]`.

unlearn: target fine-tune (cached), unlearning (PMC, or `method=` a baseline), full evaluation, report.
eval:    the full evaluation of a model folder as it is (MODEL=...), same eval.json and report.
compare: every method of --methods on the same target model, as a batch, in runs/compare-<name>/.
batch:   the trials of a batch file (configs/batch/) on Ray Tune, report in runs/<batch>/ (--set: every trial).

Bad input (config, data, model folder, arguments), a name another job holds and a folder the project did not
make are refused before anything is written: one line `error: ...` naming the culprit, exit code 2. A job
that fails later (an actor died) exits with 1; SIGTERM or Ctrl-C end it cleanly (143, 130), its partial run
kept for resume. --fresh starts over where a partial run of other settings holds resumable work.

What a job creates is its user's alone (umask 077), or readable by its group where the runs folder is a
group-shared volume (its folder has the set-group-id bit, as the image's has): umask 027. Never writable by
anybody else.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from pmc_unlearning.cluster.bundles import job_bundles, local_cpus, refuse_more_than
from pmc_unlearning.cluster.local_ray import close_local_ray, joins_a_cluster, kill_local_actors
from pmc_unlearning.configs import CONFIG_DIR, METHODS, ConfigError, load_method_config
from pmc_unlearning.configs.batch_schema import Batch, load_batch
from pmc_unlearning.data import DataError
from pmc_unlearning.models import ModelError
from pmc_unlearning.orchestrator.compare import comparison_batch
from pmc_unlearning.orchestrator.inputs import load_checked_data
from pmc_unlearning.orchestrator.ownership import BATCH, EVALUATE, UNLEARN, claim, holding
from pmc_unlearning.orchestrator.run_folder import check_run_folders, claim_run_folders
from pmc_unlearning.orchestrator.tune_state import check_experiment
from pmc_unlearning.storage.files import group_shared, remove_scratch_folders
from pmc_unlearning.telemetry.console import captured, error_line, show, summary_lines
from pmc_unlearning.telemetry.errors import JobError, Refused

REFUSALS = (ConfigError, DataError, ModelError, Refused)  # exit code 2: nothing was written


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, like every other refusal (argparse would print the usage first); --help shows the usage."""
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pmc_unlearning.orchestrator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("unlearn", "target fine-tune (cached), unlearning, evaluation, report"),
                       ("eval", "evaluate a model folder without unlearning"),
                       ("compare", "every method on the same target, side by side")):
        job = commands.add_parser(name, help=text)
        job.add_argument("--config", default=str(CONFIG_DIR / "default.yaml"), help="YAML preset (default: %(default)s)")
        job.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override one setting, e.g. --set pmc.rounds=5 (repeatable)")
        if name == "compare":
            job.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: %(default)s)")
        if name == "unlearn":
            job.add_argument("--fresh", action="store_true",
                             help="start over where a partial run of other settings holds resumable work (deleted)")
    batch_command = commands.add_parser("batch", help="a batch file's trials on Ray Tune")
    batch_command.add_argument("file", help="batch file, e.g. configs/batch/smoke.yaml")
    batch_command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting of every trial (repeatable)")
    args = parser.parse_args(argv)
    try:
        with ExitStack() as job:
            if args.command in ("batch", "compare"):
                batch = load_batch(args.file, args.overrides) if args.command == "batch" else comparison_batch(
                    args.config, args.overrides, chosen_methods(args.methods))
                check_batch_inputs(batch)
                check_batch_folders(batch)
                start_job(job, batch.runs_dir.parent, batch.config.name)
                check_batch_folders(batch)  # again, now that no other job can change them
                from pmc_unlearning.orchestrator.batch import run_batch

                folder = run_batch(batch)
            else:
                config = load_method_config(args.config, args.overrides)
                load_checked_data(config)  # data and model folder, in a second: the job's heavy imports come after
                kind, fresh = (UNLEARN, args.fresh) if args.command == "unlearn" else (EVALUATE, True)
                check_run_folders(config, kind, fresh)
                if not joins_a_cluster():  # the CPUs of the local instance the job will start
                    refuse_more_than(job_bundles(config.ray, False, config.engine.tensor_parallel_size),
                                     {"CPU": local_cpus()}, "this machine's Ray instance", kinds=("CPU",))
                start_job(job, config.runs_dir, config.name)
                # From the imports on, what the libraries print goes to the run's log.txt, not the console
                # (VERBOSE=1: both); the console gets progress bars and the summary (telemetry/console.py).
                job.enter_context(captured(quiet_on=REFUSALS))
                from pmc_unlearning.orchestrator.pipeline import (  # heavy imports once the input is sound
                    run_evaluation,
                    run_unlearning,
                )

                folder = run_unlearning(config, fresh=fresh) if kind == UNLEARN else run_evaluation(config)
                for line in summary_lines(json.loads((folder / "eval.json").read_text()), folder):
                    show(line)
    except REFUSALS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except JobError as err:
        if _signals_received:  # a signal to the whole process group: Ray's processes ended before the driver
            return _stopped()
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: no space left for {err.filename or 'a file the job writes'} ({err.strerror}); free some and "
              "run the same command again to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _stopped()
    print(f"done: {folder}/report.md")
    return 0


def _stopped() -> int:
    """The line and exit code of a job stopped by a signal (SIGINT where Ctrl-C reached Python first)."""
    name = _signals_received[0] if _signals_received else "SIGINT"
    _say_once(f"stopped by {name}: the job's actors and Ray are released; the same command resumes the partial run")
    return 128 + getattr(signal, name)


_stop_line = threading.Lock()  # taken by whichever says the stop line first: the unwinding job or the grace's end


def _say_once(line: str) -> None:
    if _stop_line.acquire(blocking=False):
        error_line(line)


# How long a stopped job may take to release its actors and Ray. A signal to the job's whole process group (a
# closed terminal, Slurm's scancel, systemd) ends Ray's own processes too, and the driver's calls into them would
# then wait for Ray's reconnection timeout (a minute) before Ray ends the process with exit code 1 and no word.
# And a KeyboardInterrupt raised while Python runs a finaliser or a callback is printed and dropped there: the
# job would go on as if never stopped.
STOP_GRACE_S = 10


def _end_after_grace(name: str) -> None:
    """Once the grace is over: the job's actors on this machine ended, its temporary folders removed, its line
    said, ended with 128 + signal."""
    time.sleep(STOP_GRACE_S)
    kill_local_actors()
    remove_scratch_folders()
    _say_once(f"stopped by {name}: the job did not end within {STOP_GRACE_S} s of the signal; its processes on this "
              "machine are ended; the same command resumes the partial run")
    os._exit(128 + getattr(signal, name))


def start_job(job: ExitStack, runs_dir: Path, name: str) -> None:
    """Hold the job's name (refused at once if another job holds it), keep what the job creates from other
    users, end cleanly on SIGTERM and Ctrl-C, and close its local Ray instance to the network (before Ray is imported)."""
    os.umask(0o027 if group_shared(runs_dir) else 0o077)
    job.enter_context(holding(runs_dir, name))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    close_local_ray()


_signals_received: list[str] = []


def _interrupt(signum: int, frame) -> None:
    """SIGTERM and SIGINT: unwind (every `finally` releases what it holds), within STOP_GRACE_S; later signals
    wait for that. Ray turns an exception raised inside its calls into a KeyboardInterrupt: the signal's name is
    kept here."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name = signal.Signals(signum).name
    _signals_received.append(name)
    threading.Thread(target=_end_after_grace, args=(name,), name="stop grace", daemon=True).start()
    raise KeyboardInterrupt(name)


def check_batch_folders(batch: Batch) -> None:
    """The batch's folder, its Tune experiment folder and its trials' run folders must be the batch's own where
    they exist."""
    claim(batch.runs_dir, BATCH)
    check_experiment(batch)
    for trial in batch.trials:  # a trial's partial of other settings is refused when the trial runs
        claim_run_folders(batch.trial_config(trial), UNLEARN)


def check_batch_inputs(batch: Batch) -> None:
    """Every trial's data and model folder, checked before the first trial starts (each distinct pair once)."""
    seen = set()
    for trial in batch.trials:
        config = batch.trial_config(trial)
        key = (config.model, config.data)
        if key not in seen:
            seen.add(key)
            load_checked_data(config)


def chosen_methods(text: str) -> list[str]:
    """The methods of `--methods a,b`, checked before anything runs: a comparison needs at least one, and
    a method given twice would run twice into the same folder."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    valid = ", ".join(METHODS)
    if not methods:
        raise ConfigError(f"--methods: no method given; valid ones are {valid}")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"--methods: unknown {unknown}; valid ones are {valid}")
    repeated = sorted({m for m in methods if methods.count(m) > 1})
    if repeated:
        raise ConfigError(f"--methods: {repeated} given more than once")
    return methods


if __name__ == "__main__":
    sys.exit(main())
