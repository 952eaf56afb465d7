"""Running a sweep: the resumable store, local worker processes, a Dask cluster, signals.

Every finished run is stored as ``OUT/runs/<key>.json`` (written atomically by
``gicsim.present.output``); a stored run that cannot be read back is reported and run
again. Work is handed out in a bounded window (at most twice the number of workers in
flight), so stopping a sweep only has to cancel that window. SIGINT and SIGTERM stop the
sweep between two stores (never half-way through writing one): pending runs are
cancelled, local workers are terminated, and the store holds every run finished so far.
Local workers also die with the sweep process when it is killed outright
(``PR_SET_PDEATHSIG`` on Linux, plus a watchdog thread polling the parent pid).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from gicsim.present.output import (
    clean_stale_temps,
    mark_written,
    printable,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from gicsim.scenario.load import InputFileError, read_input_file
from gicsim.sweeps.spec import Run, Sweep

MAX_STORED_BYTES = 16 << 20  # one stored run (its summary is a few KiB)
MAX_JOBS = min(256, 4 * (os.cpu_count() or 1))
DASK_PORT = 8786


class SweepInterrupted(BaseException):
    """SIGINT or SIGTERM: a BaseException, so no ``except Exception`` on the way takes it
    for an error of its own."""

    def __init__(self, signum: int | str) -> None:
        # SimPy re-raises an exception out of a process as ``type(e)(*e.args)``: accept the
        # name this constructor stores in ``args`` as well as the number
        sig = signal.Signals[signum] if isinstance(signum, str) else signal.Signals(signum)
        super().__init__(sig.name)
        self.signum = int(sig)


class RunFailed(Exception):
    """A run raised (in a worker or in-process); ``run`` says which."""

    def __init__(self, run: Run, error: BaseException) -> None:
        super().__init__(f"run {run.index} failed: {type(error).__name__}: {error}")
        self.run = run
        self.error = error


class StoreError(Exception):
    """A stored run cannot be used and cannot be replaced."""


# ----------------------------------------------------------------------- signals ----
_critical_depth = 0
_pending: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
    if _critical_depth:
        _pending.append(signum)
        return
    raise SweepInterrupted(signum)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A result being stored: a signal waits until it is complete."""
    global _critical_depth
    _critical_depth += 1
    try:
        yield
    finally:
        _critical_depth -= 1
        if not _critical_depth and _pending:
            signum = _pending[0]
            _pending.clear()
            raise SweepInterrupted(signum)


@contextlib.contextmanager
def signals_stop_the_sweep() -> Iterator[None]:
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------- workers ----
def run_one(scenario: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point (picklable): run one resolved scenario, return its summary."""
    from gicsim.judge.trace import digest
    from gicsim.sim.simulation import run

    res = run(scenario)
    return {**res.summary, "trace_digest": digest(res.records)}


PR_SET_PDEATHSIG = 1


def _worker_init(parent: int) -> None:
    """Local worker initializer: die with the parent, leave signals to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="gicsim-parent-watch",
                     daemon=True).start()  # fmt: skip


def _watch_parent(parent: int) -> None:
    """Fallback where PR_SET_PDEATHSIG is not available: poll the parent pid."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def local_executor(jobs: int, todo: int) -> ProcessPoolExecutor:
    """At most ``jobs`` (and no more than runs to do) forked workers that die with us."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    return ProcessPoolExecutor(max_workers=max(1, min(jobs, todo)), mp_context=ctx,
                               initializer=_worker_init, initargs=(os.getpid(),))  # fmt: skip


def stop_executor(executor: Executor, cancel: bool) -> None:
    """Shut down; with ``cancel`` drop pending work and terminate local workers now."""
    if not cancel:
        executor.shutdown(wait=True)
        return
    if isinstance(executor, ProcessPoolExecutor):
        procs = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        deadline = time.monotonic() + 5
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(max(0.0, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join(1)
        return
    executor.shutdown(wait=False)  # a Dask ClientExecutor cancels its futures


def workers_of(executor: Executor) -> int:
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int):
        return n
    client = getattr(executor, "_client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            return max(1, sum(client.nthreads().values()))
    return 1


# ------------------------------------------------------------------------- store ----
_KEY_RE = re.compile(r"[0-9a-f]{20}")


class StoreLocationError(StoreError):
    """``OUT/runs`` is not a real directory (a symlink, a file): an input error, the user
    chose OUT."""


_IN_A_REAL_DIR = "gicsim keeps its stored runs in a real directory"


def _store_dir_problem(directory: Path) -> str | None:
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return None
    what = ("is a symlink" if stat.S_ISLNK(st.st_mode) else
            None if stat.S_ISDIR(st.st_mode) else "exists and is not a directory")  # fmt: skip
    return None if what is None else f"{printable(directory, 200)}: {what}; {_IN_A_REAL_DIR}"


class RunStore:
    """``DIR/<key>.json``: one finished run each, ``{"key", "overrides", "summary"}``. DIR
    must be a real directory (a symlink there is refused, never followed), and a symlink at
    a stored run is never read or written through."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._check_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._check_dir()
        clean_stale_temps(self.dir)  # what a killed sweep was writing

    def _check_dir(self) -> None:
        problem = _store_dir_problem(self.dir)
        if problem:
            raise StoreLocationError(problem)

    def path(self, run: Run) -> Path:
        assert _KEY_RE.fullmatch(run.key)
        return self.dir / f"{run.key}.json"

    def get(self, run: Run) -> tuple[dict[str, Any] | None, str | None]:
        """(summary, None) for a usable stored run, (None, None) when there is none,
        (None, why) when the stored one is corrupt."""
        p = self.path(run)
        self._check_dir()
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return None, None
        if stat.S_ISLNK(st.st_mode):
            return None, "a symlink, not a stored run"
        try:
            saved = json.loads(read_input_file(p, MAX_STORED_BYTES, "stored run", "MAX_STORED_BYTES"),
                               parse_constant=_no_constant)  # fmt: skip
            if not isinstance(saved, dict) or not isinstance(saved.get("summary"), dict):
                raise ValueError("not a stored run")
            if saved.get("key", run.key) != run.key:
                raise ValueError("stored under another key")
            check_summary(saved["summary"])
            flat_row(run, saved["summary"])  # everything the results need is there
        except InputFileError as e:
            return None, e.reason
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            why = "not JSON" if isinstance(e, json.JSONDecodeError) else (
                f"missing {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__)  # fmt: skip
            return None, why
        return saved["summary"], None

    def put(self, run: Run, summary: dict[str, Any]) -> None:
        """Atomically (a link, FIFO or file in the way is replaced by the rename, never
        followed or opened); a directory in the way is refused."""
        p = self.path(run)
        self._check_dir()
        if p.is_dir() and not p.is_symlink():
            raise StoreError(f"{p}: a directory is in the way of a stored run; remove it")
        write_json_atomic(p, {"key": run.key, "overrides": run.overrides, "summary": summary})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a value of a stored run")


_MAX_COUNT = 1 << 63


def _count(v: Any, where: str) -> None:
    if type(v) is not int or not 0 <= v < _MAX_COUNT:
        raise ValueError(f"summary.{where}: expected a count, got {printable(repr(v))}")


def _number(v: Any, where: str, none: bool = False) -> None:
    if v is None and none:
        return
    if type(v) not in (int, float) or not math.isfinite(v) or abs(v) >= _MAX_COUNT:
        raise ValueError(f"summary.{where}: expected a number, got {printable(repr(v))}")


def _of(v: Any, types: tuple[type, ...], where: str) -> Any:
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
        raise ValueError(f"summary.{where}: expected {' or '.join(t.__name__ for t in types)}, "
                         f"got {printable(repr(v))}")  # fmt: skip
    return v


def check_summary(summary: dict[str, Any]) -> None:
    """The types and ranges of what the results read from a summary (a stored run of a
    sweep or a hazard space): ValueError naming the first field that is wrong. The one check
    of both stores (``RunStore.get``)."""
    _count(summary["seed"], "seed")
    _count(summary["events"], "events")
    _number(summary["wall_s"], "wall_s")
    _of(summary.get("state_match"), (bool, type(None)), "state_match")
    _of(_of(summary["expect"], (dict,), "expect").get("passed"), (bool, type(None)), "expect.passed")
    _of(summary.get("trace_digest"), (str, type(None)), "trace_digest")
    lp = _of(summary["lpis"], (dict,), "lpis")
    for k in ("accepted", "delivered", "lost", "spurious", "misrouted"):
        _count(lp[k], f"lpis.{k}")
    for reason, n in _of(lp["dropped"], (dict,), "lpis.dropped").items():
        _count(n, f"lpis.dropped.{printable(reason)}")
    lat = _of(lp["latency_ns"], (dict,), "lpis.latency_ns")
    for q in ("p50", "p99"):
        _number(lat[q], f"lpis.latency_ns.{q}", none=True)
    for i, m in enumerate(_of(summary["migrations"], (list,), "migrations")):
        _of(m, (dict,), f"migrations.{i}")
        _of(m["status"], (str,), f"migrations.{i}.status")
        _count(m["ebusy"], f"migrations.{i}.ebusy")
        _number(m.get("downtime_ns"), f"migrations.{i}.downtime_ns", none=True)
        for j, e in enumerate(_of(m.get("errors", []), (list,), f"migrations.{i}.errors")):
            _of(_of(e, (dict,), f"migrations.{i}.errors.{j}")["step"], (str,), f"migrations.{i}.errors.{j}.step")
            _of(e["errno"], (str, int), f"migrations.{i}.errors.{j}.errno")


# ----------------------------------------------------------------------- running ----
def flat_row(run: Run, summary: dict[str, Any]) -> dict[str, Any]:
    lp = summary["lpis"]
    m = summary["migrations"][0] if summary["migrations"] else {}
    row: dict[str, Any] = {"run": run.index, "key": run.key, "seed": summary["seed"]}
    for k, v in run.overrides.items():
        row[k] = json.dumps(v) if isinstance(v, dict | list) else v
    row.update(
        status=m.get("status", "none"),
        lost=lp["lost"],
        spurious=lp["spurious"],
        misrouted=lp["misrouted"],
        ebusy=sum(x["ebusy"] for x in summary["migrations"]),
        accepted=lp["accepted"],
        delivered=lp["delivered"],
        downtime_ns=m.get("downtime_ns"),
        latency_p50_ns=lp["latency_ns"]["p50"],
        latency_p99_ns=lp["latency_ns"]["p99"],
        state_match=summary["state_match"],
        expect_passed=summary["expect"]["passed"],
        events=summary["events"],
        wall_s=summary["wall_s"],
        trace_digest=summary.get("trace_digest"),
    )
    for reason, n in lp["dropped"].items():
        row[f"dropped_{reason}"] = n
    return row


#: how long the runs may all stay pending before a line says why (a cluster without workers)
WAITING_NOTE_S = 30.0


def _no_workers(executor: Executor) -> bool:
    """Whether ``executor`` is a Dask cluster's that has no worker now."""
    client = getattr(executor, "_client", None)
    if client is None:
        return False
    try:
        return not client.nthreads()
    except Exception:  # noqa: BLE001 - the scheduler is away: it has no workers for us either
        return True


def _drain(executor: Executor, todo: list[Run], done: Callable[[Run, dict[str, Any]], None],
           window: int, worker: Callable[[Any], dict[str, Any]] | None = None,
           note: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Submit at most ``window`` runs at a time; cancel whatever is pending on the way out.
    When nothing finishes for :data:`WAITING_NOTE_S` and a Dask scheduler has no workers,
    ``note`` gets a line saying so (again every :data:`WAITING_NOTE_S` while it lasts)."""
    worker = worker or run_one  # looked up now (tests replace run_one)
    it = iter(todo)
    pending: dict[Future[Any], Run] = {}
    left = len(todo)

    def fill() -> None:
        while len(pending) < window:
            r = next(it, None)
            if r is None:
                return
            pending[executor.submit(worker, r.scenario)] = r

    try:
        fill()
        while pending:
            finished, _ = wait(list(pending), timeout=WAITING_NOTE_S, return_when=FIRST_COMPLETED)
            if not finished:
                if note is not None and _no_workers(executor):
                    note(f"gicsim: waiting: the scheduler has no workers ({left:,} runs left)")
                continue
            for f in finished:
                r = pending.pop(f)
                try:
                    summary = f.result()
                except Exception as e:  # noqa: BLE001 - reported with the run that failed
                    raise RunFailed(r, e) from e
                done(r, summary)
                left -= 1
            fill()
    finally:
        for f in pending:
            f.cancel()


def execute(
    sweep: Sweep,
    outdir: Path,
    executor: Executor | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    window: int | None = None,
    jobs: int = 1,
    worker: Callable[[Any], dict[str, Any]] | None = None,
    row: Callable[[Run, dict[str, Any]], Any] | None = None,
) -> tuple[list[Any], int]:
    """Run what is missing; returns (rows of every run, how many ran now).

    ``executor``: where runs go (None: in this process, or ``jobs`` > 1 local worker
    processes started and stopped here). ``warn`` gets one line per corrupt stored run.
    ``worker`` (picklable) turns a ``Run.scenario`` into its summary (``run_one``: a resolved
    scenario dict; ``gicsim.hazards`` passes its own, cheaper one); ``row`` turns each
    (run, summary) into what is returned (``flat_row``: the sweep's table row)."""
    worker = worker or run_one  # looked up now (tests replace run_one)
    row = row or flat_row
    from tqdm import tqdm

    store = RunStore(outdir / "runs")
    summaries: dict[int, dict[str, Any]] = {}
    todo = []
    for r in sweep.runs:
        s, why = store.get(r)
        if s is not None:
            summaries[r.index] = s
            continue
        if why is not None and warn is not None:
            warn(f"gicsim: {store.path(r)}: stored run is corrupt ({why}); running it again")
        todo.append(r)
    bar = tqdm(total=len(sweep.runs), initial=len(sweep.runs) - len(todo), unit="run",
               disable=not progress, file=sys.stderr)  # fmt: skip

    def stored(run: Run, summary: dict[str, Any]) -> None:
        with critical():
            store.put(run, summary)
        summaries[run.index] = summary
        bar.update(1)

    own = None
    if executor is None and jobs > 1 and len(todo) > 1:
        executor = own = local_executor(jobs, len(todo))
    ok = False
    try:
        if executor is None:
            for r in todo:
                try:
                    s = worker(r.scenario)
                except Exception as e:  # noqa: BLE001 - reported with the run that failed
                    raise RunFailed(r, e) from e
                stored(r, s)
        else:
            note = warn if warn is None or not progress else (lambda line: bar.write(line, file=sys.stderr))
            _drain(executor, todo, stored, window or 2 * workers_of(executor), worker, note)
        ok = True
    finally:
        bar.close()
        if own is not None:
            with critical():  # a second signal must not cut the clean-up short
                stop_executor(own, cancel=not ok)
    rows = [row(r, summaries[r.index]) for r in sweep.runs]
    return rows, len(todo)


def _plotted(df: Any, report: dict[str, str]) -> tuple[str, str, str | None] | None:
    """(x, y, group) of the sweep's ``report:`` when the rows have them (what the table and
    the plot show), else None."""
    y = report.get("y", "lost")
    x = report.get("x")
    g = report.get("group")
    if x and x in df and y in df:
        return x, y, (g if g and g in df else None)
    return None


def comparison(rows: Iterable[dict[str, Any]], report: dict[str, str]) -> str:
    import pandas as pd

    df = pd.DataFrame(list(rows))
    out = [f"# Sweep: {len(df)} runs", ""]
    xyg = _plotted(df, report)
    if xyg:
        x, y, cols = xyg
        table = df.pivot_table(index=x, columns=cols, values=y, aggfunc="mean")
        out += [f"Mean `{y}` by `{x}`" + (f" and `{cols}`" if cols else "") + ":", "", table.to_markdown(), ""]
        out += [f"![{y} by {x}](sweep.png)", "", f"*{_plot_caption(x, y, cols)}* ([SVG](sweep.svg))", ""]
    counts = df.groupby("status").size().to_dict()
    out += ["Migration outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), ""]
    shown = [c for c in df.columns if c not in ("key",)]
    out += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(str(r[c]) for c in shown) + " |")
    return "\n".join(out) + "\n"


def finish(rows: list[dict[str, Any]], outdir: Path, report: dict[str, str]) -> None:
    """``summaries.parquet`` and ``report.md``, each written atomically (temporary file
    with an unpredictable name, then rename: a planted link is replaced, never followed)."""
    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    text = comparison(rows, report)
    df = pd.DataFrame(rows)
    xyg = _plotted(df, report)
    fig = None
    if xyg:
        from gicsim.present import plots

        fig = plots.sweep(df, *xyg, caption=_plot_caption(*xyg))
    clean_stale_temps(outdir)
    with critical():
        written = ["summaries.parquet"]
        write_bytes_atomic(outdir / "summaries.parquet", buf.getvalue())
        if fig is not None:
            write_bytes_atomic(outdir / "sweep.png", fig.png)
            write_text_atomic(outdir / "sweep.svg", fig.svg)
            written += ["sweep.png", "sweep.svg"]
        write_text_atomic(outdir / "report.md", text)
        mark_written(outdir, "sweep", [*written, "report.md"])


#: the files ``finish`` writes in a sweep's directory (beside its store ``runs/``)
SWEEP_FILES = ("summaries.parquet", "sweep.png", "sweep.svg", "report.md")


def _plot_caption(x: str, y: str, group: str | None) -> str:
    return (f"`{y}` of every run (dots) and its mean (line) by `{x}`" + (f", one colour per `{group}`" if group else "")
            + " (the sweep file's `report:`).")  # fmt: skip


# -------------------------------------------------------------------------- dask ----
class DaskAddressError(ValueError):
    pass


_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
_ADDR_RE = re.compile(rf"(?:(?P<scheme>tcp|tls)://)?(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?")


def dask_address(address: str) -> str:
    """``[tcp://|tls://]HOST[:PORT]`` -> ``SCHEME://HOST:PORT`` (port 8786 by default)."""
    m = _ADDR_RE.fullmatch(address)
    if not m:
        shown = address if len(address) <= 80 and address.isprintable() else repr(address[:80]) + "..."
        raise DaskAddressError(f"--dask: {shown!r} is not a scheduler address; expected "
                               f"[tcp://|tls://]HOST[:PORT] (e.g. tcp://10.0.0.5:{DASK_PORT})")  # fmt: skip
    port = int(m.group("port") or DASK_PORT)
    if not 1 <= port <= 65535:
        raise DaskAddressError(f"--dask: port {port} out of range 1..65535")
    return f"{m.group('scheme') or 'tcp'}://{m.group('host')}:{port}"


def dask_client(address: str, timeout: float, ca: str | None, cert: str | None, key: str | None) -> Any:
    """A connected Client; raises DaskAddressError (bad input) or ConnectionError (cannot
    reach the scheduler within ``timeout`` seconds, or it has no workers)."""
    import logging

    addr = dask_address(address)
    tls = any((ca, cert, key))
    if tls and not addr.startswith("tls://"):
        raise DaskAddressError("--dask-tls-*: TLS needs a tls:// scheduler address")
    if tls and not (ca and cert and key):
        raise DaskAddressError("--dask-tls-ca, --dask-tls-cert and --dask-tls-key go together")
    for opt, f in (("--dask-tls-ca", ca), ("--dask-tls-cert", cert), ("--dask-tls-key", key)):
        if f is not None and not os.path.isfile(f):
            raise DaskAddressError(f"{opt}: {printable(f)}: no such file")
    import dask

    if addr.startswith("tls://") and not tls and not dask.config.get("distributed.comm.tls.ca-file", None):
        raise DaskAddressError("a tls:// address needs --dask-tls-ca, --dask-tls-cert and --dask-tls-key "
                               "(or distributed.comm.tls.* in a Dask config)")  # fmt: skip
    # distributed logs every failed attempt (and then raises); the one line is ours
    for name in ("distributed", "distributed.client", "distributed.comm", "distributed.core"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from dask.distributed import Client
    from distributed.security import Security

    kw: dict[str, Any] = {}
    if tls:
        kw["security"] = Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                                  require_encryption=True)  # fmt: skip
    try:
        client = Client(addr, timeout=timeout, set_as_default=False, **kw)
    except BaseException as e:
        import ssl

        if isinstance(e, ssl.SSLError):
            raise ConnectionError(f"cannot connect to the Dask scheduler at {addr}: TLS: {_short(e)}") from None
        if isinstance(e, OSError | TimeoutError):
            raise ConnectionError(f"cannot reach the Dask scheduler at {addr} within {timeout:g} s "
                                  f"({_short(e)})") from None  # fmt: skip
        if isinstance(e, Exception):  # e.g. TLS setup errors
            raise ConnectionError(f"cannot connect to the Dask scheduler at {addr}: {_short(e)}") from None
        raise
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:  # noqa: BLE001 - dask's TimeoutError
        with contextlib.suppress(Exception):
            client.close(timeout=2)
        raise ConnectionError(f"the Dask scheduler at {addr} has no workers (waited {timeout:g} s)") from None
    return client


def check_options(jobs: int, address: str | None, timeout: float, tls: tuple[str | None, ...],
                  fail: Callable[..., Any], max_timeout: float) -> None:  # fmt: skip
    """The ``-j`` / ``--dask*`` options of a many-run command (``gicsim sweep``, ``gicsim
    hazards``): ``fail(2, line)`` for the first that is wrong."""
    if not 1 <= jobs <= MAX_JOBS:
        fail(2, f"gicsim: -j/--jobs: expected 1..{MAX_JOBS} worker processes, got {jobs}")
    if address is not None and jobs != 1:
        fail(2, "gicsim: -j/--jobs and --dask exclude each other (the cluster has its own workers)")
    if not 0 < timeout <= max_timeout:  # also refuses nan
        fail(2, f"gicsim: --dask-timeout: expected 0 < SECONDS <= {max_timeout:g}, got {timeout}")
    if address is None and any(tls):
        fail(2, "gicsim: --dask-tls-* need --dask ADDRESS")
    if address is not None:
        try:
            dask_address(address)
        except DaskAddressError as e:
            fail(2, f"gicsim: {e}")


def dask_executor(address: str, timeout: float, tls: tuple[str | None, str | None, str | None],
                  fail: Callable[..., Any]) -> tuple[Any, Executor]:  # fmt: skip
    """(client, executor) of the Dask cluster at ``address``; ``fail(2, line)`` for a bad
    address or TLS options, ``fail(3, line)`` when the scheduler cannot be reached or has no
    worker within ``timeout``."""
    try:
        client = dask_client(address, timeout, *tls)
    except DaskAddressError as e:
        fail(2, f"gicsim: {e}")
    except ConnectionError as e:
        # a half-made Client closes itself when collected and may time out doing so
        # ("Exception ignored in Client.__del__", a traceback): we leave with one line
        sys.unraisablehook = lambda _: None
        fail(3, f"gicsim: {e}")
    return client, client.get_executor()


def claim_results(out: Path, kind: str, files: tuple[str, ...], marks: tuple[str, ...],
                  fail: Callable[..., Any], write: bool = True) -> None:  # fmt: skip
    """Before a many-run command (``sweep``, ``hazards``) runs anything: OUT may be missing,
    empty, or its own earlier output (its manifest; or an older gicsim's: nothing but
    ``files`` and the store ``runs/``, with one of ``marks`` or the store); anything else is
    ``fail(2, line)``. OUT then has a ``kind`` manifest, so that a kill at any later point
    leaves a directory the command recognises and resumes in. ``write=False``: only check
    (before connecting to a cluster: an input error first)."""
    from gicsim.present.output import OutputError, claim_dir, is_temp_name

    shown = printable(out, 200)
    if out.exists() and not out.is_dir():
        fail(2, f"gicsim: -o/--output: {shown}: exists and is not a directory")
    problem = _store_dir_problem(out / "runs")
    if problem:
        fail(2, f"gicsim: {problem}")
    legacy: tuple[str, ...] = ()
    if out.is_dir():
        names = {n for n in os.listdir(out) if not is_temp_name(n)}
        if names & {*marks, "runs"}:
            legacy = files + tuple(f".{f}.tmp" for f in files)  # and an older gicsim's temp names
    try:
        claim_dir(out, kind, also_ours=legacy, fixed=files, stores=("runs",), write=write)
    except OutputError as e:
        fail(2, *(f"gicsim: -o/--output: {ln}" for ln in e.lines))
    except OSError as e:
        fail(3, f"gicsim: cannot write the results in {shown}: {e.strerror or e}")


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s if len(s) <= 200 else s[:200] + "..."
