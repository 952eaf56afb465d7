"""Every shipped scenario meets its own expect; putting a hazard's step order (or kernel
variant) back to the default makes the hazard disappear."""

from __future__ import annotations

from pathlib import Path

import pytest

import gicsim
from gicsim.scenario import DEFAULT_DEST_STEPS, DEFAULT_SOURCE_STEPS, load_scenario, resolved_dict

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_meets_its_expect(path):
    if path.stem == "scale-512":
        pytest.skip("benchmark scenario: run by bench/run.py")
    res = gicsim.run(path)
    assert res.summary["expect"]["failures"] == []
    assert res.scenario.description, "every shipped scenario explains itself"


def fixed(name: str, **change) -> dict:
    d = resolved_dict(load_scenario(Path("scenarios") / f"{name}.yaml"))
    for key, value in change.items():
        node = d
        *path, last = key.split(".")
        for p in path:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
    d["expect"] = {}
    return d


def outcome(d: dict) -> dict:
    s = gicsim.run(d).summary
    return {
        "status": [m["status"] for m in s["migrations"]],
        "lost": s["lpis"]["lost"],
        "spurious": s["lpis"]["spurious"],
        "misrouted": s["lpis"]["misrouted"],
        "dropped": {k: n for k, n in s["lpis"]["dropped"].items() if n and k != "unmapped"},
        "state_match": s["state_match"],
        "ebusy": sum(m["ebusy"] for m in s["migrations"]),
    }


CLEAN = {"status": ["completed"], "lost": 0, "spurious": 0, "misrouted": 0, "dropped": {},
         "state_match": True, "ebusy": 0}  # fmt: skip

DEST = list(DEFAULT_DEST_STEPS)
SRC = list(DEFAULT_SOURCE_STEPS)


@pytest.mark.parametrize(
    "name, change",
    [
        ("restore-its-before-redistributors", {"migration.0.destination.steps": DEST}),
        ("tables-before-memory", {"migration.0.destination.steps": DEST}),
        ("creadr-before-cbaser", {"migration.0.destination.steps": DEST}),
        ("ctlr-before-restore", {"migration.0.destination.steps": DEST}),
        ("devices-not-quiesced", {"migration.0.source.steps": SRC}),
        ("v5-double-sync", {"kernel.pending_sync_on_ctlr": False}),
        ("straggler-abort", {"migration.0.source.stop_wait_us": None}),
        ("straggler-continue", {"migration.0.source.stop_wait_us": None}),
    ],
)
def test_putting_the_default_back_removes_the_hazard(name, change):
    hazard = outcome(fixed(name))
    assert hazard != CLEAN
    assert outcome(fixed(name, **change)) == CLEAN


def test_correct_translation_cache_removes_stale_hazard():
    hazard = outcome(fixed("stale-translation-cache"))
    assert hazard["spurious"] > 0 and hazard["lost"] > 0
    assert outcome(fixed("stale-translation-cache", **{"kernel.translation_cache": "correct"})) == CLEAN


def test_v5_double_sync_is_harmless_when_sync_leaves_ram_bits():
    ok = outcome(fixed("v5-double-sync", **{"kernel.pending_sync_clears_ram": False}))
    assert ok["lost"] == 0
