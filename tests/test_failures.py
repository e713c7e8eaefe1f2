"""A job whose actor dies stops with one line naming the actor and where, keeps its partial folder, and leaves
no actor behind; Ray's authentication is relaxed for the local instance only."""
from __future__ import annotations

import json
import os
import re

import pytest
import ray

from configs import CONFIG_DIR, load_config
from orchestrator import pipeline
from orchestrator.errors import JobError


def test_a_dying_sampler_ends_the_run_naming_it_and_the_round(smoke_run, tmp_path, monkeypatch):
    smoke_config, _ = smoke_run
    config = load_config(CONFIG_DIR / "smoke.yaml", [f"cache_dir={smoke_config.cache_dir}", f"runs_dir={tmp_path}",
                                                     "allow_external_dirs=true", "eval.retain_model=true", "name=dying"])
    real_unlearn = pipeline.unlearn

    def kill_the_sampler_after_round_1(sampler, trainer, *args, log, **kwargs):
        def log_and_kill(record):
            log(record)
            if record["epoch"] == 1:
                ray.kill(sampler.members[0].handle)  # a real kill of the real actor, as an out-of-memory kill would be

        return real_unlearn(sampler, trainer, *args, log=log_and_kill, **kwargs)

    monkeypatch.setattr(pipeline, "unlearn", kill_the_sampler_after_round_1)
    with pytest.raises(JobError) as error:
        pipeline.run_unlearning(config)
    message = str(error.value)
    assert "\n" not in message
    # The round named is the one after the last completed: the first after round 1 that used the engine
    # (sampling, or the weight push before the evaluation once every question is at zero).
    failed_round = int(re.match(r"the sampler 0 actor died during unlearning round (\d+) \(", message).group(1))
    assert message.endswith(f"the partial run is kept in {tmp_path / 'dying.partial'}")
    partial = tmp_path / "dying.partial"
    done = [json.loads(line)["epoch"] for line in (partial / "metrics.jsonl").read_text().splitlines()]
    assert done == list(range(1, failed_round)) and failed_round >= 2
    assert not (tmp_path / "dying").exists()
    for role in ("sampler 0", "trainer 0", "retain-model scorer 0"):  # every actor of the job is gone
        with pytest.raises(ValueError):
            ray.get_actor(f"dying:{role}")


@pytest.mark.parametrize("address,user_mode,expected", [
    (None, None, "disabled"),  # the local instance: no token needed on this machine
    (None, "token", "token"),  # unless the user asks for it
    ("ray://cluster:10001", None, None),  # a cluster keeps its own authentication: nothing is set
    ("ray://cluster:10001", "token", "token"),
])
def test_ray_auth_is_relaxed_for_the_local_instance_only(monkeypatch, address, user_mode, expected):
    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(mode=os.environ.get("RAY_AUTH_MODE"), **kwargs))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    for name, value in (("RAY_ADDRESS", address), ("RAY_AUTH_MODE", user_mode)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pipeline.ray_session():
        pass
    assert seen["mode"] == expected
    assert seen["address"] == (address or "local")  # a local instance of its own, never another job's
    assert os.environ.get("RAY_AUTH_MODE") == user_mode  # restored afterwards
