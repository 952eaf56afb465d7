"""Writing outputs: no data loss, no escape from the output directory, permissions as with
``open()``, and a result directory that is the old complete set or the new complete set
after any kill (fault injection and real SIGKILLs of a child process)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.present import output, report
from gicsim.present.output import MANIFEST, AtomicDir, clean_stale_temps, printable

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "clean-migration.yaml"
RUN_SET = {"resolved.yaml", "summary.json", "trace.parquet", "report.md"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out / "clean-migration"


@pytest.fixture
def quick_report(monkeypatch):
    """``gicsim report`` without the plots (seconds of matplotlib): a two-file report."""

    def files(run, plots=True, perfetto=False):
        out = {"report.md": b"# report\n", "report.html": b"<html></html>\n"}
        if perfetto:
            out["trace.perfetto.json"] = b"{}\n"
        return out

    monkeypatch.setattr(report, "report_files", files)


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def hidden(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".") and p.name != MANIFEST)


# ================================================================ gicsim report -o DIR ====
def test_report_into_a_directory_keeps_the_users_files(tmp_path, run_dir, quick_report):
    d = tmp_path / "mine"
    d.mkdir()
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d)])
    assert r.exit_code == 0, r.output
    (d / "notes.txt").write_text("my notes\n")  # the user's, beside a gicsim report
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d), "--perfetto"])
    assert r.exit_code == 0, r.output
    assert (d / "notes.txt").read_text() == "my notes\n"
    assert {"report.md", "report.html", "trace.perfetto.json", "summary.json"} <= set(os.listdir(d))
    listed = json.loads((d / MANIFEST).read_text())["files"]
    assert "notes.txt" not in listed and "trace.perfetto.json" in listed
    # again without --perfetto: the report's own stale file goes, the user's stays
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d)])
    assert r.exit_code == 0, r.output
    assert not (d / "trace.perfetto.json").exists() and (d / "notes.txt").exists()
    assert hidden(d) == []


def test_report_refuses_a_non_empty_directory_that_is_not_a_report(tmp_path, run_dir, quick_report):
    d = tmp_path / "home"
    (d / "src").mkdir(parents=True)
    (d / "src" / "main.c").write_text("int main;\n")
    (d / "report.md").write_text("my own report\n")
    before = snapshot(d)
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d)])
    assert r.exit_code == 2, r.output
    assert len(r.stderr.splitlines()) == 1 and "not a gicsim report directory" in r.stderr
    assert snapshot(d) == before and sorted(os.listdir(d)) == ["report.md", "src"]


def test_report_never_overwrites_a_file_gicsim_did_not_write(tmp_path, run_dir, quick_report):
    d = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d)])
    assert r.exit_code == 0, r.output
    (d / "trace.perfetto.json").write_text("the user's\n")  # not in the manifest
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d), "--perfetto"])
    assert r.exit_code == 2 and "gicsim did not write" in r.stderr, r.output
    assert (d / "trace.perfetto.json").read_text() == "the user's\n"


def test_report_dash_o_dot(tmp_path, monkeypatch, run_dir, quick_report):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", "."])
    assert r.exit_code == 0, r.output
    assert {"report.md", "report.html", "trace.parquet", MANIFEST} <= set(os.listdir(empty))
    assert hidden(empty) == []
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("x")
    monkeypatch.chdir(busy)
    r = CliRunner().invoke(main, ["report", str(run_dir), "-o", "."])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert os.listdir(busy) == ["thesis.tex"]  # no temp dir, nothing written
    assert sorted(os.listdir(tmp_path)) == ["busy", "empty"]


def test_report_in_place_and_over_an_old_report_without_manifest(tmp_path, run_dir, quick_report):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(run_dir, d)
    r = CliRunner().invoke(main, ["report", str(d)])  # in place: a run directory is ours
    assert r.exit_code == 0, r.output
    assert RUN_SET <= set(os.listdir(d)) and (d / "report.html").exists()
    # what an older gicsim wrote (no manifest) is still recognised as a report
    (d / MANIFEST).unlink()
    r = CliRunner().invoke(main, ["report", str(d), "-o", str(d)])
    assert r.exit_code == 0, r.output


def test_real_report_twice_into_the_same_directory(tmp_path, run_dir):
    d = tmp_path / "full"
    for _ in range(2):
        r = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(d)])
        assert r.exit_code == 0, r.output
        (d / "keep.txt").write_text("k")
    names = set(os.listdir(d))
    assert {"report.html", "waterfall.png", "keep.txt", MANIFEST} <= names
    assert hidden(d) == []


def test_a_symlink_inside_a_report_directory_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    d = tmp_path / "rep"
    output.write_report_dir(d, {"report.md": b"a", "runs/x/trace.parquet": b"b"})
    import shutil

    shutil.rmtree(d / "runs")
    (d / "runs").symlink_to(outside)  # planted where gicsim makes a directory
    with pytest.raises(output.OutputError):
        output.write_report_dir(d, {"report.md": b"a2", "runs/x/trace.parquet": b"b2"})
    assert os.listdir(outside) == []
    (d / "report.md").unlink()
    (d / "report.md").symlink_to(outside / "victim")  # a link at a file of the report
    output.write_report_dir(d, {"report.md": b"new"}, also_ours=())
    assert not (outside / "victim").exists() and not (d / "report.md").is_symlink()


# ============================================================= writer: names and modes ====
def test_a_planted_symlink_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    d = tmp_path / "out"
    d.mkdir()
    # at the final name: the link is replaced, not written through
    (d / "summary.json").symlink_to(victim)
    output.write_json_atomic(d / "summary.json", {"a": 1})
    assert victim.read_text() == "precious\n" and not (d / "summary.json").is_symlink()
    # at the temporary name (say an attacker guessed it): O_EXCL refuses it, another is drawn
    draws = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr(output.secrets, "token_hex", lambda n: next(draws))
    planted = d / f".report.md.tmp-{os.getpid()}-{'0' * 16}"
    planted.symlink_to(victim)
    output.write_text_atomic(d / "report.md", "hello\n")
    assert victim.read_text() == "precious\n" and (d / "report.md").read_text() == "hello\n"
    assert planted.is_symlink()


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_outputs_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        output.write_bytes_atomic(tmp_path / "a" / "b" / "f.bin", b"x")
        with AtomicDir(tmp_path / "res") as t:
            (t / "x").write_text("y")
        output.write_report_dir(tmp_path / "rep", {"sub/f": b"z"})
        r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(tmp_path / "o")])
        assert r.exit_code == 0, r.output
    finally:
        os.umask(old)
    fmode, dmode = 0o666 & ~mask, 0o777 & ~mask
    files = [tmp_path / "a/b/f.bin", tmp_path / "rep/sub/f", tmp_path / "rep" / MANIFEST]
    files += [tmp_path / "o/clean-migration" / n for n in RUN_SET]
    dirs = [tmp_path / "a/b", tmp_path / "res", tmp_path / "rep/sub", tmp_path / "o/clean-migration"]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == fmode, (f, oct(f.stat().st_mode))
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == dmode, (d, oct(d.stat().st_mode))


def test_printable():
    assert printable("plain") == "plain"
    assert printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert printable("a\nb\u202ec\udc80") == "a\\nb\\u202ec\\udc80"
    s = printable("x" * 10_000)
    assert len(s) <= 61 and s.endswith("…")
    assert printable("é✓ 中") == "é✓ 中"
    assert output.terminal_safe("a\x1b]0;t\x07\n\tb") == "a\\x1b]0;t\\x07\n\tb"


# ======================================================= run: one name, one directory ====
def test_two_scenarios_with_one_name_are_refused(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    text = SMALL.read_text()
    a.write_text(text)
    b.write_text(text)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(a), str(b), "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and str(a) in lines[0] and str(b) in lines[0], lines
    assert not out.exists()


def test_run_never_replaces_a_directory_it_did_not_write(tmp_path):
    out = tmp_path / "out"
    mine = out / "clean-migration"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work\n")
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert "not a gicsim run directory" in r.stderr
    assert os.listdir(mine) == ["thesis.tex"] and os.listdir(out) == ["clean-migration"]


def test_a_symlink_at_the_result_name_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "summary.json").write_text("not yours\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "clean-migration").symlink_to(outside)
    for _ in range(2):  # and every later run works too
        r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
        assert r.exit_code == 0, r.output
        d = out / "clean-migration"
        assert not d.is_symlink() and set(os.listdir(d)) == RUN_SET
    assert os.listdir(outside) == ["summary.json"]
    assert (outside / "summary.json").read_text() == "not yours\n"
    assert os.listdir(out) == ["clean-migration"]


# ============================================================== the directory swap ====
def _old_set(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    target = tmp_path / "out" / "res"
    with AtomicDir(target) as t:
        for n in ("a", "b", "c"):
            (t / n).write_text(f"old {n}\n")
    return target, snapshot(target)


def _write_new(target: Path) -> None:
    with AtomicDir(target) as t:
        for n in ("a", "b", "c", "d"):
            (t / n).write_text(f"new {n}\n")


NEW = {n: f"new {n}\n".encode() for n in ("a", "b", "c", "d")}


@pytest.mark.parametrize("fail", ["exchange", "rename_noreplace", "rename"])
def test_a_failing_switch_keeps_the_old_complete_set(tmp_path, monkeypatch, fail):
    if fail == "rename_noreplace":  # the first write (nothing there yet) fails
        target, old = tmp_path / "out" / "res", {}
        target.parent.mkdir()
    else:
        target, old = _old_set(tmp_path)

    def boom(*a, **kw):
        raise OSError(28, "No space left on device")

    if fail == "rename":  # the fallback path (no RENAME_EXCHANGE), failing in its renames
        monkeypatch.setattr(output, "exchange", lambda *a: False)
        monkeypatch.setattr(output.os, "rename", boom)
    else:
        monkeypatch.setattr(output, fail, boom)
    with pytest.raises(OSError):
        _write_new(target)
    assert snapshot(target) == old if old else not target.exists()
    assert os.listdir(target.parent) == (["res"] if old else [])  # the temp dir went too


def test_the_fallback_half_switched_is_put_back(tmp_path, monkeypatch):
    """Without RENAME_EXCHANGE, a kill between the two renames: the next writer restores."""
    target, old = _old_set(tmp_path)
    monkeypatch.setattr(output, "exchange", lambda *a: False)
    real = os.rename
    calls = []

    def die_after_first(*a, **kw):
        calls.append(a)
        real(*a, **kw)
        if len(calls) == 1:
            raise KeyboardInterrupt  # stands for the kill: nothing after the first rename

    monkeypatch.setattr(output.os, "rename", die_after_first)
    with pytest.raises(KeyboardInterrupt):
        _write_new(target)
    monkeypatch.setattr(output.os, "rename", real)
    assert not target.exists()
    # pretend the writer's process is gone: its pid in the temp names is not alive
    monkeypatch.setattr(output, "_pid_alive", lambda pid: False)
    clean_stale_temps(target.parent)
    assert snapshot(target) == old and os.listdir(target.parent) == ["res"]


CHILD = """
import os, signal, sys
from pathlib import Path
from gicsim.present import output
where = sys.argv[2]
def die(*a, **kw):
    os.kill(os.getpid(), signal.SIGKILL)
if where == "before-switch":
    output.exchange = die
elif where == "after-switch":
    real = output.exchange
    def ex(*a):
        real(*a)
        die()
    output.exchange = ex
elif where == "mid-file":
    real = output._atomic_in
    import contextlib
    @contextlib.contextmanager
    def half(dfd, name):
        with real(dfd, name) as f:
            f.write(b"half")
            f.flush()
            die()
            yield f
    output._atomic_in = half
with output.AtomicDir(Path(sys.argv[1])) as t:
    for n in ("a", "b", "c", "d"):
        output.write_text_atomic(t / n, f"new {n}\\n")
"""


@pytest.mark.parametrize("where", ["mid-file", "before-switch", "after-switch"])
def test_sigkill_at_any_point_leaves_a_complete_set_and_is_cleaned_next_time(tmp_path, where):
    target, old = _old_set(tmp_path)
    p = subprocess.run([sys.executable, "-c", CHILD, str(target), where], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == -signal.SIGKILL, p.stderr
    got = snapshot(target)
    assert got == (NEW if where == "after-switch" else old)
    assert len(os.listdir(target.parent)) == 2  # the killed writer's temp dir is left...
    _write_new(target)  # ... and the next write beside it removes it (its pid is gone)
    assert snapshot(target) == NEW and os.listdir(target.parent) == ["res"]


def test_sigkill_of_a_real_run_while_writing_the_trace(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
    assert r.exit_code == 0, r.output
    old = snapshot(out / "clean-migration")
    child = textwrap.dedent("""
        import os, signal, sys
        import pandas as pd
        def killed(self, f, *a, **kw):
            f.write(b"PAR1 half a trace")
            os.kill(os.getpid(), signal.SIGKILL)
        pd.DataFrame.to_parquet = killed
        from gicsim.cli import main
        main(["run", sys.argv[1], "-o", sys.argv[2]])
    """)
    p = subprocess.run([sys.executable, "-c", child, str(SMALL), str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert snapshot(out / "clean-migration") == old
    assert len(os.listdir(out)) == 2  # the dead run's temp dir
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert os.listdir(out) == ["clean-migration"]
    assert set(os.listdir(out / "clean-migration")) == RUN_SET


def test_stale_temps_only_of_dead_processes_and_only_ours(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    d = tmp_path / "out"
    d.mkdir()
    mine_dead = d / f".res.tmp-{dead.pid}-{'a' * 16}"
    mine_live = d / f".res.tmp-{os.getpid()}-{'b' * 16}"
    parent_live = d / f".other.tmp-{os.getppid()}-{'c' * 16}"
    file_dead = d / f".x.json.tmp-{dead.pid}-{'d' * 16}"
    look_alike = d / ".res.tmp-notapid-aaaaaaaaaaaaaaaa"
    for p in (mine_dead, mine_live, parent_live, look_alike):
        p.mkdir()
        (p / "f").write_text("x")
    file_dead.write_text("{")
    removed = clean_stale_temps(d)
    assert sorted(removed) == sorted([mine_dead.name, file_dead.name])
    assert sorted(os.listdir(d)) == sorted([mine_live.name, parent_live.name, look_alike.name])
