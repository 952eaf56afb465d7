"""Progress lines of long runs: on stderr only, one per tenth of the simulated time, only
with --progress (or a terminal) and only once the run has taken a few seconds; the
simulation, its trace, stdout and summary.json are those of a run without them."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.judge.trace import digest
from gicsim.sim import progress as P
from gicsim.sim import simulation as S

SC = Path(__file__).resolve().parent.parent / "scenarios"
WALL = re.compile(r"wall \d+(\.\d+)? s")


def _run(tmp: Path, *flags: str):
    r = CliRunner().invoke(main, ["run", str(SC / "straggler-retry.yaml"), "-o", str(tmp), *flags])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp / "straggler-retry" / "summary.json").read_text())
    s.pop("wall_s")
    return r, s


def test_progress_goes_to_stderr_and_changes_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "AFTER_S", 0.0)  # every run is "long"
    quiet, s0 = _run(tmp_path / "a", "--no-progress")
    loud, s1 = _run(tmp_path / "b", "--progress")
    assert quiet.stderr == ""
    lines = loud.stderr.splitlines()
    tenths = [ln for ln in lines if "of the simulated time" in ln]
    got = [ln.split(": ", 1)[1].split("%")[0] for ln in tenths]
    assert got and got == [str(10 * k) for k in range(1, len(got) + 1)]  # up to its last event
    assert all(ln.startswith("straggler-retry: ") for ln in lines)
    assert any("judging" in ln for ln in lines) and any("writing the results" in ln for ln in lines)
    assert WALL.sub("", quiet.stdout).replace(str(tmp_path / "a"), "D") == WALL.sub("", loud.stdout).replace(
        str(tmp_path / "b"), "D"
    )
    assert s0 == s1  # summary.json: the same (event count included), wall time aside


def test_no_progress_lines_for_short_runs_or_without_a_terminal(tmp_path):
    r, _ = _run(tmp_path / "a", "--progress")  # a short run: under AFTER_S
    assert r.stderr == ""
    r, _ = _run(tmp_path / "b")  # stderr is not a terminal under CliRunner
    assert r.stderr == ""


def test_watching_schedules_nothing():
    """Same trace digest and event count with and without a progress watcher."""
    plain = gicsim.run(SC / "clean-migration.yaml")
    buf = io.StringIO()
    watched = S.run(SC / "clean-migration.yaml", P.Progress("x", buf, after_s=0.0))
    assert digest(watched.records) == digest(plain.records)
    assert watched.summary["events"] == plain.summary["events"]
    assert buf.getvalue().count("of the simulated time") == 9
