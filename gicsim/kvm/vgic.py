"""The VM's vGICv3: LPI records, redistributors and the pending-table code of vgic-v3.c.

Plain Python, no SimPy. Names follow ``arch/arm64/kvm/vgic/`` so each function can be
checked against its kernel counterpart. The SimPy layer plugs in two hooks: ``kick`` (an LPI
was queued on a vCPU's ap_list: wake or signal it) and ``trace`` (observability).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gicsim.kvm.abi import GENMASK, GIC_LPI_OFFSET, INTERRUPT_ID_BITS_ITS, VGIC_MIN_LPI
from gicsim.kvm.errors import EBUSY, EFAULT, EINVAL, ENXIO, KvmError
from gicsim.kvm.releases import MAINLINE, KernelProfile
from gicsim.kvm.memory import GuestMemory

if TYPE_CHECKING:
    from gicsim.kvm.its import VgicIts

# GICR frame offsets (RD_base)
GICR_CTLR = 0x0000
GICR_IIDR = 0x0004
GICR_TYPER = 0x0008
GICR_PROPBASER = 0x0070
GICR_PENDBASER = 0x0078
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_RWP = 1 << 3
GICR_PENDBASER_PTZ = 1 << 62

# Cacheability / shareability field positions (include/linux/irqchip/arm-gic-v3.h)
_SHARE = (10, 0b11)
_RBASER_INNER = (7, 0b111)
_RBASER_OUTER = (56, 0b111)
GIC_BASER_CACHE_nCnB = 0  # noqa: N816
GIC_BASER_CACHE_nC = 1  # noqa: N816
GIC_BASER_CACHE_RaWb = 3  # noqa: N816
GIC_BASER_CACHE_SameAsInner = 0  # noqa: N816
GIC_BASER_OuterShareable = 2  # noqa: N816
GIC_BASER_InnerShareable = 1  # noqa: N816
PROPBASER_RES0_MASK = GENMASK(63, 59) | GENMASK(55, 52) | GENMASK(6, 5)
PENDBASER_RES0_MASK = (1 << 63) | GENMASK(61, 59) | GENMASK(55, 52) | GENMASK(15, 12) | GENMASK(6, 0)
#: vgic_v3_enable: RaWb, SameAsInner, InnerShareable, address 0
INITIAL_BASER_ATTRS = (GIC_BASER_CACHE_RaWb << 7) | (GIC_BASER_InnerShareable << 10)
INITIAL_PROPBASER_VALUE = INITIAL_BASER_ATTRS
INITIAL_PENDBASER_VALUE = INITIAL_BASER_ATTRS


def _sanitise_field(reg: int, field: tuple[int, int], fn: Callable[[int], int]) -> int:
    shift, mask = field
    return (reg & ~(mask << shift)) | (fn((reg >> shift) & mask) << shift)


def vgic_sanitise_shareability(f: int) -> int:
    return GIC_BASER_InnerShareable if f == GIC_BASER_OuterShareable else f


def vgic_sanitise_inner_cacheability(f: int) -> int:
    return GIC_BASER_CACHE_RaWb if f in (GIC_BASER_CACHE_nCnB, GIC_BASER_CACHE_nC) else f


def vgic_sanitise_outer_cacheability(f: int) -> int:
    return f if f in (GIC_BASER_CACHE_SameAsInner, GIC_BASER_CACHE_nC) else GIC_BASER_CACHE_SameAsInner


def _sanitise_rbaser(reg: int) -> int:
    reg = _sanitise_field(reg, _SHARE, vgic_sanitise_shareability)
    reg = _sanitise_field(reg, _RBASER_INNER, vgic_sanitise_inner_cacheability)
    return _sanitise_field(reg, _RBASER_OUTER, vgic_sanitise_outer_cacheability)


def vgic_sanitise_propbaser(reg: int) -> int:
    return _sanitise_rbaser(reg) & ~PROPBASER_RES0_MASK


def vgic_sanitise_pendbaser(reg: int) -> int:
    return _sanitise_rbaser(reg) & ~PENDBASER_RES0_MASK


def update_64bit_reg(reg: int, offset: int, length: int, val: int) -> int:
    """Merge a 32-bit half (offset 0 or 4) or a full 64-bit write into ``reg``."""
    if length == 8:
        return val & GENMASK(63, 0)
    lower = (offset & 4) * 8
    return (reg & ~(0xFFFF_FFFF << lower)) | ((val & 0xFFFF_FFFF) << lower)


def extract_bytes(reg: int, offset: int, length: int) -> int:
    return (reg >> ((offset & 7) * 8)) & ((1 << (length * 8)) - 1)


def GICR_PROPBASER_ADDRESS(reg: int) -> int:  # noqa: N802
    return reg & GENMASK(51, 12)


def GICR_PENDBASER_ADDRESS(reg: int) -> int:  # noqa: N802
    return reg & GENMASK(51, 16)


def vcpu_mpidr(vcpu_id: int) -> int:
    """Default MPIDR KVM gives vCPU ``vcpu_id`` (Aff0 = id[3:0], Aff1 = id[11:4], Aff2 = id[19:12])."""
    return (vcpu_id & 0xF) | ((vcpu_id >> 4) & 0xFF) << 8 | ((vcpu_id >> 12) & 0xFF) << 16


class VgicIrq:
    """``struct vgic_irq`` for an LPI: the only place KVM keeps an LPI's live state."""

    __slots__ = (
        "intid",
        "target_vcpu",
        "enabled",
        "priority",
        "pending_latch",
        "active",
        "vcpu",
        "refcount",
    )

    def __init__(self, intid: int, target_vcpu: int | None) -> None:
        self.intid = intid
        self.target_vcpu = target_vcpu
        self.enabled = False
        self.priority = 0
        self.pending_latch = False
        self.active = False
        self.vcpu: int | None = None  # whose ap_list holds it
        self.refcount = 1

    def __repr__(self) -> str:
        return (
            f"VgicIrq({self.intid}, target={self.target_vcpu}, en={self.enabled}, "
            f"prio={self.priority:#x}, pending={self.pending_latch}, active={self.active})"
        )


class VgicCpu:
    """One redistributor (``struct vgic_cpu``)."""

    __slots__ = ("vcpu_id", "pendbaser", "ctlr", "ap_list")

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.pendbaser = INITIAL_PENDBASER_VALUE
        self.ctlr = 0
        self.ap_list: dict[int, VgicIrq] = {}  # intid -> irq, insertion order


class Vgic:
    """``struct vgic_dist`` plus the per-vCPU state and the vCPU mutexes of one VM."""

    def __init__(
        self,
        nr_vcpus: int,
        memory: GuestMemory,
        kernel: KernelProfile = MAINLINE,
    ) -> None:
        self.nr_vcpus = nr_vcpus
        self.mem = memory
        self.kernel = kernel
        self.initialized = False
        self.propbaser = INITIAL_PROPBASER_VALUE
        self.cpus = [VgicCpu(i) for i in range(nr_vcpus)]
        #: ``vcpu->mutex`` held = the vCPU thread is inside a vCPU ioctl (KVM_RUN).
        self.vcpu_mutex_held = [False] * nr_vcpus
        self.lpi_xa: dict[int, VgicIrq] = {}
        self.its_list: list[VgicIts] = []
        self.kick: Callable[[int], None] | None = None

    # -- locking ------------------------------------------------------------------------
    def kvm_trylock_all_vcpus(self) -> None:
        """``kvm_trylock_all_vcpus``: no waiting; one vCPU inside KVM_RUN gives ``-EBUSY``."""
        held = self.vcpu_mutex_held
        if True in held:
            raise EBUSY(f"vCPU {held.index(True)} is inside KVM_RUN (vcpu->mutex held)")

    def kvm_get_vcpu_by_id(self, vcpu_id: int) -> int | None:
        return vcpu_id if 0 <= vcpu_id < self.nr_vcpus else None

    def vgic_lpis_enabled(self, vcpu: int) -> bool:
        return self.cpus[vcpu].ctlr == GICR_CTLR_ENABLE_LPIS

    # -- LPI records --------------------------------------------------------------------
    def max_lpis_propbaser(self) -> int:
        nr_idbits = (self.propbaser & 0x1F) + 1
        return 1 << min(nr_idbits, INTERRUPT_ID_BITS_ITS)

    def vgic_add_lpi(self, intid: int, vcpu: int | None) -> VgicIrq:
        """Find or create the LPI; only a new record reads config and syncs pending state."""
        irq = self.lpi_xa.get(intid)
        if irq is not None:
            irq.refcount += 1
            return irq
        irq = VgicIrq(intid, vcpu)
        self.lpi_xa[intid] = irq
        try:
            self.update_lpi_config(irq, None)
            self.vgic_v3_lpi_sync_pending_status(irq)
        except KvmError:
            self.vgic_put_irq(irq)
            raise
        return irq

    def vgic_put_irq(self, irq: VgicIrq) -> None:
        irq.refcount -= 1
        if irq.refcount <= 0 and self.lpi_xa.get(irq.intid) is irq:
            del self.lpi_xa[irq.intid]
            if irq.vcpu is not None:
                self.cpus[irq.vcpu].ap_list.pop(irq.intid, None)
                irq.vcpu = None

    def update_lpi_config(self, irq: VgicIrq, filter_vcpu: int | None) -> None:
        """Read the LPI's property byte (enable bit 0, priority bits [7:2])."""
        propbase = GICR_PROPBASER_ADDRESS(self.propbaser)
        prop = self.mem.read_u8(propbase + irq.intid - GIC_LPI_OFFSET)
        if filter_vcpu is None or filter_vcpu == irq.target_vcpu:
            irq.priority = prop & 0xFC
            irq.enabled = bool(prop & 1)
            self.vgic_queue_irq_unlock(irq)

    def vgic_v3_lpi_sync_pending_status(self, irq: VgicIrq) -> None:
        """The one place that snapshots an LPI's pending bit from RAM (SPEC §1)."""
        vcpu = irq.target_vcpu
        if vcpu is None:
            return
        ptr = GICR_PENDBASER_ADDRESS(self.cpus[vcpu].pendbaser) + irq.intid // 8
        bit = 1 << (irq.intid % 8)
        val = self.mem.read_u8(ptr)
        status = bool(val & bit)
        irq.pending_latch = status
        self.vgic_queue_irq_unlock(irq)
        if status and self.kernel.pending_sync_clears_ram:
            self.mem.write_u8(ptr, val & ~bit)  # clear consumed data

    def its_sync_lpi_pending_table(self, vcpu: int) -> None:
        """EnableLPIs 0->1: re-read the bits of this vCPU's LPIs (does not clear RAM)."""
        pendbase = GICR_PENDBASER_ADDRESS(self.cpus[vcpu].pendbaser)
        last_byte, pendmask = -1, 0
        for intid in sorted(self.lpi_xa):
            byte = intid // 8
            if byte != last_byte:
                pendmask = self.mem.read_u8(pendbase + byte)
                last_byte = byte
            irq = self.lpi_xa.get(intid)
            if irq is None:
                continue
            if irq.target_vcpu == vcpu:
                irq.pending_latch = bool(pendmask & (1 << (intid % 8)))
            self.vgic_queue_irq_unlock(irq)

    def vgic_v3_save_pending_tables(self) -> int:
        """Write every targeted LPI's pending_latch into its pending-table bit; returns LPIs."""
        if not self.initialized:
            raise ENXIO("vGIC not initialized")
        mem = self.mem
        last_ptr, val, n = -1, 0, 0
        for intid in sorted(self.lpi_xa):
            irq = self.lpi_xa[intid]
            vcpu = irq.target_vcpu
            if vcpu is None:
                continue
            n += 1
            ptr = GICR_PENDBASER_ADDRESS(self.cpus[vcpu].pendbaser) + intid // 8
            if ptr != last_ptr:
                val = mem.read_u8(ptr)
                last_ptr = ptr
            bit = 1 << (intid % 8)
            stored = bool(val & bit)
            if stored == irq.pending_latch:
                continue
            val = (val | bit) if irq.pending_latch else (val & ~bit)
            mem.write_u8(ptr, val)
        return n

    # -- ap_list: what the vCPU may take --------------------------------------------------
    @staticmethod
    def vgic_target_oracle(irq: VgicIrq) -> int | None:
        if irq.active:
            return irq.vcpu
        if irq.enabled and irq.pending_latch:
            return irq.target_vcpu
        return None

    def vgic_queue_irq_unlock(self, irq: VgicIrq) -> None:
        """Put a deliverable LPI on its target's ap_list and kick that vCPU (hot path:
        ``vgic_target_oracle`` inlined)."""
        on = irq.vcpu
        if on is not None:  # already queued somewhere: just kick that vCPU
            if (irq.active or (irq.enabled and irq.pending_latch)) and self.kick is not None:
                self.kick(on)
            return
        if irq.active or not (irq.enabled and irq.pending_latch):
            return
        vcpu = irq.target_vcpu
        if vcpu is None:
            return
        irq.vcpu = vcpu
        self.cpus[vcpu].ap_list[irq.intid] = irq
        if self.kick is not None:
            self.kick(vcpu)

    def vgic_prune_ap_list(self, vcpu: int) -> None:
        """Drop LPIs that are no longer deliverable here; move retargeted ones."""
        ap = self.cpus[vcpu].ap_list
        for intid in [i for i, irq in ap.items() if self.vgic_target_oracle(irq) != vcpu]:
            irq = ap.pop(intid)
            irq.vcpu = None
            if irq.refcount > 0 and self.lpi_xa.get(intid) is irq:
                self.vgic_queue_irq_unlock(irq)

    def vgic_flush_pending_lpis(self, vcpu: int) -> None:
        ap = self.cpus[vcpu].ap_list
        for irq in ap.values():
            irq.vcpu = None
        ap.clear()

    def best_pending(self, vcpu: int) -> VgicIrq | None:
        """Highest priority (lowest value), then lowest INTID, pending, enabled, not active."""
        best = None
        for irq in self.cpus[vcpu].ap_list.values():
            if irq.pending_latch and irq.enabled and not irq.active and irq.target_vcpu == vcpu:
                if best is None or (irq.priority, irq.intid) < (best.priority, best.intid):
                    best = irq
        return best

    def acknowledge(self, vcpu: int) -> VgicIrq | None:
        """The guest reads ICC_IAR1: prune the ap_list (``vgic_prune_ap_list``) and take the
        best pending LPI, which leaves pending (edge) and becomes active. One pass."""
        ap = self.cpus[vcpu].ap_list
        best = None
        stale = None
        for irq in ap.values():
            if irq.active:
                continue
            if irq.enabled and irq.pending_latch and irq.target_vcpu == vcpu:
                if best is None or irq.priority < best.priority or (
                    irq.priority == best.priority and irq.intid < best.intid
                ):
                    best = irq
            else:
                if stale is None:
                    stale = []
                stale.append(irq)
        if stale is not None:
            for irq in stale:
                del ap[irq.intid]
                irq.vcpu = None
                if irq.refcount > 0 and self.lpi_xa.get(irq.intid) is irq:
                    self.vgic_queue_irq_unlock(irq)
        if best is not None:
            best.pending_latch = False
            best.active = True
        return best

    def eoi(self, vcpu: int, irq: VgicIrq) -> None:
        """The guest writes ICC_EOIR1: drop active; a re-raised LPI queues again."""
        irq.active = False
        on = irq.vcpu
        if on is not None:
            del self.cpus[on].ap_list[irq.intid]
            irq.vcpu = None
        if irq.pending_latch and self.lpi_xa.get(irq.intid) is irq:
            self.vgic_queue_irq_unlock(irq)

    def has_deliverable(self, vcpu: int) -> bool:
        return self.best_pending(vcpu) is not None

    # -- redistributor registers (guest MMIO and userspace) --------------------------------
    def redist_read(self, vcpu: int, offset: int, length: int = 8) -> int:
        cpu = self.cpus[vcpu]
        base = offset & ~7
        if offset == GICR_CTLR and length == 4:
            return cpu.ctlr & GICR_CTLR_ENABLE_LPIS
        if base == GICR_TYPER:
            last = 1 << 4 if vcpu == self.nr_vcpus - 1 else 0
            reg = (vcpu_mpidr(vcpu) << 32) | (vcpu << 8) | last | 1  # PLPIS
            return extract_bytes(reg, offset, length)
        if base == GICR_PROPBASER:
            return extract_bytes(self.propbaser, offset, length)
        if base == GICR_PENDBASER:
            return extract_bytes(cpu.pendbaser & ~GICR_PENDBASER_PTZ, offset, length)
        if offset == GICR_IIDR and length == 4:
            return 0x0300043B  # IMPLEMENTER_ARM, revision 3
        raise ENXIO(f"GICR offset {offset:#x} not modelled")

    def redist_write(self, vcpu: int, offset: int, length: int, val: int) -> None:
        cpu = self.cpus[vcpu]
        base = offset & ~7
        if offset == GICR_CTLR and length == 4:
            self.vgic_mmio_write_v3r_ctlr(vcpu, val)
        elif base == GICR_PROPBASER:
            if self.vgic_lpis_enabled(vcpu):
                return  # ignored while EnableLPIs is set
            self.propbaser = vgic_sanitise_propbaser(
                update_64bit_reg(self.propbaser, offset, length, val)
            )
        elif base == GICR_PENDBASER:
            if self.vgic_lpis_enabled(vcpu):
                return
            cpu.pendbaser = vgic_sanitise_pendbaser(
                update_64bit_reg(cpu.pendbaser, offset, length, val)
            )
        elif base == GICR_TYPER or (offset == GICR_IIDR and length == 4):
            return  # read-only
        else:
            raise ENXIO(f"GICR offset {offset:#x} not modelled")

    def vgic_mmio_write_v3r_ctlr(self, vcpu: int, val: int) -> None:
        cpu = self.cpus[vcpu]
        if not self.its_list:
            return
        if not val & GICR_CTLR_ENABLE_LPIS:
            if cpu.ctlr != GICR_CTLR_ENABLE_LPIS:
                return
            cpu.ctlr = GICR_CTLR_RWP
            self.vgic_flush_pending_lpis(vcpu)
            for its in self.its_list:
                its.vgic_its_invalidate_cache()
            cpu.ctlr = 0
        else:
            if cpu.ctlr != 0:
                return
            cpu.ctlr = GICR_CTLR_ENABLE_LPIS
            self.vgic_enable_lpis(vcpu)

    def vgic_enable_lpis(self, vcpu: int) -> None:
        if not self.cpus[vcpu].pendbaser & GICR_PENDBASER_PTZ:
            try:
                self.its_sync_lpi_pending_table(vcpu)
            except EFAULT:
                pass  # an MMIO write has no way to report it

    # -- userspace view -----------------------------------------------------------------
    def vcpu_from_mpidr(self, mpidr: int) -> int:
        for v in range(self.nr_vcpus):
            if vcpu_mpidr(v) == mpidr:
                return v
        raise EINVAL(f"no vCPU with MPIDR {mpidr:#x}")

    def lpi_is_valid(self, intid: int) -> bool:
        return VGIC_MIN_LPI <= intid < self.max_lpis_propbaser()
