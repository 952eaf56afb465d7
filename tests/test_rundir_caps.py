"""Run directories given to ``report``/``explain``/``tables`` are input too: sizes and row
counts are checked before anything is loaded (a 3 MB ``trace.parquet`` of 100 M constant rows
took > 10 GiB, a sparse 3 GiB ``summary.json`` 6 GiB), FIFOs and devices are refused without
blocking, and ``tables`` reads ``resolved.yaml`` only, never the trace. Each refusal is one
line naming the file, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.present import rundata
from gicsim.present.rundata import RunInputError, read_run_dir, read_run_resolved
from gicsim.scenario.constants import MAX_TRACE_ROWS

ROOT = Path(__file__).parent.parent
SC = ROOT / "scenarios"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(main, ["run", str(SC / "v5-double-sync.yaml"), "-o", str(out)])
    assert r.exit_code in (0, 1), r.output
    return out / "v5-double-sync"


@pytest.fixture
def rd(run_dir, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    return d


def one_line(args: list[str]) -> str:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    (ln,) = r.stderr.splitlines()
    return ln


def test_the_run_directory_reads_back(rd):
    run = read_run_dir(rd)
    assert run.name == "v5-double-sync" and len(run.trace) > 0
    assert run.scenario.name == "v5-double-sync"


def test_sparse_huge_summary_is_refused_from_its_size(rd):
    with open(rd / "summary.json", "r+b") as f:
        f.truncate(3 << 30)  # sparse: no disk used, 3 GiB if read
    for cmd in (["report", str(rd), "-o", str(rd.parent / "rep")], ["explain", str(rd)]):
        ln = one_line(cmd)
        assert ln.startswith(f"{rd / 'summary.json'}: ") and "MAX_SUMMARY_BYTES" in ln, ln
    assert not (rd.parent / "rep").exists()


def _big_trace(src: Path, dst: Path, rows: int) -> None:
    """``rows`` copies of the first row of ``src``: a few MB however many rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    chunk = table.take(pa.array(np.zeros(1_000_000, dtype=np.int64)))
    with pq.ParquetWriter(dst, table.schema, compression="zstd") as w:
        left = rows
        while left > 0:
            n = min(left, chunk.num_rows)
            w.write_table(chunk.slice(0, n), row_group_size=1_000_000)
            left -= n


def test_a_parquet_of_many_constant_rows_is_refused_from_its_metadata(rd, tmp_path):
    """The trace of no accepted run is that long; the old reader decoded all of it."""
    big = tmp_path / "big.parquet"
    _big_trace(rd / "trace.parquet", big, rundata.MAX_TRACE_FILE_ROWS + 1)
    assert big.stat().st_size < 64 << 20
    os.replace(big, rd / "trace.parquet")
    with pytest.raises(RunInputError) as e:
        read_run_dir(rd)
    (ln,) = e.value.lines
    assert ln.startswith(f"{rd / 'trace.parquet'}: ") and "MAX_TRACE_FILE_ROWS" in ln, ln
    assert f"{rundata.MAX_TRACE_FILE_ROWS + 1:,} rows" in ln
    assert rundata.MAX_TRACE_FILE_ROWS >= MAX_TRACE_ROWS  # every accepted run reads back


def test_uncompressed_size_and_footer_are_capped(rd, monkeypatch):
    monkeypatch.setattr(rundata, "MAX_TRACE_DATA_BYTES", 100)
    with pytest.raises(RunInputError, match="MAX_TRACE_DATA_BYTES"):
        read_run_dir(rd)
    monkeypatch.undo()
    data = (rd / "trace.parquet").read_bytes()
    (rd / "trace.parquet").write_bytes(data[:-8] + (1 << 31).to_bytes(4, "little") + b"PAR1")
    with pytest.raises(RunInputError) as e:
        read_run_dir(rd)
    assert "MAX_TRACE_FOOTER_BYTES" in e.value.lines[0] and len(e.value.lines) == 1


def test_not_parquet_and_wrong_columns_are_one_line(rd):
    (rd / "trace.parquet").write_bytes(b"PAR1 not really")
    ln = one_line(["explain", str(rd)])
    assert ln.startswith(f"{rd / 'trace.parquet'}: cannot read the trace"), ln


@pytest.mark.parametrize("name", ["summary.json", "resolved.yaml", "trace.parquet"])
def test_fifo_in_a_run_directory_is_refused_without_blocking(rd, name):
    (rd / name).unlink()
    os.mkfifo(rd / name)
    code = ("import sys\nfrom click.testing import CliRunner\nfrom gicsim.cli import main\n"
            f"r = CliRunner().invoke(main, ['explain', {str(rd)!r}])\n"
            "sys.stdout.write(r.stderr)\nsys.exit(r.exit_code)\n")  # fmt: skip
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"blocked on a FIFO {name}")
    assert r.returncode == 2, r
    (ln,) = r.stdout.splitlines()
    assert ln.startswith(f"{rd / name}: not a regular file"), ln


def test_hostile_resolved_yaml_is_refused_like_a_scenario(rd):
    bomb = "name: x\na: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 10)}]\n" for c in "bcdefghi"
    )
    (rd / "resolved.yaml").write_text(bomb + "name: y\n")
    ln = one_line(["tables", str(rd), "--at", "save_its_tables"])
    assert ln.startswith(f"{rd / 'resolved.yaml'}:") and "<yaml>" in ln and "MAX_NODES" in ln, ln
    with open(rd / "resolved.yaml", "r+b") as f:
        f.truncate(1 << 30)
    with pytest.raises(RunInputError, match="MAX_FILE_BYTES"):
        read_run_resolved(rd)


def test_tables_never_reads_the_trace_or_the_summary(rd):
    """``tables`` re-simulates the resolved scenario: a broken trace and summary do not matter."""
    (rd / "trace.parquet").write_bytes(b"\0" * 1000)
    (rd / "summary.json").write_text("{not json")
    r = CliRunner().invoke(main, ["tables", str(rd), "--at", "save_its_tables", "--limit", "2"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "Device table" in r.stdout
    (rd / "resolved.yaml").unlink()
    ln = one_line(["tables", str(rd), "--at", "save_its_tables"])
    assert "missing resolved.yaml" in ln, ln
