"""Ray actors: thin wrappers around the plain Sampler and Trainer (cluster/groups.py starts them as a
job's engines and trainer ranks; the weight hand-over between them is in cluster/weight_sync.py).

An actor's methods are called through `ActorProxy` exactly like the plain object's, so the PMC loop does
not know (or care) whether it drives Ray actors or local objects.
"""
from __future__ import annotations

import ray

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.telemetry.errors import JobError


class ActorTimeout(JobError):
    """An actor did not answer a call in time: a hung engine or trainer rank ends the job instead of hanging it."""


class ActorProxy:
    """Blocking method calls on a Ray actor: `proxy.f(x)` is `ray.get(handle.f.remote(x))`, for at most
    `timeout` seconds (None: no limit)."""

    def __init__(self, handle: ray.actor.ActorHandle, name: str, role: str, index: int = 0,
                 timeout: float | None = None):
        self.handle = handle
        self.name = name  # the actor's Ray name
        self.role = role  # what it is to the job: sampler, trainer, retain-model scorer
        self.index = index  # which engine or trainer rank of its role
        self.timeout = timeout

    @property
    def label(self) -> str:
        """The actor in messages and the placement record: 'sampler 0', 'trainer 1', 'retain model sampler 0', ...:
        its Ray name without the run's (actor_name)."""
        return self.name.split(":", 1)[-1]

    def __getattr__(self, method_name: str):
        method = getattr(self.handle, method_name)
        return lambda *args, **kwargs: wait_for([self], method_name, [method.remote(*args, **kwargs)])[0]

    def alive(self) -> bool:
        """Whether the actor still runs: Ray frees the name of an actor that died."""
        try:
            ray.get_actor(self.name)
        except ValueError:
            return False
        return True


class ActorFailed(JobError):
    """An actor's method raised: the message names the actor, the method and the cause, in one line."""


def wait_for(proxies: list[ActorProxy], method_name: str, refs: list) -> list:
    """The results of `method_name` called on each of `proxies` (`refs`); ActorTimeout naming the first that
    did not answer within its timeout, ActorFailed naming one that raised."""
    timeouts = [proxy.timeout for proxy in proxies if proxy.timeout is not None]
    try:
        return ray.get(refs, timeout=max(timeouts) if timeouts else None)
    except ray.exceptions.GetTimeoutError:
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        late = next(proxy for proxy, ref in zip(proxies, refs) if ref not in ready)
        raise ActorTimeout(f"the {late.label} actor did not answer {method_name} within {late.timeout:g} s "
                           "(ray.call_timeout_s)") from None
    except ray.exceptions.RayTaskError as err:
        failed = next((proxy for proxy, ref in zip(proxies, refs) if _raised(ref)), proxies[0])
        raise ActorFailed(f"the {failed.label} actor's {method_name} raised {one_line_cause(err)}") from err


def _raised(ref) -> bool:
    try:
        ray.get(ref, timeout=0)
    except ray.exceptions.RayTaskError:
        return True
    except ray.exceptions.RayError:
        pass
    return False


def one_line_cause(err: ray.exceptions.RayTaskError) -> str:
    """The exception raised inside an actor or task, in one line (Ray's text carries its whole traceback)."""
    cause = err.cause if isinstance(err.cause, BaseException) else err
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def release(*proxies: ActorProxy) -> None:
    """Kill the actors now (their GPU/CPU memory is freed), whatever state they are in."""
    for proxy in proxies:
        ray.kill(proxy.handle)


def actor_name(config: RunConfig, label: str) -> str:
    """Named after the run, so that an operator (or a test) can find a run's actors: `ray.get_actor(name)`."""
    return f"{config.name}:{label}"
