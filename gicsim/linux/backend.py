"""The kernel backend: one VM incarnation run by the kernel's own vGIC/ITS code.

``KernelBackend(lib, nr_vcpus, ram_bytes)`` builds a :class:`gicsim.linux.lib.VM` and puts in
front of it what the SimPy side uses of the Python model (``gicsim.kvm``): ``mem``
(:class:`~gicsim.linux.backend_mem.KernelMemory`, the library's RAM itself), ``vgic``
(``Vgic``: ap_list test, acknowledge/EOI, redistributor MMIO, ``vcpu_mutex_held``),
``its`` (``VgicIts``: ITS MMIO, the command queue one command at a time, MSIs),
``itsdev`` / ``gic`` (the two KVM devices' attrs). Every outcome is the kernel's return;
timing stays on the SimPy side.

Command timing: ``vgic_mmio_write_its_cwriter`` runs the whole queue synchronously, so the
guest's CWRITER is shadowed here and the kernel's CWRITER is moved one command ahead of
its CREADR per ``its_cmd_ns`` slot (:meth:`KernelIts.process_one`). To learn what the
kernel's ``vgic_its_handle_command`` returned (the queue path discards it), the command
read from the queue (``kvm_read_guest``) is run through ``h_its_exec_cmd`` (the same
function, under ``cmd_lock``), and the kernel's own queue loop then steps CREADR over the
slot while it holds an opcode-0 command (``-ENODEV``, no effect); the guest's bytes are put
back right after. Enabling GITS_CTLR with a non-empty queue is drained the same way.

vCPUs: the vCPU process's acknowledge is a guest entry (``kvm_vgic_flush_hwstate``) and an
ICC_IAR1 read of the emulated list registers; the vCPU stays in the guest until its EOI
(ICC_EOIR1, then ``kvm_vgic_sync_hwstate``) or until it leaves KVM_RUN. Kicks: the harness
counts ``kvm_vcpu_kick`` per vCPU; after each kernel call that can kick, the counters that
can have moved are read and a moved one rings that vCPU's doorbell (the SimPy ``kick``).

State reads: registers by MMIO (CTLR, CBASER, CREADR, CWRITER), tables from the harness's
ITS dump (:mod:`gicsim.linux.backend_dump`), re-read only after a call that can change
them; a slow-path MSI changes only the translation cache, by its own ITE's translation.
"""

from __future__ import annotations

import ctypes as C
import errno as _errno
import struct
from pathlib import Path
from typing import Any

from gicsim.kvm.abi import COLLECTION_NOT_MAPPED
from gicsim.kvm.commands import ITS_CMD_SIZE, ItsCmd, decode_cmd
from gicsim.kvm.its import (
    GITS_CBASER,
    GITS_CBASER_ADDRESS,
    GITS_CREADR,
    GITS_CTLR,
    GITS_CTLR_ENABLE,
    GITS_CWRITER,
    ITS_CMD_BUFFER_SIZE,
    ITS_CMD_OFFSET,
    MSI_ACCEPTED,
    MSI_ITS_DISABLED,
    MSI_LPIS_DISABLED,
    MSI_NO_ITS,
    MSI_UNMAPPED,
)
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
)
from gicsim.kvm.vgic_mmio import update_64bit_reg
from gicsim.linux import lib as L
from gicsim.linux.backend_devices import KernelGicDevice, KernelItsDevice
from gicsim.linux.backend_dump import DumpReader, ItsDump
from gicsim.linux.backend_mem import KernelMemory
from gicsim.linux.errors import KernelRefError

_NOOP = bytes(ITS_CMD_SIZE)  # opcode 0: vgic_its_handle_command's default case, -ENODEV
_CMD = struct.Struct("<4Q")
#: the devices' MSI doorbell: GITS_TRANSLATER of the ITS frame at VIRT_GIC_ITS (the
#: kernel answers -EINVAL while no ITS is registered there, e.g. before its_init)
_DOORBELL = L.ITS_BASE + L.GITS_TRANSLATER
_DOORBELL_C = L._u64(_DOORBELL)
GICR_CTLR_ENABLE_LPIS = 1 << 0
#: kernel (6.12/6.1 vgic-its.c): handlers that never reach vgic_queue_irq_unlock or
#: kvm_vcpu_kick -- MOVI/MAPC/MOVALL only set targets (update_affinity), CLEAR drops
#: pending, MAPD/DISCARD free, SYNC does nothing; MAPTI/MAPI queue at most their own LPI
#: (vgic_add_lpi: update_lpi_config + the pending-table sync)
_CMD_NO_KICK = frozenset({0x01, 0x04, 0x05, 0x08, 0x09, 0x0E, 0x0F})
C_MAPTI, C_MAPI = 0x0A, 0x0B
_CMD_QUEUES_ONE = frozenset({C_MAPTI, C_MAPI})
_LR_PENDING, _LR_ACTIVE = L.LR_STATE_PENDING, L.LR_STATE_ACTIVE


def ret_name(ret: int) -> str | None:
    """A command's result as the model names it: None, an E_ITS_* name or an errno name."""
    if ret == 0:
        return None
    if ret > 0:
        return L.E_ITS.get(ret, f"E_ITS_{ret:#x}")
    return _errno.errorcode.get(-ret, f"E{-ret}")


class LpiView:
    """What the SimPy side reads of a ``struct vgic_irq``: INTID and target vCPU."""

    __slots__ = ("intid", "target_vcpu")

    def __init__(self, intid: int, target_vcpu: int | None) -> None:
        self.intid = intid
        self.target_vcpu = target_vcpu


class LpiRecord(LpiView):
    __slots__ = ("enabled", "priority", "pending_latch")

    def __init__(self, rec: dict[str, Any]) -> None:
        super().__init__(rec["intid"], None if rec["target"] < 0 else rec["target"])
        self.enabled = rec["enabled"]
        self.priority = rec["priority"]
        self.pending_latch = rec["pending"]


class _Ite:
    __slots__ = ("irq",)

    def __init__(self, irq: LpiView) -> None:
        self.irq = irq


class _Dev:
    __slots__ = ("device_id", "itt_addr", "num_eventid_bits")

    def __init__(self, devid: int, d: dict[str, int]) -> None:
        self.device_id, self.itt_addr, self.num_eventid_bits = devid, d["itt"], d["nr_eventid_bits"]


class _Coll:
    __slots__ = ("collection_id", "target_addr")

    def __init__(self, icid: int, target: int) -> None:
        self.collection_id = icid
        self.target_addr = COLLECTION_NOT_MAPPED if target < 0 else target


class _Hot:
    """The harness entry points the SimPy hot paths call (every MSI, acknowledge, EOI,
    ap_list test), bound without ``argtypes`` (half the ctypes call cost): every argument
    is passed as an explicit C type, the VM pointer as a ``c_void_p``."""

    _BY_PATH: dict[str, Any] = {}
    h_vcpu_kicks: Any
    h_vcpu_ap_list: Any
    h_vcpu_flush: Any
    h_vcpu_sync: Any
    h_vcpu_get_lrs: Any
    h_vcpu_set_lr: Any
    h_irqfd_inject_atomic: Any
    h_mmio_read: Any

    def __init__(self, lib: L.KernelLib) -> None:
        dll = self._BY_PATH.get(str(lib.path))
        if dll is None:
            dll = self._BY_PATH[str(lib.path)] = C.CDLL(str(lib.path))
        for name in (
            "h_vcpu_kicks",
            "h_vcpu_ap_list",
            "h_vcpu_flush",
            "h_vcpu_sync",
            "h_vcpu_get_lrs",
            "h_vcpu_set_lr",
            "h_irqfd_inject_atomic",
            "h_mmio_read",
        ):
            f = dll[name]
            f.restype = C.c_int
            setattr(self, name, f)


class _MutexFlags(list):
    """``vcpu->mutex`` held per vCPU; a store marks the kernel's vCPU running or not."""

    def __init__(self, vgic: KernelVgic, n: int) -> None:
        super().__init__([False] * n)
        self._vgic = vgic

    def __setitem__(self, i: Any, v: Any) -> None:
        list.__setitem__(self, i, v)
        g = self._vgic
        if not v and g.in_guest[i]:
            g.exit(i)  # leaving KVM_RUN from inside a handler: the guest exit first
        g.vm.set_running(i, bool(v))


class _Cpu:
    """``vgic_cpu`` of one vCPU as the SimPy side reads it."""

    __slots__ = ("_b", "_i")

    def __init__(self, b: KernelBackend, i: int) -> None:
        self._b, self._i = b, i

    @property
    def ap_list(self) -> int:
        """Entries on the kernel's ap_list (only its truth value is used)."""
        b = self._b
        return b.hot.h_vcpu_ap_list(b.kvm_p, self._i, None, 0)

    @property
    def pendbaser(self) -> int:
        return self._b.vm.rd_read(self._i, L.GICR_PENDBASER)

    @property
    def ctlr(self) -> int:
        """``vgic_cpu->lpis_enabled`` (GICR_CTLR.EnableLPIs; the read-only CES/IR bits of
        the read-back are constant, not state)."""
        return self._b.vm.rd_read(self._i, L.GICR_CTLR, 4) & GICR_CTLR_ENABLE_LPIS


class KernelBackend:
    """One VM incarnation on the kernel library (see the module docstring)."""

    def __init__(self, lib: L.KernelLib, nr_vcpus: int, ram_bytes: int) -> None:
        # the ITS frame address is set by the VMM (its_init), as on the model
        self.vm = vm = L.VM(lib, nr_vcpus, ram_size=ram_bytes, its_base=None)
        self.k, self.kvm = lib.dll, vm.kvm
        self.hot = _Hot(lib)
        self.kvm_p = C.c_void_p(vm.kvm)
        self.lib = lib
        self.nr_vcpus = nr_vcpus
        self._kicks = [vm.kicks(i) for i in range(nr_vcpus)]
        #: bumped by :meth:`retargeted`; ``pruned[i]``: the generation vCPU i last pruned at
        self.generation = 0
        self.pruned = [0] * nr_vcpus
        self._irq = L.IrqState()
        self.kick: Any = None
        self.mem = KernelMemory(vm)
        self.vgic = KernelVgic(self)
        self.its = KernelIts(self)
        self.itsdev = KernelItsDevice(self)
        self.gic = KernelGicDevice(self)

    def close(self) -> None:
        self.vm.close()

    def retargeted(self) -> None:
        """A kernel call that can retarget or disable queued LPIs ran (a command, a register
        store, a device attr): every vCPU's next exit may move LPIs and kick their vCPUs."""
        self.generation += 1
        self.poll_kicks()

    def poll_kicks(self, skip: int = -1) -> None:
        """``kvm_vcpu_kick`` calls the kernel made since the last poll ring the doorbells
        (``skip``: a vCPU the call cannot have kicked)."""
        f, kvm, seen = self.hot.h_vcpu_kicks, self.kvm_p, self._kicks
        for i in range(self.nr_vcpus):
            if i == skip:
                continue
            n = f(kvm, i)
            if n != seen[i]:
                seen[i] = n
                kick = self.kick
                if kick is not None:
                    kick(i)

    def _poll_one(self, vcpu: int) -> bool:
        n = self.hot.h_vcpu_kicks(self.kvm_p, vcpu)
        if n == self._kicks[vcpu]:
            return False
        self._kicks[vcpu] = n
        if self.kick is not None:
            self.kick(vcpu)
        return True

    def poll_lpi(self, intid: int, target: int | None = -1) -> None:
        """After the kernel queued LPI ``intid`` (``vgic_queue_irq_unlock``): it kicks at
        most one vCPU, the target oracle's -- the LPI's target, or the vCPU whose ap_list
        holds it while it is active (``irq->vcpu``). ``target``: the target if known (read
        first; no ``h_lpi_state`` call when it was the one kicked)."""
        if target is not None and target >= 0 and self._poll_one(target):
            return
        st = self._irq
        if self.k.h_lpi_state(self.kvm, intid, C.byref(st)):
            return  # no such LPI: nothing was queued
        for v in {st.target_vcpu, st.queued_vcpu}:
            if 0 <= v < self.nr_vcpus and v != target:
                self._poll_one(v)


class KernelVgic:
    """What the SimPy side uses of ``Vgic``."""

    def __init__(self, b: KernelBackend) -> None:
        self.b = b
        self.vm = b.vm
        self.nr_vcpus = b.nr_vcpus
        self.mem = b.mem
        self.cpus = [_Cpu(b, i) for i in range(b.nr_vcpus)]
        self.vcpu_mutex_held = _MutexFlags(self, b.nr_vcpus)
        #: the vCPU is in the guest with list registers loaded (between IAR and EOI)
        self.in_guest = [False] * b.nr_vcpus
        self.k, self.kvm = b.hot, b.kvm_p
        self._lrs = (L._u64 * 16)()
        self._intids = (L._u32 * 65536)()
        self._irq = L.IrqState()
        self.its_list: list[KernelIts] = []

    @property
    def kick(self) -> Any:
        return self.b.kick

    @kick.setter
    def kick(self, fn: Any) -> None:
        self.b.kick = fn

    @property
    def propbaser(self) -> int:
        return self.vm.rd_read(0, L.GICR_PROPBASER)

    @property
    def lpi_xa(self) -> dict[int, LpiRecord]:
        """Every LPI record (``dist->lpi_xa``), as :meth:`gicsim.linux.lib.VM.lpi_records`
        reads them, into reused buffers."""
        k, kvm = self.vm.k, self.vm.kvm
        n = k.h_lpi_list(kvm, self._intids, len(self._intids))
        out = {}
        st = self._irq
        for intid in self._intids[: min(n, len(self._intids))]:
            if k.h_lpi_state(kvm, intid, C.byref(st)) == 0:
                out[intid] = LpiRecord({"intid": st.intid, "target": st.target_vcpu,
                                        "enabled": bool(st.enabled), "priority": st.priority,
                                        "pending": bool(st.pending_latch)})  # fmt: skip
        return out

    def redist_write(self, vcpu: int, offset: int, length: int, val: int) -> None:
        """Guest MMIO store to a redistributor (EnableLPIs, PROPBASER, PENDBASER)."""
        self.vm.rd_write(vcpu, offset, val, length)
        self.b.its.invalidate()
        self.b.retargeted()

    def redist_read(self, vcpu: int, offset: int, length: int = 8) -> int:
        return self.vm.rd_read(vcpu, offset, length)

    # -- the list-register path -------------------------------------------------------------
    def acknowledge(self, vcpu: int) -> LpiView | None:
        """Guest entry (``kvm_vgic_flush_hwstate``) and ICC_IAR1 read. With an LPI taken
        the vCPU stays in the guest (its handler runs) until :meth:`eoi` or until it leaves
        KVM_RUN; with none it exits at once (``kvm_vgic_sync_hwstate``: fold, prune).

        The IAR read is :meth:`gicsim.linux.lib.VM.ack`'s CPU interface without its
        per-call objects: the pending, not active LR with the lowest priority value (ties:
        lowest LR index) becomes active."""
        k, kvm, lrs = self.k, self.kvm, self._lrs
        if not self.in_guest[vcpu]:
            k.h_vcpu_flush(kvm, vcpu)
        n = k.h_vcpu_get_lrs(kvm, vcpu, lrs, 16)
        best = -1
        best_prio = 256
        for i in range(n):
            v = lrs[i]
            if v & _LR_PENDING and not v & _LR_ACTIVE:
                prio = (v >> L.LR_PRIORITY_SHIFT) & 0xFF
                if prio < best_prio:
                    best, best_prio = i, prio
        if best < 0:
            self.exit(vcpu)
            return None
        v = lrs[best]
        k.h_vcpu_set_lr(kvm, vcpu, best, L._u64((v & ~_LR_PENDING) | _LR_ACTIVE))
        self.in_guest[vcpu] = True
        return LpiView(v & 0xFFFF_FFFF, vcpu)

    def exit(self, vcpu: int) -> None:
        """Guest exit (``kvm_vgic_sync_hwstate``).

        kernel: only ``vgic_prune_ap_list`` kicks here, and only a vCPU an LPI moves to;
        an LPI on this ap_list targets another vCPU only if something retargeted it since
        this vCPU last pruned (the queueing paths put an LPI on its target's list, a prune
        moves it to its target) -- so with no :meth:`KernelBackend.retargeted` call since,
        nobody can be kicked and the kick counters are not read."""
        self.in_guest[vcpu] = False
        self.k.h_vcpu_sync(self.kvm, vcpu)
        b = self.b
        if b.pruned[vcpu] != b.generation:
            b.pruned[vcpu] = b.generation
            b.poll_kicks(skip=vcpu)

    def eoi(self, vcpu: int, irq: LpiView) -> None:
        """ICC_EOIR1 write (EOImode 0: the active LR with this INTID drops its active
        state, :meth:`gicsim.linux.lib.VM.eoi`) -- after a guest entry if the vCPU left
        meanwhile -- and the guest exit."""
        k, kvm, lrs = self.k, self.kvm, self._lrs
        if not self.in_guest[vcpu]:
            k.h_vcpu_flush(kvm, vcpu)
        n = k.h_vcpu_get_lrs(kvm, vcpu, lrs, 16)
        for i in range(n):
            v = lrs[i]
            if v & _LR_ACTIVE and v & 0xFFFF_FFFF == irq.intid:
                k.h_vcpu_set_lr(kvm, vcpu, i, L._u64(v & ~_LR_ACTIVE))
                break
        self.exit(vcpu)


class KernelIts:
    """What the SimPy side uses of ``VgicIts``."""

    def __init__(self, b: KernelBackend) -> None:
        self.b = b
        self.vm = b.vm
        self.vgic = b.vgic
        self.mem = b.mem
        self.name = "its"
        self.on_command: Any = None
        self.deferred = True  # always: the SimPy side drains with process_one
        self.commands_run = 0
        #: the CWRITER the guest (or VMM) wrote while commands remain for the kernel to run
        self.shadow: int | None = None
        self._snap: ItsDump | None = None
        self._regs: dict[str, int] | None = None
        self._targets: dict[int, int | None] = {}
        #: (DeviceID, EventID) -> the cached translation's LPI, for the current snapshot
        self._cached: dict[tuple[int, int], LpiView] = {}
        #: a slow-path MSI ran since the snapshot: its translation-cache lines may be stale
        self._cache_dirty = False
        self._dumper = DumpReader(b.vm)
        self._v = L._u64(0)
        b.vgic.its_list.append(self)

    # -- kernel state ------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Something ran in the kernel: re-read what is needed next time."""
        self._snap = None
        self._regs = None
        self._cached = {}
        self._cache_dirty = False

    @property
    def snap(self) -> ItsDump:
        s = self._snap
        if s is None:
            s = self._snap = self._dumper.read()
            self._targets = {}
            self._cached = {}
        return s

    @property
    def regs(self) -> dict[str, int]:
        """GITS_CTLR.Enable, CBASER, CREADR, CWRITER as the kernel has them (MMIO reads)."""
        r = self._regs
        if r is None:
            if self.vm.its_base is None:  # no ITS frame on the bus yet: the harness's dump
                st = self.snap.state
                r = {k: st[k] for k in ("enabled", "cbaser", "creadr", "cwriter")}
            else:
                r = {"enabled": self._reg(GITS_CTLR, 4) & GITS_CTLR_ENABLE,
                     "cbaser": self._reg(GITS_CBASER), "creadr": self._reg(GITS_CREADR),
                     "cwriter": self._reg(GITS_CWRITER)}  # fmt: skip
            self._regs = r
        return r

    def _target(self, intid: int) -> int | None:
        if intid in self._targets:
            return self._targets[intid]
        r = self.vm.lpi(intid)
        t = None if r is None or r["target"] < 0 else r["target"]
        self._targets[intid] = t
        return t

    def _view(self, intid: int) -> LpiView:
        self.snap  # noqa: B018 - the target cache belongs to the current snapshot
        return LpiView(intid, self._target(intid))

    def _reg(self, off: int, size: int = 8) -> int:
        v = self._v
        r = self.b.hot.h_mmio_read(self.b.kvm_p, 0, L._u64(L.ITS_BASE + off), size, C.byref(v))
        if r:
            raise KernelRefError(f"ITS MMIO read {off:#x} = {r}")
        return v.value

    @property
    def enabled(self) -> bool:
        return bool(self.regs["enabled"])

    @property
    def cbaser(self) -> int:
        return self.regs["cbaser"]

    @property
    def creadr(self) -> int:
        return self.regs["creadr"]

    @property
    def cwriter(self) -> int:
        return self.regs["cwriter"] if self.shadow is None else self.shadow

    @property
    def baser_device_table(self) -> int:
        return self.snap.state["baser_device"]

    @property
    def baser_coll_table(self) -> int:
        return self.snap.state["baser_coll"]

    @property
    def abi_rev(self) -> int:
        return self.snap.state["abi_rev"]

    @property
    def device_list(self) -> list[_Dev]:
        return [_Dev(i, d) for i, d in self.snap.full()["devices"].items()]

    @property
    def collection_list(self) -> dict[int, _Coll]:
        return {i: _Coll(i, t) for i, t in self.snap.full()["collections"].items()}

    def mappings(self) -> dict[tuple[int, int], tuple[int, int]]:
        return {k: (v["intid"], v["icid"]) for k, v in self.snap.full()["ites"].items()}

    def find_ite(self, device_id: int, event_id: int) -> _Ite | None:
        intid = self.snap.ite_intid(device_id, event_id)
        return None if intid is None else _Ite(self._view(intid))

    # -- registers ---------------------------------------------------------------------------
    def _write(self, off: int, val: int, size: int, uaccess: bool) -> int:
        """One store, guest MMIO or KVM_SET_DEVICE_ATTR; returns the kernel's result."""
        vm = self.vm
        if uaccess:
            return vm.set_attr(vm.its, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, val)
        return vm.mmio_write(L.ITS_BASE + off, val, size)

    def write(self, off: int, size: int, val: int, uaccess: bool = False) -> int:
        """A register store with the kernel's semantics except that commands are left for
        :meth:`process_one` (see the module docstring). Returns the kernel's result."""
        s = self.regs
        if off & ~7 == GITS_CWRITER and size in (4, 8) and s["enabled"]:
            # kernel: vgic_mmio_write_its_cwriter merges a 32-bit half into CWRITER and
            # drops an offset beyond the queue
            reg = ITS_CMD_OFFSET(update_64bit_reg(self.cwriter, off & 7, size, val))
            # the kernel checks the access itself: a store of its own CWRITER (== CREADR
            # while enabled) runs nothing
            r = (
                self._write(GITS_CWRITER, s["cwriter"], 8, uaccess)
                if size == 8 or uaccess
                else self._write(off, (s["cwriter"] >> (8 * (off & 7))) & 0xFFFF_FFFF, 4, uaccess)
            )
            if r == 0 and reg < ITS_CMD_BUFFER_SIZE(s["cbaser"]):
                self.shadow = None if reg == s["creadr"] else reg
        elif off & ~7 == GITS_CWRITER:
            r = self._write(off, val, size, uaccess)  # disabled: the kernel only stores it
            self.shadow = None
        elif off == GITS_CTLR and size == 4:
            pending = self.cwriter
            if not s["enabled"] and val & GITS_CTLR_ENABLE and pending != s["creadr"]:
                # the kernel would run the whole queue inside this store: park CWRITER on
                # CREADR first (a disabled ITS only stores it) and drain afterwards
                self._write(GITS_CWRITER, s["creadr"], 8, uaccess)
                self.invalidate()
                r = self._write(off, val, size, uaccess)
                self.invalidate()
                if self.regs["enabled"]:
                    self.shadow = pending
                else:  # refused (invalid BASER/CBASER) or failed: put CWRITER back
                    self._write(GITS_CWRITER, pending, 8, uaccess)
                    self.shadow = None
            else:
                r = self._write(off, val, size, uaccess)
                self.invalidate()
                if self.shadow is not None and not self.regs["enabled"]:
                    # disabled with commands left: the kernel keeps them behind CWRITER
                    self._write(GITS_CWRITER, self.shadow, 8, uaccess)
                    self.shadow = None
        else:
            r = self._write(off, val, size, uaccess)
            if off == GITS_CBASER and not s["enabled"]:
                self.shadow = None
        self.invalidate()
        if off & ~7 != GITS_CWRITER:  # a CWRITER store runs nothing here (process_one does)
            self.b.retargeted()
        return r

    def its_write(self, offset: int, length: int, val: int) -> None:
        """Guest MMIO store to the ITS frame."""
        self.write(offset, length, val)

    def its_read(self, offset: int, length: int) -> int:
        if offset & ~7 == GITS_CWRITER and self.shadow is not None:
            return (self.shadow >> (8 * (offset & 7))) & ((1 << (8 * length)) - 1)
        return self._reg(offset, length)

    # -- the command queue -------------------------------------------------------------------
    def process_one(self) -> tuple[ItsCmd | None, str | None] | None:
        """Run the command at CREADR (one ``its_cmd_ns`` slot); None when idle."""
        target = self.shadow
        if target is None:
            return None
        s = self.regs
        creadr = s["creadr"]
        if not s["enabled"] or target == creadr:
            self.shadow = None
            return None
        vm = self.vm
        size = ITS_CMD_BUFFER_SIZE(s["cbaser"])
        gpa = GITS_CBASER_ADDRESS(s["cbaser"]) + creadr
        nxt = (creadr + ITS_CMD_SIZE) % size
        r, raw = vm.kvm_read(gpa, ITS_CMD_SIZE)
        cmd = err = None
        if r == 0:
            ret = vm.exec_cmd(_CMD.unpack(raw))
            self.mem.poke_raw(gpa, _NOOP)
            vm.mmio_write(L.ITS_BASE + GITS_CWRITER, nxt, 8)
            self.mem.poke_raw(gpa, raw)
            cmd, err = decode_cmd(raw), ret_name(ret)
            self.commands_run += 1
        else:  # GICv3 spec 6.3.2: a command that cannot be read is skipped
            vm.mmio_write(L.ITS_BASE + GITS_CWRITER, nxt, 8)
        if nxt == target:
            self.shadow = None
        self.invalidate()
        b = self.b
        b.generation += 1  # retargets (MOVI, MAPC, MOVALL) take effect at the next prunes
        op = -1 if cmd is None else cmd.opcode
        if op in _CMD_NO_KICK and err is None:
            pass
        elif op in _CMD_QUEUES_ONE and err is None:
            b.poll_lpi(cmd.pintid if op == C_MAPTI else cmd.eventid)  # type: ignore[union-attr]
        else:
            b.poll_kicks()
        if cmd is not None and self.on_command is not None:
            self.on_command(self, cmd, err)
        return cmd, err

    # -- MSIs --------------------------------------------------------------------------------
    def vgic_its_check_cache(self, device_id: int, event_id: int) -> LpiView | None:
        """The translation cache entry for (DeviceID, EventID), without injecting."""
        if self._cache_dirty:  # a slow-path MSI may have added or (6.1) evicted entries
            self.invalidate()
        key = (device_id, event_id)
        view = self._cached.get(key)
        if view is None:
            intid = self.snap.cache_intid(device_id, event_id)
            if intid is None:
                return None
            view = self._cached[key] = self._view(intid)
        return view

    def vgic_its_inject_cached_translation(self, device_id: int, event_id: int) -> LpiView | None:
        """The irqfd fast path (``vgic_its_inject_cached_translation``): the LPI on a hit."""
        b = self.b
        r = b.hot.h_irqfd_inject_atomic(
            b.kvm_p, _DOORBELL_C, C.c_uint32(event_id), C.c_uint32(device_id)
        )
        if r:
            return None
        view = self._cached.get((device_id, event_id))
        if view is None:
            snap = self.snap
            intid = snap.cache_intid(device_id, event_id)
            if intid is None and self._cache_dirty:
                # cached after the snapshot: only slow-path MSIs ran since (anything else
                # drops the snapshot), and one caches exactly its own ITE's translation
                intid = snap.ite_intid(device_id, event_id)
            if intid is None:
                raise KernelRefError(f"irqfd hit for {device_id}/{event_id} without a cache entry")
            view = self._cached[(device_id, event_id)] = self._view(intid)
        b.poll_lpi(view.intid, view.target_vcpu)
        return view

    def vgic_its_inject_msi(self, device_id: int, event_id: int) -> str:
        """``KVM_SIGNAL_MSI``; the kernel's return as the model's MSI fate (the reverse of
        :mod:`gicsim.linux.differential`'s normalisation)."""
        r = self.vm.signal_msi(device_id, event_id, address=_DOORBELL)
        if r == 1:
            # the slow path may have cached the translation (and, 6.1, evicted another):
            # only the snapshot's cache lines are out of date, read again when asked
            self._cache_dirty = True
            intid = self.snap.ite_intid(device_id, event_id)
            if intid is None:
                self.b.poll_kicks()
            else:
                self.b.poll_lpi(intid, self._target(intid))
            return MSI_ACCEPTED
        if r == 0:
            return MSI_UNMAPPED  # E_ITS_INT_UNMAPPED_INTERRUPT: blocked
        if r == -_errno.EINVAL:
            return MSI_NO_ITS  # vgic_msi_to_its: no ITS at the doorbell
        if r == -_errno.EBUSY:  # vgic_its_resolve_lpi: ITS disabled, or the target's LPIs
            return MSI_LPIS_DISABLED if self.regs["enabled"] else MSI_ITS_DISABLED
        raise KernelRefError(f"KVM_SIGNAL_MSI {device_id}/{event_id} = {r}")

    def translate(self, device_id: int, event_id: int) -> LpiView | None:
        """The LPI an MSI would hit now: the cached translation, else the ITE (right
        after a slow-path MSI its fresh cache entry, if any, is that ITE's LPI)."""
        s = self.snap
        intid = s.cache_intid(device_id, event_id)
        if intid is None:
            intid = s.ite_intid(device_id, event_id)
            if intid is None:
                return None
        return self._view(intid)


class BackendChoiceError(KernelRefError):
    """A kernel backend that cannot run (no compiler, not a kernel tree, an override the
    kernel's code cannot honour): a one-line input error (exit 2)."""

    gicsim_input_error = True


_LIBS: dict[str, L.KernelLib] = {}


def load_kernel(source: str) -> L.KernelLib:
    """The library for a release or a tree path, fetched/built/loaded once per process."""
    lib = _LIBS.get(source)
    if lib is None:
        try:
            lib = L.load(source)
        except KernelRefError as e:
            raise BackendChoiceError(f"kernel backend: {e}") from None
        _LIBS[source] = lib
    return lib


def kernel_source(lib: L.KernelLib, tree: str | None = None) -> str:
    """Where the library's sources came from: the package and its version, or the kernel
    tree the user named (the fetch cache is keyed by content, so its record may name an
    earlier path of the same files)."""
    if tree:
        return f"{Path(tree).expanduser().resolve()} ({lib.info.get('kernel_version', '?')})"
    return str(lib.info.get("source") or "")
