"""Jobs that survive being killed: per-round checkpoints, and a resumed job that ends where an uninterrupted
one does, whatever the cache held and whatever ran before it."""
from __future__ import annotations

import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pmc_unlearning.engine import Completion
from pmc_unlearning.methods.pmc import sampling_seed
from pmc_unlearning.methods.selection import SelectionCache
from pmc_unlearning.models.prompting import PromptFormat
from pmc_unlearning.orchestrator.__main__ import STOP_GRACE_S
from pmc_unlearning.telemetry import console
from pmc_unlearning.trainer import Trainer

PROJECT = Path(__file__).resolve().parents[1]


def test_trainer_state_round_trip_continues_exactly(tiny_model, small_bench, tmp_path):
    def trainer():
        t = Trainer(tiny_model, precision="fp32", seed=3)
        t.configure_optimizer(1e-3, 0.01, warmup_steps=2)
        return t

    prompt = PromptFormat(trainer().tokenizer)
    forget = [prompt.example(r.question, r.answer) for r in small_bench.forget[:4]]
    retain = [prompt.example(r.question, r.answer) for r in small_bench.retain[:8]]
    uninterrupted, resumed = trainer(), trainer()
    for _ in range(2):
        uninterrupted.unlearn_round(forget, retain, 1.0, 2)
    uninterrupted.save_state(tmp_path / "state", then_write={str(tmp_path / "points-at-it.json"): "{}"})
    uninterrupted.wait_for_saves()  # written in the background
    assert (tmp_path / "points-at-it.json").read_text() == "{}"
    resumed.load_state(tmp_path / "state")
    # The random streams (minibatch order, retain pairing) and the scheduler go on as they would have.
    logs = [t.unlearn_round(forget, retain, 1.0, 2) for t in (uninterrupted, resumed)]
    assert logs[0] == logs[1]
    assert uninterrupted.scheduler.last_epoch == resumed.scheduler.last_epoch == 6
    for (name, a), b in zip(uninterrupted.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points-at-it.json", "state"]


def test_selection_cache_round_trip():
    cache = SelectionCache(["a b c", "d e f"])
    cache.offer(0, [Completion((5, 6), "a x"), Completion((7,), "z")])
    records = json.loads(json.dumps(cache.to_records()))
    restored = SelectionCache(["a b c", "d e f"])
    restored.restore(records)
    assert restored.best == cache.best and restored.pending() == [1]


def test_sampling_seeds_differ_by_round_and_question_and_are_far_apart():
    seeds = {sampling_seed(0, round_, q) for round_ in range(1, 21) for q in range(400)}
    assert len(seeds) == 20 * 400
    # vLLM seeds a request's n candidates seed, seed + 1, ...: no two requests may share one of them.
    ordered = sorted(seeds)
    assert min(b - a for a, b in zip(ordered, ordered[1:])) > 64
    assert sampling_seed(0, 1, 0) == sampling_seed(0, 1, 0) != sampling_seed(1, 1, 0)


def session_processes(session: int) -> list[int]:
    """The processes of the session `session` (a job started with start_new_session=True: driver, Ray, actors)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_a_job_stopped_by_sigterm_then_killed_resumes_and_ends_as_the_uninterrupted_one(smoke_run, tmp_path):
    """The smoke job through the command line, with VERBOSE=1 (the third-party lines the quiet console hides are
    shown again), stopped by SIGTERM after a random round (a clean end: one line, its actors and Ray released,
    the partial kept); started again with the same command, while which a second
    job under the same name is refused; SIGKILLed (process group: driver, Ray, actors) a round later; refused
    with a training setting changed, the partial kept as it was; then resumed with a setting that cannot
    change training. Its numbers must equal those of the session's smoke run, which ran uninterrupted in
    another process and Ray session, and computed the target's evaluation itself where this job finds it
    cached. No shared-memory file of these jobs is left behind."""
    config, uninterrupted = smoke_run
    command = [sys.executable, "-m", "pmc_unlearning.orchestrator", "unlearn", "--config", str(PROJECT / "configs" / "smoke.yaml"),
               "--set", f"cache_dir={config.cache_dir}", "--set", f"runs_dir={tmp_path}",
               "--set", "allow_external_dirs=true", "--set", "eval.retain_model=true",
               # A full trainer state about every other round: resumes mix a loaded state and replayed rounds.
               "--set", "checkpoint.full_state_every_s=0.5"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    state = tmp_path / "smoke.partial" / "checkpoint" / "state.json"
    saved_round = lambda: json.loads(state.read_text())["round"] if state.is_file() else 0
    shm_before = set(Path("/dev/shm").glob("pmc-weights-*"))

    def start_and_wait_for_round(round_: int, verbose: bool = False) -> subprocess.Popen:
        # Into files, not pipes: a verbose job's lines would fill a pipe nobody reads while the test waits.
        with open(tmp_path / "stdout.txt", "w") as stdout, open(tmp_path / "stderr.txt", "w") as stderr:
            job = subprocess.Popen(command, cwd=PROJECT, env={**env, console.VERBOSE_ENV: "1"} if verbose else env,
                                   stdout=stdout, stderr=stderr, text=True, start_new_session=True)
        deadline = time.monotonic() + 300
        while saved_round() < round_:
            assert job.poll() is None and time.monotonic() < deadline, "the job ended before it could be stopped"
            time.sleep(0.02)
        return job

    # At most halfway: the resumed job must still be running after the held check's own process (a few seconds).
    stop_after = random.Random().randint(2, config.pmc.rounds // 2 - 1)
    job = start_and_wait_for_round(stop_after, verbose=True)
    # To every process of the job's group, as a closed terminal, Slurm's scancel or systemd send it: Ray's own
    # processes end with it, and the driver ends after its grace instead of Ray's minute of reconnecting. (The
    # batch's Ctrl-C test signals the driver alone.)
    os.killpg(job.pid, signal.SIGTERM)
    asked = time.monotonic()
    job.wait(timeout=120)
    stdout, stderr = ((tmp_path / name).read_text() for name in ("stdout.txt", "stderr.txt"))
    assert job.returncode == 128 + signal.SIGTERM and time.monotonic() - asked < STOP_GRACE_S + 10, stderr[-3000:]
    for line in ("(Sampler pid=", "pmc round 1: loss", "pmc round 2: loss", "Started a local Ray instance"):
        assert line in stdout + stderr, line  # VERBOSE=1: the lines the quiet console keeps for log.txt only
    assert "(Sampler pid=" in (tmp_path / "smoke.partial" / "log.txt").read_text()
    assert stderr.strip().splitlines()[-1].startswith("stopped by SIGTERM: ") and "Traceback" not in stderr
    assert not list(Path("/tmp").glob(f"pmc-ray-{job.pid}-*"))  # its Ray folder, removed on the way out
    time.sleep(1)
    assert session_processes(job.pid) == []  # nothing of the job runs on: driver, Ray, actors
    stopped_at = saved_round()
    assert stop_after <= stopped_at < config.pmc.rounds and not (tmp_path / "smoke").exists()

    job = start_and_wait_for_round(stopped_at + 1)
    second = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert "'smoke' is held by another job (user " in second.stderr and f"pid {job.pid}, since" in second.stderr
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    # Ray's actors run in process groups of their own: they end once they find their Ray gone.
    deadline = time.monotonic() + 60
    while session_processes(job.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert session_processes(job.pid) == []
    killed_at = saved_round()
    assert stopped_at < killed_at < config.pmc.rounds and not (tmp_path / "smoke").exists()

    partial_before = {p: p.read_bytes() for p in (tmp_path / "smoke.partial").rglob("*") if p.is_file()}
    changed = subprocess.run([*command, "--set", "pmc.lr=2.0e-3"], cwd=PROJECT, env=env, capture_output=True, text=True,
                             timeout=60)
    assert changed.returncode == 2 and "pmc.lr differ" in changed.stderr and "--fresh" in changed.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "smoke.partial").rglob("*") if p.is_file()} == partial_before

    resumed = subprocess.run([*command, "--set", "checkpoint.full_state_every_s=0.6"], cwd=PROJECT, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming after round {killed_at}" in resumed.stdout
    # The retain model's truth ratios and attacks come from the smoke run's cache (no actor of its own): the
    # numbers compared below show the cached ones equal those computed.
    assert "retain model forget truth ratios: cached at" in resumed.stdout and "retain model attacks: cached at" in resumed.stdout
    run = tmp_path / "smoke"
    mine, theirs = (json.loads((folder / "eval.json").read_text()) for folder in (run, uninterrupted))
    assert mine["resumed_after_round"] == killed_at
    for state_name in ("before", "after"):
        for metrics in (mine[state_name], theirs[state_name]):  # the times aside
            metrics.pop("eval_seconds")
            for result in metrics["attacks"].values():
                result.pop("seconds")
        assert mine[state_name] == theirs[state_name]
    rounds = [[{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in (folder / "metrics.jsonl").read_text().splitlines()]
              for folder in (run, uninterrupted)]
    assert rounds[0] == rounds[1]
    assert not (run / "checkpoint").exists()  # checkpoints go when the run finishes
    assert "full_state_every_s: 0.6" in (run / "config.yaml").read_text()  # what it finished with
    assert set(Path("/dev/shm").glob("pmc-weights-*")) <= shm_before


@pytest.fixture(scope="module")
def tiny_engine(tiny_model):
    from pmc_unlearning.configs import CONFIG_DIR, load_config
    from pmc_unlearning.engine import Sampler

    config = load_config(CONFIG_DIR / "smoke.yaml")
    sampler = Sampler(tiny_model, config.engine)
    yield config, sampler
    del sampler
    gc.collect()


@pytest.mark.parametrize("full_state_every_s", [0.0, 1e9], ids=["full-state-every-round", "replay-every-round"])
def test_resuming_from_round_2_of_4_ends_with_the_same_weights(tiny_engine, tiny_model, small_bench, tmp_path,
                                                                 full_state_every_s):
    from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
    from pmc_unlearning.methods.checkpoint import Checkpoints
    from pmc_unlearning.methods.method import Task
    from pmc_unlearning.methods.pmc import PMC
    from pmc_unlearning.methods.rounds import run_rounds

    config, sampler = tiny_engine
    prompt = PromptFormat(Trainer(tiny_model).tokenizer)
    rows = small_bench.forget[:4]
    task = Task(prompt, rows, [prompt.example(r.question, r.answer) for r in small_bench.retain[:4]],
                [r.answer for r in rows])
    job = config.model_copy(update={"pmc": config.pmc.model_copy(update={"rounds": 4, "num_samples": 4, "min_len": 1000})})
    pmc = lambda trainer, checkpoints, log: run_rounds(PMC(job, task), SamplerGroup([sampler]), TrainerGroup([trainer]),
                                                       sampler.weight_dtype(), log, checkpoints)

    def copy_at_round_2(record):
        if record["round"] == 2:
            uninterrupted.wait_for_saves()  # the round's checkpoint is written in the background
            shutil.copytree(tmp_path / "job", tmp_path / "copy")

    uninterrupted = Trainer(tiny_model, precision="fp32", seed=0)
    pmc(uninterrupted, Checkpoints(tmp_path / "job", full_state_every_s=full_state_every_s), copy_at_round_2)
    uninterrupted.wait_for_saves()
    saved = Checkpoints(tmp_path / "copy").latest()
    assert saved.round == 2 and len(saved.replay) == (0 if full_state_every_s == 0 else 2)
    assert (saved.trainer_state is None) == (full_state_every_s > 0)

    resumed = Trainer(tiny_model, precision="fp32", seed=0)
    records = []
    pmc(resumed, Checkpoints(tmp_path / "copy", full_state_every_s=full_state_every_s), records.append)
    assert [r["round"] for r in records] == [3, 4]
    for (name, a), b in zip(uninterrupted.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("method", ["dpo", "rmu"])
def test_a_resumed_baseline_replays_its_rounds_and_ends_with_the_same_weights(tiny_engine, tiny_model, small_bench,
                                                                              tmp_path, method):
    """The baselines' resume, the rounds since round 0 trained again (no full state: the replay path), after
    the method has prepared the trainer again (DPO's frozen reference, RMU's trained layers)."""
    from pmc_unlearning.cluster.groups import SamplerGroup, TrainerGroup
    from pmc_unlearning.methods import make_method
    from pmc_unlearning.methods.checkpoint import Checkpoints
    from pmc_unlearning.methods.method import Task
    from pmc_unlearning.methods.rounds import run_rounds

    config, sampler = tiny_engine
    prompt = PromptFormat(Trainer(tiny_model).tokenizer)
    task = Task(prompt, small_bench.forget[:4], [prompt.example(r.question, r.answer) for r in small_bench.retain[:4]])
    job = config.model_copy(update={"method": method, "pmc": config.pmc.model_copy(update={"rounds": 3,
                                                                                           "batch_size": 2})})

    def run(checkpoints, log=lambda record: None):
        trainer = Trainer(tiny_model, precision="fp32", seed=0)
        run_rounds(make_method(job, task), SamplerGroup([sampler]), TrainerGroup([trainer]), sampler.weight_dtype(),
                   log, checkpoints)
        return trainer

    def stop_after_round_2(record):
        if record["round"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(Checkpoints(tmp_path / "job", full_state_every_s=1e9), stop_after_round_2)
    records = []
    resumed = run(Checkpoints(tmp_path / "job", full_state_every_s=1e9), records.append)
    uninterrupted = run(None)
    assert [r["round"] for r in records] == [3]
    for (name, a), b in zip(uninterrupted.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
