"""Sweep files are validated like scenarios: one ``FILE:LINE:COL: key.path: message`` line per
problem, exit 2, under byte and node caps, never blocking on a FIFO; names cannot escape the
output directory; every expanded run is checked by the scenario validator, its problems placed
at the sweep value that caused them."""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.sweep import SweepError, load_sweep
from gicsim.sweeps import MAX_RUNS, MAX_SWEEP_BYTES, MAX_SWEEP_NODES, KeyPathError, set_path

ROOT = Path(__file__).parent.parent
BASE = ROOT / "scenarios" / "straggler-retry.yaml"
LINE = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+: [^\n]+$")
#: a problem with the file as a whole (missing, too big, not a file): FILE: message
FILE_LINE = re.compile(r"^[^\n:]+: [^\n]+$")


def sweep_file(tmp_path: Path, body: str, base: Path | str = BASE) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(f"base: {base}\n" + body)
    return f


def problems(tmp_path: Path, body: str, **kw: object) -> list[str]:
    with pytest.raises(SweepError) as e:
        load_sweep(sweep_file(tmp_path, body, **kw))  # type: ignore[arg-type]
    for p in e.value.problems:
        assert LINE.match(p) or FILE_LINE.match(p), p
    return e.value.problems


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["sweep", *args, "--no-progress"])
    assert "Traceback" not in r.output
    return r.exit_code, r.output


# ----------------------------------------------------------------- shape and types ----
def test_wrong_types_are_located_lines(tmp_path):
    ps = problems(tmp_path, "seed: abc\nrepeat: 0\ngrid: 5\n")
    assert any(p.endswith("s.yaml:2:7: seed: expected an integer, got 'abc'") for p in ps), ps
    assert any(p.endswith("s.yaml:3:9: repeat: must be >= 1, got 0") for p in ps), ps
    assert any(p.endswith("s.yaml:4:7: grid: expected a mapping, got 5") for p in ps), ps


def test_repeat_zero_and_sample_n_zero_exit_2(tmp_path):
    code, out = cli(str(sweep_file(tmp_path, "repeat: 0\n")))
    assert code == 2 and "repeat: must be >= 1, got 0" in out
    ps = problems(tmp_path, "sample: {n: 0, params: {vm.vcpus: {uniform: [5, 1]}, "
                            "vm.memory_mib: {gaussian: 1}}}\n")  # fmt: skip
    assert any("sample.n: must be >= 1, got 0" in p for p in ps)
    assert any("sample.params.vm.vcpus: the lower bound 5.0 is greater" in p for p in ps)
    assert any("sample.params.vm.memory_mib.gaussian: unknown key 'gaussian'" in p for p in ps)


def test_unknown_keys_get_suggestions(tmp_path):
    (p,) = problems(tmp_path, "gird: {}\n")
    assert "s.yaml:2:1: gird: unknown key 'gird' (did you mean 'grid'?); valid keys: name," in p
    (p,) = problems(tmp_path, "grid: {seed: 0-1}\nreport: {y: lostt}\n")
    assert "report.y: 'lostt' is not a column (did you mean 'lost'?)" in p
    (p,) = problems(tmp_path, "report: {z: lost}\n")
    assert "report.z: unknown key 'z'" in p


def test_missing_base_and_not_a_mapping(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("grid: {}\n")
    with pytest.raises(SweepError) as e:
        load_sweep(f)
    assert e.value.problems == [f"{f}:1:1: base: missing required key (the base scenario file)"]
    f.write_text("- a\n")
    with pytest.raises(SweepError, match="<root>: a sweep file is a mapping"):
        load_sweep(f)


def test_yaml_duplicates_and_tags_are_refused(tmp_path):
    (p,) = problems(tmp_path, "base: x\n")
    assert "s.yaml:2:1: base: duplicate key 'base' (first at line 1)" in p
    ps = problems(tmp_path, "grid: !!python/object:os.system {}\n")
    assert any("YAML tag !!python/object:os.system is not supported" in p for p in ps)


# ----------------------------------------------------------------- override paths ----
def test_bad_override_key_paths(tmp_path):
    ps = problems(tmp_path, "grid:\n  vm.vcpuz: [1]\n  migration.source.stragglers.5.exit_us: [1]\n"
                            "  vm.vcpus.x: [1]\n  name: [a]\n  migration.source.x..y: [1]\n")  # fmt: skip
    text = "\n".join(ps)
    assert ":3:3: grid.vm.vcpuz: unknown key 'vcpuz' in vm (did you mean 'vcpus'?)" in text
    assert ":4:3: grid.migration.source.stragglers.5.exit_us: index 5 out of range" in text
    assert ":5:3: grid.vm.vcpus.x: vm.vcpus is 4 in the base scenario; it has no key 'x'" in text
    assert ":6:3: grid.name: the run names are set by the sweep" in text
    assert ":7:3: grid.'migration.source.x..y'" in text or ":7:3: grid.migration.source.x..y" in text
    ps = problems(tmp_path, "sample: {params: {vm.vcpuz: {int_uniform: [1, 2]}}}\n")
    assert any("sample.params.vm.vcpuz: unknown key 'vcpuz'" in p for p in ps)


def test_set_path_never_raises_anything_but_key_path_errors():
    d = {"vm": {"vcpus": 4}, "migration": [{"source": {"stragglers": [{"exit_us": 1}]}}], "devices": []}
    for bad in ("vm.vcpus.x", "migration.source.stragglers.3.exit_us", "devices.x", "vm.its.x.y",
                "", "a..b", "name"):  # fmt: skip
        with pytest.raises(KeyPathError):
            set_path(d, bad, 1)
    assert set_path(d, "migration.source.stragglers.0.exit_us", 5) == ("migration", 0, "source", "stragglers", 0, "exit_us")


def test_run_values_are_checked_at_their_sweep_line(tmp_path):
    ps = problems(tmp_path, "grid:\n  vm.vcpus: [4, 999]\n  migration.source.on_ebusy: "
                            "[abort, {retry: 5, backof_us: 1}]\n")  # fmt: skip
    text = "\n".join(ps)
    assert "s.yaml:3:17: vm.vcpus: must be <= " in text  # the 999
    assert "s.yaml:4:49: migration.0.source.on_ebusy.backof_us: unknown key 'backof_us' (did you mean" in text
    ps = problems(tmp_path, "grid: {seed: [-1, 2.5]}\n")
    assert any(":2:15: seed: must be >= 0, got -1" in p for p in ps)
    assert any(":2:19: seed: expected an integer, got 2.5" in p for p in ps)


def test_problems_from_overrides_together_name_the_run(tmp_path):
    ps = problems(tmp_path, "grid:\n  vm.vcpus: [2]\n")
    assert all(":2:1: " in p for p in ps), ps
    assert any("vCPU 3 does not exist" in p and "(in run 0 with vm.vcpus=2)" in p for p in ps), ps


def test_huge_floats_in_overrides_are_input_errors(tmp_path):
    code, out = cli(str(sweep_file(tmp_path, "grid: {until_us: [1e306]}\n")))
    assert code == 2 and "until_us:" in out, out


# -------------------------------------------------------------------------- names ----
@pytest.mark.parametrize("name", ["../../x", "/abs/dir", '"x\\n"', "a" * 250, "''", "'.hidden'"])
def test_sweep_name_follows_the_scenario_rule(tmp_path, name):
    (p,) = problems(tmp_path, f"name: {name}\n")
    assert "s.yaml:2:7: name: " in p


def test_sweep_name_cannot_escape_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = cli(str(sweep_file(tmp_path, "name: ../../escaped\n")))
    assert code == 2
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "reports").exists()


def test_default_name_is_the_file_stem_when_valid(tmp_path):
    f = tmp_path / "my sweep.yaml"
    f.write_text(f"base: {BASE}\n")
    assert load_sweep(f).name == "sweep"
    g = tmp_path / "policies.yaml"
    g.write_text(f"base: {BASE}\n")
    assert load_sweep(g).name == "policies"


# --------------------------------------------------------------------------- caps ----
def alias_bomb(levels: int = 9) -> str:
    names = string.ascii_lowercase
    lines = ["grid:", "  x0: &a [0,0,0,0,0,0,0,0,0,0]"]
    for i in range(1, levels):
        lines.append(f"  x{i}: &{names[i]} [" + ",".join(["*" + names[i - 1]] * 10) + "]")
    lines.append(f"  seed: *{names[levels - 1]}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast(tmp_path):
    body = alias_bomb()
    assert len(f"base: {BASE}\n" + body) < 600  # 10**9 values from a few hundred bytes
    t = time.perf_counter()
    (p,) = problems(tmp_path, body)
    assert time.perf_counter() - t < 10  # ~10 ms; before: 51 s and 2.3 GiB (one level less)
    assert f"more than {MAX_SWEEP_NODES:,} values after alias expansion (MAX_SWEEP_NODES" in p


def test_alias_bomb_with_a_duplicate_key_is_refused_fast(tmp_path):
    t = time.perf_counter()
    ps = problems(tmp_path, alias_bomb() + "seed: 1\nseed: 2\n")
    assert time.perf_counter() - t < 10
    assert ps


def test_node_cap_without_aliases(tmp_path, monkeypatch):
    monkeypatch.setattr("gicsim.sweeps.spec.MAX_SWEEP_NODES", 100)  # the real one takes seconds
    seeds = ",".join(["1"] * 100)
    (p,) = problems(tmp_path, f"grid: {{seed: [{seeds}]}}\n")
    assert "more than 100 values after alias expansion (MAX_SWEEP_NODES" in p
    assert load_sweep(sweep_file(tmp_path, "grid: {seed: [1, 2]}\n")).runs


def test_byte_cap(tmp_path):
    (p,) = problems(tmp_path, "#" * (MAX_SWEEP_BYTES + 1) + "\n")
    assert p.startswith(f"{tmp_path / 's.yaml'}: larger than the cap") and "MAX_SWEEP_BYTES" in p


def test_run_count_cap_is_checked_before_expanding(tmp_path):
    t = time.perf_counter()
    (p,) = problems(tmp_path, "repeat: 1000\ngrid: {seed: 0-999}\n")
    assert time.perf_counter() - t < 10
    assert f"1000000 runs (grid x sample.n x repeat); the cap is {MAX_RUNS}" in p


# --------------------------------------------------------------- files, not files ----
def _sweep_cmd(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # a subprocess with a timeout: a loader that blocks fails the test instead of hanging it
    return subprocess.run([sys.executable, "-m", "gicsim", "sweep", str(path), "--no-progress"],
                          cwd=cwd, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_fifo_as_sweep_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    r = _sweep_cmd(fifo, tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"{fifo}: " + r.stderr.split(f"{fifo}: ", 1)[1].strip()]
    assert "FIFO" in r.stderr


def test_fifo_as_base_scenario_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "base.yaml"
    os.mkfifo(fifo)
    r = _sweep_cmd(sweep_file(tmp_path, "", base=fifo), tmp_path)
    assert r.returncode == 2, r.stderr
    assert "FIFO" in r.stderr and "Traceback" not in r.stderr


def test_directory_as_sweep_file(tmp_path):
    code, out = cli(str(tmp_path))
    assert code == 2 and out.strip() == f"{tmp_path}: is a directory, not a sweep file"


def test_missing_sweep_file_and_base(tmp_path):
    code, out = cli(str(tmp_path / "nope.yaml"))
    assert code == 2 and out.strip().endswith("nope.yaml: no such file")
    code, out = cli(str(sweep_file(tmp_path, "", base="missing.yaml")))
    assert code == 2
    assert "s.yaml:1:7: base: the base scenario" in out and "missing.yaml: no such file" in out


def test_not_utf8(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_bytes(b"base: \xff\n")
    with pytest.raises(SweepError, match=r"s\.yaml:1:7: <file>: not valid UTF-8"):
        load_sweep(f)


# ------------------------------------------------------------------------ options ----
@pytest.mark.parametrize("jobs", ["0", "-4", "100000"])
def test_nonsense_job_counts_exit_2(tmp_path, jobs):
    code, out = cli(str(sweep_file(tmp_path, "")), "-j", jobs)
    assert code == 2
    assert out.strip().splitlines() == [out.strip()] and "-j/--jobs: expected 1.." in out


def test_shipped_sweeps_are_valid():
    for f in sorted((ROOT / "sweeps").glob("*.yaml")):
        sw = load_sweep(f)
        assert sw.runs and sw.name == f.stem
