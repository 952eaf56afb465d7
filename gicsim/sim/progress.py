"""Progress of a long run, as lines on a stream (the CLI's stderr): one line per tenth of the
simulated time, and one per later stage, printed only once the run has taken
``after_s`` seconds of wall time (short runs print nothing).

Watching costs nothing in the simulation: SimPy's ``Environment.run`` calls ``self.step()``
once per event, and :func:`watch` wraps that one call on this environment only; it schedules
no event, so the events, their order, the event count and the trace are those of an
unwatched run.
"""

from __future__ import annotations

import time
from typing import IO, Any

#: wall seconds before the first line (a run shorter than this prints nothing)
AFTER_S = 2.0


class Progress:
    """Prints ``NAME: what`` lines to ``stream`` once ``after_s`` wall seconds have passed."""

    def __init__(self, name: str, stream: IO[str], after_s: float | None = None) -> None:
        self.name = name
        self.stream = stream
        self.after_s = AFTER_S if after_s is None else after_s
        self.t0 = time.perf_counter()

    def line(self, what: str) -> None:
        wall = time.perf_counter() - self.t0
        if wall >= self.after_s:
            print(f"{self.name}: {what} ({wall:.1f} s)", file=self.stream, flush=True)

    def simulated(self, tenth: int, until_ns: int) -> None:
        at_ms, end_ms = until_ns * tenth / 10 / 1e6, until_ns / 1e6
        self.line(f"{10 * tenth}% of the simulated time ({at_ms:g} of {end_ms:g} ms)")


def watch(env: Any, until_ns: int, progress: Progress) -> None:
    """Call ``progress.simulated(k, until_ns)`` when the simulated time first reaches k/10
    of ``until_ns`` (k = 1..9; the end is the caller's to report)."""
    step = env.step
    marks = [until_ns * k // 10 for k in range(1, 10)] if until_ns > 0 else []
    done = 0  # tenths reported
    nxt = marks[0] if marks else None

    def watched_step() -> None:
        nonlocal done, nxt
        step()
        while nxt is not None and env._now >= nxt:
            done += 1
            progress.simulated(done, until_ns)
            nxt = marks[done] if done < len(marks) else None

    env.step = watched_step
