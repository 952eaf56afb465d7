"""``gicsim`` command line: run and validate scenarios."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gicsim.scenario import Scenario, ScenarioError, load_scenario, resolved_dict


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``signum`` gives the exit status 128 + signum.

    A BaseException, like KeyboardInterrupt, so no ``except Exception`` on the way (the
    YAML loader's, a simulation's) can mistake it for an error of its own."""

    def __init__(self, name: str = "SIGINT") -> None:
        super().__init__(name)
        self.signum = int(getattr(signal.Signals, name, signal.SIGINT))


_critical_depth = 0
_pending: list[str] = []


def _on_signal(signum: int, frame: Any) -> None:
    """Raise :class:`Interrupted` now, or once the current critical section ends."""
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
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _interrupted(e: BaseException) -> typing.NoReturn:
    sig = e.signum if isinstance(e, Interrupted) else int(signal.SIGINT)
    name = signal.Signals(sig).name
    click.echo(f"gicsim: interrupted by {name}; stopped, no partial results were written", err=True)
    sys.exit(128 + sig)


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
        for p in problems:
            click.echo(p, err=True)
        sys.exit(2)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gicsim")
def main() -> None:
    """gicsim: co-simulate the KVM arm64 vGICv3 ITS and its save/restore during live
    migration. Run scenario files and see what happens to every LPI."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES without running them (exit 2 on any problem)."""
    for sc in _load_all(files):
        click.echo(f"{sc.name}: ok")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default="reports",
              show_default=True, help="Results go to OUTPUT/<scenario name>/.")  # fmt: skip
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False),
              help="Also write the summary JSON here (a list when several files run).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="Only print failures.")
@click.option("--report", "full_report", is_flag=True,
              help="Also write the full timing report: report.html and the plots (PNG, SVG).")  # fmt: skip
@click.option("--perfetto", is_flag=True, help="Also write trace.perfetto.json (open in ui.perfetto.dev).")
def run(files: tuple[str, ...], outdir: str, summary_path: str | None, quiet: bool, full_report: bool = False,
        perfetto: bool = False) -> None:  # fmt: skip
    """Run scenario FILES; exit 0 when every expect holds, 1 when one fails, 2 on bad input.

    Each run writes resolved.yaml, summary.json, trace.parquet and report.md to
    OUTPUT/<name>/, atomically (with --report also report.html and the plots; with
    --perfetto also trace.perfetto.json).
    """
    from gicsim.present.output import AtomicDir, dump_yaml, write_json_atomic
    from gicsim.present.report import write_markdown
    from gicsim.sim.simulation import run as run_scenario

    summaries = []
    failed = False
    try:
        with _interruptible():
            scenarios = _load_all(files)
            for sc in scenarios:
                res = run_scenario(sc)
                s = res.summary
                summaries.append(s)
                with _critical(), AtomicDir(Path(outdir) / sc.name) as tmp:
                    (tmp / "resolved.yaml").write_text(dump_yaml(resolved_dict(sc)))
                    (tmp / "summary.json").write_text(json.dumps(s, indent=2, default=str) + "\n")
                    res.trace.to_parquet(tmp / "trace.parquet", index=False)
                    if full_report or perfetto:
                        _extra_outputs(res, tmp, full_report, perfetto)
                    if not full_report:
                        write_markdown(res, tmp / "report.md")
                _print_verdict(s, quiet)
                failed |= not s["expect"]["passed"]
            if summary_path:
                with _critical():
                    write_json_atomic(Path(summary_path), summaries[0] if len(summaries) == 1 else summaries)
    except (KeyboardInterrupt, Interrupted) as e:
        _interrupted(e)
    except OSError as e:
        click.echo(f"gicsim: cannot write results: {e}", err=True)
        sys.exit(3)
    except Exception as e:  # noqa: BLE001 - a model bug must not end in a traceback
        click.echo(f"gicsim: internal error ({type(e).__name__}: {e}); no results were written "
                   "for this scenario; please report it with the scenario file", err=True)  # fmt: skip
        sys.exit(3)
    sys.exit(1 if failed else 0)


def _extra_outputs(res: Any, tmp: Path, full_report: bool, perfetto: bool) -> None:
    from gicsim.present import report as rep
    from gicsim.present.rundata import from_result

    run_data = from_result(res)
    files = rep.report_files(run_data, perfetto=perfetto) if full_report else {}
    if perfetto and not full_report:
        from gicsim.present import perfetto as pf

        files["trace.perfetto.json"] = pf.to_json(run_data).encode()
    for name, data in files.items():
        (tmp / name).write_bytes(data)


def _input_error(lines: list[str]) -> None:
    for ln in lines:
        click.echo(ln, err=True)
    sys.exit(2)


@main.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "outdir", type=click.Path(), default=None,
              help="Where to write. One input: default beside the run (a RUN_DIR) or reports/<name>/ "
                   "(a scenario, run first). Several inputs: a comparison, default reports/compare/.")  # fmt: skip
@click.option("--perfetto", is_flag=True, help="Also write trace.perfetto.json (open in ui.perfetto.dev).")
def report_cmd(inputs: tuple[str, ...], outdir: str | None, perfetto: bool) -> None:
    """Timing report of RUN_DIR_OR_SCENARIO... in Markdown and self-contained HTML with plots.

    A RUN_DIR is what `gicsim run` writes (resolved.yaml, summary.json, trace.parquet); a
    scenario file is run first. Several inputs give one comparison report, side by side.
    """
    from gicsim.present.report import report_command
    from gicsim.present.rundata import RunInputError

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        written = report_command(inputs, outdir, perfetto)
    except RunInputError as e:
        _input_error(e.lines)
    except (KeyboardInterrupt, Interrupted) as e:
        click.echo(f"gicsim: interrupted ({e or 'SIGINT'}); no partial results were written", err=True)
        sys.exit(130)
    for d in written:
        click.echo(f"report: {d / 'report.html'} (and report.md)")


@main.command("explain")
@click.argument("file", type=click.Path())
def explain_cmd(file: str) -> None:
    """Narrate a run (scenario FILE, run now, or a RUN_DIR): every migration step, every KVM
    call's result and why, and the causal chain of each lost, spurious or misrouted LPI."""
    from gicsim.present import explain, rundata

    try:
        run_data = rundata.load(file)
    except rundata.RunInputError as e:
        _input_error(e.lines)
    click.echo(explain.explain(run_data), nl=False)


def _step_names() -> tuple[str, ...]:
    from gicsim.scenario import DEST_STEPS, SOURCE_STEPS

    return tuple(SOURCE_STEPS) + tuple(s for s in DEST_STEPS if s not in SOURCE_STEPS)


@main.command("tables")
@click.argument("file", type=click.Path())
@click.option("--at", "step", required=True, help="Migration step after which to look (e.g. save_its_tables).")
@click.option("--side", type=click.Choice(["source", "destination"]), default=None,
              help="Whose guest memory (default: the side the step runs on).")  # fmt: skip
@click.option("--migration", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which migration (1-based).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True,
              help="Entries shown per table.")  # fmt: skip
def tables_cmd(file: str, step: str, side: str | None, migration: int, limit: int) -> None:
    """Hex dump of the DTE/ITE/CTE tables and pending tables in guest memory at the end of a
    migration STEP, each entry decoded (FILE: a scenario, or a RUN_DIR's resolved.yaml)."""
    from gicsim.present import tables
    from gicsim.present.rundata import RunInputError
    from gicsim.scenario import ScenarioError, load_scenario, scenario_from_dict

    names = _step_names()
    if step not in names:
        _input_error([f"--at: unknown step {step!r}; valid steps: {', '.join(names)}"])
    p = Path(file)
    try:
        if p.is_dir():
            from gicsim.present.rundata import read_run_dir

            sc = scenario_from_dict(read_run_dir(p).resolved, filename=f"{p}/resolved.yaml")
        else:
            sc = load_scenario(p)
    except ScenarioError as e:
        _input_error(list(e.problems))
    except RunInputError as e:
        _input_error(e.lines)
    try:
        snap = tables.capture(sc, step, side, migration, limit)
    except tables.TablesError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    click.echo(tables.render(snap), nl=False)


def _print_verdict(s: dict[str, Any], quiet: bool) -> None:
    ok = s["expect"]["passed"]
    if quiet and ok:
        return
    migs = ", ".join(m["status"] for m in s["migrations"]) or "no migration"
    lp = s["lpis"]
    click.echo(
        f"{'PASS' if ok else 'FAIL'} {s['scenario']}: {migs}; delivered {lp['delivered']}, "
        f"lost {lp['lost']}, spurious {lp['spurious']}, misrouted {lp['misrouted']}, "
        f"ebusy {sum(m['ebusy'] for m in s['migrations'])}, state_match {s['state_match']} "
        f"({s['events']} events, {s['wall_s']} s)"
    )
    for f in s["expect"]["failures"]:
        click.echo(f"  expect.{f['key']}: wanted {f['wanted']}, got {f['got']}")


def _register_optional() -> None:
    """Commands that live in their own modules (each adds itself to ``main``)."""
    from gicsim import sweep  # noqa: F401


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    # run the package's instance of the group (the one optional commands registered on)
    from gicsim.cli import main as _main

    _main()
