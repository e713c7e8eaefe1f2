"""A stopped job ends within its grace, with one line and 128 + the signal, even where the stop was dropped."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

# A job holding its name whose code drops the KeyboardInterrupt of a stop (as Python does where the signal lands
# in a finaliser or a callback) and goes on working; the grace is 1 s here.
DROPS_THE_STOP = """
import sys, time
from contextlib import ExitStack
from pathlib import Path
from pmc_unlearning.orchestrator import __main__ as cli

cli.STOP_GRACE_S = 1
with ExitStack() as job:
    cli.start_job(job, Path(sys.argv[1]), "dropped")
    deadline, said = time.monotonic() + float(sys.argv[2]), False
    while time.monotonic() < deadline:
        try:
            if not said:
                print("holding", flush=True)
                said = True
            time.sleep(0.1)
        except KeyboardInterrupt:
            said = True
print("went on to the end", flush=True)
"""


def test_ctrl_c_that_the_job_drops_still_ends_it_after_the_grace_in_one_line_and_frees_its_name(tmp_path):
    job = subprocess.Popen([sys.executable, "-c", DROPS_THE_STOP, str(tmp_path / "runs"), "30"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert job.stdout.readline() == "holding\n"
    job.send_signal(signal.SIGINT)
    asked = time.monotonic()
    stdout, stderr = job.communicate(timeout=20)
    assert job.returncode == 128 + signal.SIGINT and time.monotonic() - asked < 6, stderr
    assert "went on" not in stdout and stderr.count("\n") == 1, stderr
    assert stderr.startswith("stopped by SIGINT: the job did not end within 1 s of the signal; its processes on this "
                             "machine are ended; the same command resumes the partial run")
    again = subprocess.run([sys.executable, "-c", DROPS_THE_STOP, str(tmp_path / "runs"), "0"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=20)
    assert again.returncode == 0 and again.stdout == "went on to the end\n", again.stderr  # the name is free again
