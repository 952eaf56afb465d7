"""Sweeps: same per-run results in-process, with processes and on a Dask LocalCluster;
a killed sweep resumes with only the missing runs."""

from __future__ import annotations

import errno
import json
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
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.present.output import is_temp_name
from gicsim.sweep import SweepError, execute, load_sweep, set_path
from gicsim.sweeps import runner

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
    for f in runs.glob("*.json"):  # nothing half-written is ever taken for a result
        json.loads(f.read_text())
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = re.search(r"40 runs \((\d+) run now, (\d+) already done\)", r.stdout)
    assert m and int(m.group(1)) == 40 - done and int(m.group(2)) == done
    assert len(pd.read_parquet(out / "summaries.parquet")) == 40
    assert not [f for f in os.listdir(runs) if is_temp_name(f)]  # what the kill left is cleaned


# --------------------------------------------------------------------- outputs ----
QUICK = "seed: 7\ngrid:\n  migration.source.on_ebusy: [abort, continue]\n"


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["sweep", *args, "--no-progress"])
    assert "Traceback" not in r.output, r.output
    return r.exit_code, r.output


def test_a_link_planted_at_the_old_temp_name_is_not_followed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (out / ".summaries.parquet.tmp").symlink_to(victim)
    (out / "summaries.parquet").symlink_to(victim)  # and at the final name
    code, text = cli(str(write_sweep(tmp_path, QUICK)), "-o", str(out))
    assert code == 0, text
    assert victim.read_text() == "precious\n"
    assert not (out / "summaries.parquet").is_symlink() and len(pd.read_parquet(out / "summaries.parquet")) == 2


def test_corrupt_stored_runs_are_reported_and_run_again(tmp_path):
    f = write_sweep(tmp_path, "seed: 7\ngrid: {seed: 0-3}\n")
    out = tmp_path / "out"
    assert cli(str(f), "-o", str(out))[0] == 0
    stored = sorted((out / "runs").glob("*.json"))
    assert len(stored) == 4
    stored[0].write_text("{not json")
    stored[1].write_text(json.dumps({"summary": {"lpis": {}}}))  # JSON, but not a run
    stored[2].unlink()
    os.mkfifo(stored[2])  # would block a plain open()
    code, text = cli(str(f), "-o", str(out))
    assert code == 0, text
    lines = text.strip().splitlines()
    assert sum("stored run is corrupt" in ln and "running it again" in ln for ln in lines) == 3, text
    assert "4 runs (3 run now, 1 already done)" in lines[-1]
    assert all(isinstance(json.loads(p.read_text()), dict) for p in stored)


def test_a_directory_in_the_way_of_a_stored_run_is_one_line(tmp_path):
    f = write_sweep(tmp_path, QUICK)
    out = tmp_path / "out"
    assert cli(str(f), "-o", str(out))[0] == 0
    victim = sorted((out / "runs").glob("*.json"))[0]
    victim.unlink()
    victim.mkdir()
    code, text = cli(str(f), "-o", str(out))
    assert code == 3 and len(text.strip().splitlines()) == 2  # the corrupt one, then why it stops
    assert "a directory is in the way of a stored run" in text


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("where", ["write_json_atomic", "write_bytes_atomic"])
def test_full_or_read_only_disk_is_one_line_exit_3(tmp_path, monkeypatch, err, where):
    def fail(path, *a, **k):
        raise OSError(err, os.strerror(err), str(path))

    monkeypatch.setattr(runner, where, fail)  # runs/<key>.json, or summaries.parquet
    code, text = cli(str(write_sweep(tmp_path, QUICK)), "-o", str(tmp_path / "out"))
    assert code == 3
    (line,) = text.strip().splitlines()
    assert line.startswith("gicsim: cannot write the sweep results in ") and os.strerror(err) in line


def test_output_that_is_a_file_is_exit_2(tmp_path):
    (tmp_path / "out").write_text("x")
    code, text = cli(str(write_sweep(tmp_path, QUICK)), "-o", str(tmp_path / "out"))
    assert code == 2 and len(text.strip().splitlines()) == 1 and "out" in text


def _boom(scenario):
    raise RuntimeError("model bug")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_run_that_fails_is_one_line_exit_3(tmp_path, monkeypatch, jobs):
    monkeypatch.setattr(runner, "run_one", _boom)  # forked workers inherit it
    code, text = cli(str(write_sweep(tmp_path, QUICK)), "-o", str(tmp_path / "out"), "-j", jobs)
    assert code == 3
    (line,) = text.strip().splitlines()
    assert "failed: internal error (RuntimeError: model bug)" in line


# --------------------------------------------------------------------- signals ----
SLOW = """seed: 5
grid:
  seed: 0-7
  until_us: [300000]
  devices.0.stop_us: [290000]
"""  # each run takes seconds: the sweep is surely still running when the signal comes


def slow_sweep(tmp_path: Path) -> Path:
    f = tmp_path / "slow.yaml"
    f.write_text(f"base: {ROOT / 'scenarios' / 'clean-migration.yaml'}\n" + SLOW)
    return f


def children(pid: int) -> set[int]:
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(d))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (whoever reaps it)


def wait_for(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def start_sweep(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gicsim", "sweep", str(slow_sweep(tmp_path)), "-o", str(out), "--no-progress", *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_stops_the_sweep_and_its_workers(tmp_path):
    p, out = start_sweep(tmp_path, "-j", "2")
    try:
        assert wait_for(lambda: len(children(p.pid)) == 2), "two workers"
        workers = children(p.pid)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 128 + signal.SIGTERM, err
    (line,) = err.strip().splitlines()
    assert line.startswith("gicsim: sweep interrupted by SIGTERM; the finished runs are kept in ")
    assert wait_for(lambda: not any(alive(w) for w in workers), 10), "workers outlived the sweep"
    runs = out / "runs"  # the store is consistent: complete runs only, nothing half-written
    names = os.listdir(runs)
    assert all(re.fullmatch(r"[0-9a-f]{20}\.json", n) for n in names), names
    for n in names:
        assert "summary" in json.loads((runs / n).read_text())
    assert len(names) < 8 and not (out / "summaries.parquet").exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigkill_of_the_sweep_takes_its_workers_along(tmp_path):
    p, _ = start_sweep(tmp_path, "-j", "2")
    try:
        assert wait_for(lambda: len(children(p.pid)) == 2), "two workers"
        workers = children(p.pid)
        p.kill()
        p.wait(timeout=60)
        assert wait_for(lambda: not any(alive(w) for w in workers), 10), "workers outlived the sweep"
    finally:
        p.kill()
        p.wait()
        for w in children(p.pid):  # pragma: no cover - only when the test fails
            os.kill(w, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_in_process_sweep(tmp_path):
    p, out = start_sweep(tmp_path)
    try:
        assert wait_for(lambda: (out / "runs").is_dir())
        time.sleep(0.5)  # inside the first run (each takes seconds)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 143 and "interrupted by SIGTERM" in err and "Traceback" not in err, err


def test_worker_watchdog_exits_when_the_parent_is_gone(tmp_path):
    # the fallback without PR_SET_PDEATHSIG: a grandchild watching a parent that exits
    script = (
        "import os, sys\n"
        "from gicsim.sweeps.runner import _watch_parent\n"
        "parent = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    _watch_parent(parent)\n"
        "    os._exit(7)\n"
        "print(pid, flush=True)\n"
        "os._exit(0)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    grandchild = int(r.stdout)
    try:
        assert wait_for(lambda: not alive(grandchild), 10)
    finally:
        if alive(grandchild):  # pragma: no cover
            os.kill(grandchild, signal.SIGKILL)


def test_worker_initializer_exits_when_the_parent_already_died():
    import multiprocessing

    p = multiprocessing.get_context("fork").Process(target=runner._worker_init, args=(2**22 + 12345,))
    p.start()
    p.join(30)
    assert p.exitcode == 1
