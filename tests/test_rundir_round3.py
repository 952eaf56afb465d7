"""Run directories are checked once, when read (``rundata.read_run_dir``): ``summary.json``
against its contract (docs/summary-json.md, ``present/summary_schema.py``) and
``resolved.yaml`` as a scenario file with its own line and column; ``diff`` reads through the
same reader; ``explain`` costs grow with the trace, not windows × rows."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.present import diff, rundata
from gicsim.present.summary_schema import check_summary

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "clean-migration.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out / "clean-migration"


@pytest.fixture
def rd(run_dir, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    return d


def _summary(d: Path, edit) -> None:
    s = json.loads((d / "summary.json").read_text())
    edit(s)
    (d / "summary.json").write_text(json.dumps(s))  # NaN is written as NaN, as json allows


def refused(args: list[str]) -> list[str]:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, (r.exit_code, r.output[-2000:], r.exception)
    assert "Traceback" not in r.output and r.stdout == ""
    return r.stderr.splitlines()


def _all(run_dir: Path, rd: Path, tmp_path: Path) -> list[list[str]]:
    return [refused(["report", str(rd), "-o", str(tmp_path / "rep")]), refused(["explain", str(rd)]),
            refused(["diff", str(run_dir), str(rd)]), refused(["diff", str(rd), str(run_dir)])]  # fmt: skip


def test_every_real_summary_has_the_shape_of_the_contract(run_dir):
    files = [run_dir / "summary.json", *sorted((ROOT / "reports" / "examples").glob("*/summary.json"))]
    for f in files:
        assert check_summary(json.loads(f.read_text()), str(f)) == [], f


def test_an_unknown_key_is_refused_before_diff_flattens_it(run_dir, rd, tmp_path):
    _summary(rd, lambda s: s.update(pad=[0] * 200_000))
    for lines in _all(run_dir, rd, tmp_path):
        assert lines == [f"{rd}/summary.json: pad: unknown key (summary.json holds only the keys of docs/summary-json.md)"]
    assert not (tmp_path / "rep").exists()


def test_a_summary_of_the_wrong_shape_is_one_line_per_problem(run_dir, rd, tmp_path):
    def edit(s):
        s["migrations"] = "oops"
        s["delivered"] = "oops"
        s["lpis"]["accepted"] = "12"
        s["lpis"]["lost"] = math.nan
        s["wall_s"] = math.inf
        s["state_match"] = 1

    _summary(rd, edit)
    f = f"{rd}/summary.json"
    want = [f"{f}: wall_s: expected a finite number, got inf", f"{f}: migrations: expected a list, got 'oops'",
            f"{f}: lpis.accepted: expected an integer, got '12'", f"{f}: lpis.lost: expected an integer, got nan",
            f"{f}: delivered: expected a list, got 'oops'", f"{f}: state_match: expected true or false, got 1"]  # fmt: skip
    for lines in _all(run_dir, rd, tmp_path):
        assert lines == want


def test_negative_counts_missing_keys_and_lists_are_refused(rd):
    _summary(rd, lambda s: (s["lpis"].update(lost=-1), s.pop("kernel"), s["delivered"].insert(0, {"lpi": 1})))
    f = f"{rd}/summary.json"
    assert refused(["explain", str(rd)]) == [
        f"{f}: lpis.lost: must be >= 0, got -1", f"{f}: delivered.0.vcpu: missing required key",
        f"{f}: delivered.0.side: missing required key", f"{f}: delivered.0.count: missing required key",
        f"{f}: kernel: missing required key"]  # fmt: skip


def test_a_hostile_summary_costs_no_more_than_a_real_one(rd):
    f = f"{rd}/summary.json"
    _summary(rd, lambda s: s.update(delivered=["x"] * 1_000_000))
    assert refused(["explain", str(rd)]) == [f"{f}: delivered.0: expected an object, got 'x'"]
    _summary(rd, lambda s: (s.update(delivered=[]), s["migrations"][0].update(phases={str(i): "x" for i in range(300_000)})))
    assert refused(["explain", str(rd)]) == [f"{f}: migrations.0.phases: 300,000 steps, more than 256 (MAX_PHASES)"]
    _summary(rd, lambda s: s.update(migrations=[], lpis="x", seed=True, **{f"k{i}": 0 for i in range(30)}))
    lines = refused(["explain", str(rd)])
    assert len(lines) == 21 and lines[-1] == f"{f}: <root>: … and 12 more problems (not shown)"


def test_summary_and_resolved_of_different_runs_are_refused(rd):
    _summary(rd, lambda s: s.update(migrations=[]))
    assert refused(["explain", str(rd)]) == [
        f"{rd}/summary.json: migrations: 0 migrations, but resolved.yaml has 1 (summary.json and resolved.yaml "
        "are of different runs)"]  # fmt: skip


def test_a_bad_resolved_yaml_is_placed_at_its_line_and_refused_by_diff(run_dir, rd, tmp_path):
    text = (rd / "resolved.yaml").read_text()
    lines = text.splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.strip().startswith("vcpus:"))
    col = lines[n].index("vcpus:") + len("vcpus: ") + 1
    (rd / "resolved.yaml").write_text(text.replace(lines[n], lines[n].replace(lines[n].strip(), "vcpus: banana")))
    want = [f"{rd}/resolved.yaml:{n + 1}:{col}: vm.vcpus: expected an integer, got 'banana'"]
    for got in _all(run_dir, rd, tmp_path):
        assert got == want
    assert not (tmp_path / "rep").exists()


def test_the_outcome_table_of_diff_is_bounded():
    errs = [{"step": "save_pending_tables", "errno": "EBUSY", "t_ns": i} for i in range(20)]
    cell = diff.flatten({"migrations": [{"errors": errs}]})["migrations.1.errors"]
    assert cell.endswith(", … (12 more)") and cell.count("EBUSY") == 8
    sa = {"lpis": {f"k{i}": 0 for i in range(50)}}
    sb = {"lpis": {f"k{i}": 1 for i in range(50)}}

    class R:
        def __init__(self, s):
            self.summary = s

        def records(self):
            return []

    text = diff.render("a", "b", R(sa), R(sb), None, None, [])
    assert "  (10 more keys differ, not shown)" in text and text.count("lpis.k") == 40


def _tiled(src: Path, dst: Path, n: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(src, dst)
    t = pq.read_table(src / "trace.parquet")
    pq.write_table(pa.concat_tables([t] * n), dst / "trace.parquet")
    return dst


def test_explain_does_a_fixed_number_of_groupings_whatever_the_trace_length(run_dir, tmp_path, monkeypatch):
    """The traffic between narrated lines used a pandas grouping per window (minutes for a
    trace at the row cap); now one pass: the count of groupings does not grow with the trace."""
    from gicsim.present.explain import explain

    calls = [0]
    orig = pd.DataFrame.groupby

    def counting(self, *a, **k):
        calls[0] += 1
        return orig(self, *a, **k)

    runs = [rundata.read_run_dir(_tiled(run_dir, tmp_path / f"t{n}", n)) for n in (2, 6)]
    monkeypatch.setattr(pd.DataFrame, "groupby", counting)
    got = []
    for run in runs:
        calls[0] = 0
        text = explain(run)
        got.append(calls[0])
        assert text.count("Interrupt traffic") > 10
    assert got[0] == got[1], got


def test_the_step_lists_of_diff_are_bounded():
    assert diff._steps([("resume", i, i) for i in range(50)]) == " → ".join(["resume"] * 40) + " → … (10 more steps)"
    assert diff._steps([]) == "(none)"


def test_a_run_directory_of_an_older_gicsim_says_so_and_how_to_redo_it(rd):
    """summary.json before round 3 had no `kernel` section: one line saying the run is older
    and the command that redoes it (its resolved.yaml still loads)."""
    _summary(rd, lambda s: s.pop("kernel"))
    for args in (["report", str(rd), "-o", str(rd.parent / "rep")], ["explain", str(rd)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2
        assert r.stderr.strip() == (f"{rd}/summary.json: written by an older gicsim (no `kernel` section); "
                                    f"run its scenario again: gicsim run {rd}/resolved.yaml")  # fmt: skip
    assert CliRunner().invoke(main, ["validate", str(rd / "resolved.yaml")]).exit_code == 0


def test_the_trace_is_capped_on_what_it_decodes_to_not_on_what_its_metadata_says(rd, monkeypatch):
    """Parquet sizes are the writer's word: a file whose columns decode to more than
    MAX_TRACE_DATA_BYTES is refused while decoding (batch by batch), even when its metadata
    claims less. Here the cap sits between the metadata's figure and the real one."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(rd / "trace.parquet")
    claimed = sum(pf.metadata.row_group(i).total_byte_size for i in range(pf.metadata.num_row_groups))
    real = pf.read(use_pandas_metadata=True).nbytes
    assert claimed < real
    monkeypatch.setattr(rundata, "MAX_TRACE_DATA_BYTES", (claimed + real) // 2)
    with pytest.raises(rundata.RunInputError, match=r"decodes to more than .* more than its metadata says"):
        rundata.read_run_dir(rd)
    monkeypatch.setattr(rundata, "MAX_TRACE_DATA_BYTES", real + 1)
    assert len(rundata.read_run_dir(rd).records()) == pf.metadata.num_rows
