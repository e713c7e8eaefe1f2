"""Wall-clock time per named stage, so every log line says where the time went."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None  # the stage running now, for messages about a failure

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start, self.current = time.perf_counter(), stage
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)
        self.current = None  # only once the stage finished: after a failure it still says where
