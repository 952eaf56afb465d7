"""Round-3 fixes of the command line and the notebook API: exit 1 only for a failed expect
(``tables`` on a step that did not run: 2), a user's kernel tree that does not compile is
bad input (2, cited with the user's paths), conflicting kernel options, output locations
checked before anything runs, one treatment of empty and over-long path arguments in every
command, help texts, and ``gicsim.run``'s argument check."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import gicsim
from gicsim import cli
from gicsim.cli import main
from gicsim.linux.errors import KernelInputError, KernelRefError

ROOT = Path(__file__).parent.parent
SC = ROOT / "scenarios"
SMALL = SC / "clean-migration.yaml"
LONG = "a" * 300 + ".yaml"


def invoke(*args: str, **kw) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), **kw)  # (click names the program "main" here)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    code, _, err = invoke("run", str(SMALL), "-o", str(out), "-q")
    assert code == 0, err
    return out / "clean-migration"


@pytest.fixture()
def no_sim(monkeypatch):
    """Fail the test if a scenario is simulated."""

    def boom(*a, **k):
        raise AssertionError("simulated before the output location was checked")

    monkeypatch.setattr("gicsim.sim.simulation.run", boom)


# ------------------------------------------------------------------ 1: tables exit 2 ----
@pytest.mark.parametrize("args, msg", [
    (["clean-migration.yaml", "--migration", "2"], "clean-migration: there is no migration 2 (the scenario has 1)\n"),
    (["straggler-abort.yaml", "--at", "resume"], "straggler-abort: step 'resume' never ended in migration 1 (status aborted)\n"),
])  # fmt: skip
def test_tables_on_a_step_that_did_not_run_is_exit_2(args, msg):
    code, out, err = invoke("tables", str(SC / args[0]), *args[1:])
    assert (code, out, err) == (2, "", msg)


# ------------------------------------------------------- 2: a tree that does not compile ----
def _user_tree(dst: Path) -> Path:
    from linux_helpers import tree

    from gicsim.linux.fetch import REQUIRED

    t = tree("6.12")
    for rel in REQUIRED + ("Makefile", "include/uapi/linux/kvm.h"):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(t.path(rel), dst / rel)
    return dst


def test_user_tree_that_does_not_compile_is_exit_2_with_the_users_paths(tmp_path, monkeypatch):
    src = _user_tree(tmp_path / "linux-mine")
    h = src / "arch/arm64/kvm/vgic/vgic.h"  # a missing include: every unit stops at once
    h.write_text('#include "gicsim-test-no-such-header.h"\n' + h.read_text())
    monkeypatch.setenv("GICSIM_CACHE_DIR", str(tmp_path / "cache"))
    from gicsim.kernelcmd import kernel

    r = CliRunner().invoke(kernel, ["check", str(src), "--streams", "1"])
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and f"{src}/arch/arm64/kvm/vgic/vgic.h:1:" in line
    assert "gicsim-test-no-such-header.h" in line
    assert str(tmp_path / "cache") not in line.split(" [log: ")[0]  # no cached copy's path
    out = tmp_path / "out"
    code, _, err = invoke("run", str(SMALL), "--kernel-tree", str(src), "-o", str(out))
    assert code == 2 and err.count("\n") == 1 and f"{src}/arch/arm64/kvm/vgic/vgic.h:1:" in err
    assert not out.exists()


def test_no_compiler_stays_exit_3(monkeypatch):
    from linux_helpers import tree

    tree("6.12")
    monkeypatch.setenv("CC", "gicsim-test-no-such-cc")
    from gicsim.kernelcmd import kernel

    r = CliRunner().invoke(kernel, ["check", "6.12", "--streams", "1"])
    assert r.exit_code == 3 and "no C compiler" in r.stderr


def test_build_failure_of_a_release_is_an_environment_error(monkeypatch):
    from gicsim.linux.build import _build_failed
    from gicsim.linux.fetch import SourceTree

    rel = SourceTree(Path("/c/6.12"), {"origin": "debian-package", "package": "p", "version": "1"})
    assert type(_build_failed(rel, "build of x.c failed: /c/6.12/a.c:1:1: error")) is KernelRefError
    mine = SourceTree(Path("/c/tree-1"), {"origin": "tree", "path": "/home/u/linux"})
    e = _build_failed(mine, "build of x.c failed: /c/tree-1/a.c:1:1: error [log: /c/tree-1/b/build.log]")
    assert isinstance(e, KernelInputError)
    assert str(e) == "build of x.c failed: /home/u/linux/a.c:1:1: error [log: /c/tree-1/b/build.log]"


def test_fetch_refuses_an_empty_or_too_long_name():
    from gicsim.linux.fetch import fetch

    with pytest.raises(KernelInputError, match="^'' is neither a release"):
        fetch("")
    with pytest.raises(KernelInputError, match="File name too long"):
        fetch("/tmp/" + "x" * 300)


# -------------------------------------------------------------- 3: kernel options ----
def test_kernel_tree_with_backend_python_is_refused(tmp_path):
    out = tmp_path / "out"
    code, stdout, err = invoke("run", str(SMALL), "--kernel-tree", str(tmp_path), "--backend", "python",
                               "-o", str(out))  # fmt: skip
    assert (code, stdout) == (2, "") and err.count("\n") == 1
    assert err.startswith("main run: --kernel-tree runs the kernel side on that tree's own code, "
                          "--backend python on the Python model: give one of them")  # fmt: skip
    assert not out.exists()


def test_kernel_tree_of_another_release_than_the_scenarios_is_noted(tmp_path, monkeypatch):
    src = _user_tree(tmp_path / "linux-6.12")
    monkeypatch.setenv("GICSIM_CACHE_DIR", str(tmp_path / "cache"))
    text = SMALL.read_text().replace("until_us: 6000", 'until_us: 600\nkernel: {release: "6.1"}')
    text = text.replace("at_us: 2000", "at_us: 300").replace("stop_us: 5500", "stop_us: 500")
    (tmp_path / "s.yaml").write_text(text)
    code, _, err = invoke("run", str(tmp_path / "s.yaml"), "--kernel-tree", str(src), "-o", str(tmp_path / "o"), "-q")
    assert code in (0, 1), err
    assert err == (f"gicsim run: note: clean-migration: the kernel side runs {src}, kernel 6.12.117, "
                   "not the scenario's release 6.1\n")  # fmt: skip


# ------------------------------------------------------------ 4: output locations ----
@pytest.fixture()
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("x")
    return tmp_path


@pytest.mark.parametrize("opts, msg", [
    (["-o", "afile/sub"], "afile/sub: cannot write here (-o): afile is not a directory"),
    (["--summary", "afile/x.json"], "afile/x.json: cannot write here (--summary): afile is not a directory"),
    (["--summary", "afile/deep/x.json"], "afile/deep/x.json: cannot write here (--summary): afile is not a directory"),
    (["-o", "/proc/gicsim-test"], "/proc/gicsim-test: cannot write here (-o): /proc is on proc, which holds no files"),
    (["--summary", "/proc/s.json"], "/proc/s.json: cannot write here (--summary): /proc is on proc, which holds no files"),
    (["-o", ""], "-o: an empty path names no file"),
    (["--summary", ""], "--summary: an empty path names no file"),
    (["-o", "b" * 300], "b" * 200 + "…: file name too long (ENAMETOOLONG)"),  # the name cut at 200
])  # fmt: skip
def test_run_checks_output_locations_before_running(here, no_sim, opts, msg):
    code, out, err = invoke("run", str(SMALL), *opts)
    assert (code, out, err) == (2, "", msg + "\n")
    assert sorted(p.name for p in here.iterdir()) == ["afile"]


def test_a_read_only_output_location_is_exit_2(here, no_sim, monkeypatch):
    monkeypatch.setattr(cli, "_mount", lambda p: ("ext4", True))
    code, _, err = invoke("run", str(SMALL), "-o", "new/out")
    assert (code, err) == (2, "new/out: cannot write here (-o): read-only file system (EROFS)\n")


def test_no_space_while_writing_stays_exit_3(here, monkeypatch):
    import gicsim.present.output as O  # noqa: N812

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(O, "write_json_atomic", full)
    code, _, err = invoke("run", str(SMALL), "-o", "out", "-q")
    assert code == 3 and "(ENOSPC)" in err


@pytest.mark.parametrize("opt, msg", [
    ("/proc/gicsim-test", "/proc/gicsim-test: cannot write here (-o): /proc is on proc, which holds no files"),
    ("afile/x", "afile/x: cannot write here (-o): afile is not a directory"),
    ("afile", "afile: cannot write here (-o): exists and is not a directory"),
    ("", "-o: an empty path names no file"),
])  # fmt: skip
def test_report_checks_its_output_location(here, run_dir, opt, msg):
    code, out, err = invoke("report", str(run_dir), "-o", opt)
    assert (code, out, err) == (2, "", msg + "\n")


# ------------------------------------------------------- 5: one path check everywhere ----
COMMANDS = [["run"], ["validate"], ["report"], ["explain"], ["tables"], ["diff", str(SMALL)], ["sweep"],
            ["hazards"], ["kernel", "fetch"], ["kernel", "check"]]  # fmt: skip


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]).split("/")[0])
def test_an_empty_path_is_no_such_file_everywhere(cmd, here):
    code, out, err = invoke(*cmd, "")
    assert (code, out, err) == (2, "", ": no such file\n")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]).split("/")[0])
def test_a_name_over_name_max_is_exit_2_everywhere(cmd, here):
    code, out, err = invoke(*cmd, LONG)
    assert (code, out) == (2, "") and err.endswith(": file name too long (ENAMETOOLONG)\n")
    assert err.count("\n") == 1


def test_enametoolong_from_anywhere_is_an_input_error():
    lines, code = cli.error_lines(OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300))
    assert code == 2 and lines[0].startswith("gicsim: File name too long (ENAMETOOLONG): xxx")
    assert cli.error_lines(OSError(errno.ENOSPC, "No space left on device"))[1] == 3


def test_commands_added_later_get_the_path_check():
    import click

    @click.command("gicsim-test-later")
    @click.argument("f", type=click.Path())
    def later(f: str) -> None:
        click.echo("ran")

    main.add_command(later)
    try:
        assert invoke("gicsim-test-later", "")[:3] == (2, "", ": no such file\n")
    finally:
        main.commands.pop("gicsim-test-later")


# -------------------------------------------------------------------- 6: help texts ----
@pytest.mark.parametrize("cmd", [["validate"], ["run"], ["report"], ["explain"], ["diff"], ["tables"],
                                 ["kernel", "fetch"], ["kernel", "check"]])  # fmt: skip
def test_every_help_has_examples_and_exit_statuses(cmd):
    code, out, _ = invoke(*cmd, "--help")
    assert code == 0 and "Examples:\n" in out and "Exit status: 0 " in out and "2 " in out


def test_help_texts_say_what_a_user_needs():
    flat = lambda *a: " ".join(invoke(*a, "--help")[1].split())  # noqa: E731
    assert "FILE:LINE:COL: key.path: message" in flat("validate")
    assert "record by record" in flat("diff") and "gicsim diff scenarios/" in flat("diff")
    tables = flat("tables")
    assert "--at STEP" in tables and "--diff STEP" in tables and "TEXT" not in tables
    for step in cli._step_names():
        assert step in tables
    fetch = flat("kernel", "fetch")
    assert "$GICSIM_CACHE_DIR/kernel/" in fetch and "~/.cache/gicsim/kernel/" in fetch
    assert all(x in fetch for x in (".tar", ".tar.gz", ".tar.xz", ".tar.bz2"))
    assert "0 to 2147483647 (2**31 - 1" in flat("kernel", "check")
    assert "8192 (0x2000)" in flat("explain")


def test_explain_lpi_takes_hex_and_refuses_what_is_not_an_lpi(run_dir):
    code, out, _ = invoke("explain", str(run_dir), "--lpi", "0x2001")
    assert code == 0 and "LPI 8193" in out
    code, out, err = invoke("explain", str(run_dir), "--lpi", "1")
    assert (code, out) == (2, "") and "1 is not an LPI: LPIs are INTIDs 8192 (0x2000) and up" in err


# -------------------------------------------------------------- 7: the notebook API ----
@pytest.mark.parametrize("bad, name", [(None, "NoneType"), ([1, 2], "list"), (42, "int"), (0, "int"),
                                       (1, "int"), (True, "bool"), (b"x.yaml", "bytes")])  # fmt: skip
def test_api_checks_its_argument(bad, name):
    with pytest.raises(TypeError) as ei:
        gicsim.run(bad)
    assert str(ei.value) == f"gicsim.run: expected a path, a dict or a Scenario, got {name}"


def test_api_backend_keywords(tmp_path):
    with pytest.raises(ValueError, match="backend must be 'python' or 'linux', got 'foo'"):
        gicsim.run(SMALL, backend="foo")
    with pytest.raises(ValueError, match="give one of them"):
        gicsim.run(SMALL, backend="python", kernel_tree=str(tmp_path))
    from gicsim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="not a kernel tree"):
        gicsim.run(SMALL, kernel_tree=tmp_path)
    text = SMALL.read_text().replace("until_us: 6000", "until_us: 600").replace("at_us: 2000", "at_us: 300")
    (tmp_path / "s.yaml").write_text(text.replace("stop_us: 5500", "stop_us: 500"))
    res = gicsim.run(tmp_path / "s.yaml", backend="python")
    assert res.summary["kernel"]["backend"] == "python"
