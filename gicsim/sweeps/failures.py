"""What a many-run command (``gicsim sweep``, ``gicsim hazards``) says when a run or the
store fails, and how it lets go of its executor: one place, so both commands say the same."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from gicsim.sweeps.runner import RunFailed, critical, stop_executor


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, at most 300 characters."""
    s = str(e).strip()
    s = s.splitlines()[0] if s else ""
    return s if len(s) <= 300 else s[:300] + "..."


def run_failed_line(e: RunFailed, out: Path, dask: bool) -> str:
    """One line for a run that raised: which run, what went wrong, where the finished runs are."""
    r = e.run
    name = type(e.error).__name__
    if name == "BrokenProcessPool":
        what = f"a worker process died ({name}: killed, or out of memory?)"
    elif dask and (isinstance(e.error, ImportError) or "deserializ" in str(e.error)):
        what = (f"the Dask scheduler or a worker cannot load the task ({name}: "
                f"{first_line(e.error)}); they need the same gicsim installed as here")  # fmt: skip
    else:
        what = f"internal error ({name}: {first_line(e.error)})"
    return (f"gicsim: run {r.index} ({r.key}, overrides {json.dumps(r.overrides, default=str)}) failed: "
            f"{what}; the finished runs are kept in {out}/runs")  # fmt: skip


def release(executor: Executor | None, client: Any, ok: bool) -> None:
    """Stop the local workers (cancelling what is pending unless ``ok``) and close a Dask
    client; a second signal cannot cut this short."""
    if executor is not None:
        with critical():
            stop_executor(executor, cancel=not ok)
    if client is not None:
        with contextlib.suppress(Exception):
            client.close(timeout=5)
