"""Batches on Ray Tune: the batch file, the report's statistics, and a real batch on a two-node local cluster
whose trials and driver are killed."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pmc_unlearning.configs import ConfigError, machine_threads
from pmc_unlearning.configs.batch_schema import load_batch
from pmc_unlearning.reporting.batch_report import summary, write_batch_report

PROJECT = Path(__file__).resolve().parents[1]
SMOKE = PROJECT / "configs" / "smoke.yaml"


def batch_file(tmp_path: Path, **fields) -> Path:
    path = tmp_path / f"{fields.get('name', 'b')}.yaml"
    path.write_text(yaml.safe_dump({"base": str(SMOKE), **fields}))
    return path


def test_a_batch_is_every_variant_times_every_grid_point_times_every_seed(tmp_path, monkeypatch):
    monkeypatch.delenv("PMC_THREADS", raising=False)  # make test's share for its own jobs: the preset's default here
    batch = load_batch(batch_file(tmp_path, name="study", grid={"method": ["pmc", "npo"], "pmc.lr": [1.0e-4, 3.0e-4]},
                                  variants=[{}, {"pmc.rounds": 3}], repeats=2, seed_keys=["pmc.seed", "target.seed"]))
    assert len(batch.trials) == 2 * 2 * 2 * 2
    names = [t.name for t in batch.trials]
    assert len(set(names)) == len(names) and names[0] == "pmc_lr-0.0001_seed-0" and names[-1] == "npo_lr-0.0003_rounds-3_seed-1"
    trial = batch.trials[-1]
    config = batch.trial_config(trial)
    assert (config.method, config.pmc.lr, config.pmc.rounds, config.pmc.seed, config.target.seed) == ("npo", 3e-4, 3, 1, 1)
    # Two trials at a time share the machine's cores: each trial's actors take half of them
    assert config.threads == max(1, machine_threads() // 2)
    threaded = load_batch(batch_file(tmp_path, name="threads", grid={"threads": [3]}))
    assert threaded.trial_config(threaded.trials[0]).threads == 3  # the batch's own settings win
    assert config.name == trial.name and config.runs_dir == PROJECT / "runs" / "study"
    assert trial.group == "method=npo, pmc.lr=0.0003, pmc.rounds=3" and trial.seed == 1
    # Each method runs with its tuned settings (smoke.yaml's method_settings), as in `make unlearn METHOD=npo`
    assert batch.trials[4].name == "npo_lr-0.0001_seed-0" and batch.trial_config(batch.trials[4]).baseline.lr == 3e-4
    # One repeat: the preset's own seeds, not overwritten
    single = load_batch(batch_file(tmp_path, name="one", grid={"method": ["pmc"]}))
    assert [t.name for t in single.trials] == ["pmc"] and single.trials[0].seed is None
    assert single.trial_config(single.trials[0]).pmc.seed == 0


@pytest.mark.parametrize("fields, message", [
    ({"grid": {"method": ["pmc"]}, "repeat": 3}, "repeat: Extra inputs are not permitted"),
    ({"grid": {"method": ["pmc", "sgd"]}}, "trial 'sgd': "),
    ({"grid": {"pmc.lrr": [1.0]}}, "pmc.lrr"),
    ({"variants": [{"pmc.rounds": 0}]}, "trial 'rounds-0': "),
    ({"base": "configs/nope.yaml"}, "base: preset configs/nope.yaml does not exist"),
    ({"repeats": 0}, "repeats: Input should be greater than or equal to 1"),
])
def test_a_bad_batch_file_is_refused_naming_file_trial_and_key(tmp_path, fields, message):
    path = batch_file(tmp_path, **fields)
    with pytest.raises(ConfigError) as refused:
        load_batch(path)
    assert str(path) in str(refused.value) and message in str(refused.value)


@pytest.mark.heavy
def test_the_command_line_refuses_a_bad_batch_file_in_one_line_before_anything_runs(tmp_path):
    path = batch_file(tmp_path, name="bad", grid={"method": ["pmc", "sgd"]}, set=[f"runs_dir={tmp_path / 'runs'}",
                                                                                  "allow_external_dirs=true"])
    result = subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", "batch", str(path)], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "trial 'sgd'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_group_summary_is_mean_sample_std_and_the_t_interval():
    result = summary([1.0, 2.0, 3.0])
    t_975_2 = 4.302652729911275  # Student's t quantile, 2 degrees of freedom (tables)
    assert result["mean"] == 2.0 and result["std"] == 1.0 and result["n"] == 3
    assert result["ci95"] == pytest.approx([2 - t_975_2 / math.sqrt(3), 2 + t_975_2 / math.sqrt(3)])
    assert summary([0.5]) == {"n": 1, "mean": 0.5, "std": 0.0, "ci95": None}


def metrics(forget: float, utility: float, privleak: float = 0.1) -> dict:
    return {"forget_rouge_l": forget, "unlearn_quality": 100 * (1 - forget), "utility": utility,
            "retain_rouge_l": 0.9, "model_utility": 0.3, "forget_quality": None,
            "sampling": {"max_rouge_l": forget + 0.1, "leak_share": forget / 2},
            "over_unlearning": {"share_halved": 0.1},
            "attacks_headline": {"relearned_forget_rouge_l": forget + 0.2, "quantized_forget_rouge_l": forget,
                                 "privleak": privleak, "extraction_strength": None, "prefill_forget_rouge_l": forget}}


def test_a_shares_interval_from_two_seeds_stays_inside_0_to_1():
    unbounded = summary([0.0, 0.1])
    assert unbounded["ci95"][0] < 0  # Student's t from two values reaches far
    assert summary([0.0, 0.1], (0.0, 1.0))["ci95"] == [0.0, pytest.approx(unbounded["ci95"][1])]
    assert summary([0.9, 1.0], (0.0, 1.0))["ci95"][1] == 1.0


def test_the_fourth_takeaway_compares_each_attack_per_baseline_and_reads_privleak_as_a_distance_from_0():
    from pmc_unlearning.reporting.side_by_side import paper_takeaways

    states = {"pmc": metrics(0.1, 40.0, privleak=-0.2), "npo": metrics(0.3, 30.0, privleak=0.5),
              "idk": metrics(0.05, 30.0, privleak=0.1)}
    lines = [line for line in paper_takeaways(states) if line.startswith("- (4)")]
    assert lines[0] == ("- (4) vs npo, under each attack: forget ROUGE-L after relearning 0.300 vs 0.500; "
                        "forget ROUGE-L at 4 bits 0.100 vs 0.300; PrivLeak -0.200 vs 0.500; "
                        "forget ROUGE-L with a prefill 0.100 vs 0.300: holds")
    assert lines[1].startswith("- (4) vs idk, under each attack: forget ROUGE-L after relearning 0.300 vs 0.250 (not);")
    assert "PrivLeak -0.200 vs 0.100 (not)" in lines[1] and lines[1].endswith(": **does not hold**")
    spread = {name: metrics(0.1, 1.0, privleak=0.1) for name in states}  # 0.3 std on relearning: within it
    lines = [line for line in paper_takeaways(states, spread) if line.startswith("- (4) vs idk")]
    assert "forget ROUGE-L after relearning 0.300 ± 0.300 vs 0.250 ± 0.300 (within the seeds' spread)" in lines[0]


def record(name: str, method: str, seed: int, after: dict | None, error: str | None = None) -> dict:
    evaluation = {"before": metrics(1.0, 40.0), "after": after, "target_model": "/t"} if after else None
    return {"name": name, "group": f"method={method}", "settings": {"method": method}, "seed": seed,
            "status": "finished" if after else "failed", "error": error, "run_folder": f"/runs/{name}", "eval": evaluation}


def test_the_report_groups_seeds_checks_the_takeaways_with_spread_and_lists_a_failed_trial(tmp_path):
    trials = [record("pmc_seed-0", "pmc", 0, metrics(0.0, 40.0)), record("pmc_seed-1", "pmc", 1, metrics(0.1, 38.0)),
              record("npo_seed-0", "npo", 0, metrics(0.4, 30.0)), record("npo_seed-1", "npo", 1, metrics(0.6, 32.0)),
              record("idk_seed-0", "idk", 0, None, error="ValueError: no KV cache")]
    write_batch_report(tmp_path, "t", trials, {"trials": []})
    results = json.loads((tmp_path / "results.json").read_text())
    assert [t["status"] for t in results["trials"]] == ["finished"] * 4 + ["failed"]
    groups = {g["group"]: g for g in results["groups"]}
    assert groups["method=idk"]["finished"] == 0 and groups["method=idk"]["failed"] == ["idk_seed-0"]
    forget = groups["method=npo"]["metrics"]["forget ROUGE-L"]
    assert forget["mean"] == pytest.approx(0.5) and forget["std"] == pytest.approx(math.sqrt(0.02))
    report = (tmp_path / "report.md").read_text()
    assert "| idk_seed-0 | 0 | failed | /runs/idk_seed-0 |  | ValueError: no KV cache |" in report
    assert "- (1) vs npo: forget ROUGE-L 0.050 ± 0.071 vs 0.500 ± 0.141, utility 39.0 ± 1.4 vs 31.0 ± 1.4: holds" in report
    assert "| target (before) |" in report and (tmp_path / "figures" / "trade_off.png").stat().st_size > 0


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being written
        return None


def wait_for(condition, what: str, driver: subprocess.Popen, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert driver.poll() is None, f"the batch ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.mark.heavy
def test_a_batch_on_a_two_node_cluster_survives_a_killed_trial_and_a_killed_driver(tiny_model, tmp_path):
    """Three trials of the smoke job on a two-node local cluster with logical GPUs, two at a time (a node
    holds one trial's group). Two are the same job (the second keeps its checkpoint, which changes no
    number); the third has a model folder whose weights are garbage, so it fails on every try. The second
    trial's process is SIGKILLed after its first round (Tune retries it, and it resumes from its checkpoint);
    once both finished, the batch driver is SIGKILLed, while the failing trial is still being tried; the
    same command again finishes the batch without running a finished trial again."""
    from ray.cluster_utils import Cluster

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"these are not weights")
    path = batch_file(tmp_path, name="cluster", variants=[{}, {"checkpoint.keep": True}, {"model": str(broken)}],
                      set=[f"cache_dir={tmp_path / 'cache'}", f"runs_dir={tmp_path / 'runs'}", "allow_external_dirs=true",
                           "pmc.rounds=6", "eval.sampling_n=8", "eval.max_contexts=50", "eval.retain_subset=10",
                           "eval.retain_model=false", "eval.attacks.run=[]"],  # the batch's machinery, not the attacks
                      max_concurrent_trials=2, max_failures=1)
    base, keep, failing = (t.name for t in load_batch(path).trials)
    runs = tmp_path / "runs" / "cluster"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "num_gpus": 1, "object_store_memory": 200 * 2**20})
    cluster.add_node(num_cpus=3, num_gpus=1, object_store_memory=200 * 2**20)
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "pmc_unlearning.orchestrator", "batch", str(path)]
    try:
        with open(tmp_path / "first.log", "w") as log:
            driver = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        placement = lambda name: read_json(runs / f"{name}.partial" / "placement.json") or read_json(runs / name / "placement.json")
        rounds = lambda name: (runs / f"{name}.partial" / "metrics.jsonl").is_file() and \
            (runs / f"{name}.partial" / "metrics.jsonl").read_text().count("\n")
        wait_for(lambda: placement(base) and placement(keep) and rounds(keep), "both trials ran a round", driver)
        where = {name: placement(name)["roles"] for name in (base, keep)}
        assert where[base]["job"]["node_id"] != where[keep]["job"]["node_id"]  # trials on both nodes
        for roles in where.values():  # each role in its bundle of the trial's group, with its logical GPU share
            assert [roles[r]["bundle"] for r in ("job", "sampler 0", "trainer 0")] == [0, 1, 2]
            assert roles["sampler 0"]["gpu_ids"] and roles["trainer 0"]["gpu_ids"]
            assert roles["sampler 0"]["node_id"] == roles["trainer 0"]["node_id"] == roles["job"]["node_id"]
        os.kill(where[keep]["job"]["pid"], signal.SIGKILL)  # the trial's process, mid-run: Tune retries it

        finished = lambda name: read_json(runs / name / "eval.json") and (runs / name / "eval.json").stat()
        first, kept = wait_for(lambda: finished(base) and finished(keep) and (finished(base), finished(keep)),
                               "both trials finished", driver)
        if driver.poll() is None:  # the failing trial may be failing still: the driver is killed mid-batch
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()

        again = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        cluster.shutdown()
    (tmp_path / "second.log").write_text(again.stdout + again.stderr)
    # The failing trial fails the batch (exit 1, one line naming it); the report has everything.
    assert again.returncode == 1, again.stderr[-3000:]
    assert again.stderr.splitlines()[-1].startswith(f"error: 1 of 3 trials did not finish: {failing} (failed: ")
    results = json.loads((runs / "results.json").read_text())
    trials = {t["name"]: t for t in results["trials"]}
    assert [trials[n]["status"] for n in (base, keep, failing)] == ["finished", "finished", "failed"]
    assert trials[failing]["error"] and failing in (runs / "report.md").read_text()
    # Every round reached Tune's loggers: TensorBoard's event files and the JSON log, six rounds and the end
    assert list((runs / "tune" / base).glob("events.out.tfevents.*"))
    logged = [json.loads(line) for line in (runs / "tune" / base / "result.json").read_text().splitlines()]
    assert [r.get("round") for r in logged] == [1, 2, 3, 4, 5, 6, None] and logged[-1]["finished"] == 1

    # The finished trials were not run again; the killed one was retried, resumed from its checkpoint, and
    # ends as its twin.
    for name, before in ((base, first), (keep, kept)):
        after = (runs / name / "eval.json").stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), name
    mine, twin = trials[keep]["eval"], trials[base]["eval"]
    assert mine["resumed_after_round"] >= 1
    for state in ("before", "after"):
        for evaluation in (mine, twin):  # the times aside
            evaluation[state].pop("eval_seconds")
        assert mine[state] == twin[state]
    assert (runs / keep / "checkpoint").is_dir() and not (runs / base / "checkpoint").exists()
    # Two trials ran at once on one empty cache: the target was fine-tuned once.
    assert [mine["target_finetuned"], twin["target_finetuned"]].count(True) == 1


@pytest.mark.heavy
def test_ctrl_c_stops_a_batch_in_one_line_with_exit_130_and_keeps_the_partial_run(smoke_run, tmp_path):
    """Ctrl-C (SIGINT to the driver) once the trial ran a round: the batch ends as a job does, one line and
    128 + SIGINT, not as a batch whose trials did not finish (exit 1); the trial's partial run is kept."""
    smoke_config, _ = smoke_run
    path = batch_file(tmp_path, name="stopped", grid={"method": ["pmc"]},
                      set=[f"cache_dir={smoke_config.cache_dir}", f"runs_dir={tmp_path / 'runs'}",
                           "allow_external_dirs=true", "eval.retain_model=false", "eval.attacks.run=[]"])
    trial = load_batch(path).trials[0].name
    metrics = tmp_path / "runs" / "stopped" / f"{trial}.partial" / "metrics.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own local instance
    with open(tmp_path / "stdout.txt", "w") as stdout, open(tmp_path / "stderr.txt", "w") as stderr:
        driver = subprocess.Popen([sys.executable, "-m", "pmc_unlearning.orchestrator", "batch", str(path)],
                                  cwd=PROJECT, env={**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
                                  stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        wait_for(lambda: metrics.is_file() and metrics.read_text().count("\n") >= 1, "the trial ran a round", driver)
        os.kill(driver.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group: issue 34's SIGTERM item
        asked = time.monotonic()
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert driver.returncode == 128 + signal.SIGINT and time.monotonic() - asked < 60, stderr[-3000:]
    ours = [line for line in stderr.splitlines() if line.startswith(("stopped by", "error:"))]
    assert len(ours) == 1 and ours[0].startswith("stopped by SIGINT: ") and "Traceback" not in stderr, stderr[-3000:]
    assert metrics.is_file() and not (tmp_path / "runs" / "stopped" / trial).exists()


@pytest.mark.heavy
def test_the_command_line_refuses_another_batchs_tune_state_in_one_line_and_keeps_it(tmp_path):
    """Two batches of one name and one storage_path, from two runs folders: the second is refused before anything
    runs, naming the first, whose Tune state stays as it was."""
    from pmc_unlearning.orchestrator.tune_state import fresh_experiment

    def batch_in(runs: str) -> Path:
        (tmp_path / f"{runs}-file").mkdir()
        return batch_file(tmp_path / f"{runs}-file", name="shared", grid={"method": ["pmc"]},
                          storage_path=str(tmp_path / "tune"), set=[f"runs_dir={tmp_path / runs}", "allow_external_dirs=true"])

    theirs = fresh_experiment(load_batch(batch_in("their-runs")))
    (theirs / "tuner.pkl").write_bytes(b"their state")
    before = sorted((p.name, p.read_bytes()) for p in theirs.iterdir())
    result = subprocess.run([sys.executable, "-m", "pmc_unlearning.orchestrator", "batch", str(batch_in("my-runs"))],
                            cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {theirs} holds the Tune state of batch 'shared' of "
                                    f"{tmp_path / 'their-runs' / 'shared'} (checkout {PROJECT})")
    assert sorted((p.name, p.read_bytes()) for p in theirs.iterdir()) == before
    assert not (tmp_path / "my-runs").exists()  # nothing of the batch's written
