"""Where a job's time goes: stage timers, used by the orchestrator and the evaluation alike (evaluation/ must
not import from orchestrator/)."""
from telemetry.timing import StageTimer

__all__ = ["StageTimer"]
