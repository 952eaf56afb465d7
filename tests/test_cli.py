"""The command line contract: exit codes, one line per problem, nothing written on failure."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim.cli import main

GOOD = Path(__file__).parent.parent / "scenarios" / "its-pending-migration.yaml"
LINE = re.compile(r"^[^:]+:\d+:\d+: [^:]+: .+$")

BAD = {
    "bad_yaml": ("name: x\nvm: {vcpus: 2\n", None),
    "unknown_key": ("name: x\nvm: {vcpus: 2, cpus: 3}\n", "vm.cpus"),
    "wrong_type": ("name: x\nvm: {vcpus: two}\n", "vm.vcpus"),
    "out_of_range": ("name: x\nvm: {vcpus: 513}\n", "vm.vcpus"),
    "bad_range": ("name: x\nvm: {vcpus: 2}\ndevices: [{device: 2, events: 9-3, at_us: [1]}]\n", "devices.0.events"),
    "duplicate_step": (
        "name: x\nmigration: {at_us: 1, destination: {steps: [memory, memory, resume]}}\n",
        "migration.destination.steps",
    ),
    "empty": ("", None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, case):
    text, path_key = BAD[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(f), "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) >= 1 and all(LINE.match(ln) for ln in lines), lines
    assert lines[0].startswith(str(f))
    if path_key:
        assert f": {path_key}: " in lines[0] or f": {path_key}" in lines[0]
    assert "Traceback" not in r.output
    assert not out.exists()


def test_non_utf8_and_directory(tmp_path):
    f = tmp_path / "bin.yaml"
    f.write_bytes(b"name: \xff\xfe\n")
    r = CliRunner().invoke(main, ["validate", str(f)])
    assert r.exit_code == 2 and LINE.match(r.stderr.splitlines()[0]), r.stderr
    # a file that cannot be read at all has no line: FILE: message
    r = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert r.exit_code == 2 and r.stderr == f"{tmp_path}: is a directory, not a scenario file\n", r.stderr


def test_one_bad_file_means_no_run_at_all(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvm: {vcpus: 0}\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(GOOD), str(bad), "-o", str(out)])
    assert r.exit_code == 2 and not out.exists()


def test_run_writes_outputs_and_summary(tmp_path):
    out = tmp_path / "out"
    summ = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["run", str(GOOD), "-o", str(out), "--summary", str(summ)])
    assert r.exit_code == 0, r.output
    d = out / "its-pending-migration"
    assert {p.name for p in d.iterdir()} == {"resolved.yaml", "summary.json", "trace.parquet", "report.md"}
    s = json.loads(summ.read_text())
    assert s["expect"]["passed"] and s["scenario"] == "its-pending-migration"
    # the resolved scenario re-runs to the same verdict
    r2 = CliRunner().invoke(main, ["run", str(d / "resolved.yaml"), "-o", str(tmp_path / "o2")])
    assert r2.exit_code == 0, r2.output


def test_failed_expect_exits_1_and_says_wanted_vs_got(tmp_path):
    f = tmp_path / "x.yaml"
    shutil.copy(GOOD, f)
    f.write_text(f.read_text().replace("  lost: 0\n", "  lost: 3\n"))
    r = CliRunner().invoke(main, ["run", str(f), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "expect.lost: wanted == 3, got 0" in r.output


def test_validate_ok_and_help():
    r = CliRunner().invoke(main, ["validate", str(GOOD)])
    assert r.exit_code == 0 and "ok" in r.output
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "run" in r.output and "validate" in r.output


def test_an_internal_error_is_one_line_exit_3(tmp_path, monkeypatch):
    import gicsim.sim.simulation

    def boom(sc, *args, **kwargs):  # run(scenario, progress=None)
        raise RuntimeError("model bug")

    monkeypatch.setattr(gicsim.sim.simulation, "run", boom)
    r = CliRunner().invoke(main, ["run", str(GOOD), "-o", str(tmp_path / "o")])
    assert r.exit_code == 3 and "internal error (RuntimeError: model bug)" in r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()
