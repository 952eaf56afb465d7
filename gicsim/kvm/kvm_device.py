"""The userspace API: KVM device attributes of the ITS and GICv3 devices (SPEC §3).

``set_attr``/``get_attr``/``has_attr`` return like the ioctls (0 or a value) or raise the
errno as a typed :class:`~gicsim.kvm.errors.KvmError`. The checks run in the kernel's order
(alignment before locking, then the all-vCPU trylock, then the base address...), so the
errno a caller sees for a combination of problems is the kernel's.
"""

from __future__ import annotations

from gicsim.kvm.arm_gic_v3 import GICR_CTLR, GICR_IIDR, GICR_PENDBASER, GICR_PROPBASER, GICR_TYPER
from gicsim.kvm.errors import E2BIG, EBUSY, EEXIST, EINVAL, ENODEV, ENXIO
from gicsim.kvm.its import (
    GITS_PIDR4,
    GITS_TYPER,
    ITS_REGISTERS,
    KVM_VGIC_V3_ITS_SIZE,
    TableStats,
    VgicIts,
)
from gicsim.kvm.vgic_init import Vgic

KVM_DEV_ARM_VGIC_GRP_ADDR = 0
KVM_DEV_ARM_VGIC_GRP_DIST_REGS = 1
KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3
KVM_DEV_ARM_VGIC_GRP_CTRL = 4
KVM_DEV_ARM_VGIC_GRP_REDIST_REGS = 5
KVM_DEV_ARM_VGIC_GRP_ITS_REGS = 8

KVM_DEV_ARM_VGIC_CTRL_INIT = 0
KVM_DEV_ARM_ITS_SAVE_TABLES = 1
KVM_DEV_ARM_ITS_RESTORE_TABLES = 2
KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES = 3
KVM_DEV_ARM_ITS_CTRL_RESET = 4

KVM_VGIC_ITS_ADDR_TYPE = 4
KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT = 32
KVM_DEV_ARM_VGIC_OFFSET_MASK = 0xFFFF_FFFF

#: its_registers[]: offset -> full width in bytes, as userspace must access it (every
#: register of each region, at the region's width: ``vgic_its_attr_regs_access``)
ITS_REG_WIDTH = {off: r.width() for r in ITS_REGISTERS
                 for off in range(r.reg_offset, r.reg_offset + r.len, r.width())}
_REDIST_OFFSETS = {GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_TYPER + 4, GICR_PROPBASER,
                   GICR_PROPBASER + 4, GICR_PENDBASER, GICR_PENDBASER + 4}  # fmt: skip


def redist_attr(vcpu_id: int, offset: int) -> int:
    """``attr`` of a GRP_REDIST_REGS access: MPIDR affinity in [63:32], offset in [31:0]."""
    from gicsim.kvm.arm_gic_v3 import vcpu_mpidr

    mpidr = vcpu_mpidr(vcpu_id)
    aff = ((mpidr >> 16) & 0xFF) << 16 | ((mpidr >> 8) & 0xFF) << 8 | (mpidr & 0xFF)
    return (aff << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | offset


class ItsDevice:
    """``KVM_DEV_TYPE_ARM_VGIC_ITS``: one per emulated ITS."""

    def __init__(self, its: VgicIts) -> None:
        self.its = its
        self.vgic: Vgic = its.vgic
        #: what the last SAVE/RESTORE_TABLES touched (for the timing model)
        self.last_stats = TableStats()

    # ---------------------------------------------------------------- set/get ----
    def set_attr(self, group: int, attr: int, value: int = 0) -> int:
        if group == KVM_DEV_ARM_VGIC_GRP_ADDR:
            if attr != KVM_VGIC_ITS_ADDR_TYPE:
                raise ENODEV(f"GRP_ADDR attr {attr}")
            if self.its.vgic_its_base is not None:
                raise EEXIST("ITS base address already set")
            # vgic_check_iorange (vgic-kvm-device.c): alignment and wrap-around are -EINVAL,
            # a frame beyond the VM's IPA space (kvm_phys_size) is -E2BIG
            if value & 0xFFFF:
                raise EINVAL(f"ITS base {value:#x} not 64 KiB aligned")
            if value + KVM_VGIC_V3_ITS_SIZE >= 1 << 64:
                raise EINVAL(f"ITS frame at {value:#x} wraps around")
            phys_size = 1 << self.vgic.ipa_bits
            if value & ~(phys_size - 1) or value + KVM_VGIC_V3_ITS_SIZE > phys_size:
                raise E2BIG(f"ITS frame at {value:#x} beyond the {self.vgic.ipa_bits}-bit IPA space")
            self.its.vgic_its_base = value
            return 0
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL:
            return self.vgic_its_ctrl(attr)
        if group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
            self.vgic_its_attr_regs_access(attr, True, value)
            return 0
        raise ENXIO(f"ITS group {group}")

    def get_attr(self, group: int, attr: int) -> int:
        if group == KVM_DEV_ARM_VGIC_GRP_ADDR:
            if attr != KVM_VGIC_ITS_ADDR_TYPE:
                raise ENODEV(f"GRP_ADDR attr {attr}")
            base = self.its.vgic_its_base
            return 0xFFFF_FFFF_FFFF_FFFF if base is None else base  # VGIC_ADDR_UNDEF
        if group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
            return self.vgic_its_attr_regs_access(attr, False, 0)
        raise ENXIO(f"ITS group {group}")

    def has_attr(self, group: int, attr: int) -> int:
        if group == KVM_DEV_ARM_VGIC_GRP_ADDR and attr == KVM_VGIC_ITS_ADDR_TYPE:
            return 0
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr in (
            KVM_DEV_ARM_VGIC_CTRL_INIT,
            KVM_DEV_ARM_ITS_SAVE_TABLES,
            KVM_DEV_ARM_ITS_RESTORE_TABLES,
            KVM_DEV_ARM_ITS_CTRL_RESET,
        ):
            return 0
        if group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
            self._check_its_offset(attr)
            if attr not in ITS_REG_WIDTH:
                raise ENXIO(f"no ITS register at {attr:#x}")
            return 0
        raise ENXIO(f"ITS group {group} attr {attr}")

    # ------------------------------------------------------------------ ctrl ----
    def vgic_its_ctrl(self, attr: int) -> int:
        if attr == KVM_DEV_ARM_VGIC_CTRL_INIT:
            return 0  # "Nothing to do"
        self.vgic.kvm_trylock_all_vcpus()
        its = self.its
        if attr == KVM_DEV_ARM_ITS_CTRL_RESET:
            its.vgic_its_reset()
        elif attr == KVM_DEV_ARM_ITS_SAVE_TABLES:
            self.last_stats = TableStats()
            self.last_stats = its.vgic_its_save_tables_v0()
        elif attr == KVM_DEV_ARM_ITS_RESTORE_TABLES:
            self.last_stats = TableStats()
            self.last_stats = its.vgic_its_restore_tables_v0()
        else:
            raise ENXIO(f"ITS ctrl attr {attr}")
        return 0

    # --------------------------------------------------------------- ITS regs ----
    @staticmethod
    def _check_its_offset(offset: int) -> None:
        if offset < GITS_TYPER or offset >= GITS_PIDR4:
            if offset & 3:
                raise EINVAL(f"ITS register offset {offset:#x} not 4-byte aligned")
        elif offset & 7:
            raise EINVAL(f"ITS register offset {offset:#x} not 8-byte aligned")

    def vgic_its_attr_regs_access(self, offset: int, is_write: bool, value: int) -> int:
        self._check_its_offset(offset)
        self.vgic.kvm_trylock_all_vcpus()
        its = self.its
        if its.vgic_its_base is None:
            raise ENXIO("ITS base address not set")
        width = ITS_REG_WIDTH.get(offset)
        if width is None:
            raise ENXIO(f"no ITS register at {offset:#x}")
        if not is_write:
            return its.its_read(offset, width)
        its.uaccess_write(offset, value & ((1 << (8 * width)) - 1))
        return 0


class GicV3Device:
    """``KVM_DEV_TYPE_ARM_VGIC_V3``: the distributor/redistributors of the VM."""

    def __init__(self, vgic: Vgic) -> None:
        self.vgic = vgic
        #: how many LPIs the last SAVE_PENDING_TABLES visited
        self.last_lpis_saved = 0

    def set_attr(self, group: int, attr: int, value: int = 0) -> int:
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL:
            if attr == KVM_DEV_ARM_VGIC_CTRL_INIT:
                self.vgic.initialized = True
                return 0
            if attr == KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES:
                self.vgic.kvm_trylock_all_vcpus()
                self.last_lpis_saved = self.vgic.vgic_v3_save_pending_tables()
                return 0
            raise ENXIO(f"GICv3 ctrl attr {attr}")
        if group == KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
            self._redist_access(attr, True, value)
            return 0
        raise ENXIO(f"GICv3 group {group}")

    def get_attr(self, group: int, attr: int) -> int:
        if group == KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
            return self._redist_access(attr, False, 0)
        raise ENXIO(f"GICv3 group {group}")

    def has_attr(self, group: int, attr: int) -> int:
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr in (
            KVM_DEV_ARM_VGIC_CTRL_INIT,
            KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
        ):
            return 0
        if group == KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
            if attr & KVM_DEV_ARM_VGIC_OFFSET_MASK in _REDIST_OFFSETS:
                return 0
        raise ENXIO(f"GICv3 group {group} attr {attr:#x}")

    def _redist_access(self, attr: int, is_write: bool, value: int) -> int:
        """``vgic_v3_attr_regs_access`` for GRP_REDIST_REGS: 32-bit accesses."""
        offset = attr & KVM_DEV_ARM_VGIC_OFFSET_MASK
        aff = attr >> KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT
        mpidr = (aff & 0xFF) | ((aff >> 8) & 0xFF) << 8 | ((aff >> 16) & 0xFF) << 16
        vcpu = self.vgic.vcpu_from_mpidr(mpidr)  # -EINVAL for an unknown MPIDR
        self.vgic.kvm_trylock_all_vcpus()
        if not self.vgic.initialized:
            raise EBUSY("vGIC not initialized")
        return self.vgic.vgic_v3_redist_uaccess(vcpu, is_write, offset, value & 0xFFFF_FFFF)
