"""Where a job's time goes and what it says: stage timers (telemetry.timing), and the console, its progress bars
and the run's full log (telemetry.console); used by the orchestrator, the evaluation and the model builders
alike (evaluation/ must not import from orchestrator/)."""
from pmc_unlearning.telemetry.timing import StageTimer

__all__ = ["StageTimer"]
