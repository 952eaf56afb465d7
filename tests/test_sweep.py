"""Sweeps: same per-run results in-process, with processes and on a Dask LocalCluster;
a killed sweep resumes with only the missing runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from gicsim.sweep import SweepError, execute, load_sweep, set_path

ROOT = Path(__file__).parent.parent
STABLE = ["run", "key", "seed", "status", "lost", "spurious", "misrouted", "ebusy", "accepted",
          "delivered", "downtime_ns", "state_match", "events", "trace_digest"]  # fmt: skip


def write_sweep(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(f"base: {ROOT / 'scenarios' / 'straggler-retry.yaml'}\n" + body)
    return f


GRID = """seed: 7
repeat: 2
grid:
  migration.source.stragglers.0.exit_us: [50, 400]
  migration.source.on_ebusy: [abort, continue]
"""


def stable(rows):
    return pd.DataFrame(rows)[STABLE].sort_values("run").reset_index(drop=True)


def test_grid_expands_and_seeds_come_from_the_sweep_seed(tmp_path):
    sw = load_sweep(write_sweep(tmp_path, GRID))
    assert len(sw.runs) == 8
    assert len({r.scenario["seed"] for r in sw.runs}) == 8  # SeedSequence.spawn children
    assert load_sweep(write_sweep(tmp_path, GRID)).runs[3].scenario == sw.runs[3].scenario
    assert {r.overrides["migration.source.on_ebusy"] for r in sw.runs} == {"abort", "continue"}


def test_seed_range_and_sample(tmp_path):
    sw = load_sweep(write_sweep(tmp_path, "grid: {seed: 3-5}\nsample: {n: 2, params: "
                                           "{migration.source.stragglers.0.exit_us: {uniform: [10, 90]}}}\n"))  # fmt: skip
    assert sorted(r.scenario["seed"] for r in sw.runs) == [3, 3, 4, 4, 5, 5]
    assert all(10 <= r.scenario["migration"][0]["source"]["stragglers"][0]["exit_us"] <= 90 for r in sw.runs)


def test_bad_sweep_gives_located_lines(tmp_path):
    with pytest.raises(SweepError) as e:
        load_sweep(write_sweep(tmp_path, "grid:\n  vm.vcpus: [2, 999]\n"))
    assert any("vm.vcpus" in p for p in e.value.problems)
    with pytest.raises(SweepError) as e:
        load_sweep(write_sweep(tmp_path, "gird: {}\n"))
    assert re.match(r".*s\.yaml:2:1: gird: unknown key", e.value.problems[0])


def test_set_path_into_lists():
    d = {"migration": [{"source": {"stragglers": [{"exit_us": 1}]}}]}
    set_path(d, "migration.source.stragglers.0.exit_us", 5)
    assert d["migration"][0]["source"]["stragglers"][0]["exit_us"] == 5


def test_same_results_in_process_processes_and_dask(tmp_path):
    sw = load_sweep(write_sweep(tmp_path, GRID))
    local, ran = execute(sw, tmp_path / "a", None, progress=False)
    assert ran == 8
    with ProcessPoolExecutor(2) as ex:
        procs, _ = execute(sw, tmp_path / "b", ex, progress=False)
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        dk, _ = execute(sw, tmp_path / "c", client.get_executor(), progress=False)
    pd.testing.assert_frame_equal(stable(local), stable(procs))
    pd.testing.assert_frame_equal(stable(local), stable(dk))
    assert stable(local)["lost"].tolist() != [0] * 8  # the continue policy loses LPIs


def test_killed_sweep_resumes_with_only_missing_runs(tmp_path):
    f = write_sweep(tmp_path, "seed: 3\ngrid: {seed: 0-39}\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gicsim", "sweep", str(f), "-o", str(out), "--no-progress"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = out / "runs"
    deadline = time.time() + 60
    while time.time() < deadline and (not runs.exists() or len(list(runs.glob("*.json"))) < 5):
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done = len(list(runs.glob("*.json")))
    assert 5 <= done < 40, "the sweep was killed half-way"
    assert not list(runs.glob(".*tmp"))  # nothing half-written is ever taken for a result
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = re.search(r"40 runs \((\d+) run now, (\d+) already done\)", r.stdout)
    assert m and int(m.group(1)) == 40 - done and int(m.group(2)) == done
    assert len(pd.read_parquet(out / "summaries.parquet")) == 40
