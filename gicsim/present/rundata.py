"""A finished run as the report, explain and export commands see it.

A run is either a RUN_DIR written by ``gicsim run`` (``resolved.yaml``, ``summary.json``,
``trace.parquet``) or a scenario file that is run first. Everything downstream is computed
from those three things only, so a report made from a directory equals one made right after
the run.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pandas as pd

if TYPE_CHECKING:
    from gicsim.scenario import Scenario
    from gicsim.sim.simulation import Result

RUN_FILES = ("resolved.yaml", "summary.json", "trace.parquet")


class RunInputError(Exception):
    """Bad input for a command that reads runs; ``lines`` are printed, one per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@attrs.define(eq=False)
class RunData:
    """One run: its summary, its trace (one row per record, categorical columns) and the
    resolved scenario it came from (a dict in YAML units)."""

    name: str
    summary: dict[str, Any]
    trace: pd.DataFrame
    resolved: dict[str, Any]
    origin: str = ""  # the directory or scenario file it came from
    result: Result | None = None  # set when the run happened in this process

    @cached_property
    def scenario(self) -> Scenario:
        from gicsim.scenario import scenario_from_dict

        return scenario_from_dict(self.resolved, filename=f"{self.origin or self.name}/resolved.yaml")

    @property
    def until_ns(self) -> int:
        return int(self.scenario.until_ns)

    @property
    def timing_base(self) -> str:
        t = self.resolved.get("timing")
        if isinstance(t, dict):
            return str(t.get("base", "altra-6.12"))
        return str(t or "altra-6.12")

    def records(self) -> list[tuple[Any, ...]]:
        if self.result is not None:
            return self.result.records
        from gicsim.judge.trace import frame_to_records

        return frame_to_records(self.trace)


def from_result(res: Result, origin: str = "") -> RunData:
    from gicsim.scenario import resolved_dict

    return RunData(
        name=res.summary["scenario"],
        summary=res.summary,
        trace=res.trace,
        resolved=resolved_dict(res.scenario),
        origin=origin,
        result=res,
    )


def read_run_dir(path: str | Path) -> RunData:
    """Load a RUN_DIR; a missing or unreadable file is a RunInputError naming it."""
    from ruamel.yaml import YAML

    d = Path(path)
    missing = [f for f in RUN_FILES if not (d / f).is_file()]
    if missing:
        raise RunInputError(
            [f"{d}: not a run directory (missing {', '.join(missing)}; expected what `gicsim run` writes)"]
        )
    try:
        summary = json.loads((d / "summary.json").read_text())
        resolved = YAML(typ="safe").load((d / "resolved.yaml").read_text())
        trace = pd.read_parquet(d / "trace.parquet")
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input, not a crash
        raise RunInputError([f"{d}: cannot read the run: {type(e).__name__}: {e}"]) from None
    if not isinstance(summary, dict) or not isinstance(resolved, dict):
        raise RunInputError([f"{d}: summary.json and resolved.yaml must hold mappings"])
    from gicsim.judge.trace import CATEGORICAL, COLUMNS

    if list(trace.columns) != list(COLUMNS):
        raise RunInputError([f"{d}/trace.parquet: unexpected columns {list(trace.columns)}"])
    for c in CATEGORICAL:
        if not isinstance(trace[c].dtype, pd.CategoricalDtype):
            trace[c] = trace[c].astype("category")
    return RunData(
        name=str(summary.get("scenario", d.name)), summary=summary, trace=trace,
        resolved=resolved, origin=str(d),
    )  # fmt: skip


def run_scenario_file(path: str | Path) -> RunData:
    """Validate and run a scenario file (ScenarioError problems become RunInputError)."""
    from gicsim.scenario import ScenarioError, load_scenario
    from gicsim.sim.simulation import run

    try:
        sc = load_scenario(path)
    except ScenarioError as e:
        raise RunInputError(list(e.problems)) from None
    return from_result(run(sc), origin=str(path))


def load(path: str | Path) -> RunData:
    """A RUN_DIR, or a scenario file (run now)."""
    p = Path(path)
    if p.is_dir():
        return read_run_dir(p)
    if not p.exists():
        raise RunInputError([f"{p}: no such file or directory"])
    return run_scenario_file(p)
