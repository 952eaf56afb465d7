"""Issue 12, "fix every difference": each kernel behaviour the model got wrong, pinned twice --
on the model, and (where the kernel library can show it) with the same stimulus on the
kernel's own code (``gicsim.linux.lib``), asserting the same outcome. The kernel halves skip
when the library is unavailable, unless ``GICSIM_REQUIRE_KERNEL=1`` (tests/linux_helpers.py).
"""

from __future__ import annotations

import pytest
from conftest import make_vm
from linux_helpers import RELEASES, kernel

from gicsim.kvm.commands import decode_cmd
from gicsim.kvm.errors import E2BIG, EINVAL, KernelOops
from gicsim.kvm.its import MSI_ACCEPTED, MSI_NO_ITS, MSI_UNMAPPED, VgicIts
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_ITS_SAVE_TABLES,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
    KVM_VGIC_ITS_ADDR_TYPE,
    ItsDevice,
    redist_attr,
)
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.releases import RELEASES as PROFILES
from gicsim.kvm.releases import VARIANT_FIELDS, KernelProfile
from gicsim.kvm.vgic_init import Vgic
from gicsim.linux import lib as L

NR = 3
PROP = 0xA1  # enabled, priority 0xA0 (what boot_lpis writes on the kernel side)


class Model:
    """The model VM (booted as tests/conftest.py does) driven by raw command words."""

    def __init__(self, kernel_profile: KernelProfile | None = None, prop: int = PROP) -> None:
        self.vm = make_vm(NR, kernel=kernel_profile)
        d = self.vm.drv
        self.vm.mem.write(d.prop_base, bytes([prop]) * ((1 << 16) - 8192))
        self.itt = d.alloc(0x10000)

    @property
    def vgic(self) -> Vgic:
        return self.vm.vgic

    def cmd(self, words) -> str | None:
        return self.vm.its.vgic_its_handle_command(decode_cmd(L.cmd_bytes(words)))

    def lpi(self, intid: int) -> dict | None:
        irq = self.vgic.lpi_xa.get(intid)
        if irq is None:
            return None
        return dict(target=-1 if irq.target_vcpu is None else irq.target_vcpu,
                    queued=-1 if irq.vcpu is None else irq.vcpu, refcount=irq.refcount,
                    pending=irq.pending_latch)

    def ap_list(self, vcpu: int) -> list[int]:
        return list(self.vgic.cpus[vcpu].ap_list)

    def deliver(self, vcpu: int) -> list[int]:
        got = []
        while (irq := self.vgic.acknowledge(vcpu)) is not None:
            got.append(irq.intid)
            self.vgic.eoi(vcpu, irq)
        return got


class Kernel:
    def __init__(self, release: str, prop: int = PROP) -> None:
        self.vm = L.VM(kernel(release), NR)
        self.lay = self.vm.boot_lpis(prop_bytes=prop)
        self.itt = self.lay["itt"]

    def cmd(self, words) -> str | None:
        r = self.vm.exec_cmd(words)
        if r == 0:
            return None
        return L.E_ITS.get(r, str(r))

    def lpi(self, intid: int) -> dict | None:
        r = self.vm.lpi(intid)
        return None if r is None else {k: r[k] for k in ("target", "queued", "refcount", "pending")}

    def ap_list(self, vcpu: int) -> list[int]:
        return self.vm.ap_list(vcpu)

    def deliver(self, vcpu: int) -> list[int]:
        return self.vm.deliver(vcpu)

    def close(self) -> None:
        self.vm.close()


def both(release: str | None = None, **kw):
    """The model, plus the kernel side when ``release`` is given."""
    sides = [Model(KernelProfile(release=release or "6.12"), **kw)]
    if release is not None:
        sides.append(Kernel(release, **kw))
    return sides


def setup(side, cmds):
    for c in cmds(side.itt):
        assert side.cmd(c) is None, (type(side).__name__, c)


def _queued_lpi(itt):
    """LPI 8192 = device 0 event 0 on collection 0 (vCPU 0), raised by INT: queued on vCPU 0."""
    return [L.cmd_mapd(0, 3, itt), L.cmd_mapc(0, 0), L.cmd_mapc(1, 1),
            L.cmd_mapti(0, 0, 8192, 0), L.cmd_int(0, 0)]


def _sides(release):
    out = both(None)
    if release is not None:
        out = both(release)
    return out


def _close(sides):
    for s in sides:
        if isinstance(s, Kernel):
            s.close()


# ----------------------------------------------------------------- 1. LPI lifetime ----
@pytest.mark.parametrize("release", [None, *RELEASES])
@pytest.mark.parametrize("unmap", ["discard", "mapd_v0"])
def test_a_queued_lpi_outlives_its_ite_and_is_delivered_once(release, unmap):
    """vgic_queue_irq_unlock takes an ap_list reference; DISCARD / MAPD V=0 drop the ITE's
    and the cache's (vgic_put_irq), so the record stays queued and is delivered once, then
    vgic_prune_ap_list drops the last reference and lpi_xa forgets it."""
    sides = _sides(release)
    try:
        for s in sides:
            setup(s, _queued_lpi)
            assert s.lpi(8192) == dict(target=0, queued=0, refcount=3, pending=True)  # ITE+cache+ap_list
            assert s.cmd(L.cmd_discard(0, 0) if unmap == "discard" else L.cmd_mapd(0, 3, s.itt, valid=0)) is None
            assert s.lpi(8192) == dict(target=0, queued=0, refcount=1, pending=True), type(s).__name__
            assert s.ap_list(0) == [8192]
            assert s.deliver(0) == [8192]
            assert s.deliver(0) == []
            assert s.lpi(8192) is None
    finally:
        _close(sides)


@pytest.mark.parametrize("release", [None, *RELEASES])
def test_a_remapti_of_a_still_queued_intid_reuses_the_record(release):
    """vgic_add_lpi finds the queued record in lpi_xa and returns it as it is: pending state
    and the OLD target (vCPU 0) survive, although the new ITE's collection targets vCPU 1."""
    sides = _sides(release)
    try:
        for s in sides:
            setup(s, _queued_lpi)
            assert s.cmd(L.cmd_discard(0, 0)) is None
            assert s.cmd(L.cmd_mapti(0, 1, 8192, 1)) is None
            assert s.lpi(8192) == dict(target=0, queued=0, refcount=2, pending=True), type(s).__name__
            assert s.deliver(1) == []
            assert s.deliver(0) == [8192]
            assert s.lpi(8192) == dict(target=0, queued=-1, refcount=1, pending=False)
    finally:
        _close(sides)


def test_a_failed_restore_leaves_a_queued_lpi_to_be_delivered():
    """RESTORE_TABLES that fails after an ITE whose pending bit was synced (and queued):
    vgic_its_free_device_list drops the ITE's reference, the ap_list keeps its own."""
    from gicsim.kvm import abi
    from gicsim.kvm.errors import KvmError
    from gicsim.sim import vmm

    src = make_vm(2)
    d = src.drv
    d.lpi_config(8192)
    d.post(d.mapd_cmd(0, 4), L.cmd_bytes(L.cmd_mapc(0, 1)), L.cmd_bytes(L.cmd_mapti(0, 0, 8192, 0)),
           L.cmd_bytes(L.cmd_mapd(1, 3, d.alloc(0x1000))))
    src.its.vgic_its_inject_msi(0, 0)
    vmm.save_pending_tables(src.gic)
    vmm.its_save_tables(src.itsdev)
    # device 1's DTE: an ITT outside RAM, so the restore fails after device 0's ITE
    gpa = src.its.vgic_its_check_id(src.its.baser_device_table, 1)
    dte = abi.decode_dte(src.mem.read_u64(gpa))
    src.mem.write_u64(gpa, abi.encode_dte(True, 0, 0x7FFF_0000_0000, dte.num_eventid_bits))
    its_regs = vmm.its_read_regs(src.itsdev)
    rd_regs = vmm.redist_read_regs(src.gic, 2)
    dst_mem = GuestMemory(src.mem.size, src.mem.base)
    src.mem.copy_pages_to(dst_mem)
    dst = make_vm(2, mem=dst_mem, boot=False)
    vmm.redist_write_regs(dst.gic, rd_regs)
    with pytest.raises(KvmError):
        vmm.its_restore_regs_qemu(dst.itsdev, its_regs)
    assert dst.its.device_list == []
    irq = dst.vgic.lpi_xa[8192]
    assert irq.vcpu == 1 and irq.refcount == 1 and irq.pending_latch
    assert dst.vgic.acknowledge(1) is irq
    dst.vgic.eoi(1, irq)
    assert dst.vgic.lpi_xa == {}


# -------------------------------------------------------------------- 2. retargeting ----
@pytest.mark.parametrize("release", [None, *RELEASES])
def test_retarget_only_sets_the_target_the_old_vcpu_moves_it_when_it_prunes(release):
    """update_affinity sets target_vcpu and nothing else: MOVI and a MAPC retarget leave the
    LPI on vCPU 0's ap_list, kick nobody; vgic_prune_ap_list on vCPU 0 moves it to vCPU 2."""
    sides = _sides(release)
    kicks: list[int] = []
    try:
        for s in sides:
            setup(s, _queued_lpi)
            if isinstance(s, Model):
                s.vgic.kick = kicks.append
            else:
                k0 = [s.vm.kicks(v) for v in range(NR)]
            assert s.cmd(L.cmd_movi(0, 0, 1)) is None
            assert s.lpi(8192)["target"] == 1 and s.ap_list(0) == [8192] and s.ap_list(1) == []
            assert s.cmd(L.cmd_mapc(1, 2)) is None
            assert s.lpi(8192)["target"] == 2 and s.ap_list(0) == [8192] and s.ap_list(2) == []
            if isinstance(s, Model):
                assert kicks == []
                s.vgic.vgic_prune_ap_list(0)
                assert kicks == [2]
            else:
                assert [s.vm.kicks(v) for v in range(NR)] == k0
                s.vm.flush(0)
                s.vm.sync(0)  # the exit: vgic_prune_ap_list
                assert s.vm.kicks(2) == k0[2] + 1
            assert s.ap_list(0) == [] and s.ap_list(2) == [8192]
            assert s.deliver(2) == [8192]
    finally:
        _close(sides)


def test_retarget_does_not_queue_a_pending_lpi_that_was_never_queued():
    """update_affinity (MOVI, MAPC retarget, MOVALL) never calls vgic_queue_irq_unlock: a
    pending, enabled LPI that is on no ap_list stays there (the old model queued it)."""
    m = Model()
    setup(m, lambda itt: [L.cmd_mapd(0, 3, itt), L.cmd_mapc(0, 0), L.cmd_mapc(1, 1),
                          L.cmd_mapti(0, 0, 8192, 0)])
    irq = m.vgic.lpi_xa[8192]
    irq.pending_latch = True  # pending without a queueing call (as a restore with no target)
    for c in (L.cmd_movi(0, 0, 1), L.cmd_mapc(1, 2), L.cmd_movall(2, 0)):
        assert m.cmd(c) is None
        assert irq.vcpu is None and all(m.ap_list(v) == [] for v in range(NR))
    assert irq.target_vcpu == 0


# ---------------------------------------------------------- 3. SAVE_TABLES after MAPC V=0 ----
def _mapc_v0_then_save(s):
    setup(s, lambda itt: [L.cmd_mapd(0, 3, itt), L.cmd_mapc(0, 0), L.cmd_mapti(0, 2, 8192, 0),
                          L.cmd_mapc(0, 0, valid=0)])
    s.vm.mem.write_u64(s.itt + 2 * 8, 0xDEAD) if isinstance(s, Model) else s.vm.poke(
        s.itt + 2 * 8, (0xDEAD).to_bytes(8, "little"))


@pytest.mark.parametrize("release", RELEASES)
def test_save_tables_after_mapc_v0_writes_a_zero_ite(release):
    """vgic_its_save_ite: ``if (!ite->collection)`` writes 0 (present in 6.12.117 AND
    6.1.192): SAVE_TABLES succeeds and the ITE slot is zero (the mapping is gone after a
    restore). The model used to invent -EINVAL."""
    m = Model(KernelProfile(release=release))
    _mapc_v0_then_save(m)
    assert m.vm.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES) == 0
    assert m.vm.mem.read_u64(m.itt + 2 * 8) == 0
    k = Kernel(release)
    try:
        _mapc_v0_then_save(k)
        assert k.vm.save_tables() == 0
        assert k.vm.u64(k.itt + 2 * 8) == 0
    finally:
        k.close()


def test_save_tables_oops_variant_is_its_own_outcome():
    """Trees without the NULL check dereference ite->collection: KernelOops, errno OOPS."""
    m = Model(KernelProfile(save_ite_no_collection="oops"))
    _mapc_v0_then_save(m)
    with pytest.raises(KernelOops) as e:
        m.vm.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES)
    assert e.value.errno == "OOPS"


def test_migration_reports_an_oops_as_failed_with_errno_oops(monkeypatch):
    """A KernelOops in a KVM call (here SAVE_TABLES on the source) is its own outcome: the
    migration is ``failed`` with errno ``OOPS`` (not ``aborted`` with a made-up errno)."""
    from pathlib import Path

    from gicsim.scenario import load_scenario
    from gicsim.sim import vmm
    from gicsim.sim.simulation import Simulation

    def oops(dev):
        raise KernelOops("vgic_its_save_ite: NULL ite->collection")

    monkeypatch.setattr(vmm, "its_save_tables", oops)
    sc = load_scenario(Path(__file__).parent.parent / "scenarios" / "clean-migration.yaml")
    sim = Simulation(sc)
    sim.run()
    mig = sim.migrations[0]
    assert mig.status == "failed"
    assert [(e["step"], e["errno"]) for e in mig.errors] == [("save_its_tables", "OOPS")]


# --------------------------------------------------- 4. cache key, registers, base, MSI ----
@pytest.mark.parametrize("release", [None, *RELEASES])
def test_ids_above_16_bits_never_alias_in_the_translation_cache(release):
    """6.12 vgic_its_check_cache rejects devid > VITS_MAX_DEVID / eventid > VITS_MAX_EVENTID
    before computing vgic_its_cache_key (devid << 16 | eventid); 6.1 compares (db, devid,
    eventid) exactly. (0, 0x10000) has the key of (1, 0) but must not hit its entry."""
    m = Model(KernelProfile(release=release or "6.12"))
    setup(m, lambda itt: [L.cmd_mapd(1, 3, itt), L.cmd_mapc(0, 0), L.cmd_mapti(1, 0, 8192, 0)])
    its = m.vm.its
    assert its.vgic_its_inject_msi(1, 0) == MSI_ACCEPTED  # cached now
    m.deliver(0)
    assert its.vgic_its_inject_msi(0, 0x10000) == MSI_UNMAPPED
    assert its.vgic_its_inject_msi(0x10000, 0) == MSI_UNMAPPED
    assert not m.vgic.lpi_xa[8192].pending_latch
    if release is not None:
        k = Kernel(release)
        try:
            setup(k, lambda itt: [L.cmd_mapd(1, 3, itt), L.cmd_mapc(0, 0), L.cmd_mapti(1, 0, 8192, 0)])
            assert k.vm.signal_msi(1, 0) == 1
            k.deliver(0)
            assert k.vm.signal_msi(0, 0x10000) == 0 and k.vm.signal_msi(0x10000, 0) == 0
            assert k.vm.irqfd_inject(0, 0x10000) == -11  # cache miss
            assert not k.vm.lpi(8192)["pending"]
        finally:
            k.close()


_HOLES = (0x10, 0x14, 0x1C, 0x20, 0x24, 0x80, 0x0C, 0x400, 0xFFE8)


@pytest.mark.parametrize("release", [None, *RELEASES])
def test_redistributor_offsets_without_handler_read_zero_from_userspace(release):
    """vgic_uaccess_read/_write: no region -> *val = 0, return 0 (never -ENXIO); GICR_PIDR2
    reads 0x3B (vgic_mmio_read_v3_idregs)."""
    m = make_vm(NR)
    want = {off: (0x3B if off == 0xFFE8 else 0) for off in _HOLES}
    got = {off: m.gic.get_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(0, off)) for off in _HOLES}
    assert got == want
    for off in _HOLES:
        assert m.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(0, off), 5) == 0
    if release is not None:
        vm = L.VM(kernel(release), NR)
        try:
            vm.boot_lpis()
            assert {off: vm.redist_reg_get(0, off) for off in _HOLES} == {o: (0, v) for o, v in want.items()}
            assert all(vm.redist_reg_set(0, off, 5) == 0 for off in _HOLES)
        finally:
            vm.close()


@pytest.mark.parametrize("release", [None, *RELEASES])
@pytest.mark.parametrize("base", [1 << 40, (1 << 40) - 0x10000, 1 << 44])
def test_its_base_beyond_the_ipa_space_is_e2big(release, base):
    """vgic_check_iorange: ``addr & ~kvm_phys_mask || addr + size > kvm_phys_size`` -> -E2BIG
    (40-bit IPA, the size QEMU gets without asking)."""
    vgic = Vgic(2, GuestMemory(1 << 20))
    dev = ItsDevice(VgicIts(vgic))
    with pytest.raises(E2BIG):
        dev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, base)
    with pytest.raises(EINVAL):  # misaligned stays -EINVAL
        dev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, 0x1000)
    assert dev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, (1 << 40) - 0x20000) == 0
    if release is not None:
        vm = L.VM(kernel(release), 2, its_base=None, ipa_bits=40)
        try:
            assert vm.set_attr(vm.its, L.GRP_ADDR, L.ADDR_TYPE_ITS, base) == -7  # -E2BIG
            assert vm.set_attr(vm.its, L.GRP_ADDR, L.ADDR_TYPE_ITS, 0x1000) == -22
        finally:
            vm.close()


@pytest.mark.parametrize("release", [None, *RELEASES])
def test_msi_to_an_its_whose_base_is_not_set_is_einval(release):
    """vgic_msi_to_its -> __vgic_doorbell_to_its: nothing on the MMIO bus -> -EINVAL (the
    model's drop reason ``no_its``), not -EBUSY/``its_disabled``."""
    vgic = Vgic(2, GuestMemory(1 << 20))
    its = VgicIts(vgic)
    assert its.vgic_its_inject_msi(0, 0) == MSI_NO_ITS
    if release is not None:
        vm = L.VM(kernel(release), 2, its_base=None)
        try:
            assert vm.signal_msi(0, 0, address=L.ITS_BASE + L.GITS_TRANSLATER) == -22
        finally:
            vm.close()


# ----------------------------------------------------------------- 5. delivery order ----
@pytest.mark.parametrize("release", [None, *RELEASES])
@pytest.mark.parametrize("n", [3, 20])  # 20 > nr_lr: vgic_sort_ap_list runs
def test_equal_priorities_are_taken_in_queueing_order_not_by_intid(release, n):
    """vgic_irq_cmp compares priority only and list_sort is stable: equal priorities keep the
    order they were queued in (the model used to take the lowest INTID first)."""
    intids = [8192 + (n - 1 - i) * 3 for i in range(n)]  # descending INTIDs

    def cmds(itt):
        out = [L.cmd_mapd(0, 4, itt), L.cmd_mapc(0, 0)]
        out += [L.cmd_mapti(0, e, intid, 0) for e, intid in enumerate(intids)]
        return out + [L.cmd_int(0, e) for e in range(n)]

    sides = _sides(release)
    try:
        for s in sides:
            setup(s, cmds)
            assert s.deliver(0) == intids, type(s).__name__
    finally:
        _close(sides)


@pytest.mark.parametrize("release", [None, *RELEASES])
def test_priority_first_then_queue_order_and_a_reraised_lpi_keeps_its_place(release):
    """Priority decides first (8200 at 0x80 before the 0xa0 ones); an LPI re-raised while
    active stays where it is in the ap_list (it is not re-queued at the tail)."""

    def cmds(itt):
        return [L.cmd_mapd(0, 3, itt), L.cmd_mapc(0, 0), L.cmd_mapti(0, 0, 8195, 0),
                L.cmd_mapti(0, 1, 8193, 0), L.cmd_mapti(0, 2, 8200, 0)]

    m = Model()
    m.vm.drv.lpi_config(8200, priority=0x80)
    setup(m, cmds)
    for e in (0, 1, 2):
        assert m.cmd(L.cmd_int(0, e)) is None
    assert m.deliver(0) == [8200, 8195, 8193]
    # 8195 active, re-raised, then EOI'd: still before 8193 (queued after it)
    for e in (0, 1):
        m.cmd(L.cmd_int(0, e))
    irq = m.vgic.acknowledge(0)
    assert irq.intid == 8195
    m.cmd(L.cmd_int(0, 0))
    m.vgic.eoi(0, irq)
    assert m.ap_list(0) == [8195, 8193]
    assert m.deliver(0) == [8195, 8193]
    if release is not None:
        k = Kernel(release)
        try:
            k.vm.poke(k.lay["prop"] + 8200 - 8192, b"\x81")
            setup(k, cmds)
            for e in (0, 1, 2):
                k.cmd(L.cmd_int(0, e))
            assert k.deliver(0) == [8200, 8195, 8193]
        finally:
            k.close()


# ------------------------------------------------------------------ releases as profiles ----
def test_release_profiles_set_the_variant_fields_and_overrides_win():
    assert KernelProfile().release == "6.12"
    p = KernelProfile(release="6.1")
    assert p.mapc_checks_rdbase_first is True and p.kernel_version == "6.1.192"
    assert KernelProfile().mapc_checks_rdbase_first is False
    assert KernelProfile(release="6.1", mapc_checks_rdbase_first=False).overrides() == {
        "mapc_checks_rdbase_first": False}
    for rel, vals in PROFILES.items():
        prof = KernelProfile(release=rel)
        assert {f: getattr(prof, f) for f in VARIANT_FIELDS} == vals
        assert not prof.hypothetical
    assert KernelProfile(pending_sync_on_ctlr=True).hypothetical
    assert not KernelProfile(pending_sync_on_ctlr=True, pending_sync_clears_ram=False).hypothetical
    with pytest.raises(ValueError):
        KernelProfile(release="5.10")


@pytest.mark.parametrize("release", RELEASES)
def test_mapc_v0_with_out_of_range_rdbase_follows_the_release(release):
    """6.1.192 checks target_addr >= online_vcpus first: E_ITS_MAPC_PROCNUM_OOR, the
    collection stays; 6.12.117 unmaps it and returns 0."""
    want_ret = "E_ITS_MAPC_PROCNUM_OOR" if release == "6.1" else None
    m = Model(KernelProfile(release=release))
    k = Kernel(release)
    try:
        for s in (m, k):
            assert s.cmd(L.cmd_mapc(0, 1)) is None
            assert s.cmd(L.cmd_mapc(0, NR + 5, valid=0)) == want_ret, type(s).__name__
        kept = k.vm.its_dump()["collections"]
        assert (0 in kept) == (release == "6.1")
        assert (0 in m.vm.its.collection_list) == (release == "6.1")
    finally:
        k.close()


# ------------------------------------------------- 6. per-vCPU pause and resume costs ----
@pytest.mark.parametrize("nr", [4, 16])
def test_stop_and_resume_charge_every_vcpu(nr):
    """vcpu_pause_per_vcpu_ns per vCPU in stop_vcpus, vcpu_resume_ns per vCPU on resume
    (they were defined in the timing profile and charged nowhere / once)."""
    from pathlib import Path

    from gicsim.scenario import load_scenario, resolved_dict, scenario_from_dict
    from gicsim.sim.simulation import Simulation

    d = resolved_dict(load_scenario(Path(__file__).parent.parent / "scenarios" / "clean-migration.yaml"))
    d["expect"] = {}
    d["vm"]["vcpus"] = nr
    sc = scenario_from_dict(d)
    sim = Simulation(sc)
    sim.run()
    mig = sim.migrations[0]
    t = sim.timing
    stop = mig.phases["stop_vcpus"]
    assert stop["end_ns"] - stop["start_ns"] >= nr * t.vcpu_pause_per_vcpu_ns
    res = mig.phases["resume"]
    assert res["end_ns"] - res["start_ns"] >= nr * t.vcpu_resume_ns
