"""One VM incarnation (the source, or a migration's destination): guest RAM, the kernel's
vGIC and ITS, the two KVM devices, and the ITS command processing as a timed process.

The kernel side is the Python model (``gicsim.kvm``, the default) or, with
``kernel: {backend: linux}`` / a ``tree``, the release's own code run as a library
(:mod:`gicsim.linux.backend`, one kernel VM per incarnation); both offer the same
attributes, and the timing here is the same for both."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from gicsim.judge.trace import CMD_FIELDS
from gicsim.kvm.its import (
    MSI_ACCEPTED,
    MSI_ITS_DISABLED,
    MSI_LPIS_DISABLED,
    MSI_NO_ITS,
    MSI_UNMAPPED,
    VgicIts,
)
from gicsim.kvm.kvm_device import GicV3Device, ItsDevice
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.releases import RELEASES, VARIANT_FIELDS
from gicsim.kvm.vgic_init import Vgic
from gicsim.linux.backend import BackendChoiceError, KernelBackend, kernel_source, load_kernel
from gicsim.linux.lib import KernelLib
from gicsim.sim.board import Board
from gicsim.sim.component import Component

if TYPE_CHECKING:
    from gicsim.kvm.commands import ItsCmd

#: per command: does its ``cmd`` row carry (rdbase, pintid, devid, eventid, icid / RDbase2)
_CMD_USES = {
    name: ("cmd_vcpu" in f or "cmd_from_vcpu" in f, "lpi" in f, "device" in f, "event" in f,
           "icid" in f or name == "MOVALL")
    for name, f in CMD_FIELDS.items()
}  # fmt: skip
_NO_FIELDS = (False,) * 5

#: ITS base address on the arm virt machine (VIRT_GIC_ITS)
VIRT_GIC_ITS = 0x0808_0000
_INT_REASON = {
    None: MSI_ACCEPTED,
    "E_ITS_INT_UNMAPPED_INTERRUPT": MSI_UNMAPPED,
    "EBUSY": MSI_LPIS_DISABLED,
}


def kernel_library(sc: Any) -> KernelLib | None:
    """The kernel library a scenario runs on (``kernel: {backend: linux}`` or a ``tree``),
    None for the Python model. A variant field set away from its release's value has no
    meaning on the kernel's own code: that is a one-line input error."""
    k = sc.kernel
    if (k.backend or ("linux" if k.tree else "python")) == "python":
        return None
    rel = RELEASES[k.release]
    changed = [f for f in VARIANT_FIELDS if getattr(k, f) != rel[f]]
    if changed:
        raise BackendChoiceError(
            f"{sc.name}: kernel.{changed[0]} overrides release {k.release}'s behaviour; the linux "
            "backend runs the kernel's own code (drop the override, or use backend: python)"
        )
    return load_kernel(k.tree or k.release)


def kernel_info(sc: Any, lib: KernelLib | None) -> dict[str, Any]:
    """summary.json ``kernel``: which backend ran, which release, and its sources."""
    if lib is None:
        return {"backend": "python", "release": sc.kernel.release, "source": "gicsim.kvm"}
    return {
        "backend": "linux",
        "release": lib.release,
        "source": kernel_source(lib, sc.kernel.tree),
    }


class VirtualMachine(Component):
    base_name = "vm"

    def __init__(self, sim: Board, index: int) -> None:
        super().__init__(sim.env, sim.trace, None, index=index)
        self.sim = sim
        self.index = index
        self.side = self.name
        sc = sim.scenario
        klib = getattr(sim, "kernel_lib", None)
        self.backend: KernelBackend | None = None
        # the kernel backend duck-types these (gicsim.linux.backend)
        self.mem: GuestMemory
        self.vgic: Vgic
        self.its: VgicIts
        self.itsdev: ItsDevice
        self.gic: GicV3Device
        if klib is not None:
            # the kernel backend: this incarnation is its own kernel VM (gicsim.linux.backend)
            self.backend = b = KernelBackend(klib, sc.vm.vcpus, sc.vm.memory_mib << 20)
            self.mem, self.vgic, self.its = b.mem, b.vgic, b.its  # type: ignore[assignment]
            self.itsdev, self.gic = b.itsdev, b.gic  # type: ignore[assignment]
        else:
            self.mem = GuestMemory(sc.vm.memory_mib << 20)
            self.vgic = Vgic(sc.vm.vcpus, self.mem, sim.kernel)
            self.its = VgicIts(self.vgic, f"{self.scope}.its")
            self.itsdev = ItsDevice(self.its)
            self.gic = GicV3Device(self.vgic)
            self.vgic.vcpu_mutex_held = [False] * sc.vm.vcpus
        self.its.deferred = True
        self.its_lock = simpy.Resource(sim.env, 1)  # its->cmd_lock + its_lock
        self.vgic.kick = sim.kick_vcpu
        self.its.on_command = self._on_command
        self.cmd_ns = sim.timing.its_cmd_ns
        # QEMU creates and initialises the GIC at machine init; CTRL_INIT has no errors.
        self.gic.set_attr(4, 0)

    def _on_command(self, its: VgicIts, cmd: ItsCmd, err: str | None) -> None:
        now = self.env.now
        rec = self.trace.rec
        name = cmd.name
        # only the fields this command uses (gicsim.judge.trace.CMD_FIELDS), -1 elsewhere
        u = _CMD_USES.get(name, _NO_FIELDS)
        rec.append(
            (now, "cmd", self.side,
             cmd.target_addr if u[0] else -1, cmd.pintid if u[1] else -1, cmd.devid if u[2] else -1,
             cmd.eventid if u[3] else -1, (cmd.target_addr2 if name == "MOVALL" else cmd.icid) if u[4] else -1,
             name if err is None else f"{name}:{err}")
        )  # fmt: skip
        if name == "INT":
            why = _INT_REASON.get(err, MSI_UNMAPPED)
            if why == MSI_ACCEPTED:
                irq = its.find_ite(cmd.devid, cmd.eventid).irq  # type: ignore[union-attr]
                rec.append((now, "accept", self.side, irq.target_vcpu if irq.target_vcpu is not None else -1,
                            irq.intid, cmd.devid, cmd.eventid, -1, "int"))  # fmt: skip
            else:
                rec.append((now, "drop", self.side, -1, -1, cmd.devid, cmd.eventid, -1, why))

    # -- command queue -------------------------------------------------------------------
    def drain(self) -> Generator[Any, Any, None]:
        """Run queued commands one by one, ``its_cmd_ns`` each (caller holds ``its_lock``)."""
        its = self.its
        while its.enabled and its.cwriter != its.creadr:
            yield self.env.timeout(self.cmd_ns)  # the command takes effect when it completes
            its.process_one()

    # -- MSIs -----------------------------------------------------------------------------
    def inject_msi(self, device: int, event: int) -> Generator[Any, Any, None]:
        """``KVM_SIGNAL_MSI``: the cached fast path takes no lock; the slow path waits for
        the ITS lock while commands or a table save/restore hold it."""
        its = self.its
        if self.its_lock.count and its.vgic_its_check_cache(device, event) is None:
            req = self.its_lock.request()
            yield req
            self._inject(device, event)
            self.its_lock.release(req)
        else:
            self._inject(device, event)

    def _inject(self, device: int, event: int) -> None:
        its = self.its
        why = its.vgic_its_inject_msi(device, event)
        if why == MSI_ACCEPTED:
            irq = its.translate(device, event)
            assert irq is not None
            tgt = irq.target_vcpu
            self.trace.rec.append((self.env.now, "accept", self.side, -1 if tgt is None else tgt,
                                   irq.intid, device, event, -1, "msi"))  # fmt: skip
        else:
            self.trace.rec.append((self.env.now, "drop", self.side, -1, -1, device, event, -1, why))

    def inject_now(self, device: int, event: int) -> None:
        """Inject without waiting (used when the lock is known to be free)."""
        self._inject(device, event)


__all__ = [
    "VIRT_GIC_ITS",
    "VirtualMachine",
    "MSI_ITS_DISABLED",
    "MSI_NO_ITS",
    "kernel_info",
    "kernel_library",
]
