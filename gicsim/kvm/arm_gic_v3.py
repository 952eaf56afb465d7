"""Register offsets and fields of ``include/linux/irqchip/arm-gic-v3.h`` that the model uses.

Kernel file: ``include/linux/irqchip/arm-gic-v3.h`` (Linux 6.12.117 (Debian linux-source-6.12), the default release); ``vcpu_mpidr`` is
``reset_mpidr`` of ``arch/arm64/kvm/sys_regs.c``.
"""

from __future__ import annotations

from gicsim.kvm.abi import GENMASK

# GICR frame offsets (RD_base)
GICR_CTLR = 0x0000
GICR_IIDR = 0x0004
GICR_TYPER = 0x0008
GICR_PROPBASER = 0x0070
GICR_PENDBASER = 0x0078
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_CES = 1 << 1
GICR_CTLR_IR = 1 << 2
GICR_CTLR_RWP = 1 << 3
GICR_PIDR2 = 0xFFE8
# SGI_base frame (SZ_64K above RD_base): GICR_* = GICD_* of the same name
SGI_BASE = 0x10000
GICR_IGROUPR0 = 0x0080
GICR_ISENABLER0 = 0x0100
GICR_ICENABLER0 = 0x0180
GICR_ISPENDR0 = 0x0200
GICR_ICPENDR0 = 0x0280
GICR_ISACTIVER0 = 0x0300
GICR_ICACTIVER0 = 0x0380
GICR_IPRIORITYR0 = 0x0400
GICR_ICFGR0 = 0x0C00
GICR_IGRPMODR0 = 0x0D00
GICR_NSACR = 0x0E00
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



def GICR_PROPBASER_ADDRESS(reg: int) -> int:  # noqa: N802
    return reg & GENMASK(51, 12)


def GICR_PENDBASER_ADDRESS(reg: int) -> int:  # noqa: N802
    return reg & GENMASK(51, 16)


def vcpu_mpidr(vcpu_id: int) -> int:
    """Default MPIDR KVM gives vCPU ``vcpu_id`` (Aff0 = id[3:0], Aff1 = id[11:4], Aff2 = id[19:12])."""
    return (vcpu_id & 0xF) | ((vcpu_id >> 4) & 0xFF) << 8 | ((vcpu_id >> 12) & 0xFF) << 16
