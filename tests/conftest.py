from __future__ import annotations

import os

import attrs
import pytest
from hypothesis import HealthCheck, settings

from gicsim.kvm.its import VgicIts
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_VGIC_CTRL_INIT,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_VGIC_ITS_ADDR_TYPE,
    GicV3Device,
    ItsDevice,
)
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.releases import KernelProfile
from gicsim.kvm.vgic_init import Vgic
from gicsim.sim.guest import GuestItsDriver

ITS_BASE = 0x0808_0000

# Hypothesis profiles. ``ci`` (the default, what .ci/run uses) is deterministic: derandomised
# (each test's examples follow from its own name and the pinned hypothesis version in
# pyproject.toml, the same on every machine and run) and with
# no example database, so a fresh clone and a warm checkout run exactly the same examples.
# ``explore`` is for developers hunting new failures: random seeds, more examples, the
# example database on; pin what it finds with ``@example`` so CI keeps it. ``long`` is the
# soak run. Select with HYPOTHESIS_PROFILE=explore (or --hypothesis-profile=explore).
_FUZZ = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_FUZZ)
settings.register_profile("explore", max_examples=500, **_FUZZ)
settings.register_profile("long", max_examples=10_000, **_FUZZ)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header(config: pytest.Config) -> str:
    if HYPOTHESIS_PROFILE == "ci":
        return ("hypothesis profile 'ci': derandomized (seed fixed per test: derived from the "
                "test's name), no example database")
    return f"hypothesis profile {HYPOTHESIS_PROFILE!r}: random seeds (see each failure's seed)"


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
