"""Round 3 of the output rules for every command that writes a directory: ``gicsim hazards``
and ``gicsim sweep`` only write into their own earlier output (a kind manifest), their store
``OUT/runs`` is a real directory (never a followed symlink), a stored run's values are
checked for type and range, ``python -m gicsim.examples`` writes nothing on a problem and
never over the user's README.md, a full disk leaves the old report (or nothing), a Dask
scheduler without workers is said, and a fully resumed hazard map says so."""

from __future__ import annotations

import errno
import json
import os
import shutil
from concurrent.futures import Future
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim import examples
from gicsim.cli import main
from gicsim.present import output
from gicsim.present.output import MANIFEST
from gicsim.sweeps import runner
from gicsim.sweeps.spec import Run

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "hazard-small.yaml"
TWO_ORDERS = """destination_orders:
  - [memory, redistributors, its_init, gits_cbaser, gits_regs, its_restore_tables, gits_ctlr, resume]
  - [memory, its_init, gits_cbaser, gits_regs, its_restore_tables, redistributors, gits_ctlr, resume]
leave_out: false
"""
QUICK = "seed: 7\ngrid:\n  migration.source.on_ebusy: [abort, continue]\n"


def hazards(tmp_path: Path, out: Path, *more: str):
    sp = tmp_path / "space.yaml"
    sp.write_text(TWO_ORDERS)
    return CliRunner().invoke(main, ["hazards", str(SMALL), "--space", str(sp), "-o", str(out), "--no-progress",
                                     *more])  # fmt: skip


def sweep(tmp_path: Path, out: Path):
    f = tmp_path / "s.yaml"
    f.write_text(f"base: {ROOT / 'scenarios' / 'straggler-retry.yaml'}\n" + QUICK)
    return CliRunner().invoke(main, ["sweep", str(f), "-o", str(out), "--no-progress"])


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# ============================================== 1. hazards -o: only its own output ====
def test_hazards_refuses_a_directory_of_the_users_files(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "report.md").write_text("keep\n")
    r = hazards(tmp_path, d)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [
        f"gicsim: -o/--output: {d}: not empty and not a gicsim hazard map directory; choose a new or empty directory"]
    assert sorted(os.listdir(d)) == ["report.md"] and (d / "report.md").read_text() == "keep\n"


def test_hazards_sweep_report_and_run_directories_never_mix(tmp_path):
    run = tmp_path / "r"
    assert CliRunner().invoke(main, ["run", str(SMALL), "-o", str(run)]).exit_code == 0
    rundir = run / "hazard-small"
    before = snapshot(rundir)
    r = hazards(tmp_path, rundir)
    assert r.exit_code == 2 and "not a gicsim hazard map directory" in r.stderr, r.output
    assert snapshot(rundir) == before
    h = tmp_path / "h"
    assert hazards(tmp_path, h).exit_code == 0
    assert json.loads((h / MANIFEST).read_text())["gicsim"] == "hazards"
    again = hazards(tmp_path, h)  # its own earlier output: resumed, all from the store
    assert again.exit_code == 0, again.output
    assert "all 2 runs from the store" in again.stdout and "runs/s" not in again.stdout
    mine = snapshot(h)
    r = CliRunner().invoke(main, ["report", str(rundir), "-o", str(h)])
    assert r.exit_code == 2, r.output
    assert r.stderr.strip() == f"{h}: holds a gicsim hazard map, not a report; choose another output directory"
    r = sweep(tmp_path, h)
    assert r.exit_code == 2 and "holds a gicsim hazard map, not a sweep" in r.stderr, r.output
    assert snapshot(h) == mine


def test_sweep_refuses_a_directory_of_the_users_files_and_resumes_in_its_own(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "report.md").write_text("keep\n")
    r = sweep(tmp_path, d)
    assert r.exit_code == 2 and "not a gicsim sweep directory" in r.stderr, r.output
    assert os.listdir(d) == ["report.md"]
    out = tmp_path / "out"
    assert sweep(tmp_path, out).exit_code == 0
    listed = json.loads((out / MANIFEST).read_text())
    assert listed == {"gicsim": "sweep", "files": ["report.md", "summaries.parquet"]}
    (out / MANIFEST).unlink()  # what an older gicsim left: still its own
    r = sweep(tmp_path, out)
    assert r.exit_code == 0 and "(0 run now, 2 already done)" in r.stdout, r.output


# ================================================= 2. OUT/runs is a real directory ====
@pytest.mark.parametrize("command", [sweep, hazards])
def test_a_symlink_at_the_store_is_refused_and_never_followed(tmp_path, command):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs").symlink_to(victim)
    r = command(tmp_path, out)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [
        f"gicsim: {out}/runs: is a symlink; gicsim keeps its stored runs in a real directory"]
    assert os.listdir(victim) == [] and os.listdir(out) == ["runs"]


def test_a_file_at_the_store_is_exit_2(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs").write_text("x")
    r = sweep(tmp_path, out)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip() == (f"gicsim: {out}/runs: exists and is not a directory; "
                                "gicsim keeps its stored runs in a real directory")  # fmt: skip


def test_a_symlink_at_a_stored_run_is_not_read_or_written_through(tmp_path):
    out = tmp_path / "out"
    assert sweep(tmp_path, out).exit_code == 0
    stored = sorted((out / "runs").glob("*.json"))[0]
    planted = tmp_path / "planted.json"
    planted.write_bytes(stored.read_bytes())  # a valid run: it must still not be taken
    stored.unlink()
    stored.symlink_to(planted)
    r = sweep(tmp_path, out)
    assert r.exit_code == 0, r.output
    assert f"{stored}: stored run is corrupt (a symlink, not a stored run); running it again" in r.stderr
    assert "(1 run now, 1 already done)" in r.stdout
    assert not stored.is_symlink() and planted.read_bytes() != b"" and json.loads(stored.read_text())


# =================================================== 3. stored values: types, ranges ====
@pytest.mark.parametrize(("value", "why"), [
    ("many", "summary.lpis.lost: expected a count, got 'many'"),
    (10**30, "summary.lpis.lost: expected a count, got 1000000000000000000000000000000"),
    (float("nan"), "NaN is not a value of a stored run"),
    (-1, "summary.lpis.lost: expected a count, got -1"),
    (True, "summary.lpis.lost: expected a count, got True"),
])  # fmt: skip
def test_a_stored_run_of_wrong_types_is_corrupt_and_run_again(tmp_path, value, why):
    out = tmp_path / "out"
    assert sweep(tmp_path, out).exit_code == 0
    f = sorted((out / "runs").glob("*.json"))[0]
    d = json.loads(f.read_text())
    d["summary"]["lpis"]["lost"] = value
    f.write_text(json.dumps(d))
    r = sweep(tmp_path, out)
    assert r.exit_code == 0, r.output
    assert r.stderr.strip() == f"gicsim: {f}: stored run is corrupt ({why}); running it again"
    import pandas as pd

    assert pd.read_parquet(out / "summaries.parquet")["lost"].notna().all()


def test_the_hazard_store_has_the_same_check(tmp_path):
    out = tmp_path / "h"
    assert hazards(tmp_path, out).exit_code == 0
    f = sorted((out / "runs").glob("*.json"))[0]
    d = json.loads(f.read_text())
    d["summary"]["migrations"][0]["downtime_ns"] = "long"
    f.write_text(json.dumps(d))
    r = hazards(tmp_path, out)
    assert r.exit_code == 0, r.output
    assert (f"{f}: stored run is corrupt (summary.migrations.0.downtime_ns: expected a number, got 'long'); "
            "running it again") in r.stderr  # fmt: skip


# ===================================================================== 4. examples ====
def test_examples_never_overwrite_the_users_readme(tmp_path, capsys):
    d = tmp_path / "ex"
    d.mkdir()
    (d / "README.md").write_text("mine\n")
    assert examples.main(["-o", str(d)]) == 2
    assert capsys.readouterr().err.strip() == f"{d}: not empty and not a gicsim report directory; " \
                                              "choose a new or empty directory"
    assert os.listdir(d) == ["README.md"] and (d / "README.md").read_text() == "mine\n"


def test_examples_recognise_their_own_index():
    shipped = ROOT / "reports" / "examples"
    assert "README.md" in examples._ours(shipped)


def test_examples_with_a_broken_scenario_write_nothing(tmp_path, capsys):
    sc = tmp_path / "sc"
    shutil.copytree(ROOT / "scenarios", sc)
    (sc / "straggler-retry.yaml").write_text("name: [\n")
    out = tmp_path / "out"
    assert examples.main(["--scenarios", str(sc), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{sc}/straggler-retry.yaml:"), err
    assert not out.exists()


def test_examples_into_a_file_is_exit_2(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert examples.main(["-o", str(f)]) == 2
    assert capsys.readouterr().err.strip() == f"{f}: exists and is not a directory"


# ============================================================== 5. a full disk ====
def _full_after(monkeypatch, n: int) -> None:
    real = output._create_temp
    calls = {"n": 0}

    def create(dfd, name):
        calls["n"] += 1
        if calls["n"] > n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return real(dfd, name)

    monkeypatch.setattr(output, "_create_temp", create)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_a_full_disk_leaves_nothing_in_a_new_directory(tmp_path, monkeypatch, n):
    _full_after(monkeypatch, n)
    d = tmp_path / "rep"
    with pytest.raises(OSError):
        output.write_report_dir(d, {"a.md": b"a", "sub/b.png": b"b", "c.svg": b"c"})
    assert not d.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize("n", [0, 2, 4])
def test_a_full_disk_leaves_the_old_complete_report(tmp_path, monkeypatch, n):
    d = tmp_path / "rep"
    output.write_report_dir(d, {"a.md": b"old a", "sub/b.png": b"old b"})
    (d / "notes.txt").write_text("the user's")
    before = snapshot(d)
    _full_after(monkeypatch, n)
    with pytest.raises(OSError):
        output.write_report_dir(d, {"a.md": b"new a", "sub/b.png": b"new b", "new/c.svg": b"c", "d.html": b"d"})
    assert snapshot(d) == before
    assert sorted(os.listdir(d)) == sorted([MANIFEST, "a.md", "notes.txt", "sub"])
    assert json.loads((d / MANIFEST).read_text())["files"] == ["a.md", "sub/b.png"]


def test_report_on_a_full_disk_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    run = tmp_path / "r"
    assert CliRunner().invoke(main, ["run", str(SMALL), "-o", str(run)]).exit_code == 0
    _full_after(monkeypatch, 2)
    d = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", str(run / "hazard-small"), "-o", str(d)])
    assert r.exit_code == 3 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not d.exists()


# ======================================================= 6. a cluster without workers ====
class _NoWorkers:
    def nthreads(self):
        return {}


class _Stalled:
    """An executor whose runs never finish, as a Dask cluster's whose workers all died."""

    _client = _NoWorkers()

    def __init__(self):
        self.futures: list[Future] = []

    def submit(self, fn, *args):
        f: Future = Future()
        self.futures.append(f)
        if len(self.futures) == 2:  # the first run of the window finishes a while later
            import threading

            threading.Timer(0.35, lambda: self.futures[0].set_result({"x": 1})).start()
            threading.Timer(0.6, lambda: [g.set_result({"x": 1}) for g in self.futures[1:] if not g.done()]).start()
        return f


def test_a_scheduler_without_workers_is_said_while_waiting(monkeypatch):
    monkeypatch.setattr(runner, "WAITING_NOTE_S", 0.1)
    lines: list[str] = []
    done: list[int] = []
    runs = [Run(i, {}, {}, f"{i:020x}") for i in range(3)]
    runner._drain(_Stalled(), runs, lambda r, s: done.append(r.index), 3, worker=lambda s: s, note=lines.append)
    assert sorted(done) == [0, 1, 2]
    assert lines and set(lines) <= {"gicsim: waiting: the scheduler has no workers (3 runs left)",
                                    "gicsim: waiting: the scheduler has no workers (2 runs left)"}  # fmt: skip
    assert lines[0].endswith("(3 runs left)")


def test_local_workers_are_never_said_to_be_missing():
    assert runner._no_workers(object()) is False  # a ProcessPoolExecutor has no _client


@pytest.mark.parametrize("kind", ["hazards", "sweep"])
def test_run_never_replaces_a_claimed_sweep_or_hazard_directory(tmp_path, kind):
    """A sweep or hazard map killed before its first stored run leaves only its manifest:
    `gicsim run -o` must not take that directory for a run of the same name and swap it."""
    d = tmp_path / "out" / "clean-migration"
    d.mkdir(parents=True)
    (d / ".gicsim-report.json").write_text(json.dumps({"gicsim": kind, "files": []}))
    r = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "clean-migration.yaml"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "not a report" in r.stderr, r.output
    assert os.listdir(d) == [".gicsim-report.json"]
    # a run's own --report manifest is its own: a rerun replaces it
    d2 = tmp_path / "out2"
    for _ in range(2):
        r = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "clean-migration.yaml"), "-o", str(d2), "--report"])
        assert r.exit_code == 0, r.output
