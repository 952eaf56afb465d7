"""The vGIC core of ``arch/arm64/kvm/vgic/vgic.c``: LPI records (``struct vgic_irq``), the
per-vCPU ap_list, queueing, pruning, acknowledge and EOI.

Kernel file: ``vgic.c`` (Linux 6.12.117 (Debian linux-source-6.12), the default release). ``vgic_add_lpi``, ``update_lpi_config`` sit in
``vgic-its.c`` in the kernel; they are kept here, next to the LPI records they create.
Plain Python, no SimPy. The SimPy layer plugs in one hook: ``kick`` (an LPI was queued on a
vCPU's ap_list: wake or signal it). The class grows by file, as the kernel's code does:
``VgicCore`` (here) <- ``VgicV3`` (``vgic_v3.py``) <- ``VgicMmioV3`` (``vgic_mmio_v3.py``) <-
``Vgic`` (``vgic_init.py``, the one to instantiate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gicsim.kvm.abi import GIC_LPI_OFFSET, INTERRUPT_ID_BITS_ITS, VGIC_MIN_LPI
from gicsim.kvm.arm_gic_v3 import (
    GICR_PROPBASER_ADDRESS,
    INITIAL_PENDBASER_VALUE,
    INITIAL_PROPBASER_VALUE,
    vcpu_mpidr,
)
from gicsim.kvm.errors import EBUSY, EINVAL, KvmError
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.releases import MAINLINE, KernelProfile


class ItsHooks(Protocol):
    """What the vGIC calls on each of its ITSes (``dist->its_list`` walks in the kernel)."""

    def vgic_its_invalidate_cache(self) -> None: ...


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


class VgicCore:
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
        self.its_list: list[ItsHooks] = []
        self.kick: Callable[[int], None] | None = None

    # -- locking ------------------------------------------------------------------------
    def kvm_trylock_all_vcpus(self) -> None:
        """``kvm_trylock_all_vcpus``: no waiting; one vCPU inside KVM_RUN gives ``-EBUSY``."""
        held = self.vcpu_mutex_held
        if True in held:
            raise EBUSY(f"vCPU {held.index(True)} is inside KVM_RUN (vcpu->mutex held)")

    def kvm_get_vcpu_by_id(self, vcpu_id: int) -> int | None:
        return vcpu_id if 0 <= vcpu_id < self.nr_vcpus else None


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
        raise NotImplementedError  # vgic_v3.py

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

    # -- userspace view -----------------------------------------------------------------
    def vcpu_from_mpidr(self, mpidr: int) -> int:
        for v in range(self.nr_vcpus):
            if vcpu_mpidr(v) == mpidr:
                return v
        raise EINVAL(f"no vCPU with MPIDR {mpidr:#x}")

    def lpi_is_valid(self, intid: int) -> bool:
        return VGIC_MIN_LPI <= intid < self.max_lpis_propbaser()

