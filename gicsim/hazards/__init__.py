"""``gicsim hazards``: a scenario under a space of variations (every destination order, each
step left out, source orders, quiescing, straggler exit times, ``on_ebusy``, kernels), every
run classified from its summary, and the ordering rules the model implies derived by
exhaustion (docs/hazards-json.md).

Modules: ``space`` (the space file and its expansion), ``runs`` (the runs through the sweep
machinery, made cheap), ``classes`` (outcome signatures), ``rules`` (pairs, the minimal
constraint set and its check), ``mechanism`` (explain's cause line of a representative),
``analysis`` (the result object), ``command`` (the CLI).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from gicsim.hazards.analysis import analyse
from gicsim.hazards.space import MAX_HAZARD_RUNS, Space, expand, load_space_file

__all__ = ["MAX_HAZARD_RUNS", "Space", "analyse", "explore", "expand", "load_space_file", "space_for"]


def space_for(scenario: str | Path, space_file: str | Path | None = None) -> Space:
    """The space of a scenario file (raises ScenarioError for the scenario, SweepError for
    the space file)."""
    from gicsim.scenario import load_scenario, resolved_dict

    base = resolved_dict(load_scenario(scenario))
    if not base.get("migration"):
        from gicsim.sweeps import SweepError

        raise SweepError([f"{scenario}: the scenario has no migration: there are no destination steps to order"])
    if space_file is None:
        return expand(base, {}, scenario=scenario)
    dims, pos, where = load_space_file(space_file)
    return expand(base, dims, pos, where, scenario=scenario)


def explore(space: Space, outdir: Path, source: str, executor: Executor | None = None, jobs: int = 1,
            progress: bool = True, warn: Callable[[str], None] | None = None,
            causes: bool = True) -> dict[str, Any]:  # fmt: skip
    """Run what is missing of the space (``OUT/runs/``, resumable) and return the result."""
    from gicsim.hazards.mechanism import explain_run
    from gicsim.hazards.runs import build, hazard_one
    from gicsim.sweeps.runner import execute

    sweep, meta = build(space)
    t0 = time.perf_counter()
    summaries, _ran = execute(sweep, outdir, executor, progress=progress, warn=warn, jobs=jobs,
                              worker=hazard_one, row=lambda r, s: s)  # fmt: skip
    wall = time.perf_counter() - t0
    if progress and causes:
        print(f"{len(sweep.runs):,} runs done in {wall:.1f} s; running the representatives again for "
              "explain's cause lines", file=sys.stderr)  # fmt: skip
    result = analyse(space, sweep.runs, meta, summaries, wall, source, explain_run if causes else None,
                     ran=_ran)
    result["ran_now"] = _ran
    return result
