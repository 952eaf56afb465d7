from __future__ import annotations

import os

import attrs
import pytest
from hypothesis import HealthCheck, settings

from gicsim.sim.guest import GuestItsDriver
from gicsim.kvm.its import VgicIts
from gicsim.kvm.releases import KernelProfile
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_VGIC_CTRL_INIT,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_VGIC_ITS_ADDR_TYPE,
    GicV3Device,
    ItsDevice,
)
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.vgic import Vgic

ITS_BASE = 0x0808_0000

# Hypothesis profiles. ``ci`` (the default) keeps the whole suite within a few minutes on two
# cores; ``long`` is the soak run: ``python -m pytest tests/test_fuzz_its.py
# --hypothesis-profile=long``. Tests that pin their own ``max_examples`` keep it.
_FUZZ = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=100, **_FUZZ)
settings.register_profile("long", max_examples=10_000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--malformed-cases",
        type=int,
        default=150,
        help="how many generated malformed scenario files tests/test_malformed.py runs",
    )


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


def migrate_plain(src: VM, kernel: KernelProfile | None = None, order: str = "qemu") -> VM:
    """Save on ``src`` (pending tables, ITS tables, registers), copy RAM, restore on a fresh
    VM in QEMU's order. No timing: the kernel model only."""
    from gicsim.sim import vmm

    vmm.save_pending_tables(src.gic)
    vmm.its_save_tables(src.itsdev)
    its_regs = vmm.its_read_regs(src.itsdev)
    rd_regs = vmm.redist_read_regs(src.gic, src.vgic.nr_vcpus)
    dst_mem = GuestMemory(src.mem.size, src.mem.base)
    src.mem.copy_pages_to(dst_mem)
    dst = make_vm(src.vgic.nr_vcpus, kernel or src.vgic.kernel, mem=dst_mem, boot=False)
    dst.drv = src.drv.rebind(dst.vgic, dst.its)  # allocations travel with RAM
    vmm.redist_write_regs(dst.gic, rd_regs)
    vmm.its_restore_regs_qemu(dst.itsdev, its_regs)
    return dst
