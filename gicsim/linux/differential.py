"""Differential driver: the same stimulus stream to the Python model (``gicsim.kvm``) and to
the kernel library, compared step by step.

A stream is a list of steps (plain tuples, picklable, printable with :func:`describe`):

====================================  ===============================================  =========
step                                  what both sides do                               area
====================================  ===============================================  =========
``("cmd", (dw0, dw1, dw2, dw3))``     one command, direct (``vgic_its_handle_command``) commands
``("queue", (cmd, ...))``             commands into the guest queue + ``GITS_CWRITER``  commands
``("msi", devid, eventid)``           ``KVM_SIGNAL_MSI`` (cache first, then uncached):  msi
                                      ``1`` / ``0`` / ``-errno``
``("irqfd", devid, eventid)``         the cached-only path (``vgic_its_inject_cached_   msi
                                      translation``): ``0`` hit / ``-EWOULDBLOCK``
``("its_get", off)``                  ``KVM_GET_DEVICE_ATTR(GRP_ITS_REGS)``             registers
``("its_set", off, val)``             ``KVM_SET_DEVICE_ATTR(GRP_ITS_REGS)``             registers
``("its_read", off, size)``           guest MMIO read of the ITS frame                  registers
``("its_ctlr", val)``                 guest MMIO write of ``GITS_CTLR``                 registers
``("rd_get", vcpu, off)``             ``KVM_GET_DEVICE_ATTR(GRP_REDIST_REGS)``          registers
``("rd_set", vcpu, off, val)``        ``KVM_SET_DEVICE_ATTR(GRP_REDIST_REGS)``          registers
``("lpis", vcpu, val)``               guest MMIO write of ``GICR_CTLR`` (EnableLPIs)    registers
``("running", vcpu, on)``             the vCPU enters/leaves ``KVM_RUN`` (vcpu->mutex)  ebusy
``("save",)``                         ``KVM_DEV_ARM_ITS_SAVE_TABLES``                   save
``("save_pending",)``                 ``KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES``          save
``("restore", corruption)``           a fresh VM: RAM copied (+ one corrupted entry),   restore
                                      registers in QEMU's order, RESTORE_TABLES, CTLR;
                                      the stream goes on in the new VM
``("deliver", vcpu)``                 the guest runs: acknowledge + EOI until spurious  delivery
====================================  ===============================================  =========

After every step both sides are compared on: the step's return (ints/errno names/E_ITS_*
names/register values), the ITS state (devices, ITEs, collections, the translation cache,
the ITS registers), the LPI records (target, enabled, priority, pending, active, queued
vCPU; a record's presence is its refcount-visible lifetime) and the guest-memory bytes of
the device table, the ITTs, the collection table and the pending tables. A return that is
``-EBUSY`` on one side only is classified ``ebusy`` whatever the step.

Normalisations (only where the model abstracts on purpose; each is marked ``# NORMALISE``):
the model reports an MSI's fate as a reason string (for the trace), mapped here to what
``vgic_its_inject_msi`` returns; the model raises typed ``KvmError``\\ s where the kernel
returns ``-errno``; the model has no distributor MMIO (``GICD_CTLR`` is set on the kernel
side only: it gates nothing LPIs do) and no list registers (its ``acknowledge``/``eoi`` is
the guest's IAR/EOIR with the LR round trip folded in, so only the acknowledged INTIDs and
their order are compared, not LR contents). Raw refcounts are not compared: the kernel's
counts an ap_list reference, the ITE and the cache entry; what the refcount makes visible
(whether the record still exists) is.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field
from typing import Any

from gicsim.linux import lib as L

NR_VCPUS = 3
RAM_SIZE = 16 << 20
EBUSY, EWOULDBLOCK = 16, 11
AREAS = ("commands", "msi", "registers", "save", "restore", "ebusy", "delivery", "crash")
STEP_AREA = {"cmd": "commands", "queue": "commands", "msi": "msi", "irqfd": "msi",
             "its_get": "registers", "its_set": "registers", "its_read": "registers",
             "its_ctlr": "registers", "rd_get": "registers", "rd_set": "registers",
             "lpis": "registers", "running": "ebusy", "save": "save", "save_pending": "save",
             "restore": "restore", "deliver": "delivery"}
#: ITS registers userspace saves and restores, in QEMU's kvm_arm_its_post_load order
ITS_SAVED = (L.GITS_IIDR, L.GITS_CBASER, L.GITS_CREADR, L.GITS_CWRITER, L.GITS_BASER0,
             L.GITS_BASER1)
RD_SAVED = (L.GICR_PROPBASER, L.GICR_PROPBASER + 4, L.GICR_PENDBASER, L.GICR_PENDBASER + 4)
#: guest-memory regions compared (offsets from RAM_BASE, as VM.boot_lpis lays them out)
NR_DEVS = 4
REGIONS = {"devtbl": (0x400000, 0x1000), "colltbl": (0x500000, 0x1000),
           **{f"itt{d}": (0x600000 + d * 0x1000, 0x1000) for d in range(NR_DEVS)},
           **{f"pend{v}": (0x800000 + v * 0x10000, 0x2000) for v in range(NR_VCPUS)}}
ITT = L.RAM_BASE + 0x600000


def errname(ret: int) -> str:
    return _errno.errorcode.get(-ret, str(ret))


def norm_ret(ret: int) -> int | str:
    """An ioctl/MMIO result: non-negative ints as they are, -errno as its name."""
    return errname(ret) if ret < 0 else ret


def norm_cmd(ret: int) -> str | None:
    if ret == 0:
        return None
    if ret < 0:
        return errname(ret)
    return L.E_ITS.get(ret, hex(ret))


def region_addr(name: str) -> int:
    return L.RAM_BASE + REGIONS[name][0]


def corruption_addr(c) -> int:
    """("dte", devid, v) / ("ite", devid, ev, v) / ("cte", idx, v) / ("pend", vcpu, byte, v)"""
    kind = c[0]
    if kind == "dte":
        return region_addr("devtbl") + 8 * c[1]
    if kind == "ite":
        return region_addr(f"itt{c[1]}") + 8 * c[2]
    if kind == "cte":
        return region_addr("colltbl") + 8 * c[1]
    return region_addr(f"pend{c[1]}") + c[2]


def corruption_bytes(c) -> bytes:
    return c[-1].to_bytes(1 if c[0] == "pend" else 8, "little")


# ======================================================================= kernel side ====
class KernelSide:
    def __init__(self, k: L.KernelLib, prop: bytes | None = None, vm: L.VM | None = None):
        self.k = k
        self.vm = vm or L.VM(k, NR_VCPUS, ram_size=RAM_SIZE)
        if prop is not None:
            self.lay = self.vm.boot_lpis(prop_bytes=prop)

    def cmd(self, words):
        return norm_cmd(self.vm.exec_cmd(words))

    def queue(self, cmds):
        """As VM.queue, but a queue outside every memslot (CBASER never restored) loses the
        guest's stores instead of failing the harness."""
        vm = self.vm
        cbaser = vm.its_read(L.GITS_CBASER)
        base = cbaser & ((1 << 52) - 1) & ~0xFFF
        qsize = ((cbaser & 0xFF) + 1) << 12
        w = vm.its_read(L.GITS_CWRITER)
        for c in cmds:
            try:
                vm.poke(base + w, L.cmd_bytes(c))
            except ValueError:
                pass
            w = (w + 32) % qsize
        return norm_ret(vm.its_write(L.GITS_CWRITER, w))

    def msi(self, dev, ev):
        return norm_ret(self.vm.signal_msi(dev, ev))

    def irqfd(self, dev, ev):
        return norm_ret(self.vm.irqfd_inject(dev, ev))

    def its_get(self, off):
        r, v = self.vm.its_reg_get(off)
        return (norm_ret(r), v if r == 0 else None)

    def its_set(self, off, val):
        return norm_ret(self.vm.its_reg_set(off, val))

    def its_read(self, off, size):
        r, v = self.vm.mmio_read(self.vm.its_base + off, size)
        return (norm_ret(r), v if r == 0 else None)

    def its_ctlr(self, val):
        return norm_ret(self.vm.its_write(L.GITS_CTLR, val, 4))

    def rd_get(self, vcpu, off):
        r, v = self.vm.redist_reg_get(vcpu, off)
        return (norm_ret(r), v if r == 0 else None)

    def rd_set(self, vcpu, off, val):
        return norm_ret(self.vm.redist_reg_set(vcpu, off, val))

    def lpis(self, vcpu, val):
        return norm_ret(self.vm.rd_write(vcpu, L.GICR_CTLR, val, 4))

    def running(self, vcpu, on):
        return norm_ret(self.vm.set_running(vcpu, on))

    def save(self):
        return norm_ret(self.vm.save_tables())

    def save_pending(self):
        return norm_ret(self.vm.save_pending_tables())

    def restore(self):
        return norm_ret(self.vm.restore_tables())

    def deliver(self, vcpu):
        return tuple(self.vm.deliver(vcpu))

    def mem_read(self, gpa, n):
        return self.vm.mem(gpa, n)

    def migrate(self, corruption):
        """A fresh VM from this one's RAM and saved registers; returns (side, returns)."""
        src = self.vm
        its = {off: src.its_reg_get(off) for off in (*ITS_SAVED, L.GITS_CTLR)}
        rd = {(v, off): src.redist_reg_get(v, off) for v in range(NR_VCPUS)
              for off in (*RD_SAVED, L.GICR_CTLR)}
        dst = KernelSide(self.k)
        dst.lay = getattr(self, "lay", {})
        dst.vm.ram[:] = src.ram
        if corruption is not None:
            dst.vm.poke(corruption_addr(corruption), corruption_bytes(corruption))
        rets = _restore_sequence(dst, its, rd)
        return dst, rets

    def state(self) -> dict:
        d = self.vm.its_dump()
        lpis = {i: (r["target"], r["enabled"], r["priority"], r["pending"], r["active"],
                    r["queued"]) for i, r in self.vm.lpi_records().items()}
        return dict(devices={k: (v["nr_eventid_bits"], v["itt"]) for k, v in d["devices"].items()},
                    ites={k: (v["intid"], v["icid"]) for k, v in d["ites"].items()},
                    collections=dict(d["collections"]),
                    cache={(dv, ev, i) for (dv, ev), i in d["cache"].items()},
                    its_regs=d["state"], lpis=lpis)

    def close(self):
        self.vm.close()


def _restore_sequence(side, its: dict, rd: dict) -> dict:
    """What QEMU does on the destination (kvm_arm_gicv3_put, kvm_arm_its_post_load): every
    PROPBASER/PENDBASER half, then each GICR_CTLR; ITS IIDR, CBASER, CREADR, CWRITER, BASERs,
    RESTORE_TABLES, GITS_CTLR. Registers the source could not read are not written.
    Returns {"restore": RESTORE_TABLES' result, "ctlr": GITS_CTLR's, "regs": the others}."""
    out = []
    for (v, off), (r, val) in rd.items():
        if off != L.GICR_CTLR and r in (0, None):
            out.append(side.rd_set(v, off, val))
    for (v, off), (r, val) in rd.items():
        if off == L.GICR_CTLR and r in (0, None):
            out.append(side.rd_set(v, off, val))
    for off in ITS_SAVED:
        r, val = its[off]
        if r in (0, None):
            out.append(side.its_set(off, val))
    restored = side.restore()
    r, val = its[L.GITS_CTLR]
    ctlr = side.its_set(L.GITS_CTLR, val) if r in (0, None) else "skipped"
    return dict(restore=restored, ctlr=ctlr, regs=tuple(out))


# ======================================================================== model side ====
class ModelSide:
    """The Python model, built as QEMU builds a VM (devices, ITS base, CTRL_INIT) and
    brought up with the kernel side's register values (so table addresses agree)."""

    def __init__(self, prop: bytes | None = None, lay: dict | None = None,
                 kernel_vm: L.VM | None = None, mem=None, release: str | None = None):
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
        from gicsim.kvm.releases import RELEASES, KernelProfile
        from gicsim.kvm.vgic_init import Vgic

        self.mem = mem or GuestMemory(RAM_SIZE)
        # the model runs the kernel side's release (its KernelProfile defaults)
        if release is None and kernel_vm is not None:
            release = getattr(kernel_vm.lib, "release", None)
        self.release = release if release in RELEASES else None
        profile = KernelProfile(release=self.release) if self.release else KernelProfile()
        self.vgic = Vgic(NR_VCPUS, self.mem, profile)
        self.its = VgicIts(self.vgic)
        self.itsdev = ItsDevice(self.its)
        self.gic = GicV3Device(self.vgic)
        self.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
        self.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, L.ITS_BASE)
        self.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
        self.lay = lay
        if prop is not None and lay is not None and kernel_vm is not None:
            self.mem.write(lay["prop"], prop)
            for v in range(NR_VCPUS):
                for off in RD_SAVED:
                    self.rd_set(v, off, kernel_vm.redist_reg_get(v, off)[1])
                self.lpis(v, 1)
            for off in (L.GITS_BASER0, L.GITS_BASER1, L.GITS_CBASER):
                self.its.its_write(off, 8, kernel_vm.its_read(off))
            self.its.its_write(L.GITS_CTLR, 4, 1)

    # NORMALISE: the model raises typed KvmErrors; the kernel returns -errno
    @staticmethod
    def _call(fn, *args):
        from gicsim.kvm.errors import KvmError

        try:
            return fn(*args), None
        except KvmError as e:
            return None, e.errno

    def cmd(self, words):
        from gicsim.kvm.commands import decode_cmd

        return self.its.vgic_its_handle_command(decode_cmd(L.cmd_bytes(words)))

    def queue(self, cmds):
        its = self.its
        from gicsim.kvm.its import GITS_CBASER_ADDRESS, ITS_CMD_BUFFER_SIZE

        base, qsize = GITS_CBASER_ADDRESS(its.cbaser), ITS_CMD_BUFFER_SIZE(its.cbaser)
        w = its.cwriter
        from gicsim.kvm.errors import EFAULT

        for c in cmds:
            try:
                self.mem.write(base + w, L.cmd_bytes(c))
            except EFAULT:
                pass  # a guest store to a hole
            w = (w + 32) % qsize
        its.its_write(L.GITS_CWRITER, 8, w)
        return 0

    def msi(self, dev, ev):
        from gicsim.kvm import its as model_its

        # NORMALISE: the model names the MSI's fate (for the trace); vgic_its_inject_msi
        # returns 1 (accepted), 0 (E_ITS_INT_UNMAPPED_INTERRUPT: blocked), -EBUSY (ITS or
        # the target's LPIs disabled: vgic_its_resolve_lpi)
        why = self.its.vgic_its_inject_msi(dev, ev)
        return {model_its.MSI_ACCEPTED: 1, model_its.MSI_UNMAPPED: 0,
                getattr(model_its, "MSI_NO_ITS", "<none>"): "EINVAL"}.get(why, "EBUSY")

    def irqfd(self, dev, ev):
        fn: Any = self.its.vgic_its_inject_cached_translation
        try:
            hit = fn(dev, ev)
        except TypeError:  # the older model API took the cache key
            hit = fn(dev << 16 | ev)
        return 0 if hit is not None else errname(-EWOULDBLOCK)

    def its_get(self, off):
        from gicsim.kvm.kvm_device import KVM_DEV_ARM_VGIC_GRP_ITS_REGS

        v, err = self._call(self.itsdev.get_attr, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off)
        return (err or 0, v if err is None else None)

    def its_set(self, off, val):
        from gicsim.kvm.kvm_device import KVM_DEV_ARM_VGIC_GRP_ITS_REGS

        _, err = self._call(self.itsdev.set_attr, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, val)
        return err or 0

    def its_read(self, off, size):
        return (0, self.its.its_read(off, size))

    def its_ctlr(self, val):
        self.its.its_write(L.GITS_CTLR, 4, val)
        return 0

    def rd_get(self, vcpu, off):
        from gicsim.kvm.kvm_device import KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr

        v, err = self._call(self.gic.get_attr, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
                            redist_attr(vcpu, off))
        return (err or 0, v if err is None else None)

    def rd_set(self, vcpu, off, val):
        from gicsim.kvm.kvm_device import KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr

        _, err = self._call(self.gic.set_attr, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
                            redist_attr(vcpu, off), val & 0xFFFFFFFF)
        return err or 0

    def lpis(self, vcpu, val):
        self.vgic.redist_write(vcpu, L.GICR_CTLR, 4, val)
        return 0

    def running(self, vcpu, on):
        self.vgic.vcpu_mutex_held[vcpu] = bool(on)
        return 0

    def save(self):
        from gicsim.kvm.kvm_device import KVM_DEV_ARM_ITS_SAVE_TABLES, KVM_DEV_ARM_VGIC_GRP_CTRL

        return self._call(self.itsdev.set_attr, KVM_DEV_ARM_VGIC_GRP_CTRL,
                          KVM_DEV_ARM_ITS_SAVE_TABLES)[1] or 0

    def save_pending(self):
        from gicsim.kvm.kvm_device import (
            KVM_DEV_ARM_VGIC_GRP_CTRL,
            KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
        )

        return self._call(self.gic.set_attr, KVM_DEV_ARM_VGIC_GRP_CTRL,
                          KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)[1] or 0

    def restore(self):
        from gicsim.kvm.kvm_device import KVM_DEV_ARM_ITS_RESTORE_TABLES, KVM_DEV_ARM_VGIC_GRP_CTRL

        return self._call(self.itsdev.set_attr, KVM_DEV_ARM_VGIC_GRP_CTRL,
                          KVM_DEV_ARM_ITS_RESTORE_TABLES)[1] or 0

    def deliver(self, vcpu, max_irqs: int = 4096):
        # NORMALISE: no list registers in the model; acknowledge() is ICC_IAR1 read after
        # the flush (kvm_vgic_flush_hwstate) and eoi() the EOIR write + sync
        got: list[int] = []
        vgic = self.vgic
        while len(got) < max_irqs:
            irq = vgic.acknowledge(vcpu)
            if irq is None:
                break
            got.append(irq.intid)
            vgic.eoi(vcpu, irq)
        return tuple(got)

    def mem_read(self, gpa, n):
        return self.mem.read(gpa, n)

    def migrate(self, corruption):
        from gicsim.kvm.memory import GuestMemory

        its = {off: self.its_get(off) for off in (*ITS_SAVED, L.GITS_CTLR)}
        rd = {(v, off): self.rd_get(v, off) for v in range(NR_VCPUS)
              for off in (*RD_SAVED, L.GICR_CTLR)}
        mem = GuestMemory(self.mem.size, self.mem.base)
        self.mem.copy_pages_to(mem)
        dst = type(self)(mem=mem, release=self.release)
        dst.lay = self.lay
        if corruption is not None:
            mem.write(corruption_addr(corruption), corruption_bytes(corruption))
        return dst, _restore_sequence(dst, its, rd)

    def state(self) -> dict:
        from gicsim.kvm.its import COLLECTION_NOT_MAPPED

        its = self.its
        cols = {c.collection_id: (-1 if c.target_addr == COLLECTION_NOT_MAPPED else c.target_addr)
                for c in its.collection_list.values()}
        lpis = {i: (-1 if r.target_vcpu is None else r.target_vcpu, bool(r.enabled), r.priority,
                    bool(r.pending_latch), bool(r.active), -1 if r.vcpu is None else r.vcpu)
                for i, r in self.vgic.lpi_xa.items()}
        regs = dict(enabled=int(its.enabled), cbaser=its.cbaser, creadr=its.creadr,
                    cwriter=its.cwriter, baser_device=its.baser_device_table,
                    baser_coll=its.baser_coll_table, abi_rev=its.abi_rev)
        return dict(devices={d.device_id: (d.num_eventid_bits, d.itt_addr)
                             for d in its.device_list},
                    ites=its.mappings(), collections=cols,
                    cache={(k >> 16, k & 0xFFFF, irq.intid)
                           for k, irq in its.translation_cache.items()},
                    its_regs=regs, lpis=lpis)

    def close(self):
        pass


# =================================================================== comparing ====
@dataclass
class Disagreement:
    step: int
    op: tuple
    area: str            # commands/msi/registers/save/restore/ebusy/delivery/crash
    what: str            # "return" or the state part: devices/ites/.../memory:<region>
    kernel: object
    model: object

    def __str__(self) -> str:
        return (f"step {self.step} {describe(self.op)}: [{self.area}] {self.what}: "
                f"kernel={_short(self.kernel)} model={_short(self.model)}")

    def as_dict(self) -> dict:
        return dict(step=self.step, op=describe(self.op), area=self.area, what=self.what,
                    kernel=_short(self.kernel, 2000), model=_short(self.model, 2000))


def _short(x, n: int = 300) -> str:
    s = repr(x)
    return s if len(s) <= n else s[: n - 3] + "..."


@dataclass
class Result:
    steps: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def area(self) -> str | None:
        return self.disagreements[0].area if self.disagreements else None


CMD_NAMES = {L.MOVI: "MOVI", L.INT: "INT", L.CLEAR: "CLEAR", L.SYNC: "SYNC", L.MAPD: "MAPD",
             L.MAPC: "MAPC", L.MAPTI: "MAPTI", L.MAPI: "MAPI", L.INV: "INV",
             L.INVALL: "INVALL", L.MOVALL: "MOVALL", L.DISCARD: "DISCARD"}


def describe_cmd(w) -> str:
    op = w[0] & 0xFF
    dev, d1, d2 = w[0] >> 32, w[1], w[2]
    ev, pintid, icid = d1 & 0xFFFFFFFF, d1 >> 32, d2 & 0xFFFF
    rd, valid = (d2 >> 16) & ((1 << 36) - 1), d2 >> 63
    body = {
        L.MAPD: lambda: f"dev={dev} size={d1 & 0x1F} itt={d2 & ((1 << 52) - 1) & ~0xFF:#x} V={valid}",
        L.MAPC: lambda: f"icid={icid} rd={rd} V={valid}",
        L.MAPTI: lambda: f"dev={dev} ev={ev} intid={pintid} icid={icid}",
        L.MAPI: lambda: f"dev={dev} ev={ev} icid={icid}",
        L.MOVI: lambda: f"dev={dev} ev={ev} icid={icid}",
        L.INVALL: lambda: f"icid={icid}",
        L.SYNC: lambda: f"rd={rd}",
        L.MOVALL: lambda: f"rd1={rd} rd2={(w[3] >> 16) & ((1 << 36) - 1)}",
    }.get(op, lambda: f"dev={dev} ev={ev}")()
    return f"{CMD_NAMES.get(op, hex(op))}({body})"


def describe(op) -> str:
    kind = op[0]
    if kind == "cmd":
        return describe_cmd(op[1])
    if kind == "queue":
        return "queue[" + ", ".join(describe_cmd(c) for c in op[1]) + "]"
    args = ", ".join(hex(a) if isinstance(a, int) and a > 9 else repr(a) for a in op[1:])
    return f"{kind}({args})"


def compare(i: int, op, ka, mb, ks: KernelSide, ms: ModelSide, res: Result,
            mem: bool = True) -> None:
    area = STEP_AREA[op[0]]
    if ka != mb:
        busy = "EBUSY" in repr(ka) or "EBUSY" in repr(mb)
        res.disagreements.append(Disagreement(i, op, "ebusy" if busy else area, "return", ka, mb))
        return
    sa, sb = ks.state(), ms.state()
    for part in sa:
        if sa[part] != sb[part]:
            res.disagreements.append(Disagreement(i, op, area, part, *_diff(sa[part], sb[part])))
            return
    if mem:
        for name, (off, n) in REGIONS.items():
            a = ks.mem_read(L.RAM_BASE + off, n)
            b = ms.mem_read(L.RAM_BASE + off, n)
            if a != b:
                j = next(x for x in range(n) if a[x] != b[x]) & ~7
                res.disagreements.append(Disagreement(
                    i, op, "save" if area not in ("restore", "commands") else area,
                    f"memory:{name}+{j:#x}", a[j:j + 8].hex(), b[j:j + 8].hex()))
                return


def _diff(a, b):
    """Only the differing entries of two dicts/sets (the full objects otherwise)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=repr)
        da = {k: a.get(k, "<absent>") for k in keys if a.get(k, "<absent>") != b.get(k, "<absent>")}
        db = {k: b.get(k, "<absent>") for k in da}
        return da, db
    if isinstance(a, set) and isinstance(b, set):
        return sorted(a - b, key=repr), sorted(b - a, key=repr)
    return a, b


def run_stream(k: L.KernelLib, stream, prop: bytes | None = None, model_cls=ModelSide,
               stop_at_first: bool = True, mem: bool = True) -> Result:
    prop = prop if prop is not None else bytes([0xA1]) * (65536 - 8192)
    ks = KernelSide(k, prop)
    ms = model_cls(prop, ks.lay, ks.vm)
    res = Result()
    try:
        for i, op in enumerate(stream):
            res.steps = i + 1
            kind = op[0]
            if kind == "restore":
                nk, ka = ks.migrate(op[1])
                try:
                    nm, mb = ms.migrate(op[1])
                except Exception as e:
                    nk.close()
                    res.disagreements.append(Disagreement(
                        i, op, "restore", "return", ka, f"model raised {type(e).__name__}: {e}"))
                    break
                ks.close()
                ms.close()
                ks, ms = nk, nm
            else:
                ka = getattr(ks, kind)(*op[1:])
                try:
                    mb = getattr(ms, kind)(*op[1:])
                except Exception as e:  # a model bug is a disagreement, not a crash
                    mb = f"model raised {type(e).__name__}: {e}"
            compare(i, op, ka, mb, ks, ms, res, mem)
            if res.disagreements and stop_at_first:
                break
    finally:
        ks.close()
        ms.close()
    return res


def itt_addr(lay: dict, devid: int) -> int:
    return lay["itt"] + devid * 0x1000


def minimise(k: L.KernelLib, stream, area: str | None = None, model_cls=ModelSide,
             max_rounds: int = 8) -> list:
    """Greedy one-step deletion until no single step can go (after hypothesis' own
    shrinking, which cannot split the fixed prologue): the result still disagrees in
    ``area`` (default: the area of its first disagreement)."""
    stream = list(stream)
    first = run_stream(k, stream, model_cls=model_cls)
    if not first.disagreements:
        return stream
    area = area or first.area
    stream = stream[: first.disagreements[0].step + 1] if first.area == area else stream
    for _ in range(max_rounds):
        changed = False
        i = len(stream) - 1
        while i >= 0:
            cand = stream[:i] + stream[i + 1:]
            if cand and run_stream(k, cand, model_cls=model_cls).area == area:
                stream, changed = cand, True
            i -= 1
        if not changed:
            break
    return stream
