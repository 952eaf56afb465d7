from __future__ import annotations

import attrs
import pytest

from gicsim.guest import GuestItsDriver
from gicsim.its import VgicIts
from gicsim.kernel import KernelProfile
from gicsim.kvm import (
    KVM_DEV_ARM_VGIC_CTRL_INIT,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_VGIC_ITS_ADDR_TYPE,
    GicV3Device,
    ItsDevice,
)
from gicsim.memory import GuestMemory
from gicsim.vgic import Vgic

ITS_BASE = 0x0808_0000


@attrs.define
class VM:
    mem: GuestMemory
    vgic: Vgic
    its: VgicIts
    itsdev: ItsDevice
    gic: GicV3Device
    drv: GuestItsDriver


def make_vm(
    nr_vcpus: int = 4,
    kernel: KernelProfile | None = None,
    memory_mib: int = 64,
    device_table: str = "flat",
    boot: bool = True,
    mem: GuestMemory | None = None,
) -> VM:
    """A VM as QEMU builds it: GIC + ITS devices created, addresses set, vGIC initialised;
    with ``boot`` the guest has probed the ITS, enabled LPIs everywhere and the ITS."""
    mem = mem or GuestMemory(memory_mib << 20)
    vgic = Vgic(nr_vcpus, mem, kernel or KernelProfile())
    its = VgicIts(vgic)
    itsdev = ItsDevice(its)
    gic = GicV3Device(vgic)
    gic.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
    itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ITS_BASE)
    itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
    drv = GuestItsDriver(vgic, its, device_table=device_table)
    if boot:
        drv.probe()
        for v in range(nr_vcpus):
            drv.enable_lpis(v)
        drv.its_enable()
    return VM(mem, vgic, its, itsdev, gic, drv)


@pytest.fixture
def vm() -> VM:
    return make_vm()
