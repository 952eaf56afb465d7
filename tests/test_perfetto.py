"""Perfetto / Chrome trace-event export: valid JSON in the trace-event format, the expected
tracks (one per vCPU, the ITS, one per VM incarnation), slices that match the trace."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.present import perfetto
from gicsim.present.rundata import from_result

SC = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture(scope="module")
def retry():
    run = from_result(gicsim.run(SC / "straggler-retry.yaml"))
    return run, json.loads(perfetto.to_json(run))


def _names(doc, key):
    return {(e["pid"], e.get("tid")): e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == key}


def test_valid_trace_event_json(retry):
    run, doc = retry
    assert doc["displayTimeUnit"] == "ns" and isinstance(doc["traceEvents"], list)
    for e in doc["traceEvents"]:
        assert e["ph"] in {"X", "i", "M"}, e
        assert isinstance(e["pid"], int) and isinstance(e["name"], str)
        if e["ph"] == "M":
            continue
        assert isinstance(e["tid"], int)
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0
        else:
            assert e["s"] == "t"
        assert isinstance(e.get("args", {}), dict)
    ts = [e["ts"] for e in doc["traceEvents"] if e["ph"] != "M"]
    assert ts == sorted(ts)
    assert max(ts) * 1000 <= run.summary["sim_ns"]


def test_expected_tracks(retry):
    run, doc = retry
    procs = _names(doc, "process_name")
    assert set(procs.values()) == {"guest vCPUs", "ITS", "migration"}
    threads = set(_names(doc, "thread_name").values())
    for v in range(run.scenario.vm.vcpus):
        assert f"vCPU {v}" in threads and f"vCPU {v}: outside KVM_RUN" in threads
    assert {"ITS", "devices (MSI raises)", "vm0 (source)", "vm1 (destination)"} <= threads
    # every event sits on a named track
    named = set(_names(doc, "thread_name"))
    assert {(e["pid"], e["tid"]) for e in doc["traceEvents"] if e["ph"] != "M"} <= named


def test_slices_match_the_trace(retry):
    run, doc = retry
    df = run.trace
    ev = [e for e in doc["traceEvents"] if e["ph"] != "M"]
    handlers = [e for e in ev if e["ph"] == "X" and e["cat"] == "lpi"]
    assert len(handlers) == int((df["kind"] == "deliver").sum())
    assert all(e["dur"] == pytest.approx(run.scenario.timing.handler_ns / 1000) for e in handlers)
    steps = {e["name"]: e for e in ev if e["ph"] == "X" and e["cat"] == "migration"}
    phases = run.summary["migrations"][0]["phases"]
    for name, p in phases.items():
        key = "pre-copy" if name == "precopy" else name
        assert steps[key]["ts"] == pytest.approx(p["start_ns"] / 1000)
        assert steps[key]["dur"] == pytest.approx((p["end_ns"] - p["start_ns"]) / 1000)
    kinds = Counter(e["name"] for e in ev if e["cat"] == "migration" and e["ph"] == "i")
    assert kinds["KVM SAVE_PENDING_TABLES → EBUSY"] == 3 and kinds["KVM SAVE_PENDING_TABLES"] == 1
    out = [e for e in ev if e["cat"] == "kvm_run" and e["ph"] == "X"]
    assert len(out) == int((df["kind"] == "vcpu").sum()) // 2  # each exit paired with its enter
    straggler = [e for e in out if e["tid"] == perfetto.KVMRUN_TID + 3]
    assert straggler[0]["ts"] * 1000 == df[(df["kind"] == "vcpu") & (df["vcpu"] == 3)]["t"].iloc[0]
    its = [e for e in ev if e["cat"] == "its"]
    assert len(its) == int(df["kind"].isin(["accept", "drop", "cmd", "gcmd"]).sum())


def test_cli_perfetto_flag(tmp_path):
    r = CliRunner().invoke(main, ["report", str(SC / "devices-not-quiesced.yaml"), "-o", str(tmp_path / "r"), "--perfetto"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "r" / "trace.perfetto.json").read_text())
    names = [e["name"] for e in doc["traceEvents"]]
    assert "drop: its_disabled" in names and "migration completed" in names
