"""What a VMM (QEMU, cloud-hypervisor) does with the KVM API around a migration.

Each function is one KVM device-attribute call or a short, fixed sequence of them in the order
QEMU uses (``hw/intc/arm_gicv3_its_kvm.c``, ``arm_gicv3_kvm.c``); the migration controller runs
them as steps, in whatever order a scenario asks, so ordering hazards emerge from the kernel.
"""

from __future__ import annotations

from gicsim.kvm.arm_gic_v3 import GICR_CTLR, GICR_PENDBASER, GICR_PROPBASER
from gicsim.kvm.its import GITS_BASER, GITS_CBASER, GITS_CREADR, GITS_CTLR, GITS_CWRITER, GITS_IIDR
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_ITS_RESTORE_TABLES,
    KVM_DEV_ARM_ITS_SAVE_TABLES,
    KVM_DEV_ARM_VGIC_CTRL_INIT,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
    KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
    KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
    KVM_VGIC_ITS_ADDR_TYPE,
    GicV3Device,
    ItsDevice,
    redist_attr,
)

#: ITS registers QEMU saves in pre_save (name -> offset)
ITS_REGS = {
    "GITS_IIDR": GITS_IIDR,
    "GITS_CBASER": GITS_CBASER,
    "GITS_CREADR": GITS_CREADR,
    "GITS_CWRITER": GITS_CWRITER,
    **{f"GITS_BASER{n}": GITS_BASER + 8 * n for n in range(8)},
    "GITS_CTLR": GITS_CTLR,
}


def its_read_regs(dev: ItsDevice) -> dict[str, int]:
    """``kvm_arm_its_pre_save``: BASERs, CTLR, CBASER, CREADR, CWRITER, IIDR."""
    return {
        name: dev.get_attr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off) for name, off in ITS_REGS.items()
    }


def its_write_reg(dev: ItsDevice, name: str, value: int) -> None:
    dev.set_attr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, ITS_REGS[name], value)


def its_init(dev: ItsDevice, base: int) -> None:
    """Realize: CTRL_INIT and the frame address (``KVM_VGIC_ITS_ADDR_TYPE``)."""
    dev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
    dev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, base)


def its_save_tables(dev: ItsDevice) -> None:
    dev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES)


def its_restore_tables(dev: ItsDevice) -> None:
    dev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES)


def save_pending_tables(gic: GicV3Device) -> None:
    gic.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)


def _get64(gic: GicV3Device, vcpu: int, off: int) -> int:
    lo = gic.get_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(vcpu, off))
    hi = gic.get_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(vcpu, off + 4))
    return hi << 32 | lo


def _set64(gic: GicV3Device, vcpu: int, off: int, value: int) -> None:
    gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(vcpu, off), value & 0xFFFF_FFFF)
    gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(vcpu, off + 4), value >> 32)


def redist_read_regs(gic: GicV3Device, nr_vcpus: int) -> list[dict[str, int]]:
    """Per vCPU GICR_CTLR, GICR_PROPBASER, GICR_PENDBASER (32-bit halves, as QEMU)."""
    out = []
    for v in range(nr_vcpus):
        out.append(
            {
                "GICR_CTLR": gic.get_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(v, GICR_CTLR)),
                "GICR_PROPBASER": _get64(gic, v, GICR_PROPBASER),
                "GICR_PENDBASER": _get64(gic, v, GICR_PENDBASER),
            }
        )
    return out


def redist_write_regs(gic: GicV3Device, regs: list[dict[str, int]]) -> None:
    """``kvm_arm_gicv3_put``: every PROPBASER/PENDBASER first, then each GICR_CTLR, since
    the base registers are ignored once EnableLPIs is set."""
    for v, r in enumerate(regs):
        _set64(gic, v, GICR_PROPBASER, r["GICR_PROPBASER"])
        _set64(gic, v, GICR_PENDBASER, r["GICR_PENDBASER"])
    for v, r in enumerate(regs):
        gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(v, GICR_CTLR), r["GICR_CTLR"])


def its_restore_regs_qemu(dev: ItsDevice, regs: dict[str, int]) -> None:
    """``kvm_arm_its_post_load`` order: IIDR, CBASER, CREADR, CWRITER, BASERs, tables, CTLR."""
    its_write_reg(dev, "GITS_IIDR", regs["GITS_IIDR"])
    its_write_reg(dev, "GITS_CBASER", regs["GITS_CBASER"])
    its_write_reg(dev, "GITS_CREADR", regs["GITS_CREADR"])
    its_write_reg(dev, "GITS_CWRITER", regs["GITS_CWRITER"])
    for n in range(8):
        its_write_reg(dev, f"GITS_BASER{n}", regs[f"GITS_BASER{n}"])
    its_restore_tables(dev)
    its_write_reg(dev, "GITS_CTLR", regs["GITS_CTLR"])
