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


VGIC_NR_SGIS = 16
VGIC_NR_PRIVATE_IRQS = 32


class VgicCpu:
    """One redistributor (``struct vgic_cpu``).

    Of the 32 private IRQs (``vgic_cpu->private_irqs``: SGIs 0-15, PPIs 16-31) only what
    the SGI_base frame's userspace registers show is kept, as 32-bit masks / a byte list:
    ``vgic_allocate_private_irqs_locked`` (``vgic-init.c``) enables the SGIs (edge) and leaves
    the PPIs disabled (level), ``vgic_init`` puts all of them in group 1 (GICv3), priority 0.
    The model never raises an SGI or PPI (nothing queues them), so pending and active stay 0.
    """

    __slots__ = ("vcpu_id", "pendbaser", "ctlr", "ap_list", "private_enabled",
                 "private_group", "private_priority")

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.pendbaser = INITIAL_PENDBASER_VALUE
        self.ctlr = 0
        self.ap_list: dict[int, VgicIrq] = {}  # intid -> irq, insertion order
        #: bit n: private IRQ n's ``irq->enabled`` (SGIs enabled at allocation)
        self.private_enabled = (1 << VGIC_NR_SGIS) - 1
        #: bit n: ``irq->group`` (1 for every private IRQ of a GICv3 vGIC)
        self.private_group = (1 << VGIC_NR_PRIVATE_IRQS) - 1
        #: ``irq->priority`` of each private IRQ
        self.private_priority = [0] * VGIC_NR_PRIVATE_IRQS


class VgicCore:
    """``struct vgic_dist`` plus the per-vCPU state and the vCPU mutexes of one VM."""

    def __init__(
        self,
        nr_vcpus: int,
        memory: GuestMemory,
        kernel: KernelProfile = MAINLINE,
        ipa_bits: int = 40,
    ) -> None:
        self.nr_vcpus = nr_vcpus
        #: the VM's IPA size (``KVM_VM_TYPE_ARM_IPA_SIZE``; 40 bits when the VMM asks for none):
        #: ``kvm_phys_size`` = 1 << ipa_bits
        self.ipa_bits = ipa_bits
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
        """``vgic_put_irq`` (``vgic.c``): drop one reference; the last one erases the LPI from
        ``lpi_xa``. A queued LPI can never get here with its last reference: the ap_list
        holds one (taken in ``vgic_queue_irq_unlock``, dropped in ``vgic_prune_ap_list``), so
        an LPI whose ITE is gone (DISCARD, MAPD V=0, device free, failed restore) stays
        queued, is delivered once, and a re-MAPTI of its INTID meanwhile reuses the record
        (``vgic_add_lpi`` finds it) with its pending state and old target."""
        irq.refcount -= 1
        if irq.refcount <= 0 and self.lpi_xa.get(irq.intid) is irq:
            del self.lpi_xa[irq.intid]

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
        """``vgic_target_oracle``: active stays where it is (``irq->vcpu ?: target_vcpu``);
        enabled and pending goes to its target; anything else to no vCPU."""
        if irq.active:
            return irq.vcpu if irq.vcpu is not None else irq.target_vcpu
        if irq.enabled and irq.pending_latch:
            return irq.target_vcpu
        return None

    def vgic_queue_irq_unlock(self, irq: VgicIrq) -> None:
        """``vgic_queue_irq_unlock``: an LPI not on any ap_list whose oracle names a vCPU goes
        to the tail of that vCPU's ap_list, taking a reference (``vgic_get_irq_kref``), and the
        vCPU is kicked. Already queued (anywhere) or no oracle vCPU: nothing moves, but the
        oracle's vCPU, if any, is kicked (``KVM_REQ_IRQ_PENDING`` + ``kvm_vcpu_kick``)."""
        vcpu = self.vgic_target_oracle(irq)
        if irq.vcpu is not None or vcpu is None:
            if vcpu is not None and self.kick is not None:
                self.kick(vcpu)
            return
        irq.refcount += 1
        irq.vcpu = vcpu
        self.cpus[vcpu].ap_list[irq.intid] = irq  # list_add_tail
        if self.kick is not None:
            self.kick(vcpu)

    def _prune_irq(self, vcpu: int, irq: VgicIrq) -> None:
        """One step of ``vgic_prune_ap_list`` for an LPI on ``vcpu``'s ap_list: no oracle vCPU:
        off the list and ``vgic_put_irq`` (the ap_list's reference); another vCPU: moved to
        the tail of that vCPU's ap_list (reference kept) and that vCPU kicked."""
        target = self.vgic_target_oracle(irq)
        if target == vcpu:
            return
        del self.cpus[vcpu].ap_list[irq.intid]
        if target is None:
            irq.vcpu = None
            self.vgic_put_irq(irq)
            return
        irq.vcpu = target
        self.cpus[target].ap_list[irq.intid] = irq
        if self.kick is not None:
            self.kick(target)

    def vgic_prune_ap_list(self, vcpu: int) -> None:
        """``vgic_prune_ap_list`` (at every guest exit, ``kvm_vgic_sync_hwstate``): drop LPIs
        that are no longer deliverable here; move retargeted ones to their new vCPU. This is
        where a MOVI/MAPC/MOVALL retarget of a queued LPI takes effect."""
        moved = None
        for irq in self.cpus[vcpu].ap_list.values():  # vgic_target_oracle inlined (hot path)
            if irq.active:
                target = irq.vcpu if irq.vcpu is not None else irq.target_vcpu
            elif irq.enabled and irq.pending_latch:
                target = irq.target_vcpu
            else:
                target = None
            if target != vcpu:
                if moved is None:
                    moved = [irq]
                else:
                    moved.append(irq)
        if moved is not None:  # in list order, as the kernel walks it
            for irq in moved:
                self._prune_irq(vcpu, irq)

    def vgic_flush_pending_lpis(self, vcpu: int) -> None:
        """``vgic_flush_pending_lpis`` (EnableLPIs 1->0): every LPI off the ap_list, its
        pending state cleared (``pending_latch = false``), each dropping the ap_list's
        reference. (Found by the 100,000-stream differential: the model kept the latch.)"""
        ap = self.cpus[vcpu].ap_list
        irqs = [irq for irq in ap.values() if irq.intid >= VGIC_MIN_LPI]
        for irq in irqs:
            del ap[irq.intid]
            irq.pending_latch = False
            irq.vcpu = None
            self.vgic_put_irq(irq)

    def best_pending(self, vcpu: int) -> VgicIrq | None:
        """The LPI the guest takes next: highest priority (lowest value), ties in ap_list order.

        ``vgic_flush_lr_state`` fills the list registers in ap_list order (sorted by
        ``vgic_irq_cmp`` -- priority only; ``list_sort`` is stable -- when they do not all
        fit), and the CPU interface acknowledges the highest-priority LR; so equal
        priorities are taken in queueing order, never by INTID."""
        best = None
        for irq in self.cpus[vcpu].ap_list.values():
            if irq.pending_latch and irq.enabled and not irq.active and irq.target_vcpu == vcpu:
                if best is None or irq.priority < best.priority:
                    best = irq
        return best

    def acknowledge(self, vcpu: int) -> VgicIrq | None:
        """The guest reads ICC_IAR1: prune the ap_list (``vgic_prune_ap_list``) and take the
        best pending LPI (:meth:`best_pending`), which leaves pending (edge) and becomes
        active."""
        self.vgic_prune_ap_list(vcpu)
        best = self.best_pending(vcpu)
        if best is not None:
            best.pending_latch = False
            best.active = True
        return best

    def eoi(self, vcpu: int, irq: VgicIrq) -> None:
        """The guest writes ICC_EOIR1: the LR's active bit drops, and at the exit
        (``vgic_fold_lr_state`` + ``vgic_prune_ap_list``) the LPI leaves the ap_list unless it
        was re-raised meanwhile: then it stays where it is in the list (not re-queued at the
        tail) or, retargeted meanwhile, moves to its new vCPU."""
        irq.active = False
        on = irq.vcpu
        if on is not None:
            self._prune_irq(on, irq)

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

