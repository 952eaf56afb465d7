"""Corrupted guest memory between save and restore, in the co-simulation.

A migration runs; after the destination's ``memory`` step a ``sim.step_observers`` hook
corrupts the ITS tables that were just copied into the destination's RAM. Just before
``its_restore_tables`` the hook decodes the (corrupted) tables with the independent
``invariants.reference_restore``. Then:

- a corruption the kernel rejects fails the migration on the destination with exactly that
  errno at ``its_restore_tables`` (the summary says so; the source resumes), and no
  exception escapes the run;
- a corruption the kernel accepts completes the migration, and the destination ITS holds
  exactly what the corrupted tables say.
"""

from __future__ import annotations

import copy
import types

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from invariants import assert_invariants, model_restored, reference_restore
from test_fuzz_restore import corruptions

from gicsim.judge import oracles
from gicsim.kvm import abi
from gicsim.scenario import scenario_from_dict
from gicsim.sim.simulation import Simulation, summarise

BASE = {
    "name": "corrupt",
    "seed": 3,
    "until_us": 2_000_000,  # room for a restore that walks all 64 MiB of RAM (90 ns a slot)
    "vm": {"vcpus": 2, "memory_mib": 64},
    "guest": {
        "boot": [
            {"enable_lpis": "all"},
            {"mapc": {"icid": 0, "vcpu": 0}},
            {"mapc": {"icid": 1, "vcpu": 1}},
            {"mapd": {"device": 2, "event_bits": 4}},
            {"mapd": {"device": 5, "event_bits": 3}},
            {"mapd": {"device": 9000, "event_bits": 2}},
            {"map_events": {"device": 2, "events": "0-15", "lpis": "8192-8207", "icid": [0, 1]}},
            {"map_events": {"device": 5, "events": "0-7", "lpis": "8208-8215", "icid": 1}},
            {"map_events": {"device": 9000, "events": [1, 3], "lpis": [8216, 8217], "icid": 0}},
            {"its_enable": True},
        ]
    },
    "devices": [
        {"device": [2, 5], "events": "0-7", "rate_per_s": 20000, "pattern": "poisson",
         "start_us": 100, "stop_us": 2500},  # fmt: skip
    ],
    "migration": {"at_us": 800},
}


def scenario(device_table: str = "flat", **kernel):
    d = copy.deepcopy(BASE)
    d["vm"]["its"] = {"device_table": device_table}
    d["kernel"] = kernel
    return scenario_from_dict(d)


def run_corrupted(sc, corrupt):
    """Run ``sc``; ``corrupt(sim, mig, dst)`` edits the destination's RAM after ``memory``.

    Returns (summary, reference outcome, destination state right after the restore or None).
    """
    sim = Simulation(sc)
    seen: dict = {}

    def observer(mig, step, vm):
        if vm is not mig.dst:
            return
        if step == "memory":
            corrupt(sim, mig, vm)
        if "its_restore_tables" in mig.cfg.destination.steps:
            nxt = mig.cfg.destination.steps.index("its_restore_tables") - 1
            if step == mig.cfg.destination.steps[nxt]:
                v = vm.vgic
                seen["want"] = reference_restore(
                    vm.mem, vm.its.baser_device_table, vm.its.baser_coll_table, v.nr_vcpus,
                    v.propbaser, [c.pendbaser for c in v.cpus], v.kernel.restore_scan,
                    v.kernel.pending_sync_clears_ram,
                )  # fmt: skip
        if step == "its_restore_tables":
            assert_invariants(vm)
            seen["got"] = model_restored(vm.its)

    sim.step_observers.append(observer)
    sim.run()  # nothing may escape
    verdict = oracles.judge(sim.trace.rec, sc.until_ns)
    summary = summarise(sim, verdict, 0.0)
    for vm in sim.vms:
        assert_invariants(vm)
    return sim, summary, seen["want"], seen.get("got")


def check(sim, summary, want, got):
    if currently_in_test_context():
        event(f"restore: {want.errno or 'accepted'}")
    (mig,) = summary["migrations"]
    errors = [(e["step"], e["errno"]) for e in mig["errors"]]
    if want.errno is not None:
        assert mig["status"] == "failed", mig
        assert errors == [("its_restore_tables", want.errno)]
        assert got is None  # the step never completed
        dst = sim.migrations[0].dst
        assert dst.its.device_list == [] and dst.its.collection_list == {}
        # vgic_put_irq / vgic_queue_irq_unlock: an LPI the failed restore had already queued
        # (pending bit synced) keeps the ap_list's reference and stays in lpi_xa until the
        # vCPU prunes it; nothing else survives
        assert all(irq.vcpu is not None and irq.refcount == 1 for irq in dst.vgic.lpi_xa.values())
        assert sim.current_vm is sim.migrations[0].src  # the source runs on
        assert summary["state_match"] is None
    else:
        assert mig["status"] == "completed", mig
        assert errors == []
        assert got == want
        assert sim.current_vm is sim.migrations[0].dst


def drv(sim):
    return sim.driver.drv


def write(addr_of, value):
    def corrupt(sim, mig, dst):
        dst.mem.write_u64(addr_of(drv(sim)), value(drv(sim)) if callable(value) else value)

    return corrupt


CASES = {
    # rejected: the kernel's errno
    "pintid_below_8192": (write(lambda d: d.itt[2] + 8 * 3, abi.encode_ite(0, 100, 1)), "EINVAL"),
    "ite_icid_without_collection": (write(lambda d: d.itt[5], abi.encode_ite(1, 8208, 7)), "EINVAL"),
    "ite_chain_past_itt": (write(lambda d: d.itt[5] + 8 * 7, abi.encode_ite(1, 8215, 1)), "EINVAL"),
    "cte_unknown_vcpu": (write(lambda d: d.ct_base, abi.encode_cte(2, 0)), "EINVAL"),
    "cte_duplicate_icid": (write(lambda d: d.ct_base + 8, abi.encode_cte(1, 0)), "EEXIST"),
    "itt_outside_ram": (write(lambda d: d.dt_base + 8 * 2, abi.encode_dte(True, 3, 0x1000, 4)), "EFAULT"),
    "huge_pintid_no_property_byte": (
        write(lambda d: d.itt[5], abi.encode_ite(1, 0xFFFF_0000, 1)), "EFAULT"),  # fmt: skip
    # accepted: the tables' word is the state
    "ite_retargeted": (write(lambda d: d.itt[2], abi.encode_ite(1, 8192, 1)), None),
    "dte_chain_cut": (write(lambda d: d.dt_base + 8 * 2, lambda d: abi.encode_dte(True, 0, d.itt[2], 4)), None),
    "ite_invalidated": (write(lambda d: d.itt[5] + 8 * 2, 0), None),
    "cte_terminates_early": (write(lambda d: d.ct_base + 8, 0), "EINVAL"),  # ITEs on ICID 1 orphaned
    "nothing": (lambda sim, mig, dst: None, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupted_tables_in_the_migration_stream(case):
    corrupt, errno = CASES[case]
    sim, summary, want, got = run_corrupted(scenario(), corrupt)
    assert want.errno == errno  # the reference agrees with the case's intent
    check(sim, summary, want, got)
    if case == "ite_retargeted":
        assert got.ites[(2, 0)] == (8192, 1) and got.lpis[8192] == 1
    if case == "dte_chain_cut":
        assert set(got.devices) == {2}


def test_two_level_level1_entry_invalidated_drops_that_page():
    # device 9000 lives in level-2 page 1; its level-1 entry invalid -> the walk skips it
    corrupt = write(lambda d: d.dt_base + 8, 0)
    sc = scenario("two_level")
    sim, summary, want, got = run_corrupted(sc, corrupt)
    check(sim, summary, want, got)
    assert want.errno is None and set(got.devices) == {2, 5}


def test_corruption_in_the_source_stream_pages():
    """Corrupt what the source sends (controller.stream_pages after final_memory)."""
    sim = Simulation(scenario())
    seen = {}

    def observer(mig, step, vm):
        if step == "final_memory":
            d = drv(sim)
            addr = d.ct_base
            page = bytearray(mig.stream_pages[addr >> 12])
            off = addr & 0xFFF
            page[off : off + 8] = abi.encode_cte(9, 0).to_bytes(8, "little")  # vCPU 9: none
            mig.stream_pages[addr >> 12] = bytes(page)
            seen["done"] = True

    sim.step_observers.append(observer)
    sim.run()
    s = summarise(sim, oracles.judge(sim.trace.rec, sim.scenario.until_ns), 0.0)
    assert seen["done"]
    (mig,) = s["migrations"]
    assert mig["status"] == "failed"
    assert [(e["step"], e["errno"]) for e in mig["errors"]] == [("its_restore_tables", "EINVAL")]


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(device_table=st.sampled_from(["flat", "two_level"]),
       restore_scan=st.sampled_from(["full", "head_pointer"]), data=st.data())  # fmt: skip
def test_random_corruption_in_the_co_simulation(device_table, restore_scan, data):
    sc = scenario(device_table, restore_scan=restore_scan)
    # Pass 1 (no corruption) finds the tables; the corruption is drawn outside the simulation
    # (a draw inside a SimPy process cannot stop the test cleanly); pass 2 (the same seed, so
    # the same layout) writes it into the destination's RAM after the memory step.
    seen = {}

    def look(sim, mig, dst):
        seen["view"] = types.SimpleNamespace(its=mig.src.its, vgic=mig.src.vgic, mem=mig.src.mem,
                                             drv=drv(sim))  # fmt: skip

    run_corrupted(sc, look)
    todo = data.draw(corruptions(seen["view"]), label="corruptions")

    def corrupt(sim, mig, dst):
        for _table, gpa, new in todo:
            dst.mem.write_u64(gpa, new)

    check(*run_corrupted(sc, corrupt))
