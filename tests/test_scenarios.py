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


# -- creadr-before-cbaser: the replay hazard as the kernel's own code has it -----------------

ODD = list(range(8193, 8224, 2))  # vCPU 1's LPIs in creadr-before-cbaser


def _kernel_creadr_replay(release: str, creadr_first: bool, disabled: bool) -> list[int]:
    """The scenario's mechanism on the kernel reference: boot through the command queue, 32
    LPIs pending (vCPU 1's 16 never taken; disabled in the property table or not), save,
    restore with CREADR written before or after CBASER, enable the ITS (which replays the
    queue from CREADR), re-enable vCPU 1's LPIs + INVALL, run vCPU 1. Returns what it takes."""
    from linux_helpers import kernel

    from gicsim.linux import lib as L

    k = kernel(release)
    prop = bytearray([0xA1]) * (65536 - 8192)
    for lpi in ODD:
        prop[lpi - 8192] = 0xA0 if disabled else 0xA1
    src = L.VM(k, 2)
    lay = src.boot_lpis(prop_bytes=bytes(prop))
    cmds = [L.cmd_mapc(0, 0), L.cmd_mapc(1, 1), L.cmd_mapd(2, 4, lay["itt"])]
    cmds += [L.cmd_mapti(2, e, 8192 + e, e % 2) for e in range(32)]
    assert src.queue(*cmds) == 0
    assert [src.signal_msi(2, e) for e in range(32)] == [1] * 32
    assert len(src.deliver(0)) == 16
    for v in range(2):
        src.set_running(v, False)
    assert src.save_pending_tables() == 0 and src.save_tables() == 0
    regs = {off: src.its_reg_get(off)[1] for off in (L.GITS_IIDR, L.GITS_CBASER, L.GITS_CREADR,
                                                     L.GITS_CWRITER, L.GITS_BASER0, L.GITS_BASER1)}
    dst = L.VM(k, 2)
    for v in range(2):
        dst.set_running(v, False)
    dst.ram[:] = bytes(src.ram)
    for v in range(2):
        for off in (L.GICR_PROPBASER, L.GICR_PROPBASER + 4, L.GICR_PENDBASER, L.GICR_PENDBASER + 4):
            assert dst.redist_reg_set(v, off, src.redist_reg_get(v, off)[1]) == 0
        assert dst.redist_reg_set(v, L.GICR_CTLR, 1) == 0
    order = [L.GITS_IIDR, L.GITS_CREADR, L.GITS_CBASER] if creadr_first else [L.GITS_IIDR, L.GITS_CBASER, L.GITS_CREADR]
    for off in (*order, L.GITS_CWRITER, L.GITS_BASER0, L.GITS_BASER1):
        assert dst.its_reg_set(off, regs[off]) == 0
    assert dst.its_read(L.GITS_CREADR) == (0 if creadr_first else regs[L.GITS_CREADR])
    assert dst.restore_tables() == 0
    assert dst.its_reg_set(L.GITS_CTLR, 1) == 0
    assert dst.its_read(L.GITS_CREADR) == regs[L.GITS_CWRITER]  # replayed up to CWRITER
    for lpi in ODD:
        dst.poke(lay["prop"] + lpi - 8192, bytes([0xA1]))
    assert dst.queue(L.cmd_invall(1)) == 0
    got = dst.deliver(1)
    src.close()
    dst.close()
    return got


@pytest.mark.parametrize("release", ["6.12", "6.1"])
def test_creadr_replay_loses_only_lpis_that_were_not_queued_in_the_kernel(release):
    """The kernel's answer behind creadr-before-cbaser (issue 12, item 1): a queued LPI
    survives the replayed MAPD/MAPTI with its pending state; a disabled one is lost."""
    assert _kernel_creadr_replay(release, creadr_first=True, disabled=False) == ODD
    assert _kernel_creadr_replay(release, creadr_first=True, disabled=True) == []
    assert _kernel_creadr_replay(release, creadr_first=False, disabled=True) == ODD


def test_creadr_replay_keeps_queued_lpis_in_the_model():
    """The gicsim 0.1 form of the scenario (vCPU 1 masked, its LPIs enabled and queued) loses
    nothing now, as in the kernel; the shipped form (LPIs disabled) loses all 16."""
    d = fixed("creadr-before-cbaser")
    boot = [b for b in d["guest"]["boot"] if not ({"lpi_config", "invall"} & set(b))]
    d["guest"]["boot"] = [*boot, {"mask": [1]}]
    d["guest"]["actions"] = [{"after": "resume", "delay_us": 50, "vcpu": 1, "mask": False}]
    s = gicsim.run(d).summary
    assert s["lpis"]["lost"] == 0 and s["migrations"][0]["status"] == "completed"
    got = {x["lpi"] for x in s["delivered"] if x["vcpu"] == 1 and x["side"] == "destination"}
    assert got == set(ODD)
    assert outcome(fixed("creadr-before-cbaser"))["lost"] == 16
