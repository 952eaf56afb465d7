"""Sweeps: one base scenario, many runs (``gicsim sweep``; the command is ``gicsim.sweep``).

Modules: ``spec`` (sweep files: validation and expansion into runs), ``runner`` (the
resumable store, local worker processes, Dask, signals, the summary outputs).
"""

from gicsim.sweeps.runner import (
    MAX_JOBS,
    RunFailed,
    RunStore,
    SweepInterrupted,
    comparison,
    execute,
    finish,
    flat_row,
    run_one,
)
from gicsim.sweeps.spec import (
    MAX_RUNS,
    MAX_SWEEP_BYTES,
    MAX_SWEEP_NODES,
    METRICS,
    KeyPathError,
    Run,
    Sweep,
    SweepError,
    load_sweep,
    scenario_key,
    set_path,
)

__all__ = [
    "MAX_JOBS",
    "MAX_RUNS",
    "MAX_SWEEP_BYTES",
    "MAX_SWEEP_NODES",
    "METRICS",
    "KeyPathError",
    "Run",
    "RunFailed",
    "RunStore",
    "Sweep",
    "SweepError",
    "SweepInterrupted",
    "comparison",
    "execute",
    "finish",
    "flat_row",
    "load_sweep",
    "run_one",
    "scenario_key",
    "set_path",
]
