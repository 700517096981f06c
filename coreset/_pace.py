"""Compiled calls sized so that Python regains control several times a second.

Python runs its SIGINT handler (Ctrl-C raises ``KeyboardInterrupt``) only
between bytecodes of the main thread: a numba loop or a FAISS / BLAS call
that runs for a minute holds the interrupt for a minute. Every long
compiled stage of the library is therefore split into calls that return
within about ``CALL_SECONDS`` (greedy steps, sieve rows, final greedy picks)
or ``CALL_WORK`` multiply-adds (similarity searches and products); the loop
around them is plain Python, where a pending interrupt raises. The splits
never change a result: each loop carries its state from one call to the next.
"""

from __future__ import annotations

import time

__all__ = ["CALL_SECONDS", "CALL_WORK", "SEARCH_WORK", "Pacer", "rows_per_call", "row_blocks"]

#: a compiled loop should return to Python within about this many seconds
CALL_SECONDS = 0.05
#: the multiply-adds one blocked BLAS product may do: about 0.05 s at 2e10 a second
#: (two cores), 0.3 s on a machine loaded six times over
CALL_WORK = 1 << 30
#: the multiply-adds one blocked nearest-neighbour search may do (FAISS, torch on the CPU):
#: about 0.07 s at 8e9 a second (FAISS, k=32), 0.4 s on a machine loaded six times over.
#: Near the 1,024-row query blocks the exact search used before (838 rows of a 10,000 x 64
#: base): smaller blocks cost FAISS's threads up to 1.8x (10,000 x 64, 2 threads, 209 rows)
SEARCH_WORK = 1 << 29


class Pacer:
    """Step counts for consecutive calls of a compiled loop, so that each call
    lasts about ``seconds``: starts at ``first``, doubles while a call took
    under half of ``seconds``, shrinks in proportion when one took longer.
    ``next()`` is called before each call; the time between two ``next()``
    calls is the last call's duration."""

    def __init__(self, seconds: float = CALL_SECONDS, first: int = 1):
        self.seconds = float(seconds)
        self.size = max(1, int(first))
        self._t = None

    def next(self) -> int:
        now = time.perf_counter()
        if self._t is not None:
            took = now - self._t
            if took < self.seconds / 2:
                self.size = min(self.size * 2, 1 << 40)
            elif took > self.seconds:
                self.size = max(1, int(self.size * self.seconds / took))
        self._t = now
        return self.size


def rows_per_call(n_rows: int, work_per_row: float, *, at_least: int = 1, work: float = CALL_WORK) -> int:
    """Rows of a blocked product for about ``work`` multiply-adds a call (at
    least ``at_least``, at most ``n_rows``; 1 for an empty input)."""
    rows = int(work // max(1.0, float(work_per_row)))
    return max(1, min(max(n_rows, 1), max(rows, at_least)))


def row_blocks(n_rows: int, work_per_row: float, *, at_least: int = 1, work: float = SEARCH_WORK):
    """``(start, stop)`` of consecutive row blocks of nearly equal size, each
    of about ``work`` multiply-adds and at least ``at_least`` rows (unless
    ``n_rows`` is smaller): the same blocks for the same shapes, whatever the
    machine (a search's results never depend on its timing). One block
    ``(0, 0)`` for no rows."""
    rows = rows_per_call(n_rows, work_per_row, at_least=at_least, work=work)
    count = max(1, min(-(-n_rows // rows), n_rows // max(1, at_least)))
    bounds = [(i * n_rows) // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))
