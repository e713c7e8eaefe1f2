"""How a model build reports its steps: the caller passes a progress class (the console's, telemetry.console.Progress),
so that models/ draws nothing itself and needs nothing above it; alone, a build reports nothing."""
from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import Iterator, Protocol


class Steps(Protocol):
    def part(self, name: str) -> AbstractContextManager: ...


class ProgressClass(Protocol):
    """Called with a stage's label and its number of steps; a context manager whose value has `part(name)`."""

    def __call__(self, label: str, total: int) -> AbstractContextManager[Steps]: ...


class Silent:
    """A build's progress when nobody shows it."""

    def __init__(self, label: str, total: int):
        self.label, self.total = label, total

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        yield
