"""One error boundary for every command: input errors are one line and exit 2; environment
errors (ENOSPC, EROFS, EACCES, ...) and internal errors one line and exit 3; never a
traceback (unless GICSIM_DEBUG=1); nothing printed that can drive the terminal."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gicsim.cli import main

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "clean-migration.yaml"
HUGE = "injected " + "x" * 5000 + "\x1b[2J\x1b]0;pwned\x07"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out / "clean-migration"


def args_for(cmd: str, tmp: Path, run_dir: Path) -> list[str]:
    sweep = tmp / "s.yaml"
    sweep.write_text(f"name: s\nbase: {SMALL}\ngrid:\n  seed: [1]\n")
    return {
        "validate": ["validate", str(SMALL)],
        "run": ["run", str(SMALL), "-o", str(tmp / "out")],
        "sweep": ["sweep", str(sweep), "-o", str(tmp / "sw"), "--no-progress"],
        "report": ["report", str(run_dir), "-o", str(tmp / "rep")],
        "explain": ["explain", str(SMALL)],
        "tables": ["tables", str(SMALL), "--at", "save_its_tables"],
    }[cmd]


# where each command's body can be made to fail (an internal step it always takes)
BODY = {
    "validate": ("gicsim.cli", "load_scenario"),
    "run": ("gicsim.sim.simulation", "run"),
    "sweep": ("gicsim.sweep", "load_sweep"),
    "report": ("gicsim.present.report", "build"),
    "explain": ("gicsim.present.explain", "explain"),
    "tables": ("gicsim.present.tables", "capture"),
}


def one_line(r, code: int) -> str:
    assert r.exit_code == code, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception
    out = r.output + r.stderr
    assert "Traceback" not in out and "\x1b" not in out and "\x07" not in out
    lines = r.stderr.splitlines()
    assert len(lines) == 1, lines
    assert len(lines[0]) <= 510, len(lines[0])  # no whole values echoed
    return lines[0]


def _raise(exc: BaseException):
    def f(*a, **kw):
        raise exc

    return f


@pytest.mark.parametrize("cmd", list(BODY))
def test_an_internal_error_in_any_command_is_one_line_exit_3(tmp_path, monkeypatch, run_dir, cmd):
    import importlib

    mod, attr = BODY[cmd]
    monkeypatch.setattr(importlib.import_module(mod), attr, _raise(RuntimeError(HUGE)))
    r = CliRunner().invoke(main, args_for(cmd, tmp_path, run_dir))
    line = one_line(r, 3)
    assert line.startswith("gicsim: internal error (RuntimeError: injected xxx") and "…" in line


@pytest.mark.parametrize("cmd", list(BODY))
def test_an_environment_error_in_any_command_is_one_line_exit_3(tmp_path, monkeypatch, run_dir, cmd):
    import importlib

    mod, attr = BODY[cmd]
    exc = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/some/where")
    monkeypatch.setattr(importlib.import_module(mod), attr, _raise(exc))
    line = one_line(CliRunner().invoke(main, args_for(cmd, tmp_path, run_dir)), 3)
    assert line == "gicsim: Permission denied (EACCES): /some/where"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=errno.errorcode.get)
@pytest.mark.parametrize("cmd", ["run", "report", "sweep"])
def test_a_failing_writer_is_one_line_exit_3_and_nothing_half_written(tmp_path, monkeypatch, run_dir, cmd, code):
    """Every temp file the one writer creates (_create_temp) fails: run, report and sweep exit 3."""
    from gicsim.present import output

    args = args_for(cmd, tmp_path, run_dir)
    monkeypatch.setattr(output, "_create_temp", _raise(OSError(code, os.strerror(code), "x.tmp")))
    line = one_line(CliRunner().invoke(main, args), 3)
    assert line.startswith("gicsim: ") and os.strerror(code) in line  # (sweep says more)
    if cmd != "sweep":
        assert line == f"gicsim: {os.strerror(code)} ({errno.errorcode[code]}): x.tmp"
    if cmd == "run":
        out = tmp_path / "out"
        assert not out.exists() or os.listdir(out) == []  # no temp dir, no half result


@pytest.mark.parametrize("args", [
    ["run"],
    ["run", "--bogus", str(SMALL)],
    ["nope"],
    ["--bogus"],
    ["tables", str(SMALL), "--at", "save_its_tables", "--limit", "0"],
    ["tables", str(SMALL), "--side", "sideways", "--at", "save_its_tables"],
    ["report"],
    ["explain"],
    ["sweep"],
    ["run", str(SMALL), "-o", str(SMALL)],  # -o names a file
])  # fmt: skip
def test_usage_errors_are_one_line_exit_2(args):
    line = one_line(CliRunner().invoke(main, args), 2)
    assert not line.startswith("Usage:") and "--help" in line


def test_a_bad_path_is_one_line_exit_2(tmp_path):
    one_line(CliRunner().invoke(main, ["validate", str(tmp_path / "nope.yaml")]), 2)
    one_line(CliRunner().invoke(main, ["explain", str(tmp_path / "nope")]), 2)


def test_interrupted_command_is_one_line(monkeypatch):
    import gicsim.cli

    monkeypatch.setattr(gicsim.cli, "load_scenario", _raise(KeyboardInterrupt()))
    line = one_line(CliRunner().invoke(main, ["validate", str(SMALL)]), 130)
    assert line == "gicsim: interrupted by SIGINT; stopped, no partial results were written"


def test_a_command_added_later_gets_the_boundary():
    @click.command("later")
    @click.argument("what")
    def later(what: str) -> None:
        if what == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise RuntimeError("later bug")

    main.add_command(later)
    try:
        assert "internal error (RuntimeError: later bug)" in one_line(CliRunner().invoke(main, ["later", "x"]), 3)
        assert "ENOSPC" in one_line(CliRunner().invoke(main, ["later", "oserror"]), 3)
        one_line(CliRunner().invoke(main, ["later"]), 2)
    finally:
        main.commands.pop("later")


def test_gicsim_debug_shows_the_traceback(monkeypatch):
    import gicsim.cli

    monkeypatch.setattr(gicsim.cli, "load_scenario", _raise(RuntimeError("bug")))
    r = CliRunner(env={"GICSIM_DEBUG": "1"}).invoke(main, ["validate", str(SMALL)])
    assert r.exit_code == 3 and "Traceback" in r.stderr
    assert r.stderr.splitlines()[-1].startswith("gicsim: internal error (RuntimeError: bug)")


def test_terminal_escapes_from_user_input_are_never_printed(tmp_path, monkeypatch):
    # in an error line (the file name is the user's)
    bad = tmp_path / "evil\x1b[31m\x07.yaml"
    bad.write_text("name: x\nvm: {vcpus: 0}\n")
    line = one_line(CliRunner().invoke(main, ["validate", str(bad)]), 2)
    assert "evil\\x1b[31m\\x07.yaml" in line
    # in explain's narration (a description can hold anything)
    from gicsim.present import explain

    monkeypatch.setattr(explain, "explain", lambda run: "Scenario \x1b]52;c;cHduZWQ=\x07 says\n\thi\n")
    r = CliRunner().invoke(main, ["explain", str(SMALL)])
    assert r.exit_code == 0, r.output
    assert r.output == "Scenario \\x1b]52;c;cHduZWQ=\\x07 says\n\thi\n"


def test_help_and_version_still_exit_0():
    for args in (["--help"], ["run", "--help"], ["--version"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0 and r.stderr == "", (args, r.output)
