"""``gicsim`` command line: run and validate scenarios.

Every command runs inside one error boundary (:class:`Boundary`, the group's ``main``): input
errors (a bad scenario, run directory, sweep file or output location; a click usage error)
are one line each and exit 2; environment errors (``OSError``: ENOSPC, EIO, EROFS or EACCES
met while writing, ...) and internal errors are one line and exit 3; SIGINT/SIGTERM stop
with one line and exit 128 + the signal. Never a traceback, unless ``GICSIM_DEBUG=1`` asks
for one (printed before the line). Exit 1 means "a scenario's expect failed" and nothing
else (``tables`` on a step that did not run is an input error, 2). Commands added later to
``main`` (``@main.command()``, ``main.add_command``) get the same boundary: it wraps the
group, not each command. Every path argument or option of every command goes through
:class:`GuardedPath`: an empty path or a name over NAME_MAX is one input line, exit 2, and
so is an output location (``-o``, ``--summary``) that cannot be written
(:func:`check_output`), found before anything is simulated."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sys
import traceback
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gicsim.scenario import Scenario, ScenarioError, load_scenario, resolved_dict


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` gives the exit status 128 + signum.

    A KeyboardInterrupt, so a BaseException: no ``except Exception`` on the way (the YAML
    loader's, a simulation's) can mistake it for an error of its own, and code that already
    stops cleanly on Ctrl-C (``except KeyboardInterrupt``) stops the same way on SIGTERM."""

    def __init__(self, name: str = "SIGINT") -> None:
        super().__init__(name)
        self.signum = int(getattr(signal.Signals, name, signal.SIGINT))


_critical_depth = 0
_pending: list[str] = []
_handler_pid: int | None = None


def _on_signal(signum: int, frame: Any) -> None:
    """Raise :class:`Interrupted` now, or once the current critical section ends."""
    if _handler_pid is not None and os.getpid() != _handler_pid:
        # a forked worker inherited the handler: behave as if it had never been installed
        if signum == signal.SIGINT:
            signal.signal(signum, signal.default_int_handler)
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    name = signal.Signals(signum).name
    if _critical_depth:
        _pending.append(name)
        return
    raise Interrupted(name)


@contextlib.contextmanager
def _critical() -> Iterator[None]:
    """Results being committed: a signal waits until they are complete (or cleaned up)."""
    global _critical_depth
    _critical_depth += 1
    try:
        yield
    finally:
        _critical_depth -= 1
        if not _critical_depth and _pending:
            name = _pending[0]
            _pending.clear()
            raise Interrupted(name)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted`; the old handlers come back after."""
    global _handler_pid
    outer = _handler_pid
    _handler_pid = os.getpid()
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _handler_pid = outer


# ========================================================================= error boundary ====
LINE_LIMIT = 500  # characters of one error line (the values inside are cut shorter already)


def _printable(s: Any, limit: int | None = 60) -> str:
    from gicsim.present.output import printable

    return printable(s, limit)


def _input_lines(e: BaseException) -> list[str] | None:
    """The lines of an input error, None when ``e`` is not one: ScenarioError, RunInputError,
    OutputError, SweepError, TablesError, or any exception whose class sets ``gicsim_input_error = True``
    (its ``lines`` or ``problems``, else its text)."""
    if isinstance(e, ScenarioError):
        return list(e.problems)
    known = (("gicsim.present.rundata", "RunInputError"), ("gicsim.present.output", "OutputError"),
             ("gicsim.sweep", "SweepError"), ("gicsim.present.tables", "TablesError"))  # fmt: skip
    if not getattr(e, "gicsim_input_error", False) and not any(
        isinstance(c, type) and isinstance(e, c)
        for c in (getattr(sys.modules.get(m), n, None) for m, n in known)
    ):
        return None
    lines = getattr(e, "lines", None) or getattr(e, "problems", None) or [str(e) or type(e).__name__]
    return [str(x) for x in lines]


def _os_error(e: OSError) -> str:
    what = e.strerror or str(e) or type(e).__name__
    code = errno.errorcode.get(e.errno or 0)
    msg = f"gicsim: {what}" + (f" ({code})" if code else "")
    if e.filename is not None:
        msg += f": {_printable(os.fsdecode(e.filename), 200)}"
    return msg


def error_lines(e: BaseException) -> tuple[list[str], int]:
    """What the boundary prints for ``e`` (one line per problem) and the exit status."""
    if isinstance(e, click.Abort) and isinstance(e.__context__, KeyboardInterrupt):
        e = e.__context__
    if isinstance(e, KeyboardInterrupt):
        sig = e.signum if isinstance(e, Interrupted) else int(signal.SIGINT)
        name = signal.Signals(sig).name
        return [f"gicsim: interrupted by {name}; stopped, no partial results were written"], 128 + sig
    if isinstance(e, click.Abort):
        return ["gicsim: aborted"], 2
    if isinstance(e, click.UsageError):
        where = e.ctx.command_path if e.ctx is not None else "gicsim"
        return [f"{where}: {e.format_message()} (see '{where} --help')"], 2
    if isinstance(e, click.ClickException):
        return [f"gicsim: {e.format_message()}"], 2
    lines = _input_lines(e)
    if lines is not None:
        return lines, 2
    if isinstance(e, OSError):  # a name too long is one the user (or their scenario) chose
        return [_os_error(e)], 2 if e.errno == errno.ENAMETOOLONG else 3
    if isinstance(e, MemoryError):
        return ["gicsim: out of memory"], 3
    return [f"gicsim: internal error ({type(e).__name__}: {_printable(e, 200)}); "
            "please report it with the input files"], 3  # fmt: skip


def _debug() -> bool:
    return os.environ.get("GICSIM_DEBUG", "") not in ("", "0")


class Boundary(click.Group):
    """The ``gicsim`` group: one error boundary around the parsing and every command."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        guard_paths(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # past click's own handling (a blank line, then Abort)
            raise _Carried(e) from None

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            with _interruptible():
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except SystemExit:
            raise
        except _Carried as c:
            code = self._report(c.exc)
        except click.exceptions.NoArgsIsHelpError as e:  # plain `gicsim`: the help, as click does
            e.show()
            code = e.exit_code
        except BaseException as e:  # noqa: BLE001 - the boundary: no traceback gets past it
            code = self._report(e)
        if standalone_mode:
            sys.exit(code)
        return code

    @staticmethod
    def _report(e: BaseException) -> int:
        if _debug():
            traceback.print_exception(e, file=sys.stderr)
        lines, code = error_lines(e)
        for ln in lines:
            with contextlib.suppress(OSError, ValueError):
                click.echo(_printable(ln, LINE_LIMIT), err=True)
        return code


class _Carried(BaseException):
    """A KeyboardInterrupt on its way from a command to the boundary, unseen by click."""

    def __init__(self, exc: KeyboardInterrupt) -> None:
        super().__init__()
        self.exc = exc


def _load_all(files: tuple[str, ...]) -> list[Scenario]:
    """Validate every file first; any problem -> one line each on stderr, exit 2."""
    problems: list[str] = []
    out = []
    for f in files:
        try:
            out.append(load_scenario(f))
        except ScenarioError as e:
            problems.extend(e.problems)
    if problems:
        raise ScenarioError(problems)
    return out


def _input_error(lines: list[str]) -> typing.NoReturn:
    from gicsim.present.output import OutputError

    raise OutputError(lines)


# ================================================================ paths the user names ====
NAME_MAX, PATH_MAX = 255, 4096  # Linux: bytes of one path component / of a whole path
#: file systems that hold no files of the user's (writing there is never what was meant)
_PSEUDO_FS = frozenset("proc sysfs cgroup cgroup2 debugfs tracefs securityfs devpts pstore bpf "
                       "configfs fusectl mqueue efivarfs binfmt_misc nsfs".split())  # fmt: skip


def path_problem(path: str, what: str = "") -> str | None:
    """Why ``path``, as typed, names nothing (None: it may name something): empty, or a
    component over NAME_MAX bytes, or over PATH_MAX in all. ``what`` names an option."""
    if path == "":
        return f"{what}: an empty path names no file" if what else ": no such file"
    raw = os.fsencode(path)
    if len(raw) >= PATH_MAX or any(len(c) > NAME_MAX for c in raw.split(b"/")):
        return f"{_printable(path, 200)}: file name too long (ENAMETOOLONG)"
    return None


#: parameters that name where results go, by their name in every command (``-o DIR`` of
#: run, report, sweep and hazards; ``run --summary FILE``): True a directory, False a file
OUTPUT_PARAMS = {"outdir": True, "summary_path": False}


class GuardedPath(click.Path):
    """A ``click.Path`` that first refuses what :func:`path_problem` refuses, then what
    click's own checks refuse, then (an :data:`OUTPUT_PARAMS` one) what :func:`check_output`
    refuses: one input line, exit 2, before the command runs. The boundary puts it on every
    ``click.Path`` parameter of every command."""

    def __init__(self, inner: click.Path) -> None:  # noqa: D107 - a copy of ``inner``
        self.__dict__.update(inner.__dict__)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        opt = param.opts[0] if isinstance(param, click.Option) and param.opts else ""
        problem = path_problem(value, opt) if isinstance(value, str) else None
        if problem:
            _input_error([problem])
        rv = super().convert(value, param, ctx)
        directory = OUTPUT_PARAMS.get(param.name or "") if param is not None else None
        if directory is not None and isinstance(rv, str | os.PathLike):
            check_output(rv, opt, directory)
        return rv


def guard_paths(cmd: click.Command) -> None:
    """Put :class:`GuardedPath` on every path parameter of ``cmd`` (and its subcommands)."""
    for p in cmd.params:
        if isinstance(p.type, click.Path) and not isinstance(p.type, GuardedPath):
            p.type = GuardedPath(p.type)
    for sub in getattr(cmd, "commands", {}).values():
        guard_paths(sub)


def _mount(path: str) -> tuple[str, bool]:
    """(file system type, mounted read-only) of the mount holding existing ``path``."""
    best, found = -1, ("", False)
    with contextlib.suppress(OSError):
        real = os.path.realpath(path)
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for ln in f:
                left, _, right = ln.partition(" - ")
                fields = left.split()
                if len(fields) < 6 or not right:
                    continue
                mnt = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= best:  # the longest (last: on top) mount point
                    best, found = len(mnt), (right.split()[0], "ro" in fields[5].split(","))
    return found


def check_output(path: str | os.PathLike[str], what: str, directory: bool) -> None:
    """Before anything runs: can ``path`` (a directory, or a file) be made where the user
    named it (option ``what``)? No -> one input line naming ``path`` as given (exit 2): a
    parent that is a file, an entry of the other kind there, a read-only or pseudo file
    system (/proc), no write permission. What goes wrong only while writing (ENOSPC, EIO)
    stays an environment error (exit 3)."""
    problem = path_problem(os.fspath(path), what)
    if problem:
        _input_error([problem])
    p, why = Path(path), None
    anc = p.parent  # the nearest ancestor there is (a dangling link is something in the way)
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    where = p if directory and p.is_dir() else anc  # where gicsim makes entries
    if p.exists() and p.is_dir() != directory:
        why = "exists and is " + ("not " if directory else "") + "a directory"
    elif directory and os.path.lexists(p) and not p.exists():
        why = "a dangling symbolic link is there"
    elif not where.is_dir():
        why = f"{_printable(where, 200)} is not a directory"
    else:
        fstype, ro = _mount(str(where))
        if fstype in _PSEUDO_FS:
            why = f"{_printable(where, 200)} is on {fstype}, which holds no files"
        elif ro:
            why = "read-only file system (EROFS)"
        elif not os.access(where, os.W_OK | os.X_OK):
            why = f"no permission to write in {_printable(where, 200)} (EACCES)"
    if why:
        _input_error([f"{_printable(os.fspath(path), 200)}: cannot write here ({what}): {why}"])


_EXITS = ("2 bad input (one line each; a file's problems as FILE:LINE:COL: key.path: message), "
          "3 an environment or internal error (one line), 130/143 interrupted by SIGINT/SIGTERM "
          "(nothing half-written).")  # fmt: skip
EXITS = "0 done, " + _EXITS
RUN_EXITS = "0 every expect held, 1 an expect failed, " + _EXITS


def epilog(*examples: str, exits: str = EXITS) -> str:
    """A command's help epilog: its examples (kept as written) and its exit statuses."""
    return "\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples) + f"\n\nExit status: {exits}"


@click.group(cls=Boundary, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gicsim")
def main() -> None:
    """gicsim: co-simulate the KVM arm64 vGICv3 ITS and its save/restore during live
    migration. Run scenario files and see what happens to every LPI."""


@main.command(epilog=epilog("gicsim validate scenarios/clean-migration.yaml", "gicsim validate scenarios/*.yaml",
                            exits="0 every file is valid, 2 a problem (nothing is run)."))  # fmt: skip
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES without running them: exactly what `gicsim run` accepts.

    Each valid file prints 'NAME: ok'. Each problem, in every file, is one line on stderr,
    FILE:LINE:COL: key.path: message (where in the YAML, which key, what is wrong), and the
    exit status is 2."""
    for sc in _load_all(files):
        click.echo(f"{sc.name}: ok")


@main.command(epilog=epilog("gicsim run scenarios/clean-migration.yaml",
                            "gicsim run -o out --report --summary out/all.json scenarios/*.yaml",
                            "gicsim run --kernel-tree ~/src/linux scenarios/clean-migration.yaml",
                            exits=RUN_EXITS))  # fmt: skip
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default="reports",
              show_default=True, help="Results go to OUTPUT/<scenario name>/.")  # fmt: skip
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False),
              help="Also write the summary JSON here (a list when several files run).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="Only print failures.")
@click.option("--report", "full_report", is_flag=True,
              help="Also write the full timing report: report.html and the plots (PNG, SVG).")  # fmt: skip
@click.option("--perfetto", is_flag=True, help="Also write trace.perfetto.json.gz (open in ui.perfetto.dev).")
@click.option("--progress/--no-progress", "progress", default=None,
              help="Progress lines on stderr for runs longer than a few seconds (default: when stderr is a terminal).")  # fmt: skip
@click.option("--backend", type=click.Choice(["python", "linux"]), default=None,
              help="Who runs the kernel side: the Python model or the release's own code (kernel.backend).")
@click.option("--kernel-tree", "kernel_tree", type=click.Path(), default=None,
              help="Run the kernel side on this kernel tree's (or tarball's) own code (implies --backend "
                   "linux; refused with --backend python).")
def run(files: tuple[str, ...], outdir: str, summary_path: str | None, quiet: bool, full_report: bool = False,
        perfetto: bool = False, backend: str | None = None, kernel_tree: str | None = None,
        progress: bool | None = None) -> None:  # fmt: skip
    """Run scenario FILES; exit 0 when every expect holds, 1 when one fails, 2 on bad input.

    Each run writes resolved.yaml, summary.json, trace.parquet and report.md to
    OUTPUT/<name>/, atomically (with --report also report.html and the plots; with
    --perfetto also trace.perfetto.json.gz). Every output location is checked before
    anything runs. --kernel-tree runs the tree's own code whatever the scenario's
    kernel.release (a note on stderr says so when they differ).
    """
    from gicsim.present.output import (
        AtomicDir,
        atomic_file,
        dump_yaml,
        write_json_atomic,
        write_text_atomic,
    )
    from gicsim.present.report import write_markdown
    from gicsim.scenario.kernel_backend import with_kernel_backend
    from gicsim.sim.simulation import run as run_scenario
    from gicsim.sim.vm import kernel_library

    if kernel_tree is not None and backend == "python":
        raise click.UsageError("--kernel-tree runs the kernel side on that tree's own code, "
                               "--backend python on the Python model: give one of them")  # fmt: skip
    # -o and --summary are checked as they are parsed (GuardedPath), before anything runs
    scenarios = [with_kernel_backend(sc, backend, kernel_tree) for sc in _load_all(files)]
    for sc in scenarios:
        lib = kernel_library(sc)  # fetch/build/load first: a bad backend choice is exit 2 before any run
        if kernel_tree is not None and lib is not None:
            _note_tree_release(sc, lib.release, kernel_tree)
    out = Path(outdir)
    _check_run_targets(out, scenarios, files)
    summaries = []
    failed = False
    for sc in scenarios:
        prog = _progress(sc.name, progress)
        res = run_scenario(sc, prog)
        if prog is not None:
            prog.line("writing the results")
        s = res.summary
        summaries.append(s)
        with _critical(), AtomicDir(out / sc.name, check=_replaceable) as tmp:
            write_text_atomic(tmp / "resolved.yaml", dump_yaml(resolved_dict(sc)))
            write_json_atomic(tmp / "summary.json", s)
            with atomic_file(tmp / "trace.parquet") as f:
                res.trace.to_parquet(f, index=False)
            extra = _extra_outputs(res, tmp, full_report, perfetto) if full_report or perfetto else []
            if not full_report:
                write_markdown(res, tmp / "report.md")
        _print_result(sc, s, quiet, out / sc.name, extra)
        failed |= not s["expect"]["passed"]
    if summary_path:
        with _critical():
            write_json_atomic(Path(summary_path), summaries[0] if len(summaries) == 1 else summaries)
    sys.exit(1 if failed else 0)


def _note_tree_release(sc: Scenario, release: str, tree: str) -> None:
    """``--kernel-tree`` wins over the scenario's ``kernel.release`` (the tree's own code is
    what runs); when they differ, one line on stderr says so."""
    if release != sc.kernel.release and not release.startswith(sc.kernel.release + "."):
        click.echo(f"gicsim run: note: {sc.name}: the kernel side runs {_printable(tree, 200)}, "
                   f"kernel {release}, not the scenario's release {sc.kernel.release}", err=True)


def _progress(name: str, wanted: bool | None) -> Any:
    """A progress printer on stderr (gicsim.sim.progress), or None: --progress/--no-progress,
    else only when stderr is a terminal. It never writes to stdout or the results."""
    from gicsim.sim.progress import Progress

    stream = click.get_text_stream("stderr")
    on = wanted if wanted is not None else stream.isatty()
    return Progress(name, stream) if on else None


def _run_dir_problem(d: Path) -> str | None:
    """Why ``gicsim run`` may not replace ``d`` (None: it may). A symlink is replaced (the
    link itself: what it points to is never written or removed); a directory only when it
    holds nothing but files gicsim writes in a run directory."""
    from gicsim.present.output import MANIFEST, OutputError, is_temp_name, read_manifest
    from gicsim.present.report import RUN_DIR_FILES

    if d.is_symlink() or not d.exists():
        return None
    where = _printable(d, 200)
    if not d.is_dir():
        return f"{where}: exists and is not a directory; move it away or choose another -o"
    names = {n for n in os.listdir(d) if not is_temp_name(n)}
    if MANIFEST in names:  # a run's report (--report) is fine; a sweep's or hazard map's is not
        try:
            read_manifest(d, "report")
        except OutputError as e:
            return f"{e.lines[0]} (-o)"
    foreign = sorted(names - RUN_DIR_FILES - {MANIFEST})
    if foreign:
        some = ", ".join(_printable(n) for n in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        return (f"{where}: exists and is not a gicsim run directory (it holds {some}); "
                "move it away or choose another -o")  # fmt: skip
    return None


def _replaceable(d: Path) -> None:
    problem = _run_dir_problem(d)
    if problem:
        _input_error([problem])


def _check_run_targets(out: Path, scenarios: list[Scenario], files: tuple[str, ...]) -> None:
    """Before anything runs: no two scenarios with one name (one would overwrite the other's
    results), and nothing at OUTPUT/<name> that a run may not replace."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for sc, f in zip(scenarios, files, strict=True):
        if sc.name in first:
            problems.append(f"{_printable(f, 200)}: scenario name {sc.name!r} is also the name of "
                            f"{_printable(first[sc.name], 200)}; both would write OUTPUT/{sc.name}/, "
                            "give them different names")  # fmt: skip
            continue
        first[sc.name] = f
        p = _run_dir_problem(out / sc.name)
        if p:
            problems.append(p)
    if problems:
        _input_error(problems)


def _extra_outputs(res: Any, tmp: Path, full_report: bool, perfetto: bool) -> list[str]:
    """Write the report and/or the Perfetto trace into ``tmp``; the names written."""
    from gicsim.present import report as rep
    from gicsim.present.output import write_bytes_atomic
    from gicsim.present.rundata import from_result

    run_data = from_result(res)
    files = rep.report_files(run_data, perfetto=perfetto) if full_report else {}
    if perfetto and not full_report:
        from gicsim.present import perfetto as pf

        files.update(pf.files(run_data))
    for name, data in files.items():
        write_bytes_atomic(tmp / name, data)
    return list(files)


@main.command("report", epilog=epilog("gicsim report reports/clean-migration",
                                      "gicsim report -o cmp reports/clean-migration reports/straggler-retry"))  # fmt: skip
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "outdir", type=click.Path(), default=None,
              help="Where to write (into the directory: files gicsim did not write there are never "
                   "touched, and a non-empty directory that is not a gicsim report is refused). One "
                   "input: default beside the run (a RUN_DIR) or reports/<name>/ (a scenario, run "
                   "first). Several inputs: a comparison, default reports/compare/.")  # fmt: skip
@click.option("--perfetto", is_flag=True, help="Also write trace.perfetto.json.gz (open in ui.perfetto.dev).")
def report_cmd(inputs: tuple[str, ...], outdir: str | None, perfetto: bool) -> None:
    """Timing report of RUN_DIR_OR_SCENARIO... in Markdown and self-contained HTML with plots.

    A RUN_DIR is what `gicsim run` writes (resolved.yaml, summary.json, trace.parquet); a
    scenario file is run first. Several inputs give one comparison report, side by side.
    """
    from gicsim.present.report import report_command

    written = report_command(inputs, outdir, perfetto, guard=_critical)
    for d in written:
        click.echo(f"report: {_printable(d / 'report.html', None)} (and report.md)")


class LpiId(click.ParamType):
    """An LPI's INTID, decimal or with a 0x/0o/0b prefix; LPIs are INTIDs 8192 and up."""

    name = "LPI"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            n = value
        else:
            try:
                n = int(str(value).strip().replace("_", ""), 0)
            except ValueError:
                self.fail(f"{_printable(repr(value))} is not a number (e.g. 8192 or 0x2000)", param, ctx)
        if n < 8192:
            self.fail(f"{n} is not an LPI: LPIs are INTIDs 8192 (0x2000) and up", param, ctx)
        return n


@main.command("explain", epilog=epilog("gicsim explain scenarios/straggler-abort.yaml",
                                       "gicsim explain reports/clean-migration --lpi 0x2001"))  # fmt: skip
@click.argument("file", type=click.Path())
@click.option("--lpi", type=LpiId(), default=None,
              help="One LPI's life across both hosts instead: each raise, accept, drop, save, restore, "
                   "delivery and EOI, with its kernel record and pending-table bit side by side. "
                   "An INTID of 8192 (0x2000) or more; decimal or hex (0x2000).")  # fmt: skip
def explain_cmd(file: str, lpi: int | None = None) -> None:
    """Narrate a run (scenario FILE, run now, or a RUN_DIR): every migration step, every KVM
    call's result and why, and the causal chain of each lost, spurious or misrouted LPI."""
    from gicsim.present import explain, rundata
    from gicsim.present.output import terminal_safe

    if lpi is not None:
        from gicsim.present.lpi_life import lpi_life_command

        click.echo(terminal_safe(lpi_life_command(file, lpi)), nl=False)
        return

    run_data = rundata.load(file)
    click.echo(terminal_safe(explain.explain(run_data)), nl=False)


@main.command("diff", epilog=epilog("gicsim diff scenarios/clean-migration.yaml scenarios/ctlr-before-restore.yaml",
                                    "gicsim diff reports/clean-migration reports/straggler-retry"))  # fmt: skip
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
def diff_cmd(a: str, b: str) -> None:
    """Two runs side by side (scenario files, run now, or RUN_DIRs; typically one step order
    against another): the first divergence in plain words, the outcome difference, and the
    ITS and the affected LPIs at that point on each side.

    The traces are compared record by record (time, kind, side, fields): the first unequal
    record is the first divergence, told with the migration step each side was in. Then what
    each side did that the other did not, the summary keys that differ, and at the
    divergence the ITS of every host (enabled, CREADR/CWRITER, devices, ITEs, collections)
    and each affected LPI's kernel record and pending-table bit."""
    from gicsim.present.diff import diff_command
    from gicsim.present.output import terminal_safe

    click.echo(terminal_safe(diff_command(a, b)), nl=False)


def _step_names() -> tuple[str, ...]:
    from gicsim.scenario import DEST_STEPS, SOURCE_STEPS

    return tuple(SOURCE_STEPS) + tuple(s for s in DEST_STEPS if s not in SOURCE_STEPS)


STEP_NAMES = ", ".join(_step_names())


@main.command("tables", epilog=epilog("gicsim tables scenarios/clean-migration.yaml --at save_its_tables",
                                      "gicsim tables reports/clean-migration --at memory --diff its_restore_tables",
                                      exits="0 shown, 2 bad input or a step that did not run in that "
                                            "migration (left out, or the migration stopped before it), 3 an "
                                            "environment or internal error."))  # fmt: skip
@click.argument("file", type=click.Path())
@click.option("--at", "step", default=None, metavar="STEP",
              help="Migration step after which to look (default: the last save step that ended). "
                   f"STEP is one of: {STEP_NAMES}.")  # fmt: skip
@click.option("--side", type=click.Choice(["source", "destination"]), default=None,
              help="Whose guest memory (default: the side the step runs on).")  # fmt: skip
@click.option("--migration", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which migration (1-based).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True,
              help="Entries shown per table.")  # fmt: skip
@click.option("--queue", is_flag=True, help="Also decode the command queue (GITS_CBASER): queued and read commands.")
@click.option("--diff", "diff_step", default=None, metavar="STEP",
              help="Show only what changed in guest memory between the end of --at and the end of this "
                   "STEP (one of the --at names).")  # fmt: skip
def tables_cmd(file: str, step: str | None, side: str | None, migration: int, limit: int, queue: bool = False,
               diff_step: str | None = None) -> None:  # fmt: skip
    """Hex dump of the DTE/ITE/CTE tables and pending tables in guest memory at the end of a
    migration STEP, each entry decoded (FILE: a scenario, or a RUN_DIR's resolved.yaml)."""
    from gicsim.present import tables
    from gicsim.present.output import terminal_safe

    names = _step_names()
    for opt, val in (("--at", step), ("--diff", diff_step)):
        if val is not None and val not in names:
            _input_error([f"{opt}: unknown step {_printable(repr(val))}; valid steps: {', '.join(names)}"])
    sc = tables.load_input(file)  # a RUN_DIR: resolved.yaml only, never the trace
    # a step that did not run (tables.TablesError) is an input error: the boundary, exit 2
    if diff_step is None:
        text = tables.render(tables.capture(sc, step, side, migration, limit, queue))
    else:
        big = 1 << 30  # every entry, for the comparison
        first = tables.capture(sc, step, side, migration, big, queue) if step is None else None
        a, b = tables.capture_steps(sc, [first.step if first else step, diff_step], side, migration, big, queue)  # type: ignore[list-item]
        if first is not None:
            a.why = first.why
        text = tables.render_diff(a, b, limit)
    click.echo(terminal_safe(text), nl=False)


def _print_result(sc: Scenario, s: dict[str, Any], quiet: bool, where: Path, extra: list[str]) -> None:
    """The verdict apart from the outcome, the counts, where the results went, the paths
    of the report and Perfetto trace written (:func:`gicsim.present.outcome.run_lines`)."""
    from gicsim.present import outcome

    if quiet and s["expect"]["passed"]:
        return
    written = [f"report: {_printable(where / n, None)}" for n in extra if n == "report.html"]
    written += [f"perfetto: {_printable(where / n, None)}" for n in extra if n.startswith("trace.perfetto")]
    for ln in outcome.run_lines(s, outcome.has_expect(sc.expect), f"{_printable(where, None)}/", written):
        click.echo(ln)


def _register_optional() -> None:
    """Commands that live in their own modules (they do not import this one)."""
    from gicsim.hazards.command import hazards as hazards_command
    from gicsim.kernelcmd import kernel as kernel_command
    from gicsim.sweep import sweep as sweep_command

    main.add_command(sweep_command)
    main.add_command(kernel_command)
    main.add_command(hazards_command)


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    main()  # the optional commands are registered above, on this module's group too
