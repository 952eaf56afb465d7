"""``gicsim hazards SCENARIO``: the command (``gicsim.cli`` adds it to ``gicsim``).

Error handling, ``-j`` bounds, ``--dask`` options and signals are ``gicsim sweep``'s
(``gicsim.sweep``): input errors exit 2, environment and internal errors 3, SIGINT/SIGTERM
130/143 with every finished run kept in OUT/runs/ (run the command again to resume).
"""

from __future__ import annotations

import json
import signal
import sys
import typing
from pathlib import Path

import click

from gicsim.sweeps import MAX_JOBS, RunFailed, SweepError, SweepInterrupted
from gicsim.sweeps.failures import first_line, release, run_failed_line

MAX_DASK_TIMEOUT_S = 600.0


def _fail(code: int, *lines: str) -> typing.NoReturn:
    for ln in lines:
        click.echo(ln, err=True)
    sys.exit(code)


_first_line = first_line


@click.command("hazards")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--space", "space_file", type=click.Path(dir_okay=False), default=None, metavar="SPACE.yaml",
              help="Dimensions to explore (default: every destination order and each step left out).")  # fmt: skip
@click.option("-j", "--jobs", type=int, default=1, show_default=True,
              help=f"Local worker processes, 1..{MAX_JOBS}.")  # fmt: skip
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster ([tcp://|tls://]HOST[:PORT]); trusted clusters only "
                   "(see gicsim sweep --help).")  # fmt: skip
@click.option("--dask-timeout", type=float, default=5.0, show_default=True, metavar="SECONDS")
@click.option("--dask-tls-ca", type=click.Path(dir_okay=False), default=None)
@click.option("--dask-tls-cert", type=click.Path(dir_okay=False), default=None)
@click.option("--dask-tls-key", type=click.Path(dir_okay=False), default=None)
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default=None,
              help="Default: reports/hazards-<scenario name>/.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def hazards(scenario: str, space_file: str | None, jobs: int, dask_address: str | None, dask_timeout: float,
            dask_tls_ca: str | None, dask_tls_cert: str | None, dask_tls_key: str | None,
            outdir: str | None, as_json: bool, no_progress: bool) -> None:  # fmt: skip
    """Run SCENARIO under a space of variations and classify every run.

    Default space: every permutation of the scenario's destination steps plus each step
    left out. The classes come from the summaries alone; the ordering rules (the minimal
    precedence constraints separating clean orders from hazardous ones, checked exactly)
    and each rule's mechanism (explain's cause line for a representative) are derived from
    them. Writes OUTPUT/hazards.json (docs/hazards-json.md) and the report; finished runs are
    kept under OUTPUT/runs/, so running again only runs what is missing.

    Exit status: 0 done; 2 bad scenario, space file or options; 3 cannot reach the
    scheduler, cannot write the results, or a run failed; 130/143 interrupted.
    """
    from gicsim.sweeps.runner import check_options

    check_options(jobs, dask_address, dask_timeout, (dask_tls_ca, dask_tls_cert, dask_tls_key), _fail,
                  MAX_DASK_TIMEOUT_S)  # fmt: skip
    from gicsim.sweeps.runner import signals_stop_the_sweep

    try:
        with signals_stop_the_sweep():
            _hazards(scenario, space_file, jobs, dask_address, dask_timeout,
                     (dask_tls_ca, dask_tls_cert, dask_tls_key), outdir, as_json, not no_progress)  # fmt: skip
    except SweepInterrupted as e:
        if dask_address is not None:
            sys.unraisablehook = lambda _: None
        where = f" in {e.args[1]}/runs" if len(e.args) > 1 else ""
        _fail(128 + e.signum, f"gicsim: hazards interrupted by {signal.Signals(e.signum).name}; the "
                              f"finished runs are kept{where}: run the command again to resume")  # fmt: skip
    except KeyboardInterrupt:
        _fail(130, "gicsim: hazards interrupted by SIGINT")


def _hazards(scenario: str, space_file: str | None, jobs: int, dask_address: str | None, dask_timeout: float,
             tls: tuple[str | None, str | None, str | None], outdir: str | None, as_json: bool,
             progress: bool) -> None:  # fmt: skip
    from gicsim.hazards import explore, space_for
    from gicsim.present.output import OutputError
    from gicsim.scenario import ScenarioError
    from gicsim.sweeps.runner import (
        StoreError,
        StoreLocationError,
        claim_results,
        critical,
        dask_executor,
    )

    try:
        space = space_for(scenario, space_file)
    except ScenarioError as e:
        _fail(2, *e.problems)
    except SweepError as e:
        _fail(2, *e.problems)
    except (RecursionError, MemoryError) as e:
        _fail(2, f"{space_file or scenario}: too large or nested too deeply ({type(e).__name__})")
    out = Path(outdir) if outdir else Path("reports") / f"hazards-{space.base['name']}"
    from gicsim.hazards.report import HAZARD_FILES

    claim_results(out, "hazards", HAZARD_FILES, ("hazards.json",), _fail, write=False)
    click.echo(f"{space.base['name']}: {space.runs:,} runs ({len(space.orders):,} orders + "
               f"{len(space.left_out)} left out, x {len(space.combos)} combination"
               f"{'s' if len(space.combos) != 1 else ''} of the other dimensions) -> {out}", err=True)  # fmt: skip
    client = executor = None
    ok = False
    try:
        if dask_address is not None:
            client, executor = dask_executor(dask_address, dask_timeout, tls, _fail)
        claim_results(out, "hazards", HAZARD_FILES, ("hazards.json",), _fail)
        result = explore(space, out, scenario, executor, jobs=jobs, progress=progress,
                         warn=lambda s: click.echo(s, err=True))  # fmt: skip
        result["space_file"] = space_file
        with critical():
            _write(result, out)
        ok = True
    except SweepInterrupted as e:
        e.args = (e.args[0], str(out))
        raise
    except RunFailed as e:
        _fail(3, run_failed_line(e, out, dask=client is not None))
    except StoreLocationError as e:
        _fail(2, f"gicsim: {e}")
    except StoreError as e:
        _fail(3, f"gicsim: {e}")
    except OutputError as e:
        _fail(2, *e.lines)
    except OSError as e:
        _fail(3, f"gicsim: cannot write the hazard results in {out}: {e.strerror or e}"
                 + (f" ({e.filename})" if e.filename else ""))  # fmt: skip
    except Exception as e:  # noqa: BLE001 - a bug must not end in a traceback
        _fail(3, f"gicsim: internal error ({type(e).__name__}: {_first_line(e)}); the finished runs "
                 f"are kept in {out}/runs; please report it with the scenario")  # fmt: skip
    finally:
        release(executor, client, ok)
    if as_json:
        click.echo(json.dumps(result, sort_keys=False))
        return
    n_clean = sum(c["count"] for c in result["classes"] if c["clean"])
    cons = ", ".join(f"{a} < {b}" for a, b in result["constraints"]) or "none"
    speed = (f"{result['runs_per_s']} runs/s" if result.get("ran_now", 1)
             else f"all {result['runs']:,} runs from the store")  # fmt: skip
    click.echo(f"{result['scenario']}: {result['runs']:,} runs, {len(result['classes'])} classes "
               f"({n_clean:,} clean runs), {speed}")  # fmt: skip
    if not result["clean_orders"]:
        click.echo("  constraints: none — no order in this space is clean (nothing to separate)")
    else:
        click.echo(f"  constraints: {cons} (check {'holds' if result['constraint_check']['holds'] else 'FAILS'})")
    click.echo(f"  results: {out}/hazards.json")


def _write(result: dict[str, typing.Any], out: Path) -> None:
    """hazards.json and the report into OUT, through the one writer of result directories
    (only over files a hazard map wrote there)."""
    from gicsim.hazards import report
    from gicsim.present.output import write_report_dir

    files = {"hazards.json": (json.dumps(result, indent=2, default=str) + "\n").encode()}
    files |= report.files(result)
    write_report_dir(out, files, kind="hazards", fixed=report.HAZARD_FILES, stores=("runs",))
