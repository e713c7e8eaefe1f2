"""What a job shows on the console, and `runs/<name>/log.txt`, which keeps everything.

By default the console gets only the job's own lines: a progress bar per long stage (on a terminal; else a
plain line now and then and one when the stage ends) and a closing summary. Everything else the process
writes, the job's detailed lines (one per round, ...), third-party logs and warnings, and the Ray actors'
output (which Ray forwards to the driver), goes to the run's log.txt only. `VERBOSE=1` puts all of it on
the console too, as before, with plain progress lines.

Output that tells nobody anything, not even in the log, is switched off where it is made (quiet mode only):
the libraries' own progress bars, FutureWarnings raised inside the libraries, and the warning vLLM logs for
the rotary embedding after every weight push.
"""
from __future__ import annotations

import logging
import os
import re
import select
import sys
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, TextIO

from tqdm import tqdm

VERBOSE_ENV = "VERBOSE"
# Where the console is not a terminal: a progress line as a stage passes a quarter, a half, three quarters,
# if it has run this long since the last line (a short stage prints only its closing line).
PLAIN_MILESTONES = (0.25, 0.5, 0.75)
PLAIN_MIN_S = 10.0
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")  # Ray's and vLLM's colours: not for a text file
_STOP_DRAIN_S = 2.0  # at the end, how long to wait for output still in the pipe


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


# --- sources ------------------------------------------------------------------------------------------------

def worker_env() -> dict[str, str]:
    """Environment for the job's Ray workers (actors and tasks), set before they start: the libraries read it
    when they are imported. The verbose switch travels too: a worker on another node does not inherit it."""
    if verbose():
        return {VERBOSE_ENV: "1"}
    return {"HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights", "Writing model shards"
            "PYTHONWARNINGS": "ignore::FutureWarning"}  # e.g. torch.distributed.reduce_op, inside vLLM


def quiet_this_process() -> None:
    """The same for the driver, whose libraries are imported already."""
    if verbose():
        return
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


class _RotaryReloadWarning(logging.Filter):
    """vLLM warns "RotaryEmbedding: Failed to load weights" after every weight push: the layer's cos/sin
    cache is computed, never part of a checkpoint, and vLLM puts it back itself. Any other layer's warning
    stays: that one would mean weights that did not arrive."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "%s: Failed to load weights" and record.args == ("RotaryEmbedding",))


def quiet_engine() -> None:
    """In a sampler's process, before its vLLM engine starts (quiet mode)."""
    if not verbose():
        logging.getLogger("vllm.model_executor.model_loader.reload.layerwise").addFilter(_RotaryReloadWarning())


# --- capture into log.txt -----------------------------------------------------------------------------------

class Capture:
    """The process's stdout and stderr, taken at their file descriptors (so that C++ libraries, Ray's
    forwarding of the actors' output and child processes count too), written line by line into the job's log
    with the seconds since the start; with `echo` (VERBOSE=1) on to the console as well.

    Lines wait in memory until the run folder exists (`keep_in`); a job that fails before it has one shows
    them on stderr instead, so that nothing is lost.
    """

    def __init__(self, echo: bool):
        self.echo = echo
        self.started = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved_fds = (os.dup(1), os.dup(2))
        self._saved_streams = (sys.stdout, sys.stderr)
        self.console: TextIO = open(self._saved_fds[0], "w", buffering=1, encoding="utf-8", errors="replace",
                                    closefd=False)
        self._read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        # Python-level streams onto the new descriptors (under pytest, sys.stdout does not write to fd 1).
        # Never closed: handlers set up meanwhile keep them, and write to the restored descriptors later.
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        self._lock = threading.Lock()
        self._log: TextIO | None = None
        self._waiting = [f"---- {datetime.now().isoformat(timespec='seconds')}: {' '.join(sys.argv)}\n"]
        self._partial = b""
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._pump, name="log capture", daemon=True)
        self._reader.start()

    def keep_in(self, path: Path) -> None:
        """From now on into `path`, appended (a resumed run keeps what its first attempt wrote)."""
        log = open(path, "a", encoding="utf-8")
        with self._lock:
            waiting, self._waiting, self._log = self._waiting, [], log
            try:
                log.writelines(waiting)
                log.flush()
            except OSError as err:
                self._log_failed(err)

    def close(self, error: str | None, show_waiting: bool = True) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._saved_streams
        os.dup2(self._saved_fds[0], 1)
        os.dup2(self._saved_fds[1], 2)
        self._stop.set()
        self._reader.join()
        os.close(self._read)
        if self._partial:  # a last line without its newline
            self._take(b"\n")
        if error:
            self._take(error.encode())
        if self._log is not None:
            try:
                self._log.close()
            except OSError:  # its last lines could not be written: the disk is full
                pass
        elif not self.echo and show_waiting:  # no run folder to keep them in, and not on the console yet
            sys.stderr.writelines(self._waiting)
        self.console.flush()
        for fd in self._saved_fds:
            os.close(fd)

    def _pump(self) -> None:
        deadline = None
        while True:
            ready, _, _ = select.select([self._read], [], [], 0.1)
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + _STOP_DRAIN_S
            if not ready:
                if deadline:
                    return  # drained
                continue
            chunk = os.read(self._read, 1 << 16)
            if not chunk or (deadline and time.monotonic() > deadline):  # a child process may hold the pipe
                return
            if self.echo:
                self.console.buffer.write(chunk)
                self.console.buffer.flush()
            self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        stamp = f"{time.monotonic() - self.started:8.1f}s  "
        # Of a line redrawn with carriage returns (a progress bar), its last state.
        text = [stamp + _ANSI.sub(b"", line).rstrip(b"\r").rsplit(b"\r", 1)[-1].decode("utf-8", "replace") + "\n"
                for line in lines]
        with self._lock:
            if self._log is None:
                self._waiting.extend(text)
                return
            try:
                self._log.writelines(text)
                self._log.flush()
            except OSError as err:  # a full disk: the log stops, the pipe keeps draining, the job goes on
                self._log_failed(err)

    def _log_failed(self, err: OSError) -> None:
        """Stop writing the log (a full disk must not block the job: every write to the console would wait
        on this pipe), and say so once on the console."""
        self.console.write(f"warning: {self._log.name} cannot be written ({err.strerror or err}); "
                           "the log stops here\n")
        try:
            self._log.close()
        except OSError:
            pass
        self._log = open(os.devnull, "w", encoding="utf-8")


_active: Capture | None = None


@contextmanager
def captured(quiet_on: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """The job's output into its log (see Capture) for the duration; within another capture, that one goes on.
    A job that fails before its run folder exists shows what it printed on stderr, unless it failed with one of
    `quiet_on`: refusals whose one-line message says it all (a hub model that cannot be reached, say, would
    otherwise show the HTTP library's retries first)."""
    global _active
    if _active is not None:
        yield
        return
    _active = Capture(echo=verbose())
    quiet_this_process()
    try:
        yield
    except BaseException as err:
        _active.close(error=traceback.format_exc(), show_waiting=not isinstance(err, quiet_on))
        raise
    else:
        _active.close(error=None)
    finally:
        _active = None


def keep_log(path: Path) -> None:
    """Where the captured output goes once the run folder exists."""
    if _active is not None:
        _active.keep_in(path)


def show(line: str) -> None:
    """A line for the user: on the console, and in the log."""
    if _active is not None and not _active.echo:
        _active.console.write(line + "\n")
    print(line, flush=True)  # into the log when captured (and on the console with VERBOSE=1); else the console


def error_line(line: str) -> None:
    """A line on the terminal's stderr, while the job's output is captured too: for a job that ends without
    unwinding (orchestrator/__main__.py), whose capture never closes."""
    os.write(_active._saved_fds[1] if _active is not None else 2, (line + "\n").encode())


def _console() -> TextIO:
    return _active.console if _active is not None else sys.stdout


# --- progress -----------------------------------------------------------------------------------------------

class Progress:
    """One stage's progress. On a terminal a tqdm bar (elapsed time, ETA, the postfix), redrawn every second
    so that a long step shows the time going; elsewhere, and with VERBOSE=1, plain lines: at most one per
    milestone (PLAIN_MILESTONES) with an estimate of the time left, and one when the stage ends. The closing
    line goes to the log either way."""

    def __init__(self, label: str, total: int, unit: str = "steps", initial: int = 0):
        self.label, self.total, self.unit = label, total, unit
        self.n = initial
        self.postfix = ""
        self.started = self._last_line = time.monotonic()
        self._milestones = [m * total for m in PLAIN_MILESTONES if m * total > initial]
        # (time, count) at the first update: the rate is measured from there, since the start of a stage (a
        # worker starting, a model loading) is often slower than what follows
        self._rate_from: tuple[float, int] | None = None
        console = _console()
        one_step = {"bar_format": "{desc}: {elapsed}{postfix}"} if total == 1 else {}  # a bar would say nothing
        self._bar = (tqdm(total=total, initial=initial, desc=label, unit=unit, file=console, dynamic_ncols=True,
                          **one_step)
                     if console.isatty() and not verbose() else None)
        self._done = threading.Event()
        if self._bar is not None:
            threading.Thread(target=self._tick, name=f"progress: {label}", daemon=True).start()

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.n += n
        self._rate_from = self._rate_from or (time.monotonic(), self.n)
        if postfix is not None:
            self.postfix = postfix
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=False)
            self._bar.update(n)
            return
        passed = [m for m in self._milestones if m <= self.n]
        if passed and self.n < self.total:
            self._milestones = self._milestones[len(passed):]
            if time.monotonic() - self._last_line >= PLAIN_MIN_S:
                self._last_line = time.monotonic()
                show(self._line(final=False))

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """One step of the stage, named in the postfix while it runs."""
        self.postfix = name
        if self._bar is not None:
            self._bar.set_postfix_str(name)
        yield
        self.update(1, "")

    def close(self, stopped: bool = False) -> None:
        line = self._line(final=True, stopped=stopped)
        if self._bar is None:
            show(line)
            return
        self._done.set()
        self._bar.close()
        if _active is not None:
            print(line, flush=True)  # the bar stays on the terminal; the log gets the line

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, error_type, error, trace) -> None:
        self.close(stopped=error_type is not None)

    def _tick(self) -> None:
        while not self._done.wait(1.0):
            self._bar.refresh()

    def _line(self, final: bool, stopped: bool = False) -> str:
        elapsed = time.monotonic() - self.started
        postfix = f" ({self.postfix})" if self.postfix else ""
        if stopped:
            return f"{self.label}: stopped at {self.n}/{self.total} {self.unit} after {elapsed:.1f} s{postfix}"
        if final:
            done = "done" if self.total == 1 else f"{self.n}/{self.total} {self.unit}"
            return f"{self.label}: {done} in {elapsed:.1f} s{postfix}"
        since, n_then = self._rate_from  # a line before the end comes from an update
        left = (time.monotonic() - since) / (self.n - n_then) * (self.total - self.n) if self.n > n_then else None
        eta = f", about {left:.0f} s left" if left is not None else ""
        return f"{self.label}: {self.n}/{self.total} {self.unit}, {elapsed:.0f} s{eta}{postfix}"


# --- the job's lines in the log -----------------------------------------------------------------------------

STATE_LINE = (("forget ROUGE-L", ("forget_rouge_l",)), ("retain ROUGE-L", ("retain_rouge_l",)),
              ("model utility", ("model_utility",)), ("max ROUGE-L under sampling", ("sampling", "max_rouge_l")))


def log_state(name: str, metrics: dict) -> None:
    """A model state's headline metrics (its eval.json block), one line into the job's log."""
    print(f"{name}: " + ", ".join(f"{label} {_number(value_at(metrics, path))}" for label, path in STATE_LINE),
          flush=True)


def log_round(method: str, record: dict, progress: Progress) -> None:
    """A round's record (methods/rounds.py): one line into the job's log, and the round's figures on its
    progress bar. PMC's record has its selection; a baseline's selects nothing."""
    selected = "selected_score_mean" in record
    selection = (f"selected score {record['selected_score_mean']:.3f}, at zero {record['questions_at_zero']}"
                 f"/{record['questions']}, " if selected else "")
    print(f"{method} round {record['round']}: loss {record['loss']:.3f}, {selection}seconds {record['seconds']}",
          flush=True)
    progress.update(1, (f"selected score {record['selected_score_mean']:.3f}, " if selected else "")
                    + f"loss {record['loss']:.3f}")


# --- summary ------------------------------------------------------------------------------------------------

HEADLINES = (("forget ROUGE-L", ("forget_rouge_l",)), ("retain ROUGE-L", ("retain_rouge_l",)),
             ("model utility", ("model_utility",)), ("max ROUGE-L, sampled", ("sampling", "max_rouge_l")),
             ("leak share, sampled", ("sampling", "leak_share")),
             ("forget answers broken", ("fluency", "broken_share")),
             ("forget non-answers", ("fluency", "non_answer_share")),
             # evaluation/attacks/: forget ROUGE-L after the largest relearn, at the fewest bits, with a prefill
             ("relearned forget ROUGE-L", ("attacks_headline", "relearned_forget_rouge_l")),
             ("quantized forget ROUGE-L", ("attacks_headline", "quantized_forget_rouge_l")),
             ("prefill forget ROUGE-L", ("attacks_headline", "prefill_forget_rouge_l")),
             ("extraction strength", ("attacks_headline", "extraction_strength")),
             ("PrivLeak", ("attacks_headline", "privleak")))
# eval.json's keys, column titles
STATES = (("before", "target"), ("after", "unlearned"), ("model", "model"), ("retain_model", "retain"))
SUMMARY_WIDTH = 100


def summary_lines(evaluation: dict, folder: Path) -> list[str]:
    """The closing table, from the run's eval.json: headline metrics before and after, time per stage, folder."""
    states = [(title, evaluation[key]) for key, title in STATES if key in evaluation]
    lines = [f"{'':<24}" + "".join(f"{title:>11}" for title, _ in states)]
    for label, path in HEADLINES:
        lines.append(f"{label:<24}" + "".join(f"{_number(value_at(metrics, path)):>11}" for _, metrics in states))
    stages = [f"{stage.replace('_', ' ')} {seconds:.1f} s" for stage, seconds in evaluation["stage_seconds"].items()]
    lines += _wrapped("wall time: ", [*stages, f"total {evaluation['wall_time_s']:.1f} s"])
    lines.append(f"run folder: {folder}")
    return lines


def value_at(metrics: dict, path: tuple[str, ...]):
    """The value at `path`, None where a state has no such block (an evaluation-only run has no fluency)."""
    for key in path:
        metrics = metrics.get(key) if isinstance(metrics, dict) else None
    return metrics


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _wrapped(head: str, items: list[str]) -> list[str]:
    lines, line = [], head
    for item in items:
        if line != head and len(line) + len(item) + 2 > SUMMARY_WIDTH:
            lines.append(line.rstrip(", "))
            line = " " * len(head)
        line += item + ", "
    return [*lines, line.rstrip(", ")]
