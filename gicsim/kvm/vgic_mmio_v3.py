"""Redistributor registers of ``arch/arm64/kvm/vgic/vgic-mmio-v3.c``: the GICR frame (RD_base
and the SGI_base frame's private-IRQ registers) as the guest (MMIO) and userspace (``KVM_DEV_ARM_VGIC_GRP_REDIST_REGS``) see it, ``GICR_CTLR``'s
EnableLPIs, and ``vgic_enable_lpis`` (``vgic-its.c``) that it triggers.

Kernel file: ``vgic-mmio-v3.c`` (Linux 6.12.117 (Debian linux-source-6.12), the default release).
"""

from __future__ import annotations

from gicsim.kvm.abi import GENMASK, SZ_64K
from gicsim.kvm.arm_gic_v3 import (
    GICR_CTLR,
    GICR_CTLR_CES,
    GICR_CTLR_ENABLE_LPIS,
    GICR_CTLR_IR,
    GICR_CTLR_RWP,
    GICR_ICACTIVER0,
    GICR_ICENABLER0,
    GICR_ICFGR0,
    GICR_ICPENDR0,
    GICR_IGROUPR0,
    GICR_IGRPMODR0,
    GICR_IIDR,
    GICR_IPRIORITYR0,
    GICR_ISACTIVER0,
    GICR_ISENABLER0,
    GICR_ISPENDR0,
    GICR_NSACR,
    GICR_PENDBASER,
    GICR_PENDBASER_PTZ,
    GICR_PIDR2,
    GICR_PROPBASER,
    GICR_TYPER,
    SGI_BASE,
    vcpu_mpidr,
)
from gicsim.kvm.errors import EFAULT, ENXIO
from gicsim.kvm.vgic import VGIC_NR_SGIS
from gicsim.kvm.vgic_mmio import (
    extract_bytes,
    update_64bit_reg,
    vgic_sanitise_pendbaser,
    vgic_sanitise_propbaser,
)
from gicsim.kvm.vgic_v3 import VgicV3

#: ``include/linux/irqchip/arm-gic-v3.h`` / ``arch/arm64/kvm/vgic/vgic.h``
IMPLEMENTER_ARM = 0x43B
PRODUCT_ID_KVM = 0x4B
VGIC_PRI_BITS = 5
#: ``dist->implementation_rev``: ``vgic_init`` sets ``KVM_VGIC_IMP_REV_LATEST`` (3) unless
#: userspace wrote GICD_IIDR first; the model has no distributor registers, so always 3
KVM_VGIC_IMP_REV_3 = 3
IMPLEMENTATION_REV = KVM_VGIC_IMP_REV_3
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
            return self.vgic_mmio_read_v3r_ctlr(vcpu)
        if base == GICR_TYPER:
            last = 1 << 4 if vcpu == self.nr_vcpus - 1 else 0
            reg = (vcpu_mpidr(vcpu) << 32) | (vcpu << 8) | last | 1  # PLPIS
            return extract_bytes(reg, offset, length)
        if base == GICR_PROPBASER:
            return extract_bytes(self.propbaser, offset, length)
        if base == GICR_PENDBASER:
            return extract_bytes(cpu.pendbaser & ~GICR_PENDBASER_PTZ, offset, length)
        if offset == GICR_IIDR and length == 4:
            return self.vgic_mmio_read_v3r_iidr()
        if SGI_BASE <= offset < SGI_BASE + SZ_64K and length == 4 and not offset & 3:
            return self.vgic_v3_sgibase_access(vcpu, False, offset - SGI_BASE, 0)
        raise ENXIO(f"GICR offset {offset:#x} not modelled")

    def vgic_mmio_read_v3r_ctlr(self, vcpu: int) -> int:
        """``vgic_mmio_read_v3r_ctlr`` (``vgic-mmio-v3.c``, 6.12.117 and 6.1.192): the
        ``vgic_cpu->ctlr`` word (EnableLPIs / RWP) plus, for implementation revision >= 3,
        GICR_CTLR_IR | GICR_CTLR_CES. The guest MMIO read and the userspace read
        (``GRP_REDIST_REGS``, no uaccess handler) both come here: EnableLPIs set reads 7.
        Test EnableLPIs with ``vgic_lpis_enabled``, never by comparing this value with 1."""
        val = self.cpus[vcpu].ctlr
        if IMPLEMENTATION_REV >= KVM_VGIC_IMP_REV_3:
            val |= GICR_CTLR_IR | GICR_CTLR_CES
        return val

    @staticmethod
    def vgic_mmio_read_v3r_iidr() -> int:
        """``vgic_mmio_read_v3r_iidr`` (``vgic-mmio-v3.c``): ``PRODUCT_ID_KVM << 24 |
        IMPLEMENTER_ARM`` = 0x4b00043b (no revision field, unlike GICD_IIDR)."""
        return (PRODUCT_ID_KVM << 24) | (IMPLEMENTER_ARM << 0)

    def vgic_v3_sgibase_access(self, vcpu: int, is_write: bool, off: int, val: int) -> int:
        """The SGI_base half of ``vgic_v3_rd_registers`` (``vgic-mmio-v3.c``), 32-bit
        accesses at ``off`` within the frame, userspace view (the ``uaccess_*`` handlers
        where the region has them), for the private IRQs of :class:`~gicsim.kvm.vgic.VgicCpu`:

        - IGROUPR0: ``vgic_mmio_read_group`` / ``vgic_mmio_write_group`` (all group 1);
        - ISENABLER0 / ICENABLER0: ``vgic_mmio_read_enable``, ``vgic_uaccess_write_senable``
          (set bits enable) / ``vgic_uaccess_write_cenable`` (set bits disable); the reset
          value 0xffff: ``vgic_allocate_private_irqs_locked`` enables every SGI;
        - IPRIORITYR0..7: ``vgic_mmio_read_priority`` / ``vgic_mmio_write_priority``
          (each byte narrowed to ``GENMASK(7, 8 - VGIC_PRI_BITS)``), reset 0;
        - ICFGR0 / ICFGR1: ``vgic_mmio_read_config``: SGIs edge (0xaaaaaaaa), PPIs level (0);
          ``vgic_mmio_write_config`` skips every private IRQ: read-only;
        - ISPENDR0 / ICPENDR0 / ISACTIVER0 / ICACTIVER0: read the reset value 0. **Writes
          are ignored** (the kernel's ``vgic_v3_uaccess_write_pending`` /
          ``vgic_mmio_uaccess_write_sactive`` would make an SGI/PPI pending/active; the
          model has no SGIs or PPIs to deliver, and the differential streams never write
          these offsets: they draw only ISENABLER0 of this frame);
        - IGRPMODR0, NSACR: RAZ/WI (``vgic_mmio_read_raz`` / ``vgic_mmio_write_wi``);
        - any other offset: no region, reads 0, writes ignored (``vgic_uaccess``)."""
        cpu = self.cpus[vcpu]
        mask32 = 0xFFFF_FFFF
        if off == GICR_IGROUPR0:
            if is_write:
                cpu.private_group = val & mask32
                return 0
            return cpu.private_group
        if off in (GICR_ISENABLER0, GICR_ICENABLER0):
            if is_write:
                if off == GICR_ISENABLER0:
                    cpu.private_enabled |= val & mask32
                else:
                    cpu.private_enabled &= ~val & mask32
                return 0
            return cpu.private_enabled
        if GICR_IPRIORITYR0 <= off < GICR_IPRIORITYR0 + 32:
            first = off - GICR_IPRIORITYR0
            if is_write:
                for i in range(4):
                    cpu.private_priority[first + i] = (val >> (8 * i)) & GENMASK(7, 8 - VGIC_PRI_BITS)
                return 0
            return sum(cpu.private_priority[first + i] << (8 * i) for i in range(4))
        if off in (GICR_ICFGR0, GICR_ICFGR0 + 4):
            if is_write:
                return 0  # vgic_mmio_write_config: private IRQs are read-only
            first = (off - GICR_ICFGR0) * 4  # 16 IRQs per register
            return sum(2 << (2 * i) for i in range(16) if first + i < VGIC_NR_SGIS)
        if off in (GICR_ISPENDR0, GICR_ICPENDR0, GICR_ISACTIVER0, GICR_ICACTIVER0,
                   GICR_IGRPMODR0, GICR_NSACR):
            return 0
        return 0

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
        elif SGI_BASE <= offset < SGI_BASE + SZ_64K and length == 4 and not offset & 3:
            self.vgic_v3_sgibase_access(vcpu, True, offset - SGI_BASE, val)
        else:
            raise ENXIO(f"GICR offset {offset:#x} not modelled")

    def vgic_v3_redist_uaccess(self, vcpu: int, is_write: bool, offset: int, val: int) -> int:
        """``vgic_v3_redist_uaccess`` -> ``vgic_uaccess`` (``vgic-mmio.c``): a 32-bit access
        at an offset with no register region (``vgic_get_mmio_region`` = NULL) reads as 0
        and ignores writes, returning 0 -- never ``-ENXIO``. The RAZ/WI regions of
        ``vgic_v3_rd_registers`` (STATUSR, WAKER, INVLPIR, INVALLR, SYNCR) read 0 too;
        GICR_PIDR2 reads the architecture revision; the SGI_base frame (RD_base +
        ``SZ_64K``) goes to :meth:`vgic_v3_sgibase_access`."""
        if offset in _UACCESS_HANDLED:
            if is_write:
                self.redist_write(vcpu, offset, 4, val)
                return 0
            return self.redist_read(vcpu, offset, 4)
        if SGI_BASE <= offset < SGI_BASE + SZ_64K:
            if offset & 3:
                return 0  # check_region: not aligned to the access size, no region
            return self.vgic_v3_sgibase_access(vcpu, is_write, offset - SGI_BASE, val)
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

