"""Facts about Linux's own vGIC/ITS code, observed through the kernel reference.

Each assertion is what the compiled kernel does; several are checked against values
taken from the kernel tree itself, so the harness cannot agree with itself by accident.
"""

from __future__ import annotations

import pytest
from linux_helpers import RELEASES, kernel

from gicsim.linux import lib as L

EBUSY, EINVAL, ENXIO, EFAULT, EOPNOTSUPP, EWOULDBLOCK = 16, 22, 6, 14, 95, 11
E = L.E_ITS_BY_NAME


@pytest.fixture(params=RELEASES)
def k(request):
    return kernel(request.param)


def boot(k, n=2, **kw):
    vm = L.VM(k, n, **{x: kw.pop(x) for x in ("memslots", "ram_size") if x in kw})
    lay = vm.boot_lpis(**kw)
    return vm, lay


def test_registers_both_paths(k):
    vm, lay = boot(k)
    assert vm.its_read(L.GITS_TYPER) == 0x1EF71      # PLPIS, ITT 8 B, 16 ID bits, 16 Dev bits
    assert vm.its_read(L.GITS_IIDR, 4) == 0x4B00043B
    assert vm.its_reg_get(L.GITS_BASER0) == (0, vm.its_read(L.GITS_BASER0))
    assert vm.its_reg_get(3)[0] == -EINVAL           # misaligned
    assert vm.its_reg_get(0x200)[0] == -ENXIO        # no register
    vm.its_write(L.GITS_CBASER, 0)                   # ignored while enabled
    assert vm.its_read(L.GITS_CBASER) >> 63 == 1
    assert vm.its_reg_set(L.GITS_CREADR, 0) == -EBUSY   # CREADR while enabled
    r, v = vm.redist_reg_get(1, L.GICR_PROPBASER)
    assert r == 0 and v == vm.rd_read(1, L.GICR_PROPBASER) & 0xFFFFFFFF
    # an access straddling the end of the ITS frame is claimed by no device
    assert vm.mmio_write(L.ITS_BASE + 0x20000 - 4, 0, 8) == -EOPNOTSUPP
    assert vm.mmio_read(0x0900_0000, 4)[0] == -EOPNOTSUPP
    vm.close()


def test_commands_and_error_codes(k):
    vm, lay = boot(k)
    itt = lay["itt"]
    x = vm.exec_cmd
    assert x(L.cmd_mapd(1, 3, itt)) == 0
    assert x(L.cmd_mapd(1 << 16, 3, itt)) == E["E_ITS_MAPD_DEVICE_OOR"]
    assert x(L.cmd_mapd(2, 16, itt)) == E["E_ITS_MAPD_ITTSIZE_OOR"]
    assert x(L.cmd_mapc(0, 0)) == 0 and x(L.cmd_mapc(1, 1)) == 0
    assert x(L.cmd_mapc(2, 7)) == E["E_ITS_MAPC_PROCNUM_OOR"]
    assert x(L.cmd_mapti(1, 0, 8192, 0)) == 0
    assert x(L.cmd_mapti(5, 0, 8193, 0)) == E["E_ITS_MAPTI_UNMAPPED_DEVICE"]
    assert x(L.cmd_mapti(1, 16, 8193, 0)) == E["E_ITS_MAPTI_ID_OOR"]
    assert x(L.cmd_mapti(1, 1, 100, 0)) == E["E_ITS_MAPTI_PHYSICALID_OOR"]
    assert x(L.cmd_mapi(1, 8, 1)) == E["E_ITS_MAPTI_PHYSICALID_OOR"]   # pINTID = EventID 8
    assert x(L.cmd_int(1, 5)) == E["E_ITS_INT_UNMAPPED_INTERRUPT"]
    assert x(L.cmd_clear(1, 5)) == E["E_ITS_CLEAR_UNMAPPED_INTERRUPT"]
    assert x(L.cmd_inv(1, 5)) == E["E_ITS_INV_UNMAPPED_INTERRUPT"]
    assert x(L.cmd_discard(1, 5)) == E["E_ITS_DISCARD_UNMAPPED_INTERRUPT"]
    assert x(L.cmd_movi(1, 5, 1)) == E["E_ITS_MOVI_UNMAPPED_INTERRUPT"]
    assert x(L.cmd_movi(1, 0, 9)) == E["E_ITS_MOVI_UNMAPPED_COLLECTION"]
    assert x(L.cmd_invall(9)) == E["E_ITS_INVALL_UNMAPPED_COLLECTION"]
    assert x(L.cmd_int(1, 0)) == 0 and vm.lpi(8192)["pending"] and vm.ap_list(0) == [8192]
    assert x(L.cmd_clear(1, 0)) == 0 and not vm.lpi(8192)["pending"]
    assert x(L.cmd_movi(1, 0, 1)) == 0 and vm.lpi(8192)["target"] == 1
    assert x(L.cmd_movall(1, 0)) == 0 and vm.lpi(8192)["target"] == 0
    assert x(L.cmd_sync(0)) == 0 and x(L.cmd_invall(0)) == 0
    assert x(L.cmd_discard(1, 0)) == 0 and (1, 0) not in vm.its_dump()["ites"]
    vm.close()


def test_queue_path_and_msi(k):
    vm, lay = boot(k)
    assert vm.queue(L.cmd_mapd(1, 3, lay["itt"]), L.cmd_mapc(0, 1), L.cmd_mapti(1, 2, 8300, 0)) == 0
    assert vm.its_read(L.GITS_CREADR) == vm.its_read(L.GITS_CWRITER) == 96
    assert vm.irqfd_inject(1, 2) == -EWOULDBLOCK           # nothing cached yet
    assert vm.signal_msi(1, 2) == 1 and vm.ap_list(1) == [8300]
    assert (1, 2) in vm.its_dump()["cache"]
    assert vm.irqfd_inject(1, 2) == 0                      # cached now
    assert vm.signal_msi(1, 3) == 0                        # unmapped event: blocked
    # a translation-cache hit injects before vgic_msi_to_its() looks at the flags
    assert vm.signal_msi(1, 2, flags=0) == 1
    assert vm.signal_msi(1, 3, flags=0) == -EINVAL         # uncached: no KVM_MSI_VALID_DEVID
    assert vm.signal_msi(1, 2, address=0x1234) == -EINVAL  # no ITS at that doorbell
    vm.its_write(L.GITS_CTLR, 0, 4)
    assert vm.signal_msi(1, 3) == -EBUSY                   # ITS disabled (uncached path)
    vm.close()


def test_ebusy_when_a_vcpu_runs(k):
    vm, _ = boot(k, 3)
    vm.set_running(2)
    assert vm.save_tables() == -EBUSY
    assert vm.restore_tables() == -EBUSY
    assert vm.its_reset() == -EBUSY
    assert vm.save_pending_tables() == -EBUSY
    assert vm.its_reg_get(L.GITS_CTLR)[0] == -EBUSY
    assert vm.redist_reg_get(0, L.GICR_CTLR)[0] == -EBUSY
    vm.set_running(2, False)
    assert vm.save_tables() == 0 and vm.its_reg_get(L.GITS_CTLR)[0] == 0
    vm.close()


def _populate(vm, itt):
    cmds = [L.cmd_mapd(1, 3, itt), L.cmd_mapd(5, 1, itt + 0x1000), L.cmd_mapc(0, 0),
            L.cmd_mapc(1, 1), L.cmd_mapti(1, 0, 8192, 1), L.cmd_mapti(1, 1, 8193, 0),
            L.cmd_mapti(1, 3, 8200, 0), L.cmd_mapti(5, 1, 8300, 1), L.cmd_int(1, 1),
            L.cmd_int(5, 1)]
    assert [vm.exec_cmd(c) for c in cmds] == [0] * len(cmds)


def _transfer(src, dst, n):
    dst.ram[:] = bytes(src.ram)
    for v in range(n):
        for off in (L.GICR_PROPBASER, L.GICR_PROPBASER + 4, L.GICR_PENDBASER,
                    L.GICR_PENDBASER + 4):
            assert dst.redist_reg_set(v, off, src.redist_reg_get(v, off)[1]) == 0
        assert dst.redist_reg_set(v, L.GICR_CTLR, 1) == 0
    for off in (L.GITS_IIDR, L.GITS_CBASER, L.GITS_CREADR, L.GITS_BASER0, L.GITS_BASER1):
        assert dst.its_reg_set(off, src.its_reg_get(off)[1]) == 0


def test_save_restore_round_trip(k):
    vm, lay = boot(k)
    _populate(vm, lay["itt"])
    assert vm.save_tables() == 0 and vm.save_pending_tables() == 0
    dte1 = vm.u64(lay["devtbl"] + 8)
    assert dte1 >> 63 == 1 and dte1 & 0x1F == 3 and (dte1 >> 49) & 0x3FFF == 4   # next = 5 - 1
    pend0 = vm.mem(vm.pendbase(0), 0x2000)
    assert pend0[8193 // 8] >> (8193 % 8) & 1                 # pending LPI saved
    vm2 = L.VM(k, 2)
    _transfer(vm, vm2, 2)
    assert vm2.restore_tables() == 0
    assert vm2.its_reg_set(L.GITS_CTLR, 1) == 0
    a, b = vm.its_dump(), vm2.its_dump()
    assert a["devices"] == b["devices"] and a["ites"] == b["ites"]
    assert a["collections"] == b["collections"]
    assert vm2.lpi(8193)["pending"] and vm2.lpi(8300)["pending"] and not vm2.lpi(8192)["pending"]
    # consumed: restoring cleared the pending bit in RAM (vgic_v3_lpi_sync_pending_status)
    assert not vm2.mem(vm2.pendbase(0), 0x2000)[8193 // 8] >> (8193 % 8) & 1
    tables = vm2.mem(lay["devtbl"], 0x100), vm2.mem(lay["itt"], 0x40)
    assert vm2.save_tables() == 0
    assert (vm2.mem(lay["devtbl"], 0x100), vm2.mem(lay["itt"], 0x40)) == tables
    assert vm2.deliver(0) == [8193] and vm2.deliver(1) == [8300]
    vm.close()
    vm2.close()


def test_restore_from_corrupted_images(k):
    vm, lay = boot(k)
    _populate(vm, lay["itt"])
    assert vm.save_tables() == 0
    # an ITE whose ICID has no collection -> -EINVAL
    vm2 = L.VM(k, 2)
    _transfer(vm, vm2, 2)
    ite = vm2.u64(lay["itt"])
    vm2.poke(lay["itt"], ((ite & ~0xFFFF) | 77).to_bytes(8, "little"))
    assert vm2.restore_tables() == -EINVAL
    assert vm2.its_dump()["devices"] == {} and vm2.its_dump()["collections"] == {}
    # a collection targeting a vCPU that does not exist -> -EINVAL
    vm3 = L.VM(k, 2)
    _transfer(vm, vm3, 2)
    vm3.poke(lay["colltbl"], ((1 << 63) | (5 << 16) | 0).to_bytes(8, "little"))
    assert vm3.restore_tables() == -EINVAL
    for v in (vm, vm2, vm3):
        v.close()


def test_list_register_delivery_order_and_rounds(k):
    """More pending LPIs than list registers: several guest entries; the guest takes
    them by priority, equal priorities in the order they were queued."""
    prop = bytearray([0xA1]) * (65536 - 8192)
    prop[8205 - 8192] = 0x81                      # 8205 has a higher priority (0x80)
    vm, lay = boot(k, 1, prop_bytes=bytes(prop))
    x = vm.exec_cmd
    x(L.cmd_mapd(1, 4, lay["itt"]))
    x(L.cmd_mapc(0, 0))
    order = [8199, 8192, 8210, 8193, 8205, 8201, 8194]
    for e, intid in enumerate(order):
        assert x(L.cmd_mapti(1, e, intid, 0)) == 0
    for e in range(len(order)):
        assert vm.signal_msi(1, e) == 1
    assert vm.flush(0) == k.nr_lr == 4
    lrs = vm.lrs(0)
    assert all(lr.pending and not lr.active for lr in lrs)
    assert [lr.intid for lr in lrs] == [8205, 8199, 8192, 8210]   # sorted ap_list, stable
    vm.sync(0)                                   # guest took nothing: all still pending
    assert all(vm.lpi(i)["pending"] for i in order)
    got = vm.deliver(0)
    assert got == [8205, 8199, 8192, 8210, 8193, 8201, 8194]
    assert vm.ap_list(0) == [] and not any(vm.lpi(i)["pending"] for i in order)
    vm.close()


def test_ack_without_eoi_keeps_the_lpi_active(k):
    vm, lay = boot(k, 1)
    for c in (L.cmd_mapd(1, 1, lay["itt"]), L.cmd_mapc(0, 0), L.cmd_mapti(1, 0, 8192, 0)):
        vm.exec_cmd(c)
    vm.signal_msi(1, 0)
    vm.flush(0)
    assert vm.ack(0) == 8192
    vm.sync(0)
    st = vm.lpi(8192)
    assert st["active"] and not st["pending"] and vm.ap_list(0) == [8192]
    vm.signal_msi(1, 0)                          # pending + active
    vm.flush(0)
    assert [lr.state for lr in vm.lrs(0)] == ["pending+active"]
    assert vm.ack(0) == 1023                     # not re-taken while active
    vm.eoi(0, 8192)
    vm.sync(0)
    assert vm.deliver(0) == [8192]
    vm.close()


def test_discarded_lpi_still_queued_is_delivered_once(k):
    """vgic_queue_irq_unlock() takes an ap_list reference: after DISCARD the record
    survives until the vCPU has taken it (issue 12, item 1)."""
    vm, lay = boot(k, 1)
    for c in (L.cmd_mapd(1, 1, lay["itt"]), L.cmd_mapc(0, 0), L.cmd_mapti(1, 0, 8192, 0),
              L.cmd_int(1, 0), L.cmd_discard(1, 0)):
        assert vm.exec_cmd(c) == 0
    assert vm.lpis() == [8192] and vm.lpi(8192)["refcount"] == 1
    assert vm.deliver(0) == [8192]
    assert vm.lpis() == []
    vm.close()


def test_two_level_device_table_and_holes(k):
    """Indirect BASER0: an L1 entry that is not valid, or whose L2 page is outside
    every memslot, makes MAPD fail; kvm_read_guest across a hole is -EFAULT."""
    base = L.RAM_BASE
    slots = [(base, 16 << 20), (base + (32 << 20), 1 << 20)]   # hole in between
    vm = L.VM(k, 2, memslots=slots)
    lay = vm.boot_lpis(indirect=True)
    l1 = lay["devtbl"]
    l2 = base + 0x700000
    vm.poke(l1, ((1 << 63) | l2).to_bytes(8, "little"))          # L1[0]: DeviceIDs 0..8191
    hole = base + (20 << 20)
    vm.poke(l1 + 8, ((1 << 63) | hole).to_bytes(8, "little"))    # L1[1]: L2 page in the hole
    x = vm.exec_cmd
    assert x(L.cmd_mapd(3, 1, lay["itt"])) == 0
    assert x(L.cmd_mapd(8192 + 3, 1, lay["itt"])) == E["E_ITS_MAPD_DEVICE_OOR"]
    assert x(L.cmd_mapd(2 * 8192, 1, lay["itt"])) == E["E_ITS_MAPD_DEVICE_OOR"]  # L1[2] invalid
    assert x(L.cmd_mapc(0, 0)) == 0
    assert vm.save_tables() == 0 and vm.u64(l2 + 3 * 8) >> 63 == 1   # DTE in the L2 page
    r, _ = vm.kvm_read(base + (16 << 20) - 8, 16)
    assert r == -EFAULT
    assert vm.kvm_read(base + (32 << 20), 16)[0] == 0             # second slot readable
    # the collection table in the hole: SAVE_TABLES fails with -EFAULT
    assert vm.its_write(L.GITS_CTLR, 0, 4) == 0
    assert vm.its_write(L.GITS_BASER1, hole | (1 << 63)) == 0
    assert vm.save_tables() == -EFAULT
    vm.close()


def test_readonly_memslot_write_faults(k):
    vm = L.VM(k, 1, memslots=[(L.RAM_BASE, 16 << 20), (L.RAM_BASE + (16 << 20), 1 << 20,
                                                        L.MEM_READONLY)])
    assert vm.kvm_write(L.RAM_BASE + (16 << 20), b"x") == -EFAULT
    assert vm.kvm_write(L.RAM_BASE, b"x") == 0 and vm.mem(L.RAM_BASE, 1) == b"x"
    assert L.RAM_BASE >> 12 in vm.dirty_pages(0)
    vm.close()


def test_release_difference_mapc_v0_out_of_range():
    """6.1 checks RDbase < online vCPUs before V: MAPC V=0 RDbase=5 on 2 vCPUs fails and
    keeps the collection; 6.12 unmaps it and returns 0."""
    seen = {}
    for rel in RELEASES:
        kk = kernel(rel)
        vm, _ = boot(kk)
        assert vm.exec_cmd(L.cmd_mapc(3, 1)) == 0
        seen[rel] = (vm.exec_cmd(L.cmd_mapc(3, 5, valid=0)), vm.its_dump()["collections"])
        vm.close()
    assert seen["6.1"] == (E["E_ITS_MAPC_PROCNUM_OOR"], {3: 1})
    assert seen["6.12"] == (0, {})
