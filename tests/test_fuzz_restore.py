"""Property tests of save -> corrupt guest memory -> restore, on the kernel model alone.

A random but valid ITS state is saved (pending tables, then ITS tables); random corruption is
written over the saved tables (bit flips, random u64s, zeros and crafted entries in CTE, DTE,
ITE and level-1 slots, flat and two-level device tables); a fresh destination restores them.
``invariants.reference_restore`` decodes the same bytes independently. The restore must:

- raise nothing but a ``KvmError``, and exactly the errno the reference predicts;
- when it fails, leave no device or collection behind, and no LPI but those a vCPU's ap_list
  still holds: an LPI restored pending before a later entry failed was queued, and the
  ap_list reference outlives the ITE the failure frees (checked against the 6.12 library);
- when it succeeds, hold exactly the collections, devices, ITEs, LPI targets and pending
  LPIs that the tables say;
- keep the model's invariants, also while the guest then runs MSIs against the result.
"""

from __future__ import annotations

from conftest import make_vm
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from invariants import assert_invariants, model_restored, reference_restore

from gicsim.kvm import abi
from gicsim.kvm import commands as C
from gicsim.kvm.errors import KvmError
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.releases import KernelProfile
from gicsim.sim import vmm

U64 = st.integers(0, 2**64 - 1)


@st.composite
def its_states(draw):
    nr = draw(st.integers(1, 4))
    two_level = draw(st.booleans())
    colls = draw(st.dictionaries(st.integers(0, 7), st.integers(0, nr - 1), min_size=1, max_size=5))
    ids = st.one_of(st.integers(0, 40), st.integers(0, 0xFFFF)) if two_level else st.integers(0, 3000)
    devices = draw(st.dictionaries(
        ids,
        st.tuples(st.integers(1, 10), st.lists(st.integers(0, 1023), max_size=5, unique=True)),
        min_size=1, max_size=5,
    ))  # fmt: skip
    unmapped_icid = draw(st.booleans())  # MAPTI to an ICID never mapped: a placeholder CTE
    kernel = KernelProfile(
        pending_sync_clears_ram=draw(st.booleans()),
        restore_scan=draw(st.sampled_from(["full", "head_pointer"])),
    )
    pending = draw(st.sets(st.integers(0, 63), max_size=20))
    return nr, two_level, colls, devices, unmapped_icid, kernel, pending


def build_and_save(nr, two_level, colls, devices, unmapped_icid, kernel, pending):
    vm = make_vm(nr, kernel=kernel, device_table="two_level" if two_level else "flat")
    d = vm.drv
    cmds = [C.mapc(icid, v) for icid, v in colls.items()]
    icids = sorted(colls) + ([9] if unmapped_icid else [])
    lpi = 8192
    for dev, (bits, events) in sorted(devices.items()):
        cmds.append(d.mapd_cmd(dev, bits))
        for i, ev in enumerate(sorted(e for e in events if e < 1 << bits)):
            d.lpi_config(lpi)
            cmds.append(C.mapti(dev, ev, lpi, icids[i % len(icids)]))
            lpi += 1
    for i in range(0, len(cmds), 32):
        d.post(*cmds[i : i + 32])
    for n in sorted(pending):  # raise some of the LPIs (pending_latch)
        hits = sorted(vm.its.mappings())
        if hits:
            vm.its.vgic_its_inject_msi(*hits[n % len(hits)])
    vmm.save_pending_tables(vm.gic)
    vmm.its_save_tables(vm.itsdev)
    assert_invariants(vm)
    return vm


def slots(vm) -> dict[str, list[int]]:
    """Addresses of table slots worth corrupting, by table."""
    its, d = vm.its, vm.drv
    out: dict[str, list[int]] = {"cte": [], "dte": [], "ite": [], "l1": []}
    out["cte"] = [d.ct_base + 8 * i for i in range(len(its.collection_list) + 2)]
    ids = sorted({0, 1} | {dev.device_id for dev in its.device_list}
                 | {dev.device_id + 1 for dev in its.device_list})  # fmt: skip
    for i in ids:
        gpa = its.vgic_its_check_id(its.baser_device_table, i)
        if gpa is not None:
            out["dte"].append(gpa)
    for dev in its.device_list:
        evs = sorted({0, 1} | set(dev.ites) | {e + 1 for e in dev.ites})
        out["ite"] += [dev.itt_addr + 8 * e for e in evs if e < 1 << dev.num_eventid_bits]
    if d.two_level:
        out["l1"] = [d.dt_base + 8 * i for i in range(9)]
    return {k: v for k, v in out.items() if v}


def crafted(draw, table: str, vm) -> int:
    """A plausible entry: valid bits set, fields near or at the edges of what is legal."""
    its, d = vm.its, vm.drv
    nr = vm.vgic.nr_vcpus
    lpis = sorted(its.vgic.lpi_xa) or [8192]
    itts = sorted(d.itt.values()) or [d.dt_base]
    if table == "cte":
        target = draw(st.one_of(st.integers(0, nr), st.sampled_from([0xFFFF_FFFF, 0xFFFF_FFFE]),
                                st.integers(0, 2**32 - 1)))  # fmt: skip
        icid = draw(st.one_of(st.sampled_from(sorted(its.collection_list) or [0]), st.integers(0, 0xFFFF)))
        return abi.encode_cte(target, icid)
    if table == "dte":
        nxt = draw(st.one_of(st.integers(0, 40), st.integers(0, (1 << 14) - 1)))
        itt = draw(st.one_of(st.sampled_from(itts), st.integers(0, 2**52 - 1).map(lambda a: a & ~0xFF)))
        bits = draw(st.one_of(st.integers(1, 12), st.integers(1, 32)))
        return abi.encode_dte(True, nxt, itt, bits)
    if table == "ite":
        nxt = draw(st.one_of(st.integers(0, 8), st.integers(0, 0xFFFF)))
        pintid = draw(st.one_of(st.sampled_from(lpis), st.integers(8192, 0xFFFF),
                                st.integers(1, 8191), st.integers(0, 2**32 - 1)))  # fmt: skip
        icid = draw(st.one_of(st.sampled_from(sorted(its.collection_list) or [0]), st.integers(0, 0xFFFF)))
        return abi.encode_ite(nxt, pintid, icid)
    l2 = draw(st.one_of(st.sampled_from(itts + [d.dt_base, d.ct_base]),
                        st.integers(0, 2**52 - 1)))  # fmt: skip
    return abi.encode_l1e(l2 & ~0xFFFF, draw(st.booleans()))


@st.composite
def corruptions(draw, vm):
    where = slots(vm)
    out = []
    for _ in range(draw(st.integers(1, 4))):
        table = draw(st.sampled_from(sorted(where)))
        gpa = draw(st.sampled_from(where[table]))
        kind = draw(st.sampled_from(["flip", "flip", "random", "zero", "crafted", "crafted"]))
        old = vm.mem.read_u64(gpa)
        if kind == "flip":
            new = old ^ (1 << draw(st.integers(0, 63)))
        elif kind == "random":
            new = draw(U64)
        elif kind == "zero":
            new = 0
        else:
            new = crafted(draw, table, vm)
        out.append((table, gpa, new))
    return out


def restore_on_fresh_vm(src):
    """The destination: RAM copied, redistributors and GITS_* restored in QEMU's order, up to
    (not including) RESTORE_TABLES."""
    regs = vmm.its_read_regs(src.itsdev)
    rd = vmm.redist_read_regs(src.gic, src.vgic.nr_vcpus)
    mem = GuestMemory(src.mem.size, src.mem.base)
    src.mem.copy_pages_to(mem)
    dst = make_vm(src.vgic.nr_vcpus, src.vgic.kernel, mem=mem, boot=False)
    dst.drv = src.drv.rebind(dst.vgic, dst.its)
    vmm.redist_write_regs(dst.gic, rd)
    for name in ["GITS_IIDR", "GITS_CBASER", "GITS_CREADR", "GITS_CWRITER"] + [
        f"GITS_BASER{n}" for n in range(8)
    ]:
        vmm.its_write_reg(dst.itsdev, name, regs[name])
    return dst, regs


def expected_of(dst):
    v = dst.vgic
    return reference_restore(
        dst.mem,
        dst.its.baser_device_table,
        dst.its.baser_coll_table,
        v.nr_vcpus,
        v.propbaser,
        [c.pendbaser for c in v.cpus],
        v.kernel.restore_scan,
        v.kernel.pending_sync_clears_ram,
    )


def restore_and_check(dst, regs):
    want = expected_of(dst)
    try:
        vmm.its_restore_tables(dst.itsdev)
        got = None
    except KvmError as e:
        got = e.errno
    if currently_in_test_context():
        event(f"restore: {got or 'accepted'}")
    assert got == want.errno
    assert_invariants(dst)
    if got is not None:
        assert dst.its.device_list == [] and dst.its.devices == {}
        assert dst.its.collection_list == {}
        queued = {i: irq for c in dst.vgic.cpus for i, irq in c.ap_list.items()}
        assert dst.vgic.lpi_xa == queued
        return want
    assert model_restored(dst.its) == want
    # the guest runs on: every restored mapping translates as its collection says
    vmm.its_write_reg(dst.itsdev, "GITS_CTLR", regs["GITS_CTLR"])
    for (dev, ev), (lpi, icid) in sorted(want.ites.items()):
        why = dst.its.vgic_its_inject_msi(dev, ev)
        target = want.collections[icid]
        if target == 0xFFFF_FFFF:
            assert why == "unmapped"
        else:
            assert why == "accepted" and dst.vgic.lpi_xa[lpi].pending_latch, (dev, ev, why)
        assert_invariants(dst)
    return want


@given(state=its_states(), data=st.data())
def test_corrupted_tables_restore_exactly_as_the_tables_say(state, data):
    src = build_and_save(*state)
    for _table, gpa, new in data.draw(corruptions(src), label="corruptions"):
        src.mem.write_u64(gpa, new)
    dst, regs = restore_on_fresh_vm(src)
    restore_and_check(dst, regs)


@given(state=its_states())
def test_uncorrupted_tables_restore_the_source_mappings(state):
    src = build_and_save(*state)
    dst, regs = restore_on_fresh_vm(src)
    want = restore_and_check(dst, regs)
    assert want.errno is None
    assert want.ites == src.its.mappings()
    assert want.collections == {c.collection_id: c.target_addr for c in src.its.collection_list.values()}


# Known corruptions with known answers: the reference (and so the property) is not vacuous.
def _one(corrupt):
    state = (2, False, {0: 1, 1: 0}, {2: (4, [1, 3]), 7: (3, [0])}, False, KernelProfile(), set())
    src = build_and_save(*state)
    corrupt(src)
    dst, regs = restore_on_fresh_vm(src)
    return restore_and_check(dst, regs)


def test_reference_agrees_on_known_corruptions():
    d = lambda vm: vm.drv  # noqa: E731
    assert _one(lambda vm: None).ites == {(2, 1): (8192, 0), (2, 3): (8193, 1), (7, 0): (8194, 0)}
    assert _one(lambda vm: vm.mem.write_u64(d(vm).itt[2] + 8, (50 << 16) | 0)).errno == "EINVAL"
    assert _one(lambda vm: vm.mem.write_u64(d(vm).ct_base + 8, abi.encode_cte(1, 0))).errno == "EEXIST"
    assert _one(lambda vm: vm.mem.write_u64(d(vm).ct_base, abi.encode_cte(5, 0))).errno == "EINVAL"
    # DTE of device 2 with its ITT below RAM: the first ITE read faults
    bad_itt = abi.encode_dte(True, 5, 0x1000, 4)
    assert _one(lambda vm: vm.mem.write_u64(d(vm).dt_base + 16, bad_itt)).errno == "EFAULT"
    # the DTE chain of device 2 ends at 2: device 7 is never read
    short = lambda vm: vm.mem.write_u64(d(vm).dt_base + 16, abi.encode_dte(True, 0, d(vm).itt[2], 4))  # noqa: E731
    r = _one(short)
    assert r.errno is None and set(r.devices) == {2} and (7, 0) not in r.ites
    # an ITE moved to another (mapped) collection restores on that collection's vCPU
    moved = lambda vm: vm.mem.write_u64(d(vm).itt[7], abi.encode_ite(0, 8194, 1))  # noqa: E731
    r = _one(moved)
    assert r.ites[(7, 0)] == (8194, 1) and r.lpis[8194] == 0
