"""A quiet, informative console: the smoke job through the command line shows its own lines only (progress
and a summary whose numbers are eval.json's) and its log.txt keeps everything. That VERBOSE=1 shows everything
is checked on the first attempt of the interrupted job in tests/test_checkpoint.py."""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from pmc_unlearning.telemetry import console

# A job on a new cache (the session's smoke job) also prints its target's and retain model's fine-tunes.
MAX_CONSOLE_LINES = 32


@pytest.fixture(scope="module")
def quiet_job(smoke_run, smoke_console):
    """(console output, run folder) of the session's smoke job, run as `make smoke` runs it."""
    _, folder = smoke_run
    return smoke_console, folder


def test_the_console_shows_few_plain_lines(quiet_job):
    output, _ = quiet_job
    lines = output.splitlines()
    # A progress line every few seconds while a stage runs (more of them on a busy machine), then its closing one.
    assert len([line for line in lines if not line.endswith(" left") and " left (" not in line]) <= MAX_CONSOLE_LINES, output
    assert "\r" not in output and "\x1b" not in output  # not a terminal: no redrawn bars, no colours
    # Only the tiny model's build (the session's cache is new) comes before the job has its folder.
    first = next(i for i, line in enumerate(lines) if line.startswith("run folder (while running): "))
    assert all(line.startswith("tiny model build: ") for line in lines[:first]) and lines[-1].startswith("done: ")
    assert any(line.startswith("unlearning (pmc): 20/20 rounds in ") for line in lines), output


def test_the_summary_holds_the_numbers_of_eval_json(quiet_job):
    output, folder = quiet_job
    evaluation = json.loads((folder / "eval.json").read_text())
    rows = {"forget ROUGE-L": ["forget_rouge_l"], "retain ROUGE-L": ["retain_rouge_l"],
            "model utility": ["model_utility"], "max ROUGE-L, sampled": ["sampling", "max_rouge_l"],
            "leak share, sampled": ["sampling", "leak_share"]}
    for label, path in rows.items():
        expected = []
        for state in ("before", "after"):
            value = evaluation[state]
            for key in path:
                value = value[key]
            expected.append(f"{value:.3f}")
        shown = [line for line in output.splitlines() if line.startswith(label)]
        columns = shown[0][len(label):].split() if len(shown) == 1 else []  # target, unlearned, retain
        assert columns[:2] == expected, (label, expected, output)
    assert f"total {evaluation['wall_time_s']:.1f} s" in output
    assert f"unlearning {evaluation['stage_seconds']['unlearning']:.1f} s" in output
    assert f"run folder: {folder}" in output.splitlines()


def test_the_log_keeps_what_the_console_did_not_show(quiet_job):
    output, folder = quiet_job
    log = (folder / "log.txt").read_text()
    assert not (folder.with_name(f"{folder.name}.partial")).exists()
    for hidden in ("(Sampler pid=", "pmc round 1: loss", "Started a local Ray instance"):
        assert hidden in log and hidden not in output, hidden
    for shown in output.splitlines()[:-1]:  # all but the command line's last line, printed after the job
        assert shown in log
    assert "\x1b[" not in log


def test_progress_off_a_terminal_is_a_plain_line_per_stage(capsys, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    with console.Progress("stage", total=50, unit="rounds") as progress:
        for _ in range(50):
            progress.update(1, "loss 0.5")
    with console.Progress("parts", total=2) as parts:
        with parts.part("first"):
            pass
        with parts.part("second"):
            pass
    output = capsys.readouterr().out
    assert "\r" not in output
    lines = output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("stage: 50/50 rounds in ") and lines[0].endswith(" s (loss 0.5)")
    assert lines[1].startswith("parts: 2/2 steps in ") and lines[1].endswith(" s")  # no part runs any more


def test_a_long_stage_off_a_terminal_says_how_far_it_is_at_its_quarters(capsys, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    monkeypatch.setattr(console, "PLAIN_MIN_S", 0.0)  # as if each round took long
    with console.Progress("stage", total=100, unit="rounds") as progress:
        for _ in range(100):
            progress.update(1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[:3]] == ["stage: 25/100 rounds", "stage: 50/100 rounds",
                                                          "stage: 75/100 rounds"]
    assert all("s left" in line for line in lines[:3]) and len(lines) == 4


def test_a_states_line_and_a_rounds_line_carry_their_numbers(capsys, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    console.log_state("target model", {"forget_rouge_l": 0.91234, "retain_rouge_l": 0.5, "model_utility": None,
                                       "sampling": {"max_rouge_l": 0.25}})
    pmc = {"round": 3, "loss": 1.23456, "selected_score_mean": 0.125, "questions_at_zero": 4, "questions": 10,
           "seconds": {"sampling": 1.5}}
    baseline = {"round": 1, "loss": 2.0, "seconds": {"training": 0.5}}
    with console.Progress("unlearning", total=2, unit="rounds") as rounds:
        console.log_round("pmc", pmc, rounds)
        console.log_round("npo", baseline, rounds)
    assert capsys.readouterr().out.splitlines()[:3] == [
        "target model: forget ROUGE-L 0.912, retain ROUGE-L 0.500, model utility n/a, max ROUGE-L under sampling 0.250",
        "pmc round 3: loss 1.235, selected score 0.125, at zero 4/10, seconds {'sampling': 1.5}",
        "npo round 1: loss 2.000, seconds {'training': 0.5}"]  # a baseline selects nothing
    assert rounds.n == 2 and rounds.postfix == "loss 2.000"


def test_progress_on_a_terminal_is_a_bar(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    monkeypatch.setattr(sys, "stdout", Terminal())
    with console.Progress("stage", total=3, unit="rounds") as progress:
        progress.update(3, "loss 0.5")
    assert "\r" in sys.stdout.getvalue() and "3/3" in sys.stdout.getvalue()


def test_capture_takes_the_file_descriptors_into_the_log_and_shows_only_the_jobs_lines(capfd, monkeypatch, tmp_path):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    with console.captured():
        os.write(1, b"early, from C\n")  # before the log's place is known: kept until then
        console.keep_log(tmp_path / "log.txt")
        os.write(2, b"\x1b[36m(Sampler pid=1)\x1b[0m a warning\n")
        print("a detail")
        console.show("for the user")
    out, err = capfd.readouterr()
    assert out == "for the user\n" and err == ""
    log = (tmp_path / "log.txt").read_text()
    for line in ("early, from C", "(Sampler pid=1) a warning", "a detail", "for the user"):
        assert line in log, line


def test_a_job_that_fails_before_it_has_a_run_folder_shows_what_it_captured(capfd, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    with pytest.raises(RuntimeError):
        with console.captured():
            os.write(2, b"a library's warning\n")
            raise RuntimeError("no model")
    err = capfd.readouterr().err
    assert "a library's warning" in err and "RuntimeError: no model" in err


def test_a_refusal_shows_its_one_line_not_what_the_libraries_printed(capfd, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    with pytest.raises(ValueError):
        with console.captured(quiet_on=(ValueError,)):
            os.write(2, b"httpx: retrying...\n")
            raise ValueError("model 'x': cannot be reached")
    assert capfd.readouterr().err == ""  # the command line prints the refusal's own line


def test_a_full_disk_under_the_log_does_not_block_the_job(capfd, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    with console.captured():
        console.keep_log(Path("/dev/full"))  # every write fails with ENOSPC
        for _ in range(2000):  # more than a pipe holds: a reader that stopped would block the writer
            os.write(1, b"x" * 100 + b"\n")
        console.show("still going")
    out = capfd.readouterr().out
    assert "warning: /dev/full cannot be written (No space left on device); the log stops here" in out
    assert "still going" in out
