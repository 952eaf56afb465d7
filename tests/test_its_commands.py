"""Each ITS command's effect and each of its error cases (vgic-its.c handlers)."""

from __future__ import annotations

import pytest
from conftest import make_vm

from gicsim.kvm import commands as C
from gicsim.kvm.its import GITS_CBASER, GITS_CTLR, GITS_CWRITER, GITS_VALID


def run(vm, *cmds):
    """Post commands; return the (name, error) of each executed command."""
    log = []
    vm.its.on_command = lambda its, cmd, err: log.append((cmd.name, err))
    vm.drv.post(*cmds)
    return log


def cfg(vm, *lpis, prio=0xA0, enabled=True):
    for lpi in lpis:
        vm.drv.lpi_config(lpi, prio, enabled)


def setup_basic(vm):
    cfg(vm, 8192, 8193)
    return run(vm, C.mapc(0, 1), vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 0))


def test_mapd_mapc_mapti_create_the_mapping(vm):
    assert setup_basic(vm) == [("MAPC", None), ("MAPD", None), ("MAPTI", None)]
    assert vm.its.mappings() == {(2, 0): (8192, 0)}
    irq = vm.vgic.lpi_xa[8192]
    assert (irq.target_vcpu, irq.enabled, irq.priority, irq.pending_latch) == (1, True, 0xA0, False)


def test_mapd_errors(vm):
    log = run(vm, C.mapd(0x1_0000, 0x4000_0000, 8), C.mapd(3, 0x4000_0000, 17))
    assert log == [("MAPD", "E_ITS_MAPD_DEVICE_OOR"), ("MAPD", "E_ITS_MAPD_ITTSIZE_OOR")]
    assert vm.its.device_list == []


def test_remapd_drops_ites_and_unmap_of_unmapped_device_is_fine(vm):
    setup_basic(vm)
    assert run(vm, vm.drv.mapd_cmd(2, 8)) == [("MAPD", None)]
    assert vm.its.mappings() == {}
    assert 8192 not in vm.vgic.lpi_xa  # last reference gone
    assert run(vm, C.mapd(9, 0, 1, valid=False)) == [("MAPD", None)]


def test_mapd_v0_zeroes_the_dte_only_with_clear_on_unmap():
    from gicsim.kvm.releases import KernelProfile

    for clear, expect_zero in ((True, True), (False, False)):
        vm = make_vm(kernel=KernelProfile(clear_on_unmap=clear))
        setup_basic(vm)
        vm.itsdev.set_attr(4, 1)  # SAVE_TABLES writes the DTE of device 2
        slot = vm.drv.dt_base + 2 * 8
        assert vm.mem.read_u64(slot) >> 63 == 1
        run(vm, C.mapd(2, 0, 1, valid=False))
        assert (vm.mem.read_u64(slot) == 0) is expect_zero


def test_mapc_errors_and_unmap(vm):
    log = run(vm, C.mapc(0, 4), C.mapc(8192, 0))  # vCPU 4 of 4; ICID past a 64 KiB table
    assert log == [("MAPC", "E_ITS_MAPC_PROCNUM_OOR"), ("MAPC", "E_ITS_MAPC_COLLECTION_OOR")]
    setup_basic(vm)
    assert run(vm, C.mapc(0, 0, valid=False)) == [("MAPC", None)]
    assert vm.its.find_collection(0) is None
    ite = vm.its.find_ite(2, 0)
    assert ite.collection is None and ite.irq.target_vcpu == 1  # keeps its old target


def test_mapc_retargets_existing_lpis(vm):
    setup_basic(vm)
    run(vm, C.mapc(0, 3))
    assert vm.vgic.lpi_xa[8192].target_vcpu == 3


def test_mapti_errors(vm):
    setup_basic(vm)
    log = run(
        vm,
        C.mapti(5, 0, 8200, 0),  # device 5 not mapped
        C.mapti(2, 256, 8200, 0),  # 8 EventID bits
        C.mapti(2, 1, 8191, 0),  # below the LPI range
        C.mapti(2, 1, 65536, 0),  # beyond 16 ID bits
        C.mapti(2, 1, 8200, 8192),  # ICID outside the collection table
    )
    assert [e for _, e in log] == [
        "E_ITS_MAPTI_UNMAPPED_DEVICE",
        "E_ITS_MAPTI_ID_OOR",
        "E_ITS_MAPTI_PHYSICALID_OOR",
        "E_ITS_MAPTI_PHYSICALID_OOR",
        "E_ITS_MAPC_COLLECTION_OOR",
    ]
    assert vm.its.mappings() == {(2, 0): (8192, 0)}


def test_mapti_over_existing_ite_keeps_the_old_one(vm):
    setup_basic(vm)
    assert run(vm, C.mapti(2, 0, 8193, 0)) == [("MAPTI", None)]
    assert vm.its.mappings() == {(2, 0): (8192, 0)}


def test_mapti_to_unmapped_collection_creates_placeholder(vm):
    cfg(vm, 8192)
    run(vm, vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 5))
    coll = vm.its.find_collection(5)
    assert coll is not None and not coll.mapped
    assert vm.vgic.lpi_xa[8192].target_vcpu is None
    assert vm.its.vgic_its_inject_msi(2, 0) == "unmapped"
    run(vm, C.mapc(5, 2))  # a later MAPC gives it a target
    assert vm.vgic.lpi_xa[8192].target_vcpu == 2
    assert vm.its.vgic_its_inject_msi(2, 0) == "accepted"


def test_mapi_uses_eventid_as_lpi(vm):
    cfg(vm, 8192)
    log = run(vm, C.mapc(0, 0), vm.drv.mapd_cmd(4, 14), C.mapi(4, 8192, 0), C.mapi(4, 5, 0))
    assert log[2:] == [("MAPI", None), ("MAPI", "E_ITS_MAPTI_PHYSICALID_OOR")]
    assert vm.its.mappings() == {(4, 8192): (8192, 0)}


def test_mapti_consumes_the_pending_bit_in_ram(vm):
    cfg(vm, 8192)
    vm.drv.set_pending(1, 8192)
    setup_basic(vm)
    assert vm.vgic.lpi_xa[8192].pending_latch
    assert vm.mem.read_u8(vm.drv.pend_base[1] + 8192 // 8) == 0  # consumed


def test_movi(vm):
    setup_basic(vm)
    log = run(vm, C.movi(2, 1, 0), C.movi(2, 0, 7), C.mapc(1, 3), C.movi(2, 0, 1))
    assert [e for _, e in log] == [
        "E_ITS_MOVI_UNMAPPED_INTERRUPT",
        "E_ITS_MOVI_UNMAPPED_COLLECTION",
        None,
        None,
    ]
    assert vm.vgic.lpi_xa[8192].target_vcpu == 3
    assert vm.its.mappings() == {(2, 0): (8192, 1)}


def test_movi_from_an_unmapped_collection_fails(vm):
    cfg(vm, 8192)
    run(vm, C.mapc(1, 1), vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 5))
    assert run(vm, C.movi(2, 0, 1)) == [("MOVI", "E_ITS_MOVI_UNMAPPED_COLLECTION")]


def test_discard(vm):
    setup_basic(vm)
    vm.itsdev.set_attr(4, 1)  # save: ITE for 2/0 now in RAM
    ite_slot = vm.drv.itt[2]
    assert vm.mem.read_u64(ite_slot) != 0
    log = run(vm, C.discard(2, 1), C.discard(2, 0))
    assert log == [("DISCARD", "E_ITS_DISCARD_UNMAPPED_INTERRUPT"), ("DISCARD", None)]
    assert vm.its.mappings() == {}
    assert 8192 not in vm.vgic.lpi_xa
    assert vm.mem.read_u64(ite_slot) == 0  # 6.13+: zero ITE written


def test_discard_needs_a_mapped_collection(vm):
    setup_basic(vm)
    run(vm, C.mapc(0, 0, valid=False))
    assert run(vm, C.discard(2, 0)) == [("DISCARD", "E_ITS_DISCARD_UNMAPPED_INTERRUPT")]


def test_int_clear_and_int_errors(vm):
    setup_basic(vm)
    assert run(vm, C.int_(2, 0)) == [("INT", None)]
    assert vm.vgic.lpi_xa[8192].pending_latch
    assert 8192 in vm.vgic.cpus[1].ap_list
    assert run(vm, C.clear(2, 0), C.clear(2, 9)) == [
        ("CLEAR", None),
        ("CLEAR", "E_ITS_CLEAR_UNMAPPED_INTERRUPT"),
    ]
    assert not vm.vgic.lpi_xa[8192].pending_latch
    assert run(vm, C.int_(2, 9)) == [("INT", "E_ITS_INT_UNMAPPED_INTERRUPT")]
    vm.drv.disable_lpis(1)
    assert run(vm, C.int_(2, 0)) == [("INT", "EBUSY")]


def test_inv_rereads_property_byte(vm):
    setup_basic(vm)
    cfg(vm, 8192, prio=0x40, enabled=False)
    assert vm.vgic.lpi_xa[8192].enabled  # RAM write alone has no effect
    assert run(vm, C.inv(2, 0), C.inv(3, 0)) == [("INV", None), ("INV", "E_ITS_INV_UNMAPPED_INTERRUPT")]
    irq = vm.vgic.lpi_xa[8192]
    assert (irq.enabled, irq.priority) == (False, 0x40)


def test_invall_only_touches_lpis_of_that_vcpu(vm):
    cfg(vm, 8192, 8193)
    run(vm, C.mapc(0, 1), C.mapc(1, 2), vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 0), C.mapti(2, 1, 8193, 1))
    cfg(vm, 8192, 8193, enabled=False)
    assert run(vm, C.invall(0), C.invall(9)) == [("INVALL", None), ("INVALL", "E_ITS_INVALL_UNMAPPED_COLLECTION")]
    assert not vm.vgic.lpi_xa[8192].enabled
    assert vm.vgic.lpi_xa[8193].enabled


def test_movall_moves_only_the_lpis_of_rdbase1(vm):
    cfg(vm, 8192, 8193)
    run(vm, C.mapc(0, 1), C.mapc(1, 2), vm.drv.mapd_cmd(2, 8), C.mapti(2, 0, 8192, 0), C.mapti(2, 1, 8193, 1))
    assert run(vm, C.movall(1, 3), C.movall(1, 9)) == [("MOVALL", None), ("MOVALL", "E_ITS_MOVALL_PROCNUM_OOR")]
    # 6.1.192 and 6.12.117: update_affinity(irq, vcpu1, vcpu2) skips LPIs not on RDbase1
    # (found by the kernel reference; gicsim 0.1 moved every LPI of the VM)
    assert vm.vgic.lpi_xa[8192].target_vcpu == 3
    assert vm.vgic.lpi_xa[8193].target_vcpu == 2


def test_sync_and_unknown_opcode(vm):
    from gicsim.kvm.commands import encode

    assert run(vm, C.sync(0), encode(0x2A)) == [("SYNC", None), ("UNKNOWN_0x2a", "ENODEV")]


def test_commands_wait_while_disabled_and_run_on_enable():
    vm = make_vm(boot=False)
    vm.drv.probe()
    vm.drv.enable_lpis(0)
    log = []
    vm.its.on_command = lambda its, cmd, err: log.append(cmd.name)
    vm.drv.post(C.mapc(0, 0), C.sync(0))
    assert log == [] and vm.its.creadr == 0 and vm.its.cwriter == 64
    vm.drv.its_enable()
    assert log == ["MAPC", "SYNC"] and vm.its.creadr == 64


def test_cwriter_beyond_queue_is_dropped(vm):
    before = vm.its.cwriter
    vm.its.its_write(GITS_CWRITER, 8, 64 * 1024)  # queue is 64 KiB
    assert vm.its.cwriter == before


def test_queue_wraps(vm):
    vm.drv.cwriter = vm.its.creadr = vm.its.cwriter = 64 * 1024 - 32
    assert run(vm, C.sync(0), C.sync(0)) == [("SYNC", None), ("SYNC", None)]
    assert vm.its.creadr == 32


def test_cbaser_write_resets_creadr_and_cwriter_only_while_disabled(vm):
    setup_basic(vm)
    assert vm.its.creadr == vm.its.cwriter == 96
    vm.its.its_write(GITS_CBASER, 8, GITS_VALID | vm.drv.cmdq_base | 15)
    assert vm.its.creadr == 96  # ignored while enabled
    vm.its.its_write(GITS_CTLR, 4, 0)
    vm.its.its_write(GITS_CBASER, 8, GITS_VALID | vm.drv.cmdq_base | 15)
    assert vm.its.creadr == vm.its.cwriter == 0


def test_replayed_queue_reexecutes_commands(vm):
    """CREADR behind CWRITER (e.g. CREADR restored as 0) runs the old commands again."""
    cfg(vm, 8192)
    setup_basic(vm)
    run(vm, C.int_(2, 0))
    irq = vm.vgic.lpi_xa[8192]
    vm.vgic.acknowledge(1)
    vm.vgic.eoi(1, irq)
    assert not irq.pending_latch
    vm.its.its_write(GITS_CTLR, 4, 0)
    vm.itsdev.set_attr(8, 0x90, 0)  # userspace CREADR = 0 while disabled
    log = []
    vm.its.on_command = lambda its, cmd, err: log.append((cmd.name, err))
    vm.its.its_write(GITS_CTLR, 4, 1)  # enabling runs CREADR..CWRITER
    assert [n for n, _ in log] == ["MAPC", "MAPD", "MAPTI", "INT"]
    # the replayed MAPD dropped the old LPI record, MAPTI made a new one, INT raised it
    assert vm.vgic.lpi_xa[8192] is not irq
    assert vm.vgic.lpi_xa[8192].pending_latch


@pytest.mark.parametrize("missing", ["cbaser", "baser0", "baser1"])
def test_enable_ignored_while_a_table_is_invalid(missing):
    vm = make_vm(boot=False)
    vm.drv.probe()
    off = {"cbaser": GITS_CBASER, "baser0": 0x100, "baser1": 0x108}[missing]
    vm.its.its_write(off, 8, vm.its.its_read(off, 8) & ~GITS_VALID)
    vm.drv.its_enable()
    assert not vm.its.enabled
