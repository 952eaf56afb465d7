"""Perfetto / Chrome trace-event export: valid JSON in the trace-event format, the expected
tracks (one per vCPU, the ITS, one per VM incarnation), each with a thread id of its own,
slices that match the trace, written gzipped and reproducibly, the same text whatever the
chunking."""

from __future__ import annotations

import gzip
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
    tid = {name: t for (_, t), name in _names(doc, "thread_name").items()}
    straggler = [e for e in out if e["tid"] == tid["vCPU 3: outside KVM_RUN"]]
    assert straggler[0]["ts"] * 1000 == df[(df["kind"] == "vcpu") & (df["vcpu"] == 3)]["t"].iloc[0]
    its = [e for e in ev if e["cat"] == "its"]
    assert len(its) == int(df["kind"].isin(["accept", "drop", "cmd", "gcmd"]).sum())


def test_cli_perfetto_flag(tmp_path):
    r = CliRunner().invoke(main, ["report", str(SC / "devices-not-quiesced.yaml"), "-o", str(tmp_path / "r"), "--perfetto"])
    assert r.exit_code == 0, r.output
    raw = (tmp_path / "r" / "trace.perfetto.json.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip, which ui.perfetto.dev opens as it is
    doc = json.loads(gzip.decompress(raw))
    names = [e["name"] for e in doc["traceEvents"]]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    drops = {f"drop: {k}" for k, n in summary["lpis"]["dropped"].items() if n}
    assert drops and drops == {n for n in names if n.startswith("drop: ")} and "migration completed" in names


def test_every_track_has_a_thread_id_of_its_own(retry):
    """The Perfetto UI merges the names of threads that share a tid, even across processes."""
    run, doc = retry
    threads = _names(doc, "thread_name")
    tids = [tid for _, tid in threads]
    assert len(tids) == len(set(tids)) == 2 + 2 * run.scenario.vm.vcpus + 2  # ITS, devices, vCPUs, 2 VMs
    pid_of = {}
    for e in doc["traceEvents"]:
        if "tid" in e:
            assert pid_of.setdefault(e["tid"], e["pid"]) == e["pid"], e


def test_gzip_is_reproducible_and_holds_the_json(retry):
    run, _ = retry
    a, b = perfetto.to_gzip(run), perfetto.to_gzip(run)
    assert a == b and gzip.decompress(a).decode() == perfetto.to_json(run)
    assert perfetto.files(run) == {"trace.perfetto.json.gz": a}


def test_chunking_does_not_change_the_text(retry, monkeypatch):
    """Events are formatted a chunk at a time (bounded memory on big runs); the order (time,
    then longer slices first, then the parts' order) and the text do not depend on it."""
    run, _ = retry
    whole = perfetto.to_json(run)
    monkeypatch.setattr(perfetto, "CHUNK_EVENTS", 7)
    assert perfetto.to_json(run) == whole


def test_names_are_escaped_as_json_dumps_does():
    import pandas as pd

    v = pd.Series(["KVM SAVE_TABLES → EBUSY", 'a "q"', "back\\slash", "tab\t", "plain name 1"])
    assert perfetto._js(v).tolist() == [json.dumps(x) for x in v]
