"""ABI REV0 save/restore: byte-exact tables, round trips, pending state, corrupted and stale
tables, and the restore walk's cost accounting."""

from __future__ import annotations

import pytest
from conftest import make_vm, migrate_plain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gicsim.judge.state import architectural_state, its_state
from gicsim.kvm import abi
from gicsim.kvm import commands as C
from gicsim.kvm.errors import EEXIST, EINVAL
from gicsim.kvm.releases import KernelProfile
from gicsim.sim import vmm


def its_setup1(vm):
    """kvm-unit-tests arm/gic.c its_setup1: devices 2 and 7, ICID 3 -> PE3, ICID 2 -> PE2."""
    d = vm.drv
    d.lpi_config(8195)
    d.lpi_config(8196)
    d.post(d.mapd_cmd(2, 8), d.mapd_cmd(7, 8), C.mapc(3, 3), C.mapc(2, 2), C.invall(2), C.invall(3),
           C.mapti(2, 20, 8195, 3), C.mapti(7, 255, 8196, 2))  # fmt: skip


def test_save_writes_byte_exact_tables(vm):
    its_setup1(vm)
    vmm.its_save_tables(vm.itsdev)
    st_ = vm.itsdev.last_stats
    d, m = vm.drv, vm.mem
    assert m.read_u64(d.dt_base + 2 * 8) == abi.encode_dte(True, 5, d.itt[2], 8)
    assert m.read_u64(d.dt_base + 2 * 8) == (1 << 63) | (5 << 49) | ((d.itt[2] >> 8) << 5) | 7
    assert m.read_u64(d.dt_base + 7 * 8) == (1 << 63) | ((d.itt[7] >> 8) << 5) | 7  # last: next 0
    assert m.read_u64(d.dt_base) == 0  # save never writes other slots
    assert m.read_u64(d.itt[2] + 20 * 8) == (8195 << 16) | 3
    assert m.read_u64(d.itt[7] + 255 * 8) == (8196 << 16) | 2
    # CTEs packed in creation order, then a zero terminator
    assert m.read_u64(d.ct_base) == (1 << 63) | (3 << 16) | 3
    assert m.read_u64(d.ct_base + 8) == (1 << 63) | (2 << 16) | 2
    assert m.read_u64(d.ct_base + 16) == 0
    assert st_.entries_written == 2 + 2 + 2 + 1


def test_unmapped_placeholder_collection_saved_and_restored(vm):
    """its-migrate-unmapped-collection: CTE with RDBase 0xFFFFFFFF restores as unmapped."""
    its_setup1(vm)
    vm.drv.post(C.mapti(2, 0, 8192, 0))  # ICID 0 never mapped
    dst = migrate_plain(vm)
    assert dst.its.find_collection(0).target_addr == 0xFFFF_FFFF
    assert dst.its.mappings()[(2, 0)] == (8192, 0)
    dst.drv.lpi_config(8192)
    dst.drv.post(C.mapc(0, 0), C.invall(0), C.int_(2, 0))
    assert dst.vgic.lpi_xa[8192].pending_latch and dst.vgic.lpi_xa[8192].target_vcpu == 0


def random_mappings(draw_devices, two_level: bool):
    devs = st.dictionaries(
        st.integers(0, 0xFFFF) if two_level else st.integers(0, 20000),
        st.tuples(st.integers(1, 10), st.lists(st.integers(0, 1023), max_size=6, unique=True)),
        max_size=draw_devices,
    )
    return st.tuples(devs, st.lists(st.integers(0, 3), min_size=4, max_size=4), st.booleans())


def build(vm, devices, coll_targets, with_pending):
    d = vm.drv
    cmds = [C.mapc(icid, t) for icid, t in enumerate(coll_targets)]
    lpi = 8192
    for dev, (bits, events) in sorted(devices.items()):
        cmds.append(d.mapd_cmd(dev, bits))
        for i, ev in enumerate(sorted(e for e in events if e < (1 << bits))):
            d.lpi_config(lpi, priority=(lpi * 4) & 0xFC, enabled=bool(lpi % 3))
            if with_pending and lpi % 2:
                d.set_pending(coll_targets[i % 4], lpi)
            cmds.append(C.mapti(dev, ev, lpi, i % 4))
            lpi += 1
    for i in range(0, len(cmds), 64):
        d.post(*cmds[i : i + 64])


@pytest.mark.parametrize("device_table", ["flat", "two_level"])
@pytest.mark.parametrize("restore_scan", ["full", "head_pointer"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_roundtrip_save_restore_identical_state(device_table, restore_scan, data):
    devices, targets, pending = data.draw(random_mappings(12, device_table == "two_level"))
    kernel = KernelProfile(restore_scan=restore_scan)
    src = make_vm(kernel=kernel, device_table=device_table)
    build(src, devices, targets, pending)
    vmm.save_pending_tables(src.gic)
    before = architectural_state(src.vgic)
    dst = migrate_plain(src)
    after = architectural_state(dst.vgic)
    assert after == before
    assert dst.itsdev.last_stats.mappings == (
        len(devices) + len(src.its.mappings()) + len(src.its.collection_list)
    )


def pending_vm(kernel=None):
    vm = make_vm(kernel=kernel)
    vm.drv.lpi_config(8192)
    vm.drv.post(C.mapc(0, 1), vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 0), C.int_(2, 0))
    assert vm.vgic.lpi_xa[8192].pending_latch
    return vm


def pend_byte(vm, vcpu=1, lpi=8192):
    return vm.mem.read_u8(vm.drv.pend_base[vcpu] + lpi // 8) >> (lpi % 8) & 1


def test_pending_at_save_is_pending_after_restore_and_bit_consumed():
    src = pending_vm()
    dst = migrate_plain(src)
    assert pend_byte(src) == 1  # SAVE_PENDING_TABLES wrote it
    assert dst.vgic.lpi_xa[8192].pending_latch
    assert pend_byte(dst) == 0  # consumed by vgic_v3_lpi_sync_pending_status


def test_save_pending_tables_also_clears_bits_of_non_pending_lpis():
    src = pending_vm()
    vmm.save_pending_tables(src.gic)
    src.vgic.acknowledge(1)
    vmm.save_pending_tables(src.gic)
    assert pend_byte(src) == 0


def test_v5_double_sync_on_gits_ctlr_loses_the_lpi():
    v5 = KernelProfile(pending_sync_on_ctlr=True)
    dst = migrate_plain(pending_vm(v5))
    assert not dst.vgic.lpi_xa[8192].pending_latch  # second sync read the consumed bit
    dst = migrate_plain(pending_vm(KernelProfile(pending_sync_on_ctlr=True, pending_sync_clears_ram=False)))
    assert dst.vgic.lpi_xa[8192].pending_latch  # bit was left in RAM: survives
    assert migrate_plain(pending_vm()).vgic.lpi_xa[8192].pending_latch  # mainline


@pytest.mark.parametrize("clears", [True, False])
def test_stale_ram_bit_relatches_a_handled_lpi_on_remap(clears):
    dst = migrate_plain(pending_vm(KernelProfile(pending_sync_clears_ram=clears)))
    irq = dst.vgic.acknowledge(1)
    assert irq is not None and irq.intid == 8192
    dst.vgic.eoi(1, irq)  # handled
    dst.drv.post(C.discard(2, 0), C.mapti(2, 0, 8192, 0))  # the guest re-maps it
    assert dst.vgic.lpi_xa[8192].pending_latch is (not clears)


def test_enable_lpis_resyncs_without_clearing():
    """its-pending-migration: bits set in RAM after MAPTI are picked up on EnableLPIs 0->1."""
    vm = make_vm()
    vm.drv.lpi_config(8192)
    vm.drv.post(C.mapc(0, 1), vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 0))
    vm.drv.disable_lpis(1)
    vm.drv.set_pending(1, 8192)
    assert not vm.vgic.lpi_xa[8192].pending_latch
    vm.drv.enable_lpis(1)
    assert vm.vgic.lpi_xa[8192].pending_latch and pend_byte(vm) == 1


# ------------------------------------------------------------- corrupted tables ----
def saved_vm():
    vm = make_vm()
    its_setup1(vm)
    vmm.save_pending_tables(vm.gic)
    vmm.its_save_tables(vm.itsdev)
    return vm


@pytest.mark.parametrize(
    "corrupt, errno",
    [
        (lambda vm: vm.mem.write_u64(vm.drv.itt[2] + 20 * 8, (100 << 16) | 3), EINVAL),  # pINTID < 8192
        (lambda vm: vm.mem.write_u64(vm.drv.itt[2] + 20 * 8, (8195 << 16) | 9), EINVAL),  # no ICID 9
        (lambda vm: vm.mem.write_u64(vm.drv.itt[2] + 20 * 8, (300 << 48) | (8195 << 16) | 3), EINVAL),
        (lambda vm: vm.mem.write_u64(vm.drv.ct_base, (1 << 63) | (7 << 16) | 3), EINVAL),  # vCPU 7
        (lambda vm: vm.mem.write_u64(vm.drv.ct_base + 8, (1 << 63) | (2 << 16) | 3), EEXIST),
    ],
    ids=["pintid_below_8192", "icid_without_collection", "chain_past_itt", "cte_missing_vcpu", "duplicate_icid"],
)
def test_corrupted_tables_give_kernel_errno_and_leave_its_empty(corrupt, errno):
    src = saved_vm()
    corrupt(src)
    with pytest.raises(errno):
        migrate_plain_no_save(src)
    dst = _last_dst
    assert dst.its.device_list == [] and dst.its.collection_list == {} and dst.vgic.lpi_xa == {}


_last_dst = None


def migrate_plain_no_save(src):
    """Restore what is already in RAM (tables saved then corrupted)."""
    global _last_dst
    from gicsim.kvm.memory import GuestMemory

    regs = vmm.its_read_regs(src.itsdev)
    rd = vmm.redist_read_regs(src.gic, src.vgic.nr_vcpus)
    mem = GuestMemory(src.mem.size, src.mem.base)
    src.mem.copy_pages_to(mem)
    _last_dst = dst = make_vm(src.vgic.nr_vcpus, src.vgic.kernel, mem=mem, boot=False)
    dst.drv = src.drv.rebind(dst.vgic, dst.its)
    vmm.redist_write_regs(dst.gic, rd)
    vmm.its_restore_regs_qemu(dst.itsdev, regs)
    return dst


def test_dte_chain_past_the_table_just_ends_the_walk():
    """SPEC says -EINVAL; the kernel's scan_its_table breaks out and returns 1 (success)."""
    src = saved_vm()
    d = src.drv
    src.mem.write_u64(d.dt_base + 7 * 8, abi.encode_dte(True, 16383, d.itt[7], 8))
    src.mem.write_u64(d.dt_base + 2 * 8, abi.encode_dte(True, 5, d.itt[2], 8))
    # device table holds 65536 slots: 7 + 16383 is inside; put dev at the end instead
    last = 65535
    src.mem.write_u64(d.dt_base + last * 8, abi.encode_dte(True, 5, d.itt[7], 8))
    src.mem.write_u64(d.dt_base + 7 * 8, 0)
    src.mem.write_u64(d.dt_base + 2 * 8, abi.encode_dte(True, 0, d.itt[2], 8))
    dst = migrate_plain_no_save(src)
    assert {dv.device_id for dv in dst.its.device_list} == {2}
    src.mem.write_u64(d.dt_base + 2 * 8, abi.encode_dte(True, last - 2, d.itt[2], 8))
    dst = migrate_plain_no_save(src)
    assert {dv.device_id for dv in dst.its.device_list} == {2, last}  # chain end past table: ok


def test_unreadable_itt_is_efault():
    from gicsim.kvm.errors import EFAULT

    src = saved_vm()
    d = src.drv
    src.mem.write_u64(d.dt_base + 2 * 8, abi.encode_dte(True, 5, 0x1000_0000, 8))  # ITT below RAM
    with pytest.raises(EFAULT):
        migrate_plain_no_save(src)


# ---------------------------------------------------------------- stale entries ----
@pytest.mark.parametrize("clear_on_unmap", [True, False])
def test_stale_dte_ahead_of_live_chain(clear_on_unmap):
    vm = make_vm(kernel=KernelProfile(clear_on_unmap=clear_on_unmap))
    d = vm.drv
    for lpi in (8192, 8193):
        d.lpi_config(lpi)
    d.post(C.mapc(0, 0), C.mapc(1, 1), d.mapd_cmd(1, 4), d.mapd_cmd(5, 4),
           C.mapti(1, 0, 8192, 1), C.mapti(5, 0, 8193, 0))  # fmt: skip
    vmm.its_save_tables(vm.itsdev)  # e.g. an earlier pause: DTE 1 now in RAM
    d.post(C.mapd(1, 0, 1, valid=False), C.mapc(1, 1, valid=False))  # guest unmaps device 1
    if clear_on_unmap:
        dst = migrate_plain(vm)
        assert dst.its.mappings() == {(5, 0): (8193, 0)}
    else:
        with pytest.raises(EINVAL):  # the stale ITE names ICID 1, gone
            migrate_plain(vm)


def test_stale_dte_with_live_collection_is_resurrected():
    vm = make_vm(kernel=KernelProfile(clear_on_unmap=False))
    d = vm.drv
    d.lpi_config(8192)
    d.lpi_config(8193)
    d.post(C.mapc(0, 0), d.mapd_cmd(1, 4), d.mapd_cmd(5, 4), C.mapti(1, 0, 8192, 0), C.mapti(5, 0, 8193, 0))
    vmm.its_save_tables(vm.itsdev)
    d.post(C.mapd(1, 0, 1, valid=False))
    dst = migrate_plain(vm)
    assert dst.its.mappings() == {(1, 0): (8192, 0), (5, 0): (8193, 0)}  # device 1 is back
    assert its_state(dst.its) != its_state(vm.its)


# ------------------------------------------------------------ restore walk cost ----
def sparse_itt_vm(kernel, n_devices):
    """The 2024 report: devices whose single event sits at the end of a 64 KiB ITT."""
    vm = make_vm(kernel=kernel, memory_mib=1024, device_table="two_level")
    d = vm.drv
    d.post(C.mapc(0, 0))
    lpi = 8192
    cmds = []
    for dev in range(n_devices):
        cmds.append(d.mapd_cmd(dev, 13))
        d.lpi_config(lpi)
        cmds.append(C.mapti(dev, 8191, lpi, 0))
        lpi += 1
        if len(cmds) >= 512:
            d.post(*cmds)
            cmds = []
    d.post(*cmds)
    return vm


@pytest.mark.parametrize("restore_scan", ["full", "head_pointer"])
def test_restore_walk_counts_empty_slots_in_bulk(restore_scan):
    n = 8192
    src = sparse_itt_vm(KernelProfile(restore_scan=restore_scan), n)
    dst = migrate_plain(src)
    s = dst.itsdev.last_stats
    assert s.mappings == 2 * n + 1
    assert len(dst.its.mappings()) == n
    if restore_scan == "full":
        # every ITT is walked slot by slot up to event 8191; plus 8 L1 entries + DT slots
        assert s.entries_read >= n * 8192
    else:
        assert s.entries_read < 4 * n + 64
    assert s.ites == n and s.devices == n and s.collections == 1
