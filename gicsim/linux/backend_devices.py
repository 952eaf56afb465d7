"""The two KVM devices of a kernel-backend VM (:mod:`gicsim.linux.backend`):
``KVM_DEV_TYPE_ARM_VGIC_ITS`` and ``KVM_DEV_TYPE_ARM_VGIC_V3`` attrs, run by the kernel's
``vgic-kvm-device.c`` / ``vgic-its.c``, its ``-errno`` raised as the model's typed
:class:`~gicsim.kvm.errors.KvmError`, plus what the timing model charges for a table save or
restore and a pending-table save (timing only)."""

from __future__ import annotations

import errno as _errno
from typing import Any

from gicsim.kvm.errors import ERRNOS, KvmError
from gicsim.kvm.its import GITS_CTLR, GITS_CWRITER, TableStats
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_ITS_CTRL_RESET,
    KVM_DEV_ARM_ITS_RESTORE_TABLES,
    KVM_DEV_ARM_ITS_SAVE_TABLES,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
    KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
    KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
)
from gicsim.linux import lib as L
from gicsim.linux.backend_stats import restore_stats, save_stats

#: a gicsim.linux.backend.KernelBackend (not imported: that module imports this one)
KernelBackend = Any

_ERR_CLASSES: dict[str, type[KvmError]] = dict(ERRNOS)


def kvm_error(ret: int, what: str) -> KvmError:
    """The typed error for a kernel ``-errno``."""
    name = _errno.errorcode.get(-ret, f"E{-ret}")
    cls = _ERR_CLASSES.get(name)
    if cls is None:
        cls = _ERR_CLASSES[name] = type(name, (KvmError,), {"errno": name})
    return cls(f"{what} = {ret} (kernel)")


class KernelItsDevice:
    """``KVM_DEV_TYPE_ARM_VGIC_ITS`` attrs on the kernel's ITS device."""

    def __init__(self, b: KernelBackend) -> None:
        self.b = b
        self.vm = b.vm
        self.its = b.its
        self.last_stats = TableStats()

    def _check(self, r: int, what: str) -> int:
        if r < 0:
            raise kvm_error(r, what)
        return r

    def set_attr(self, group: int, attr: int, value: int = 0) -> int:
        vm, its = self.vm, self.its
        if group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS and attr in (GITS_CWRITER, GITS_CTLR):
            return self._check(
                its.write(attr, 8 if attr == GITS_CWRITER else 4, value, uaccess=True),
                f"ITS reg {attr:#x} set",
            )
        stats = None
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr == KVM_DEV_ARM_ITS_SAVE_TABLES:
            stats = save_stats(its.snap.full())
        r = vm.set_attr(vm.its, group, attr, value)
        its.invalidate()
        self.b.retargeted()
        if group == L.GRP_ADDR and attr == L.ADDR_TYPE_ITS and r == 0:
            vm.its_base = value  # the frame the VMM placed (lib.VM's own MMIO helpers use it)
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr == KVM_DEV_ARM_ITS_CTRL_RESET and r == 0:
            its.shadow = None
        self._check(r, f"ITS attr group {group} attr {attr:#x}")
        if stats is not None:
            self.last_stats = stats
        elif group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr == KVM_DEV_ARM_ITS_RESTORE_TABLES:
            s = its.snap.state
            self.last_stats = restore_stats(self.b.mem, s["baser_device"], s["baser_coll"])
        return 0

    def get_attr(self, group: int, attr: int) -> int:
        vm = self.vm
        r, v = vm.get_attr(vm.its, group, attr)
        self._check(r, f"ITS attr group {group} attr {attr:#x} get")
        if (
            group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS
            and attr == GITS_CWRITER
            and self.its.shadow is not None
        ):
            return self.its.shadow
        return v

    def has_attr(self, group: int, attr: int) -> int:
        return self._check(self.vm.has_attr(self.vm.its, group, attr), "ITS has_attr")


class KernelGicDevice:
    """``KVM_DEV_TYPE_ARM_VGIC_V3`` attrs on the kernel's vGIC device."""

    def __init__(self, b: KernelBackend) -> None:
        self.b = b
        self.vm = b.vm
        #: timing: LPIs SAVE_PENDING_TABLES visits (every LPI with a target vCPU)
        self.last_lpis_saved = 0

    def set_attr(self, group: int, attr: int, value: int = 0) -> int:
        vm = self.vm
        n = None
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr == KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES:
            n = sum(1 for r in vm.lpi_records().values() if r is not None and r["target"] >= 0)
        r = vm.set_attr(vm.vgic, group, attr, value)
        self.b.its.invalidate()
        self.b.retargeted()
        if r < 0:
            raise kvm_error(r, f"GICv3 attr group {group} attr {attr:#x}")
        if n is not None:
            self.last_lpis_saved = n
        return 0

    def get_attr(self, group: int, attr: int) -> int:
        vm = self.vm
        r, v = vm.get_attr(vm.vgic, group, attr)
        if r < 0:
            raise kvm_error(r, f"GICv3 attr group {group} attr {attr:#x} get")
        return v & 0xFFFF_FFFF if group == KVM_DEV_ARM_VGIC_GRP_REDIST_REGS else v

    def has_attr(self, group: int, attr: int) -> int:
        r = self.vm.has_attr(self.vm.vgic, group, attr)
        if r < 0:
            raise kvm_error(r, "GICv3 has_attr")
        return 0
