"""Pending tables and GICv3 specifics of ``arch/arm64/kvm/vgic/vgic-v3.c``.

Kernel file: ``vgic-v3.c`` (Linux 6.12.117 (Debian linux-source-6.12), the default release): ``vgic_v3_lpi_sync_pending_status`` and
``vgic_v3_save_pending_tables``; ``its_sync_lpi_pending_table`` (``vgic-its.c`` in the kernel)
is kept here because it reads the same pending table.
"""

from __future__ import annotations

from gicsim.kvm.arm_gic_v3 import GICR_PENDBASER_ADDRESS
from gicsim.kvm.errors import ENXIO
from gicsim.kvm.vgic import VgicCore, VgicIrq


class VgicV3(VgicCore):
    def vgic_v3_lpi_sync_pending_status(self, irq: VgicIrq) -> None:
        """Snapshot one LPI's pending bit from RAM and clear it (clear-on-consume): used when an
        LPI is created (``vgic_add_lpi``, e.g. on restore). The other reader is EnableLPIs'
        ``its_sync_lpi_pending_table``, which reads the bits without clearing them."""
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
