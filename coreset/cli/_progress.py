"""A progress bar on stderr fed by the library's ``callback(stage, done, total)``.

It appears only when a run has lasted ``delay`` seconds (short runs print
nothing), only on a terminal, and disappears when the run ends."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

__all__ = ["ProgressReporter"]


class ProgressReporter:
    def __init__(self, console, *, enabled: bool = True, delay: float = 1.0, min_interval: float = 0.05):
        self.console = console
        self.enabled = enabled
        self.delay = delay
        self.min_interval = min_interval
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._timer = None
        self._started = False
        self._closed = False

    # context management -------------------------------------------------
    def __enter__(self):
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            if self.delay <= 0:
                self._start()
            else:
                self._timer = threading.Timer(self.delay, self._start)
                self._timer.daemon = True
                self._timer.start()
        return self

    def __exit__(self, *exc):
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._started:
                self._progress.stop()
        return False

    def _start(self):
        with self._lock:
            if not self._closed and not self._started:
                self._progress.start()
                self._started = True

    @property
    def started(self) -> bool:
        return self._started

    # reporting ----------------------------------------------------------
    def callback(self, stage: str, done: int, total: int) -> None:
        """The library's progress callback."""
        if self._progress is None:
            return
        now = time.monotonic()
        task = self._tasks.get(stage)
        if task is not None and done < total and now - self._last.get(stage, 0.0) < self.min_interval:
            return  # throttle: greedy steps can be called millions of times
        self._last[stage] = now
        if task is None:
            task = self._tasks[stage] = self._progress.add_task(stage, total=total or None)
        self._progress.update(task, completed=done, total=total or None)

    @contextmanager
    def stage(self, name: str):
        """A stage of the CLI's own (reading, writing): an indeterminate spinner."""
        task = None
        if self._progress is not None:
            task = self._tasks[name] = self._progress.add_task(name, total=None)
        try:
            yield
        finally:
            if task is not None:
                self._progress.update(task, total=1, completed=1)
