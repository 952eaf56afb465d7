"""`gicsim hazards`: the --json contract (one JSON object on stdout, the same as
OUT/hazards.json), located one-line errors for bad space files and options (exit 2), and a
SIGTERM'd run that resumes with only the missing runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim.cli import main

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "hazard-small.yaml"
KEYS = ["scenario", "source", "kernel", "space", "runs", "wall_s", "runs_per_s", "steps", "reference_order",
        "classes", "clean_orders", "pairs", "constraints", "constraint_check", "mechanisms", "left_out",
        "dimensions"]  # fmt: skip
CLASS_KEYS = ["signature", "label", "clean", "count", "example_order", "example_overrides", "cause"]
SIG_KEYS = ["status", "errors", "lost", "spurious", "misrouted", "dropped", "state_match"]
SIX = ["memory", "redistributors", "its_init", "gits_regs", "its_restore_tables", "resume"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["hazards", *args, "--no-progress"])


def space(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "space.yaml"
    f.write_text(body)
    return f


def six_step_scenario(tmp_path: Path) -> Path:
    text = SMALL.read_text().replace("migration:\n  at_us: 1000\n",
                                     f"migration:\n  at_us: 1000\n  destination:\n    steps: [{', '.join(SIX)}]\n")
    assert "destination" in text
    f = tmp_path / "six.yaml"
    f.write_text(text)
    return f


def test_json_prints_one_object_the_same_as_hazards_json(tmp_path):
    sp = space(tmp_path, """destination_orders:
  - [memory, redistributors, its_init, gits_cbaser, gits_regs, its_restore_tables, gits_ctlr, resume]
  - [memory, its_init, gits_cbaser, gits_regs, its_restore_tables, redistributors, gits_ctlr, resume]
leave_out: false
on_ebusy: [abort, continue]
""")
    out = tmp_path / "out"
    r = invoke(str(SMALL), "--space", str(sp), "-o", str(out), "--json")
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)  # exactly one object: json.loads refuses anything after it
    assert r.stdout.count("\n") == 1
    assert obj == json.loads((out / "hazards.json").read_text())
    assert list(obj)[:len(KEYS)] == KEYS
    assert obj["runs"] == 4 and obj["scenario"] == "hazard-small" and obj["source"] == str(SMALL)
    assert obj["space"]["on_ebusy"] == ["abort", "continue"]
    assert obj["steps"] == obj["reference_order"] == ["memory", "redistributors", "its_init", "gits_cbaser",
                                                      "gits_regs", "its_restore_tables", "gits_ctlr", "resume"]
    for c in obj["classes"]:
        assert list(c) == CLASS_KEYS and list(c["signature"]) == SIG_KEYS
    assert [c["clean"] for c in obj["classes"]] == [True, False]
    assert [c["count"] for c in obj["classes"]] == [2, 2]
    assert obj["classes"][1]["signature"] == {"status": "failed", "errors": {"its_restore_tables:EFAULT": 1},
                                              "lost": False, "spurious": False, "misrouted": False,
                                              "dropped": {}, "state_match": None}  # fmt: skip
    assert obj["classes"][1]["example_overrides"] == {"on_ebusy": "abort"}
    assert "RESTORE_TABLES" in obj["classes"][1]["cause"] and "EFAULT" in obj["classes"][1]["cause"]
    assert obj["clean_orders"] == [obj["reference_order"]]
    assert len(obj["pairs"]) == 8 * 7
    assert obj["dimensions"] == [
        {"name": "on_ebusy", "value": "abort", "classes": {"completed, clean": 1,
                                                           "failed (its_restore_tables EFAULT x1); no state compared": 1}},
        {"name": "on_ebusy", "value": "continue", "classes": {"completed, clean": 1,
                                                              "failed (its_restore_tables EFAULT x1); no state compared": 1}},
    ]  # fmt: skip
    assert "4 runs" in r.stderr


@pytest.mark.parametrize("body, want", [
    ("destination_order: all\n", "space.yaml:1:1: destination_order: unknown key 'destination_order' (did you mean "
                                 "'destination_orders'?); valid keys: destination_orders, leave_out"),
    ("destination_orders: [[memory, redistributers]]\n",
     "space.yaml:1:31: migration.0.destination.steps.1: unknown destination step 'redistributers'"),
    ("straggler_exit_us: [50]\n", "space.yaml:1:1: straggler_exit_us: the scenario has no straggler"),
    ("quiesce_devices: []\n", "space.yaml:1:18: quiesce_devices: expected at least one value, got an empty list"),
    ("[1, 2]\n", "space.yaml:1:1: <root>: a space file is a mapping"),
    ("kernel: [{release: '5.4'}]\n", "space.yaml:1:20: kernel.release: expected '6.12' or '6.1', got '5.4'"),
])  # fmt: skip
def test_a_bad_space_file_is_one_located_line(tmp_path, body, want):
    r = invoke(str(SMALL), "--space", str(space(tmp_path, body)), "-o", str(tmp_path / "o"))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output
    assert lines[0].startswith(str(tmp_path / want.split(":")[0]) + ":"), lines
    assert want in lines[0].replace(str(tmp_path) + "/", ""), lines
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, want", [
    (["-j", "0"], "gicsim: -j/--jobs: expected 1.."),
    (["--dask", "tcp://x:1", "-j", "2"], "gicsim: -j/--jobs and --dask exclude each other"),
    (["--dask", "not an address"], "is not a scheduler address"),
])  # fmt: skip
def test_bad_options_exit_2(tmp_path, args, want):
    r = invoke(str(SMALL), *args, "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and want in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_bad_scenario_exits_2(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nvm: {vcpus: 0}\n")
    r = invoke(str(f), "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and r.stderr.startswith(str(f) + ":") and "Traceback" not in r.output


def test_sigterm_keeps_the_finished_runs_and_a_rerun_runs_only_the_missing(tmp_path):
    sc = six_step_scenario(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gicsim", "hazards", str(sc), "-o", str(out), "--no-progress"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (out / "runs").is_dir() and len(os.listdir(out / "runs")) >= 30:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert "hazards interrupted by SIGTERM" in err and f"kept in {out}/runs" in err
    assert not (out / "hazards.json").exists()
    done = [f for f in os.listdir(out / "runs") if f.endswith(".json")]
    assert 30 <= len(done) < 726
    r = subprocess.run(cmd + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["runs"] == 720 + 6 and obj["ran_now"] == 726 - len(done)


def test_dask_gives_what_local_workers_give(tmp_path):
    pytest.importorskip("dask.distributed")
    from test_sweep_dask import cluster  # a real scheduler and worker, each its own process

    sp = space(tmp_path, """destination_orders:
  - [memory, redistributors, its_init, gits_cbaser, gits_regs, its_restore_tables, gits_ctlr, resume]
  - [memory, its_init, gits_cbaser, gits_regs, its_restore_tables, redistributors, gits_ctlr, resume]
leave_out: true
""")
    cmd = [sys.executable, "-m", "gicsim", "hazards", str(SMALL), "--space", str(sp), "--json", "--no-progress"]
    local = subprocess.run(cmd + ["-o", str(tmp_path / "local"), "-j", "2"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert local.returncode == 0, local.stderr
    with cluster(tmp_path / "cluster") as address:
        r = subprocess.run(cmd + ["-o", str(tmp_path / "dask"), "--dask", address], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    strip = lambda o: {k: v for k, v in json.loads(o).items() if k not in ("wall_s", "runs_per_s")}  # noqa: E731
    a, b = strip(local.stdout), strip(r.stdout)
    assert a == b and a["runs"] == 10 and a["ran_now"] == 10


def test_a_scenario_without_migration_is_one_line_exit_2(tmp_path):
    f = tmp_path / "nomig.yaml"
    f.write_text("name: nomig\nvm: {vcpus: 1}\n")
    r = invoke(str(f), "-o", str(tmp_path / "o"))
    assert r.exit_code == 2
    assert r.stderr == f"{f}: the scenario has no migration: there are no destination steps to order\n"


def test_a_space_with_no_clean_order_says_so(tmp_path):
    """Not "constraints: none (check FAILS)": with no clean order there is nothing to separate."""
    sp = tmp_path / "space.yaml"
    sp.write_text("destination_orders:\n  - [memory, its_init, gits_cbaser, gits_regs, its_restore_tables, "
                  "redistributors, gits_ctlr, resume]\nleave_out: false\n")
    r = CliRunner().invoke(main, ["hazards", str(SMALL), "--space", str(sp), "-o", str(tmp_path / "o"),
                                  "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "  constraints: none — no order in this space is clean (nothing to separate)\n" in r.stdout
    assert json.loads((tmp_path / "o" / "hazards.json").read_text())["clean_orders"] == []
