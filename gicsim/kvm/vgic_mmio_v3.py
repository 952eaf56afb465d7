"""Redistributor registers of ``arch/arm64/kvm/vgic/vgic-mmio-v3.c``: the GICR frame as the
guest (MMIO) and userspace (``KVM_DEV_ARM_VGIC_GRP_REDIST_REGS``) see it, ``GICR_CTLR``'s
EnableLPIs, and ``vgic_enable_lpis`` (``vgic-its.c``) that it triggers.

Kernel file: ``vgic-mmio-v3.c`` (Linux 6.12.117 (Debian linux-source-6.12), the default release).
"""

from __future__ import annotations

from gicsim.kvm.arm_gic_v3 import (
    GICR_CTLR,
    GICR_CTLR_ENABLE_LPIS,
    GICR_CTLR_RWP,
    GICR_IIDR,
    GICR_PENDBASER,
    GICR_PENDBASER_PTZ,
    GICR_PROPBASER,
    GICR_TYPER,
    vcpu_mpidr,
)
from gicsim.kvm.errors import EFAULT, ENXIO
from gicsim.kvm.vgic_mmio import (
    extract_bytes,
    update_64bit_reg,
    vgic_sanitise_pendbaser,
    vgic_sanitise_propbaser,
)
from gicsim.kvm.vgic_v3 import VgicV3

GICR_PIDR2 = 0xFFE8
#: offsets the model's redistributor handlers serve for 32-bit userspace accesses
_UACCESS_HANDLED = frozenset({GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_TYPER + 4, GICR_PROPBASER,
                              GICR_PROPBASER + 4, GICR_PENDBASER, GICR_PENDBASER + 4})


class VgicMmioV3(VgicV3):
    def vgic_lpis_enabled(self, vcpu: int) -> bool:
        return self.cpus[vcpu].ctlr == GICR_CTLR_ENABLE_LPIS

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

    def vgic_v3_redist_uaccess(self, vcpu: int, is_write: bool, offset: int, val: int) -> int:
        """``vgic_v3_redist_uaccess`` -> ``vgic_uaccess`` (``vgic-mmio.c``): a 32-bit access
        at an offset with no register region (``vgic_get_mmio_region`` = NULL) reads as 0
        and ignores writes, returning 0 -- never ``-ENXIO``. The RAZ/WI regions of
        ``vgic_v3_rd_registers`` (STATUSR, WAKER, INVLPIR, INVALLR, SYNCR, the SGI frame the
        model does not hold) read 0 too; GICR_PIDR2 reads the architecture revision."""
        if offset in _UACCESS_HANDLED:
            if is_write:
                self.redist_write(vcpu, offset, 4, val)
                return 0
            return self.redist_read(vcpu, offset, 4)
        if not is_write and offset == GICR_PIDR2:
            return 0x3B  # vgic_mmio_read_v3_idregs: GIC_PIDR2_ARCH_GICv3 | 0x0B
        return 0

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

