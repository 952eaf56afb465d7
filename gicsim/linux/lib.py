"""ctypes binding of ``libkref.so``: the kernel's own vGIC/ITS code, driven like KVM.

    from gicsim.linux.lib import load, VM
    k = load("6.12")                   # fetch + build (cached) + dlopen
    vm = VM(k, nr_vcpus=2)             # KVM_CREATE_VM/VCPU/DEVICE, memslot, GIC + ITS bring-up
    vm.boot_lpis()                     # guest: PROPBASER/PENDBASER/EnableLPIs, BASERs, CBASER, CTLR
    vm.queue(cmd_mapd(1, 3, itt), ...) # guest command queue path (GITS_CWRITER)
    vm.exec_cmd(cmd_int(1, 0))         # direct path: returns E_ITS_* / -errno
    vm.signal_msi(1, 0)                # KVM_SIGNAL_MSI: 1 / 0 / -errno
    vm.deliver(0)                      # guest entry, IAR ack + EOI through the list registers

Guest RAM is host memory owned by this module (an anonymous ``mmap`` per memslot,
page-aligned, lazily backed); ``vm.ram`` is a zero-copy ``memoryview`` of the first slot and
``vm.mem(gpa, n)`` / ``vm.poke(gpa, data)`` access any slot directly. ``kvm_read_guest`` /
``kvm_write_guest`` (KVM's page-by-page semantics, ``-EFAULT`` outside the memslots) are
``vm.kvm_read`` / ``vm.kvm_write``.

Every call returns what the kernel returned; nothing here raises on a kernel error.
A kernel abort (an aborting stub, ``BUG_ON``, a lock error) kills the process: run
untrusted streams through :mod:`gicsim.linux.worker`.
"""

from __future__ import annotations

import ctypes as C
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from gicsim.linux.errors import KernelRefError

# --- the ABI the harness exposes ------------------------------------------------------
RAM_BASE = 0x4000_0000          # QEMU virt VIRT_MEM, as gicsim.kvm.memory.RAM_BASE
DIST_BASE = 0x0800_0000         # QEMU virt VIRT_GIC_DIST
ITS_BASE = 0x0808_0000          # QEMU virt VIRT_GIC_ITS
REDIST_BASE = 0x080A_0000       # QEMU virt VIRT_GIC_REDIST
REDIST_STRIDE = 0x20000         # RD_base + SGI_base frames per vCPU

# uapi (arch/arm64/include/uapi/asm/kvm.h)
GRP_ADDR, GRP_DIST_REGS, GRP_CPU_REGS, GRP_NR_IRQS, GRP_CTRL = 0, 1, 2, 3, 4
GRP_REDIST_REGS, GRP_CPU_SYSREGS, GRP_LEVEL_INFO, GRP_ITS_REGS = 5, 6, 7, 8
ADDR_TYPE_DIST, ADDR_TYPE_REDIST, ADDR_TYPE_ITS = 2, 3, 4
CTRL_INIT, ITS_SAVE_TABLES, ITS_RESTORE_TABLES, SAVE_PENDING_TABLES, ITS_CTRL_RESET = 0, 1, 2, 3, 4
MSI_VALID_DEVID = 1
MEM_READONLY = 2

# registers (include/linux/irqchip/arm-gic-v3.h)
GITS_CTLR, GITS_IIDR, GITS_TYPER, GITS_CBASER, GITS_CWRITER, GITS_CREADR = 0, 4, 8, 0x80, 0x88, 0x90
GITS_BASER0, GITS_BASER1, GITS_TRANSLATER = 0x100, 0x108, 0x10040
GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_PROPBASER, GICR_PENDBASER = 0, 4, 8, 0x70, 0x78
GICD_CTLR, GICD_TYPER = 0, 4
GICD_CTLR_ARE_NS, GICD_CTLR_ENABLE_G1A = 1 << 4, 1 << 1

# ITS commands (opcodes) and E_ITS_* (vgic-its.c / arm-gic-v3.h)
MOVI, INT, CLEAR, SYNC, MAPD, MAPC, MAPTI, MAPI, INV, INVALL, MOVALL, DISCARD = (
    0x01, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F)
# values of include/linux/irqchip/arm-gic-v3.h (tests check them against the fetched tree)
E_ITS = {
    0x010107: "E_ITS_MOVI_UNMAPPED_INTERRUPT", 0x010109: "E_ITS_MOVI_UNMAPPED_COLLECTION",
    0x010307: "E_ITS_INT_UNMAPPED_INTERRUPT", 0x010507: "E_ITS_CLEAR_UNMAPPED_INTERRUPT",
    0x010801: "E_ITS_MAPD_DEVICE_OOR", 0x010802: "E_ITS_MAPD_ITTSIZE_OOR",
    0x010902: "E_ITS_MAPC_PROCNUM_OOR", 0x010903: "E_ITS_MAPC_COLLECTION_OOR",
    0x010A04: "E_ITS_MAPTI_UNMAPPED_DEVICE", 0x010A05: "E_ITS_MAPTI_ID_OOR",
    0x010A06: "E_ITS_MAPTI_PHYSICALID_OOR", 0x010C07: "E_ITS_INV_UNMAPPED_INTERRUPT",
    0x010D09: "E_ITS_INVALL_UNMAPPED_COLLECTION", 0x010E01: "E_ITS_MOVALL_PROCNUM_OOR",
    0x010F07: "E_ITS_DISCARD_UNMAPPED_INTERRUPT",
}
E_ITS_BY_NAME = {v: k for k, v in E_ITS.items()}

# list registers (ICH_LR<n>_EL2)
LR_STATE_PENDING = 1 << 62
LR_STATE_ACTIVE = 1 << 63
LR_GROUP = 1 << 60
LR_HW = 1 << 61
LR_PRIORITY_SHIFT = 48
SPURIOUS = 1023


def cmd_bytes(words) -> bytes:
    return b"".join(int(w).to_bytes(8, "little") for w in words)


def _c(op, devid=0, d1=0, d2=0, d3=0):
    return (op | (devid << 32), d1, d2, d3)


def cmd_mapd(devid, size, itt, valid=1):
    """MAPD: size = number of EventID bits - 1 (the raw field)."""
    return _c(MAPD, devid, size & 0x1F, (itt & ((1 << 52) - 1) & ~0xFF) | (valid << 63))


def cmd_mapc(icid, rdbase, valid=1):
    return _c(MAPC, 0, 0, (icid & 0xFFFF) | ((rdbase & ((1 << 36) - 1)) << 16) | (valid << 63))


def cmd_mapti(devid, eventid, pintid, icid):
    return _c(MAPTI, devid, eventid | (pintid << 32), icid & 0xFFFF)


def cmd_mapi(devid, eventid, icid):
    return _c(MAPI, devid, eventid, icid & 0xFFFF)


def cmd_movi(devid, eventid, icid):
    return _c(MOVI, devid, eventid, icid & 0xFFFF)


def cmd_discard(devid, eventid):
    return _c(DISCARD, devid, eventid)


def cmd_int(devid, eventid):
    return _c(INT, devid, eventid)


def cmd_clear(devid, eventid):
    return _c(CLEAR, devid, eventid)


def cmd_inv(devid, eventid):
    return _c(INV, devid, eventid)


def cmd_invall(icid):
    return _c(INVALL, 0, 0, icid & 0xFFFF)


def cmd_sync(rdbase):
    return _c(SYNC, 0, 0, (rdbase & ((1 << 36) - 1)) << 16)


def cmd_movall(rd1, rd2):
    return _c(MOVALL, 0, 0, (rd1 & ((1 << 36) - 1)) << 16, (rd2 & ((1 << 36) - 1)) << 16)


class IrqState(C.Structure):
    _fields_ = [("intid", C.c_uint32), ("target_vcpu", C.c_int32), ("queued_vcpu", C.c_int32),
                ("refcount", C.c_uint32), ("pending_latch", C.c_uint8), ("enabled", C.c_uint8),
                ("priority", C.c_uint8), ("group", C.c_uint8), ("active", C.c_uint8),
                ("hw", C.c_uint8), ("config", C.c_uint8), ("pad", C.c_uint8)]


_P, _u64, _u32, _int = C.c_void_p, C.c_uint64, C.c_uint32, C.c_int
_PROTOS = {
    "h_abi_version": (_int, []),
    "h_kernel_has_lpi_xa": (_int, []),
    "h_vm_create": (_int, [_int, _u32, C.POINTER(_P)]),
    "h_vm_add_memslot": (_int, [_P, _int, _u64, _u64, _P, _u32]),
    "h_vm_dirty_log": (_int, [_P, _int, C.POINTER(_u64), _int, _int]),
    "h_vgic_setup": (_int, [_P, _u64, _u64]),
    "h_vgic_dev": (_P, [_P]),
    "h_vm_nr_vcpus": (_int, [_P]),
    "h_vm_destroy": (None, [_P]),
    "h_kvm_bugs": (_int, []),
    "h_its_create": (_int, [_P, C.POINTER(_P)]),
    "h_dev_set_attr": (_int, [_P, _u32, _u64, C.POINTER(_u64)]),
    "h_dev_get_attr": (_int, [_P, _u32, _u64, C.POINTER(_u64)]),
    "h_dev_has_attr": (_int, [_P, _u32, _u64]),
    "h_mmio_write": (_int, [_P, _int, _u64, _int, _u64]),
    "h_mmio_read": (_int, [_P, _int, _u64, _int, C.POINTER(_u64)]),
    "h_mem_read": (_int, [_P, _u64, _P, _u64]),
    "h_mem_write": (_int, [_P, _u64, _P, _u64]),
    "h_signal_msi": (_int, [_P, _u64, _u32, _u32, _u32]),
    "h_irqfd_inject_atomic": (_int, [_P, _u64, _u32, _u32]),
    "h_its_exec_cmd": (_int, [_P, C.POINTER(_u64)]),
    "h_its_dump": (_int, [_P, C.c_char_p, _int]),
    "h_vcpu_set_running": (_int, [_P, _int, _int]),
    "h_vcpu_kicks": (_int, [_P, _int]),
    "h_vcpu_flush": (_int, [_P, _int]),
    "h_vcpu_sync": (_int, [_P, _int]),
    "h_vcpu_get_lrs": (_int, [_P, _int, C.POINTER(_u64), _int]),
    "h_vcpu_set_lr": (_int, [_P, _int, _int, _u64]),
    "h_vcpu_nr_lr": (_int, []),
    "h_vcpu_ap_list": (_int, [_P, _int, C.POINTER(_u32), _int]),
    "h_lpi_list": (_int, [_P, C.POINTER(_u32), _int]),
    "h_lpi_state": (_int, [_P, _u32, C.POINTER(IrqState)]),
    "h_debug_fault": (_int, [_int]),
}
ABI_VERSION = 1


class KernelLib:
    """A loaded ``libkref.so`` with its prototypes; ``release`` names the kernel."""

    def __init__(self, path: str | os.PathLike, release: str = "?", info: dict | None = None):
        self.path = Path(path)
        self.release = release
        self.info = info or {}
        try:
            self.dll = C.CDLL(str(self.path))
        except OSError as e:
            raise KernelRefError(f"cannot load {self.path}: {e}") from None
        for name, (res, args) in _PROTOS.items():
            f = getattr(self.dll, name)
            f.restype, f.argtypes = res, args
        if self.dll.h_abi_version() != ABI_VERSION:
            raise KernelRefError(f"{self.path}: harness ABI {self.dll.h_abi_version()} "
                                 f"!= binding ABI {ABI_VERSION} (rebuild)")
        self.lpi_xa = bool(self.dll.h_kernel_has_lpi_xa())
        self.nr_lr = self.dll.h_vcpu_nr_lr()

    def __repr__(self) -> str:
        return f"KernelLib({self.release}, {self.path})"


_LOADED: dict[tuple, KernelLib] = {}


def load(source: str = "6.12", *, sanitize: bool = False, **kw) -> KernelLib:
    """Fetch (if needed), build (if needed) and load the library for a release or path.
    One instance per (library path) per process."""
    from gicsim.linux.build import build

    built = build(source, sanitize=sanitize, **kw)
    key = (str(built.path),)
    if key not in _LOADED:
        _LOADED[key] = KernelLib(built.path, built.release, built.info())
    return _LOADED[key]


@dataclass
class LR:
    """One emulated list register."""

    index: int
    value: int

    @property
    def intid(self) -> int:
        return self.value & 0xFFFFFFFF

    @property
    def priority(self) -> int:
        return (self.value >> LR_PRIORITY_SHIFT) & 0xFF

    @property
    def pending(self) -> bool:
        return bool(self.value & LR_STATE_PENDING)

    @property
    def active(self) -> bool:
        return bool(self.value & LR_STATE_ACTIVE)

    @property
    def state(self) -> str:
        return {0: "invalid", 1: "pending", 2: "active", 3: "pending+active"}[
            (self.pending and 1) | (self.active and 2)]


class Memslot:
    """Host memory backing one memslot (anonymous mmap: page-aligned, lazily backed)."""

    def __init__(self, slot: int, gpa: int, size: int, flags: int = 0):
        self.slot, self.gpa, self.size, self.flags = slot, gpa, size, flags
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._cbuf = (C.c_char * size).from_buffer(self.map)
        self.addr = C.addressof(self._cbuf)
        self.view = memoryview(self.map)

    def contains(self, gpa: int, n: int = 1) -> bool:
        return self.gpa <= gpa and gpa + n <= self.gpa + self.size

    def close(self) -> None:
        self.view.release()
        del self._cbuf
        self.map.close()


class VM:
    """One VM with a GICv3 + one ITS, run by the kernel's code.

    memslots: [(gpa, size[, flags])]; default one slot of ``ram_size`` at RAM_BASE.
    Guest-physical addresses outside every slot are holes (KVM gives ``-EFAULT``).
    """

    def __init__(self, lib: KernelLib, nr_vcpus: int = 2, *, ram_size: int = 16 << 20,
                 memslots=None, ipa_bits: int = 40, its: bool = True,
                 its_base: int | None = ITS_BASE, enable_dist: bool = True):
        self.lib, self.k = lib, lib.dll
        self.nr_vcpus = nr_vcpus
        self.kvm = None
        self.its = None
        self.slots: list[Memslot] = []
        kvm = _P()
        r = self.k.h_vm_create(nr_vcpus, ipa_bits, C.byref(kvm))
        if r:
            raise KernelRefError(f"h_vm_create({nr_vcpus} vCPUs, {ipa_bits}-bit IPA) = {r}")
        self.kvm = kvm.value
        for i, spec in enumerate(memslots or [(RAM_BASE, ram_size)]):
            gpa, size, flags = (tuple(spec) + (0,))[:3]
            ms = Memslot(i, gpa, size, flags)
            self.slots.append(ms)
            r = self.k.h_vm_add_memslot(self.kvm, i, gpa, size, ms.addr, flags)
            if r:
                self.close()
                raise KernelRefError(f"memslot {i} [{gpa:#x}+{size:#x}] = {r}")
        self.vgic = self.k.h_vgic_dev(self.kvm)
        if its:
            dev = _P()
            r = self.k.h_its_create(self.kvm, C.byref(dev))
            if r:
                self.close()
                raise KernelRefError(f"KVM_CREATE_DEVICE(ITS) = {r}")
            self.its = dev.value
            if its_base is not None:
                r = self.set_attr(self.its, GRP_ADDR, ADDR_TYPE_ITS, its_base)
                if r:
                    self.close()
                    raise KernelRefError(f"ITS base {its_base:#x} = {r}")
        self.its_base = its_base
        r = self.k.h_vgic_setup(self.kvm, DIST_BASE, REDIST_BASE)
        if r:
            self.close()
            raise KernelRefError(f"GICv3 setup = {r}")
        if its:
            r = self.set_attr(self.its, GRP_CTRL, CTRL_INIT)   # QEMU: ITS CTRL_INIT
            if r:
                self.close()
                raise KernelRefError(f"ITS CTRL_INIT = {r}")
        if enable_dist:  # the guest enables affinity routing and Group 1
            self.dist_write(GICD_CTLR, GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A, 4)

    # --- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        if self.kvm:
            self.k.h_vm_destroy(self.kvm)
            self.kvm = self.its = None
        for s in self.slots:
            s.close()
        self.slots = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # --- memory ----------------------------------------------------------------------
    @property
    def ram(self) -> memoryview:
        return self.slots[0].view

    def _slot(self, gpa: int, n: int) -> Memslot:
        for s in self.slots:
            if s.contains(gpa, n):
                return s
        raise ValueError(f"[{gpa:#x}+{n:#x}] is not inside one memslot")

    def mem(self, gpa: int, n: int) -> bytes:
        """Direct read of guest memory (no KVM semantics; must lie in one slot)."""
        s = self._slot(gpa, n)
        return bytes(s.view[gpa - s.gpa: gpa - s.gpa + n])

    def poke(self, gpa: int, data: bytes) -> None:
        """Direct write of guest memory (what the guest's CPU stores do)."""
        s = self._slot(gpa, len(data))
        s.view[gpa - s.gpa: gpa - s.gpa + len(data)] = data

    def u64(self, gpa: int) -> int:
        return int.from_bytes(self.mem(gpa, 8), "little")

    def kvm_read(self, gpa: int, n: int) -> tuple[int, bytes]:
        buf = C.create_string_buffer(n)
        r = self.k.h_mem_read(self.kvm, gpa, buf, n)
        return r, buf.raw

    def kvm_write(self, gpa: int, data: bytes) -> int:
        return self.k.h_mem_write(self.kvm, gpa, data, len(data))

    def dirty_pages(self, slot: int = 0, clear: bool = False) -> set[int]:
        """Guest page frame numbers KVM wrote (kvm_write_guest) since the last clear."""
        s = self.slots[slot]
        nwords = (s.size // 4096 + 63) // 64
        buf = (_u64 * nwords)()
        n = self.k.h_vm_dirty_log(self.kvm, slot, buf, nwords, int(clear))
        out = set()
        for w in range(min(n, nwords)):
            v = buf[w]
            while v:
                b = (v & -v).bit_length() - 1
                out.add((s.gpa >> 12) + w * 64 + b)
                v &= v - 1
        return out

    # --- device attributes -----------------------------------------------------------
    def set_attr(self, dev, group: int, attr: int, val: int = 0) -> int:
        v = _u64(val)
        return self.k.h_dev_set_attr(dev, group, attr, C.byref(v))

    def get_attr(self, dev, group: int, attr: int) -> tuple[int, int]:
        v = _u64(0)
        r = self.k.h_dev_get_attr(dev, group, attr, C.byref(v))
        return r, v.value

    def has_attr(self, dev, group: int, attr: int) -> int:
        return self.k.h_dev_has_attr(dev, group, attr)

    def its_ctrl(self, what: int) -> int:
        """ITS GRP_CTRL: CTRL_INIT, ITS_SAVE_TABLES, ITS_RESTORE_TABLES, ITS_CTRL_RESET."""
        return self.set_attr(self.its, GRP_CTRL, what)

    def save_tables(self) -> int:
        return self.its_ctrl(ITS_SAVE_TABLES)

    def restore_tables(self) -> int:
        return self.its_ctrl(ITS_RESTORE_TABLES)

    def its_reset(self) -> int:
        return self.its_ctrl(ITS_CTRL_RESET)

    def save_pending_tables(self) -> int:
        return self.set_attr(self.vgic, GRP_CTRL, SAVE_PENDING_TABLES)

    def its_reg_get(self, offset: int) -> tuple[int, int]:
        return self.get_attr(self.its, GRP_ITS_REGS, offset)

    def its_reg_set(self, offset: int, val: int) -> int:
        return self.set_attr(self.its, GRP_ITS_REGS, offset, val)

    def mpidr_attr(self, vcpu: int) -> int:
        """KVM_DEV_ARM_VGIC_V3_MPIDR field for vCPU (Aff3.Aff2.Aff1.Aff0 of reset_mpidr)."""
        aff0, aff1, aff2 = vcpu & 0xF, (vcpu >> 4) & 0xFF, (vcpu >> 12) & 0xFF
        return ((aff2 << 16) | (aff1 << 8) | aff0) << 32

    def redist_reg_get(self, vcpu: int, offset: int) -> tuple[int, int]:
        r, v = self.get_attr(self.vgic, GRP_REDIST_REGS, self.mpidr_attr(vcpu) | offset)
        return r, v & 0xFFFFFFFF

    def redist_reg_set(self, vcpu: int, offset: int, val: int) -> int:
        return self.set_attr(self.vgic, GRP_REDIST_REGS, self.mpidr_attr(vcpu) | offset,
                             val & 0xFFFFFFFF)

    def dist_reg_get(self, offset: int, vcpu: int = 0) -> tuple[int, int]:
        r, v = self.get_attr(self.vgic, GRP_DIST_REGS, self.mpidr_attr(vcpu) | offset)
        return r, v & 0xFFFFFFFF

    def dist_reg_set(self, offset: int, val: int, vcpu: int = 0) -> int:
        return self.set_attr(self.vgic, GRP_DIST_REGS, self.mpidr_attr(vcpu) | offset,
                             val & 0xFFFFFFFF)

    # --- guest MMIO ------------------------------------------------------------------
    def mmio_write(self, gpa: int, val: int, size: int = 8, vcpu: int = 0) -> int:
        return self.k.h_mmio_write(self.kvm, vcpu, gpa, size, val & ((1 << (8 * size)) - 1))

    def mmio_read(self, gpa: int, size: int = 8, vcpu: int = 0) -> tuple[int, int]:
        v = _u64(0)
        r = self.k.h_mmio_read(self.kvm, vcpu, gpa, size, C.byref(v))
        return r, v.value

    def its_write(self, off: int, val: int, size: int = 8) -> int:
        return self.mmio_write(self.its_base + off, val, size)

    def its_read(self, off: int, size: int = 8) -> int:
        r, v = self.mmio_read(self.its_base + off, size)
        if r:
            raise KernelRefError(f"ITS MMIO read {off:#x} = {r}")
        return v

    def rd_base(self, vcpu: int) -> int:
        return REDIST_BASE + vcpu * REDIST_STRIDE

    def rd_write(self, vcpu: int, off: int, val: int, size: int = 8) -> int:
        return self.mmio_write(self.rd_base(vcpu) + off, val, size, vcpu)

    def rd_read(self, vcpu: int, off: int, size: int = 8) -> int:
        r, v = self.mmio_read(self.rd_base(vcpu) + off, size, vcpu)
        if r:
            raise KernelRefError(f"GICR{vcpu} MMIO read {off:#x} = {r}")
        return v

    def dist_write(self, off: int, val: int, size: int = 4) -> int:
        return self.mmio_write(DIST_BASE + off, val, size)

    def dist_read(self, off: int, size: int = 4) -> int:
        r, v = self.mmio_read(DIST_BASE + off, size)
        if r:
            raise KernelRefError(f"GICD MMIO read {off:#x} = {r}")
        return v

    # --- a standard guest bring-up ---------------------------------------------------
    def boot_lpis(self, *, prop: int | None = None, pend: int | None = None,
                  devtbl: int | None = None, colltbl: int | None = None,
                  cmdq: int | None = None, prop_bytes: bytes | int = 0xA1,
                  id_bits: int = 16, indirect: bool = False, enable: bool = True) -> dict:
        """What a Linux guest's GICv3/ITS driver does, by guest MMIO: property table
        (prop_bytes: one byte per LPI, or a byte value for all), pending tables, EnableLPIs
        on every redistributor, BASER0/1, CBASER, GITS_CTLR.Enable. Returns the layout."""
        base = self.slots[0].gpa
        lay = dict(prop=prop or base + 0x100000, pend=pend or base + 0x800000,
                   devtbl=devtbl or base + 0x400000, colltbl=colltbl or base + 0x500000,
                   cmdq=cmdq or base + 0x10000, itt=base + 0x600000)
        nlpis = (1 << id_bits) - 8192
        data = bytes([prop_bytes]) * nlpis if isinstance(prop_bytes, int) else prop_bytes
        self.poke(lay["prop"], data[:nlpis])
        for v in range(self.nr_vcpus):
            self.rd_write(v, GICR_PROPBASER, lay["prop"] | (7 << 7) | (1 << 10) | (id_bits - 1))
            self.rd_write(v, GICR_PENDBASER, (lay["pend"] + v * 0x10000) | (7 << 7) | (1 << 10))
            if enable:
                self.rd_write(v, GICR_CTLR, 1, 4)
        self.its_write(GITS_BASER0, lay["devtbl"] | (1 << 63) | (int(indirect) << 62) | 0xF)
        self.its_write(GITS_BASER1, lay["colltbl"] | (1 << 63))
        self.its_write(GITS_CBASER, lay["cmdq"] | (1 << 63) | 0xF)   # 64 KiB queue
        if enable:
            self.its_write(GITS_CTLR, 1, 4)
        return lay

    def pendbase(self, vcpu: int) -> int:
        return self.rd_read(vcpu, GICR_PENDBASER) & ((1 << 52) - 1) & ~0xFFFF

    # --- commands --------------------------------------------------------------------
    def exec_cmd(self, words) -> int:
        """Run one command directly; returns 0, an E_ITS_* code or -errno."""
        arr = (_u64 * 4)(*[int(w) & (2**64 - 1) for w in words])
        return self.k.h_its_exec_cmd(self.its, arr)

    def queue(self, *cmds) -> int:
        """Guest path: append to the command queue, write GITS_CWRITER. Returns the
        MMIO result (the per-command results are dropped, as in KVM)."""
        cbaser = self.its_read(GITS_CBASER)
        base = cbaser & ((1 << 52) - 1) & ~0xFFF
        qsize = ((cbaser & 0xFF) + 1) << 12
        w = self.its_read(GITS_CWRITER)
        for c in cmds:
            self.poke(base + w, cmd_bytes(c))
            w = (w + 32) % qsize
        return self.its_write(GITS_CWRITER, w)

    # --- interrupts ------------------------------------------------------------------
    def doorbell(self) -> int:
        return self.its_base + GITS_TRANSLATER

    def signal_msi(self, devid: int, eventid: int, *, address: int | None = None,
                   flags: int = MSI_VALID_DEVID) -> int:
        """KVM_SIGNAL_MSI: 1 delivered, 0 blocked (unmapped), -errno."""
        addr = self.doorbell() if address is None else address
        return self.k.h_signal_msi(self.kvm, addr, eventid, devid, flags)

    def irqfd_inject(self, devid: int, eventid: int, *, address: int | None = None) -> int:
        """irqfd fast path: 0 on a translation-cache hit, -EWOULDBLOCK (-11) otherwise."""
        addr = self.doorbell() if address is None else address
        return self.k.h_irqfd_inject_atomic(self.kvm, addr, eventid, devid)

    # --- vCPUs -----------------------------------------------------------------------
    def set_running(self, vcpu: int, running: bool = True) -> int:
        return self.k.h_vcpu_set_running(self.kvm, vcpu, int(running))

    def kicks(self, vcpu: int) -> int:
        return self.k.h_vcpu_kicks(self.kvm, vcpu)

    def flush(self, vcpu: int) -> int:
        """Guest entry (kvm_vgic_flush_hwstate): returns the number of LRs used."""
        return self.k.h_vcpu_flush(self.kvm, vcpu)

    def sync(self, vcpu: int) -> int:
        """Guest exit (kvm_vgic_sync_hwstate): fold LRs, prune the ap_list."""
        return self.k.h_vcpu_sync(self.kvm, vcpu)

    def lrs(self, vcpu: int) -> list[LR]:
        buf = (_u64 * 16)()
        n = self.k.h_vcpu_get_lrs(self.kvm, vcpu, buf, 16)
        return [LR(i, buf[i]) for i in range(max(n, 0))]

    def set_lr(self, vcpu: int, index: int, value: int) -> int:
        return self.k.h_vcpu_set_lr(self.kvm, vcpu, index, value)

    def ack(self, vcpu: int) -> int:
        """Guest reads ICC_IAR1_EL1: the highest-priority pending LR (lowest value; ties:
        lowest LR index) becomes active. Returns its INTID, or SPURIOUS."""
        cands = [lr for lr in self.lrs(vcpu) if lr.pending and not lr.active]
        if not cands:
            return SPURIOUS
        lr = min(cands, key=lambda x: (x.priority, x.index))
        self.set_lr(vcpu, lr.index, (lr.value & ~LR_STATE_PENDING) | LR_STATE_ACTIVE)
        return lr.intid

    def eoi(self, vcpu: int, intid: int) -> bool:
        """Guest writes ICC_EOIR1_EL1 (EOImode 0: drop priority and deactivate)."""
        for lr in self.lrs(vcpu):
            if lr.active and lr.intid == intid:
                self.set_lr(vcpu, lr.index, lr.value & ~LR_STATE_ACTIVE)
                return True
        return False

    def deliver(self, vcpu: int, max_rounds: int = 1024) -> list[int]:
        """Run the vCPU until it has nothing left to take: entry, ack + EOI every pending
        LR in IAR order, exit; repeat (more LPIs than LRs need several entries).
        Returns the INTIDs the guest acknowledged, in order."""
        got: list[int] = []
        for _ in range(max_rounds):
            self.flush(vcpu)
            n = 0
            while (intid := self.ack(vcpu)) != SPURIOUS:
                got.append(intid)
                self.eoi(vcpu, intid)
                n += 1
            self.sync(vcpu)
            if not n:
                break
        return got

    def ap_list(self, vcpu: int) -> list[int]:
        buf = (_u32 * 4096)()
        n = self.k.h_vcpu_ap_list(self.kvm, vcpu, buf, 4096)
        return list(buf[: min(n, 4096)])

    # --- observation -----------------------------------------------------------------
    def lpis(self) -> list[int]:
        buf = (_u32 * 65536)()
        n = self.k.h_lpi_list(self.kvm, buf, 65536)
        return list(buf[: min(n, 65536)])

    def lpi(self, intid: int) -> dict | None:
        s = IrqState()
        if self.k.h_lpi_state(self.kvm, intid, C.byref(s)):
            return None
        return dict(intid=s.intid, target=s.target_vcpu, queued=s.queued_vcpu,
                    refcount=s.refcount, pending=bool(s.pending_latch), enabled=bool(s.enabled),
                    priority=s.priority, group=s.group, active=bool(s.active))

    def lpi_records(self) -> dict[int, dict]:
        return {i: self.lpi(i) for i in self.lpis()}

    def its_dump(self) -> dict:
        size = 1 << 16
        while True:
            buf = C.create_string_buffer(size)
            n = self.k.h_its_dump(self.its, buf, size)
            if n >= 0:
                break
            size *= 4
        out = dict(state={}, devices={}, ites={}, collections={}, cache={})
        for line in buf.raw[:n].decode().splitlines():
            f = line.split()
            num = [int(x, 0) for x in f[1:]]
            if f[0] == "S":
                out["state"] = dict(zip(("enabled", "cbaser", "creadr", "cwriter",
                                         "baser_device", "baser_coll", "abi_rev"), num, strict=True))
            elif f[0] == "D":
                out["devices"][num[0]] = dict(nr_eventid_bits=num[1], itt=num[2])
            elif f[0] == "E":
                out["ites"][(num[0], num[1])] = dict(intid=num[2], icid=num[3])
            elif f[0] == "C":
                out["collections"][num[0]] = num[1]
            elif f[0] == "T":
                out["cache"][(num[0], num[1])] = num[2]
        return out

    def kvm_bugs(self) -> int:
        return self.k.h_kvm_bugs()
