"""``gicsim sweep``: one base scenario, many runs.

A sweep file names a base scenario and overrides by key path (``migration.source.
stragglers.0.exit_us``), as a ``grid`` (cartesian product) and/or a random ``sample``. Each
run is seeded from the sweep seed with ``numpy.random.SeedSequence.spawn`` unless the
overrides set ``seed`` themselves (``seed: 0-99`` sweeps seeds). Runs go to local worker
processes (``-j N``) or to a Dask cluster (``--dask ADDRESS``).

Every finished run is stored under a key of its resolved scenario
(``OUT/runs/<key>.json``, written atomically), so re-running a sweep only runs what is
missing. At the end all summaries are gathered into ``OUT/summaries.parquet`` and a
comparison report ``OUT/report.md``.

Example::

    name: straggler-vs-policy
    base: ../scenarios/straggler-retry.yaml
    seed: 1
    repeat: 2
    grid:
      migration.source.stragglers.0.exit_us: [50, 150, 300, 600]
      migration.source.on_ebusy: [abort, continue, {retry: 5, backoff_us: 100}]
    report: {x: migration.source.stragglers.0.exit_us, y: lost, group: migration.source.on_ebusy}

The implementation is in ``gicsim.sweeps`` (``spec``: the sweep file; ``runner``: running);
this module is the command (``gicsim.cli`` adds it to ``gicsim``) and re-exports the API.
"""

from __future__ import annotations

import signal
import sys
import typing
from pathlib import Path

import click

from gicsim.sweeps import (
    MAX_JOBS,
    METRICS,
    Run,
    RunFailed,
    Sweep,
    SweepError,
    SweepInterrupted,
    comparison,
    execute,
    finish,
    flat_row,
    load_sweep,
    run_one,
    scenario_key,
    set_path,
)
from gicsim.sweeps.failures import first_line, release, run_failed_line
from gicsim.sweeps.runner import SWEEP_FILES

__all__ = ["METRICS", "Run", "Sweep", "SweepError", "comparison", "execute", "finish", "flat_row",
           "load_sweep", "run_one", "scenario_key", "set_path", "sweep"]  # fmt: skip

MAX_DASK_TIMEOUT_S = 600.0


def _fail(code: int, *lines: str) -> typing.NoReturn:
    for ln in lines:
        click.echo(ln, err=True)
    sys.exit(code)


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=True))
@click.option("-j", "--jobs", type=int, default=1, show_default=True,
              help=f"Local worker processes, 1..{MAX_JOBS} (4 per CPU, at most 256).")  # fmt: skip
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster: [tcp://|tls://]HOST[:PORT] of its scheduler (port 8786 "
                   "by default). Trusted clusters only: see the note above.")  # fmt: skip
@click.option("--dask-timeout", type=float, default=5.0, show_default=True, metavar="SECONDS",
              help="How long to try to reach the scheduler and wait for a first worker.")  # fmt: skip
@click.option("--dask-tls-ca", type=click.Path(dir_okay=False), default=None,
              help="CA certificate (PEM) the scheduler's certificate must be signed by.")  # fmt: skip
@click.option("--dask-tls-cert", type=click.Path(dir_okay=False), default=None,
              help="This client's certificate (PEM).")  # fmt: skip
@click.option("--dask-tls-key", type=click.Path(dir_okay=False), default=None,
              help="This client's private key (PEM).")  # fmt: skip
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default=None,
              help="Default: reports/<sweep name>/.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def sweep(sweep_file: str, jobs: int, dask_address: str | None, dask_timeout: float,
          dask_tls_ca: str | None, dask_tls_cert: str | None, dask_tls_key: str | None,
          outdir: str | None, no_progress: bool) -> None:  # fmt: skip
    """Run a sweep: a base scenario plus a grid or random sample of overrides.

    Finished runs are kept under OUTPUT/runs/, so running the same sweep again only runs
    what is missing (a stored run that cannot be read back is reported and run again).
    Results: OUTPUT/summaries.parquet and OUTPUT/report.md. SIGINT or SIGTERM stop the
    sweep (exit 130 or 143): pending runs are cancelled, worker processes end, and every
    run finished so far stays stored. Local workers also die when the sweep is killed.

    Dask: tasks and their results travel between this process, the scheduler and the
    workers as pickles, so the scheduler and every worker can run any code here and this
    process any code there. Only use a scheduler and workers you trust, on a network you
    trust. Otherwise use TLS: start the scheduler and workers with --tls-ca-file,
    --tls-cert and --tls-key, and give a tls:// address with --dask-tls-ca, --dask-tls-cert
    and --dask-tls-key (or put them in a Dask config: distributed.comm.tls.ca-file and
    distributed.comm.tls.client.cert/key, with distributed.comm.require-encryption).
    The scheduler and the workers need the same gicsim installed (the scheduler
    unpickles the tasks too).

    Exit status: 0 done; 2 bad sweep file or options; 3 cannot reach the scheduler,
    cannot write the results, or a run failed; 130/143 interrupted.
    """
    from gicsim.sweeps.runner import check_options

    check_options(jobs, dask_address, dask_timeout, (dask_tls_ca, dask_tls_cert, dask_tls_key), _fail,
                  MAX_DASK_TIMEOUT_S)  # fmt: skip
    try:
        with _signals():
            _sweep(sweep_file, jobs, dask_address, dask_timeout, (dask_tls_ca, dask_tls_cert, dask_tls_key),
                   outdir, not no_progress)  # fmt: skip
    except SweepInterrupted as e:
        if dask_address is not None:  # a half-made Client may complain when collected at exit
            sys.unraisablehook = lambda _: None
        where = f" in {e.args[1]}/runs" if len(e.args) > 1 else ""
        _fail(128 + e.signum, f"gicsim: sweep interrupted by {signal.Signals(e.signum).name}; the "
                              f"finished runs are kept{where}: run the sweep again to resume")  # fmt: skip
    except KeyboardInterrupt:  # before the handlers are in place
        _fail(130, "gicsim: sweep interrupted by SIGINT")


def _signals() -> typing.ContextManager[None]:
    from gicsim.sweeps.runner import signals_stop_the_sweep

    return signals_stop_the_sweep()


def _sweep(sweep_file: str, jobs: int, dask_address: str | None, dask_timeout: float,
           tls: tuple[str | None, str | None, str | None], outdir: str | None,
           progress: bool) -> None:  # fmt: skip
    """The sweep command's one error boundary: input errors exit 2, environment and
    internal errors exit 3, one line each."""
    from gicsim.present.output import OutputError
    from gicsim.sweeps.runner import StoreError, StoreLocationError, claim_results, dask_executor

    try:
        sw = load_sweep(sweep_file)
    except SweepError as e:
        _fail(2, *e.problems)
    except (RecursionError, MemoryError) as e:
        _fail(2, f"{sweep_file}: too large or nested too deeply ({type(e).__name__})")
    out = Path(outdir) if outdir else Path("reports") / sw.name
    claim_results(out, "sweep", SWEEP_FILES, ("summaries.parquet",), _fail, write=False)
    client = executor = None
    ok = False
    try:
        if dask_address is not None:
            client, executor = dask_executor(dask_address, dask_timeout, tls, _fail)
        claim_results(out, "sweep", SWEEP_FILES, ("summaries.parquet",), _fail)
        rows, ran = execute(sw, out, executor, progress=progress, warn=lambda s: click.echo(s, err=True),
                            jobs=jobs)  # fmt: skip
        finish(rows, out, sw.report)
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
        _fail(3, f"gicsim: cannot write the sweep results in {out}: {e.strerror or e}"
                 + (f" ({e.filename})" if e.filename else ""))  # fmt: skip
    except Exception as e:  # noqa: BLE001 - a bug must not end in a traceback
        _fail(3, f"gicsim: internal error ({type(e).__name__}: {_first_line(e)}); the finished runs "
                 f"are kept in {out}/runs; please report it with the sweep file")  # fmt: skip
    finally:
        release(executor, client, ok)
    click.echo(f"{sw.name}: {len(sw.runs)} runs ({ran} run now, {len(sw.runs) - ran} already done) -> {out}")


_first_line = first_line

