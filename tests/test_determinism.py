"""Determinism: the same scenario and seed give a byte-identical trace (``gicsim.judge.trace.digest``)
in one process, in another process (fresh interpreter, other hash seed) and in a process pool;
the trace written to trace.parquet reads back to the same digest; a different seed changes the
Poisson traffic."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.judge.trace import digest, frame_to_records
from gicsim.scenario import load_scenario, resolved_dict

ROOT = Path(__file__).parent.parent
# Poisson traffic, a migration with a straggler and retries, pending LPIs; and a two-level
# device table with Poisson traffic from three devices.
CASES = [ROOT / "scenarios" / "its-pending-migration.yaml", ROOT / "scenarios" / "two-level-device-table.yaml"]


def run_digest(path: str, seed: int | None = None) -> tuple[str, str]:
    """(trace digest, summary without wall-clock time) of one run."""
    d = resolved_dict(load_scenario(path))
    if seed is not None:
        d["seed"] = seed
    res = gicsim.run(d)
    s = dict(res.summary)
    s.pop("wall_s")
    return digest(res.records), json.dumps(s, sort_keys=True, default=str)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_same_seed_same_trace_in_process(path):
    a, b = run_digest(str(path)), run_digest(str(path))
    assert a == b


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_same_seed_same_trace_in_other_processes(path):
    here = run_digest(str(path))
    code = (
        "import json, sys; sys.path.insert(0, 'tests');"
        "from test_determinism import run_digest;"
        f"print(json.dumps(run_digest({str(path)!r})))"
    )
    for hashseed in ("1", "4242"):  # string hashing (set/dict order of str) differs
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        assert tuple(json.loads(out.stdout)) == here
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        assert list(pool.map(run_digest, [str(path)] * 2)) == [here, here]


def test_written_trace_reads_back_to_the_same_digest(tmp_path):
    path = CASES[0]
    r = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(tmp_path / path.stem / "trace.parquet")
    assert digest(frame_to_records(df)) == run_digest(str(path))[0]


def msi_times(res) -> list[tuple[int, int, int]]:
    return [(r[0], r[5], r[6]) for r in res.records if r[1] == "raise" and r[8] == "msi"]


def test_a_different_seed_changes_poisson_traffic():
    d = resolved_dict(load_scenario(CASES[0]))
    other = copy.deepcopy(d)
    other["seed"] = d["seed"] + 1
    a, b = gicsim.run(d), gicsim.run(other)
    poisson_dev = 3
    ta = [t for t, dev, _ in msi_times(a) if dev == poisson_dev]
    tb = [t for t, dev, _ in msi_times(b) if dev == poisson_dev]
    assert ta and tb and ta != tb
    assert digest(a.records) != digest(b.records)
    # the listed-time device (device 2, at_us: [500]) is not random: the same in both
    assert [x for x in msi_times(a) if x[1] == 2] == [x for x in msi_times(b) if x[1] == 2]
    # and the seed does not change what the Poisson process means: a similar count
    assert abs(len(ta) - len(tb)) < 0.2 * len(ta)

