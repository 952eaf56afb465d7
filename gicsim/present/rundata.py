"""A finished run as the report, explain and export commands see it.

A run is either a RUN_DIR written by ``gicsim run`` (``resolved.yaml``, ``summary.json``,
``trace.parquet``) or a scenario file that is run first. Everything downstream is computed
from those three things only, so a report made from a directory equals one made right after
the run.
"""

from __future__ import annotations

import json
import os
import stat
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pandas as pd

from gicsim.scenario.constants import MAX_TRACE_ROWS
from gicsim.scenario.yamlpos import MAX_FILE_BYTES

if TYPE_CHECKING:
    from gicsim.scenario import Scenario
    from gicsim.sim.simulation import Result

RUN_FILES = ("resolved.yaml", "summary.json", "trace.parquet")


class RunInputError(Exception):
    """Bad input for a command that reads runs; ``lines`` are printed, one per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@attrs.define(eq=False)
class RunData:
    """One run: its summary, its trace (one row per record, categorical columns) and the
    resolved scenario it came from (a dict in YAML units)."""

    name: str
    summary: dict[str, Any]
    trace: pd.DataFrame
    resolved: dict[str, Any]
    origin: str = ""  # the directory or scenario file it came from
    result: Result | None = None  # set when the run happened in this process

    validated: Scenario | None = None  # the scenario as read_run_dir validated it

    @cached_property
    def scenario(self) -> Scenario:
        if self.validated is not None:
            return self.validated
        from gicsim.scenario import scenario_from_dict

        return scenario_from_dict(self.resolved, filename=f"{self.origin or self.name}/resolved.yaml")

    @property
    def until_ns(self) -> int:
        return int(self.scenario.until_ns)

    @property
    def timing_base(self) -> str:
        t = self.resolved.get("timing")
        if isinstance(t, dict):
            return str(t.get("base", "altra-6.12"))
        return str(t or "altra-6.12")

    rec: list[tuple[Any, ...]] | None = attrs.field(default=None, init=False, repr=False)

    def records(self) -> list[tuple[Any, ...]]:
        """The trace as record tuples (made once: a trace at the row cap takes seconds)."""
        if self.result is not None:
            return self.result.records
        if self.rec is None:
            from gicsim.judge.trace import frame_to_records

            self.rec = frame_to_records(self.trace)
        return self.rec


def from_result(res: Result, origin: str = "") -> RunData:
    from gicsim.scenario import resolved_dict

    return RunData(
        name=res.summary["scenario"],
        summary=res.summary,
        trace=res.frame,
        resolved=resolved_dict(res.scenario),
        origin=origin,
        result=res,
    )


# Caps on what a run directory may hold, checked before anything is loaded (a run directory
# is input like a scenario file: it may be damaged or hostile). Measured on the scale
# benchmark (scenarios/scale-512.yaml): summary.json 10.9 MB, 3.11 M trace rows, 56.5 MB of
# uncompressed Parquet pages; ``json.loads`` needs ~2 bytes of memory per byte of file.
MAX_SUMMARY_BYTES = 64 << 20  # summary.json: 6x the scale benchmark's (~130 MiB to load)
MAX_RESOLVED_BYTES = MAX_FILE_BYTES  # resolved.yaml: read like any scenario file
# trace.parquet: a run `gicsim run` accepted has at most its estimate of rows, which is at
# most MAX_TRACE_ROWS (scenario.limits); a quarter more leaves room for old runs and keeps a
# hostile file (100 M constant rows in 3 MB took > 10 GiB) to what a real run costs.
MAX_TRACE_FILE_ROWS = MAX_TRACE_ROWS + MAX_TRACE_ROWS // 4
MAX_TRACE_FILE_BYTES = 256 << 20  # the file (scale benchmark: 31 MB for 3.11 M rows)
MAX_TRACE_DATA_BYTES = 1 << 30  # its pages uncompressed, from the metadata (scale: 56.5 MB)
MAX_TRACE_FOOTER_BYTES = 16 << 20  # the Parquet footer (metadata) itself (scale: ~10 KB)


def _open_regular(d: Path, name: str) -> int:
    """An fd of ``d/name`` opened without blocking, or RunInputError (FIFO, device...)."""
    f = d / name
    try:
        fd = os.open(f, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))  # fmt: skip
    except OSError as e:
        raise RunInputError([f"{f}: cannot read: {e.strerror or e}"]) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise RunInputError([f"{f}: not a regular file; a run directory holds the regular files "
                             "`gicsim run` writes"])  # fmt: skip
    return fd


def _check_files(d: Path, names: tuple[str, ...]) -> None:
    """Each of ``names`` exists in ``d`` and is a regular file (checked without opening it)."""
    missing = []
    for f in names:
        try:
            st = os.stat(d / f)
        except FileNotFoundError:
            missing.append(f)
            continue
        except OSError as e:
            raise RunInputError([f"{d / f}: cannot read: {e.strerror or e}"]) from None
        if not stat.S_ISREG(st.st_mode):
            raise RunInputError([f"{d / f}: not a regular file; a run directory holds the "
                                 "regular files `gicsim run` writes"])  # fmt: skip
    if missing:
        raise RunInputError(
            [f"{d}: not a run directory (missing {', '.join(missing)}; expected what `gicsim run` writes)"]
        )


def _read_capped(d: Path, name: str, cap: int, cap_name: str) -> str:
    from gicsim.scenario.load import InputFileError, read_input_file

    try:
        data = read_input_file(d / name, cap, "run", cap_name)
        return data.decode("utf-8")
    except InputFileError as e:
        raise RunInputError([f"{d / name}: {e.reason}"]) from None
    except UnicodeDecodeError as e:
        raise RunInputError([f"{d / name}: not valid UTF-8 (byte {e.start})"]) from None


def _read_resolved(d: Path) -> tuple[dict[str, Any], str]:
    from gicsim.scenario import ScenarioError
    from gicsim.scenario.yamlpos import parse_yaml

    _check_files(d, ("resolved.yaml",))
    text = _read_capped(d, "resolved.yaml", MAX_RESOLVED_BYTES, "MAX_FILE_BYTES")
    try:
        doc = parse_yaml(text, str(d / "resolved.yaml"))
    except ScenarioError as e:
        raise RunInputError(list(e.problems)) from None
    if not isinstance(doc.raw, dict):
        raise RunInputError([f"{d / 'resolved.yaml'}: must hold a mapping (the resolved scenario)"])
    return doc.raw, text


def read_run_resolved(path: str | Path) -> dict[str, Any]:
    """The resolved scenario of a RUN_DIR (``resolved.yaml``, as plain data), read under the
    scenario loader's caps. Neither the trace nor the summary is read (``gicsim tables``)."""
    return _read_resolved(Path(path))[0]


def read_run_scenario(path: str | Path) -> tuple[dict[str, Any], Scenario]:
    """The resolved scenario of a RUN_DIR, as plain data and validated like a scenario file:
    problems are ``DIR/resolved.yaml:LINE:COL: key.path: message`` (the file's own positions)."""
    from gicsim.scenario import ScenarioError
    from gicsim.scenario.load import load_scenario_text

    d = Path(path)
    raw, text = _read_resolved(d)
    try:
        return raw, load_scenario_text(text, str(d / "resolved.yaml"))
    except ScenarioError as e:
        raise RunInputError(list(e.problems)) from None


def _trace_rows(d: Path, fd: int) -> Any:
    """The Parquet file of ``fd`` after its metadata passed the caps (nothing decoded yet)."""
    import pyarrow.parquet as pq

    from gicsim.judge.trace import COLUMNS, PUBLIC_COLUMNS

    f = d / "trace.parquet"
    size = os.fstat(fd).st_size
    if size > MAX_TRACE_FILE_BYTES:
        raise RunInputError([f"{f}: {size:,} bytes, more than the cap of {MAX_TRACE_FILE_BYTES:,} "
                             "(MAX_TRACE_FILE_BYTES)"])  # fmt: skip
    fh = os.fdopen(os.dup(fd), "rb")
    try:
        if size >= 12:  # PAR1 <data> <footer> <footer length: u32 LE> PAR1
            fh.seek(size - 8)
            tail = fh.read(8)
            footer = int.from_bytes(tail[:4], "little")
            if tail[4:] == b"PAR1" and footer > MAX_TRACE_FOOTER_BYTES:
                raise RunInputError([f"{f}: a Parquet footer of {footer:,} bytes, more than the "
                                     f"cap of {MAX_TRACE_FOOTER_BYTES:,} (MAX_TRACE_FOOTER_BYTES)"])  # fmt: skip
            fh.seek(0)
        pf = pq.ParquetFile(fh)
        meta = pf.metadata
        names = list(pf.schema_arrow.names)
    except RunInputError:
        fh.close()
        raise
    except Exception as e:  # noqa: BLE001 - not Parquet, or damaged: bad input
        fh.close()
        raise RunInputError([f"{f}: cannot read the trace: {type(e).__name__}: {_short(e)}"]) from None
    if names not in (list(COLUMNS), list(PUBLIC_COLUMNS)):
        fh.close()
        shown = names if len(names) <= 20 else names[:20] + ["..."]
        raise RunInputError([f"{f}: unexpected columns {shown}"])
    rows = meta.num_rows
    data = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if rows > MAX_TRACE_FILE_ROWS or data > MAX_TRACE_DATA_BYTES:
        fh.close()
        raise RunInputError([f"{f}: {rows:,} rows and {data:,} bytes of data, more than the caps "
                             f"of {MAX_TRACE_FILE_ROWS:,} rows (MAX_TRACE_FILE_ROWS, from "
                             f"MAX_TRACE_ROWS) and {MAX_TRACE_DATA_BYTES:,} bytes "
                             "(MAX_TRACE_DATA_BYTES)"])  # fmt: skip
    return pf, fh


#: keys summary.json gained in round 3 (a summary missing only these is of an older gicsim)
_ADDED_IN_ROUND_3 = ("kernel", "lpis.dropped.no_its", "lpis.dropped_by_side.source.no_its",
                     "lpis.dropped_by_side.destination.no_its")


def _read_summary(d: Path, migrations: int) -> dict[str, Any]:
    """``summary.json`` parsed and checked against its contract (docs/summary-json.md,
    :mod:`gicsim.present.summary_schema`) and against the scenario it came from."""
    from gicsim.present.summary_schema import check_summary

    f = d / "summary.json"
    text = _read_capped(d, "summary.json", MAX_SUMMARY_BYTES, "MAX_SUMMARY_BYTES")
    try:
        summary = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RunInputError([f"{f}: not valid JSON: {_short(e)}"]) from None
    problems = check_summary(summary, str(f))
    added = {f"{f}: {k}: missing required key" for k in _ADDED_IN_ROUND_3}
    if problems and f"{f}: kernel: missing required key" in problems and set(problems) <= added:
        # only what summary.json gained in round 3 is missing: an older run, not a broken one
        problems = [f"{f}: written by an older gicsim (no `kernel` section); run its scenario "
                    f"again: gicsim run {d / 'resolved.yaml'}"]  # fmt: skip
    if problems:
        raise RunInputError(problems)
    if len(summary["migrations"]) != migrations:
        raise RunInputError([f"{f}: migrations: {len(summary['migrations']):,} migrations, but resolved.yaml "
                             f"has {migrations} (summary.json and resolved.yaml are of different runs)"])  # fmt: skip
    return summary


def _decode_capped(d: Path, pf: Any) -> Any:
    """The trace table, decoded batch by batch while counting the bytes it really takes:
    the metadata's sizes are the writer's word (a crafted file can claim a few bytes for
    columns of long strings), so decoding stops once MAX_TRACE_DATA_BYTES is passed."""
    import pyarrow as pa

    batches, total = [], 0
    for b in pf.iter_batches(batch_size=1 << 16, use_pandas_metadata=True):
        total += b.nbytes
        if total > MAX_TRACE_DATA_BYTES:
            raise RunInputError([f"{d / 'trace.parquet'}: decodes to more than {MAX_TRACE_DATA_BYTES:,} "
                                 "bytes (MAX_TRACE_DATA_BYTES), more than its metadata says"])  # fmt: skip
        batches.append(b)
    return pa.Table.from_batches(batches, schema=pf.schema_arrow)


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return s if len(s) <= 200 else s[:200] + "..."


def read_run_dir(path: str | Path) -> RunData:
    """Load a RUN_DIR; a missing, unreadable or oversized file is a RunInputError naming it.

    Sizes are checked before anything is loaded: ``summary.json`` (MAX_SUMMARY_BYTES),
    ``resolved.yaml`` (the scenario loader's caps) and ``trace.parquet`` (rows and bytes from
    its Parquet metadata); FIFOs, devices and sockets are refused without blocking. What is
    loaded is checked too: ``resolved.yaml`` as a scenario file (with its line and column),
    ``summary.json`` against its contract (:mod:`gicsim.present.summary_schema`)."""
    d = Path(path)
    _check_files(d, RUN_FILES)
    resolved, sc = read_run_scenario(d)
    summary = _read_summary(d, len(sc.migrations))
    fd = _open_regular(d, "trace.parquet")
    try:
        pf, fh = _trace_rows(d, fd)
        with fh:
            trace = _decode_capped(d, pf).to_pandas()
    except RunInputError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input, not a crash
        raise RunInputError([f"{d / 'trace.parquet'}: cannot read the trace: {type(e).__name__}: "
                             f"{_short(e)}"]) from None  # fmt: skip
    finally:
        os.close(fd)
    from gicsim.judge.trace import CATEGORICAL, COLUMNS, PUBLIC_COLUMNS, internal_frame

    if list(trace.columns) == list(PUBLIC_COLUMNS):
        trace = internal_frame(trace)
    elif list(trace.columns) != list(COLUMNS):  # COLUMNS: run directories of gicsim 0.1
        raise RunInputError([f"{d}/trace.parquet: unexpected columns {list(trace.columns)}"])
    for c in CATEGORICAL:
        if not isinstance(trace[c].dtype, pd.CategoricalDtype):
            trace[c] = trace[c].astype("category")
    return RunData(
        name=str(summary.get("scenario", d.name)), summary=summary, trace=trace,
        resolved=resolved, origin=str(d), validated=sc,
    )  # fmt: skip


def run_scenario_file(path: str | Path) -> RunData:
    """Validate and run a scenario file (ScenarioError problems become RunInputError)."""
    from gicsim.scenario import ScenarioError, load_scenario
    from gicsim.sim.simulation import run

    try:
        sc = load_scenario(path)
    except ScenarioError as e:
        raise RunInputError(list(e.problems)) from None
    return from_result(run(sc), origin=str(path))


def load(path: str | Path) -> RunData:
    """A RUN_DIR, or a scenario file (run now)."""
    p = Path(path)
    if p.is_dir():
        return read_run_dir(p)
    if not p.exists():
        raise RunInputError([f"{p}: no such file or directory"])
    return run_scenario_file(p)
