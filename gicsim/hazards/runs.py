"""The runs of a hazard space, through the sweep machinery (``gicsim.sweeps.runner.execute``:
the resumable store ``OUT/runs/<key>.json``, local workers or Dask, signals).

One run is made cheap without changing what it computes (measured with cProfile on
``scenarios/hazard-small.yaml``: ~7 ms a run, of which scenario validation ~1.3 ms, the
trace digest ~0.7 ms, the simulation, oracles and summary the rest):

- each combination of the non-order dimensions is validated once (in the parent, to report
  problems; again once per worker process, cached); a run that only permutes the
  destination steps takes the validated scenario and replaces its step tuple
  (``model_copy``), which is what validating the same dict with that order gives: the
  steps' validator only checks names and duplicates, and a permutation of a valid step list
  has the same names (``tests/test_hazards_runs.py`` compares both, and the summaries of
  both against ``gicsim.sim.simulation.run``);
- no trace digest, DataFrame or report per run; the stored summary leaves out the
  per-LPI ``delivered`` list and the step ``phases`` (nothing the classes read).

Every run keeps the base scenario's seed: the space compares orders, all else equal (the
sweep's per-run ``SeedSequence`` seeds would make two orders differ in their randomness too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gicsim.sweeps.spec import Run, Sweep, scenario_key

_CACHE: dict[str, Any] = {}  # combination key -> validated Scenario (per worker process)
MAX_CACHED = 64


def slim(summary: dict[str, Any]) -> dict[str, Any]:
    """The stored summary: everything but the per-LPI delivered list and the phases."""
    out = {k: v for k, v in summary.items() if k != "delivered"}
    out["migrations"] = [{k: v for k, v in m.items() if k != "phases"} for m in summary["migrations"]]
    return out


def scenario_for(payload: dict[str, Any]) -> Any:
    """The validated Scenario of one run (see the module docstring)."""
    from gicsim.scenario import scenario_from_dict

    key, base, steps = payload["combo"], payload["base"], tuple(payload["steps"])
    sc = _CACHE.get(key)
    if sc is None:
        if len(_CACHE) >= MAX_CACHED:
            _CACHE.clear()
        sc = _CACHE[key] = scenario_from_dict(base)
    m = sc.migrations[0]
    if steps == m.destination.steps:
        return sc
    if sorted(steps) != sorted(m.destination.steps):  # not a permutation: validate it all
        d = {**base, "migration": [dict(base["migration"][0])] + list(base["migration"][1:])}
        d["migration"][0]["destination"] = {**d["migration"][0]["destination"], "steps": list(steps)}
        return scenario_from_dict(d)
    dest = m.destination.model_copy(update={"steps": steps})
    mig = m.model_copy(update={"destination": dest})
    return sc.model_copy(update={"migrations": (mig, *sc.migrations[1:])})


def hazard_one(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point (picklable): one run of the space -> its stored summary."""
    from gicsim.sim.simulation import run

    return slim(run(scenario_for(payload)).summary)


def build(space: Any) -> tuple[Sweep, list[dict[str, Any]]]:
    """The space as a Sweep (one Run per order x combination) and, per run, what it varies:
    ``{"order", "combo", "left_out"}``."""
    runs: list[Run] = []
    meta: list[dict[str, Any]] = []
    orders = [(o, None) for o in space.orders] + list(space.left_out)
    i = 0
    for c, (over, resolved) in enumerate(space.combos):
        ckey = scenario_key({k: v for k, v in resolved.items() if k != "name"})
        for order, out in orders:
            payload = {"combo": ckey, "base": resolved, "steps": list(order)}
            key = scenario_key({"combo": ckey, "destination_steps": list(order)})
            overrides: dict[str, Any] = {"migration.destination.steps": list(order), **over}
            runs.append(Run(i, overrides, payload, key))
            meta.append({"order": order, "combo": c, "left_out": out})
            i += 1
    name = space.base["name"]
    return Sweep(f"hazards-{name}", Path(space.base.get("name", ".")), runs, {}), meta
