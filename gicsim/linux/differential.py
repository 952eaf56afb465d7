"""Differential driver: the same stimulus stream to the Python model (``gicsim.kvm``) and to
the kernel library, compared step by step.

Covered so far: ITS command streams on the direct path (return code: ``None`` / the
E_ITS_* name / the errno name), then after every step the normalised ITS state (devices,
ITEs, collections) and the LPI records (target, enabled, priority, pending). Both sides are
brought up with the same register values through the userspace paths (REDIST_REGS,
ITS MMIO) and the same property table, so table addresses and limits agree.

Not yet compared (see the report): MSIs, register read-backs, table bytes after
SAVE_TABLES/SAVE_PENDING_TABLES, RESTORE_TABLES images, LR delivery.

A stream is a list of ``("cmd", (dw0, dw1, dw2, dw3))`` steps.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field

from gicsim.linux import lib as L

NR_VCPUS = 3
RAM_SIZE = 16 << 20


def _norm_kernel(ret: int) -> str | None:
    if ret == 0:
        return None
    if ret < 0:
        return _errno.errorcode.get(-ret, str(ret))
    return L.E_ITS.get(ret, hex(ret))


class KernelSide:
    def __init__(self, k: L.KernelLib, prop: bytes):
        self.vm = L.VM(k, NR_VCPUS, ram_size=RAM_SIZE)
        self.lay = self.vm.boot_lpis(prop_bytes=prop)

    def cmd(self, words) -> str | None:
        return _norm_kernel(self.vm.exec_cmd(words))

    def state(self) -> dict:
        d = self.vm.its_dump()
        lpis = {i: (r["target"], r["enabled"], r["priority"], r["pending"])
                for i, r in self.vm.lpi_records().items()}
        return dict(devices={k: (v["nr_eventid_bits"], v["itt"]) for k, v in d["devices"].items()},
                    ites={k: (v["intid"], v["icid"]) for k, v in d["ites"].items()},
                    collections=dict(d["collections"]), lpis=lpis)

    def close(self):
        self.vm.close()


class ModelSide:
    """The Python model, configured with the kernel side's register values."""

    def __init__(self, prop: bytes, lay: dict, kernel_vm: L.VM):
        from gicsim.kvm.its import VgicIts
        from gicsim.kvm.kvm_device import (
            KVM_DEV_ARM_VGIC_CTRL_INIT,
            KVM_DEV_ARM_VGIC_GRP_ADDR,
            KVM_DEV_ARM_VGIC_GRP_CTRL,
            KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
            KVM_VGIC_ITS_ADDR_TYPE,
            GicV3Device,
            ItsDevice,
            redist_attr,
        )
        from gicsim.kvm.memory import GuestMemory
        from gicsim.kvm.vgic_init import Vgic

        self.mem = GuestMemory(RAM_SIZE)
        self.vgic = Vgic(NR_VCPUS, self.mem)
        self.its = VgicIts(self.vgic)
        self.itsdev = ItsDevice(self.its)
        self.gic = GicV3Device(self.vgic)
        self.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
        self.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, L.ITS_BASE)
        self.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
        self.mem.write(lay["prop"], prop)
        for v in range(NR_VCPUS):
            for off in (L.GICR_PROPBASER, L.GICR_PROPBASER + 4, L.GICR_PENDBASER,
                        L.GICR_PENDBASER + 4):
                val = kernel_vm.redist_reg_get(v, off)[1]
                self.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(v, off), val)
            self.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, redist_attr(v, L.GICR_CTLR), 1)
        for off in (L.GITS_BASER0, L.GITS_BASER1, L.GITS_CBASER):
            self.its.its_write(off, 8, kernel_vm.its_read(off))
        self.its.its_write(L.GITS_CTLR, 4, 1)

    def cmd(self, words) -> str | None:
        from gicsim.kvm.commands import decode_cmd

        return self.its.vgic_its_handle_command(decode_cmd(L.cmd_bytes(words)))

    def state(self) -> dict:
        from gicsim.kvm.its import COLLECTION_NOT_MAPPED

        its = self.its
        cols = {c.collection_id: (-1 if c.target_addr == COLLECTION_NOT_MAPPED else c.target_addr)
                for c in its.collection_list.values()}
        lpis = {i: (-1 if r.target_vcpu is None else r.target_vcpu, bool(r.enabled), r.priority,
                    bool(r.pending_latch)) for i, r in self.vgic.lpi_xa.items()}
        return dict(devices={d.device_id: (d.num_eventid_bits, d.itt_addr) for d in its.device_list},
                    ites=its.mappings(), collections=cols, lpis=lpis)

    def close(self):
        pass


@dataclass
class Disagreement:
    step: int
    op: tuple
    area: str            # "return" or a state area: devices/ites/collections/lpis
    kernel: object
    model: object

    def __str__(self) -> str:
        return (f"step {self.step} {describe(self.op)}: {self.area}: "
                f"kernel={self.kernel!r} model={self.model!r}")


@dataclass
class Result:
    steps: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)


def describe(op) -> str:
    if op[0] == "cmd":
        w = op[1]
        names = {L.MOVI: "MOVI", L.INT: "INT", L.CLEAR: "CLEAR", L.SYNC: "SYNC", L.MAPD: "MAPD",
                 L.MAPC: "MAPC", L.MAPTI: "MAPTI", L.MAPI: "MAPI", L.INV: "INV",
                 L.INVALL: "INVALL", L.MOVALL: "MOVALL", L.DISCARD: "DISCARD"}
        return f"{names.get(w[0] & 0xFF, hex(w[0] & 0xFF))}[{', '.join(hex(x) for x in w)}]"
    return repr(op)


def run_stream(k: L.KernelLib, stream, prop: bytes | None = None, model_cls=ModelSide,
               stop_at_first: bool = True) -> Result:
    prop = prop if prop is not None else bytes([0xA1]) * (65536 - 8192)
    ks = KernelSide(k, prop)
    ms = model_cls(prop, ks.lay, ks.vm)
    res = Result()
    try:
        for i, op in enumerate(stream):
            res.steps = i + 1
            if op[0] == "cmd":
                a, b = ks.cmd(op[1]), ms.cmd(op[1])
                if a != b:
                    res.disagreements.append(Disagreement(i, op, "return", a, b))
            sa, sb = ks.state(), ms.state()
            for area in sa:
                if sa[area] != sb[area]:
                    res.disagreements.append(Disagreement(i, op, area, sa[area], sb[area]))
            if res.disagreements and stop_at_first:
                break
    finally:
        ks.close()
        ms.close()
    return res


def itt_addr(lay: dict, devid: int) -> int:
    return lay["itt"] + devid * 0x1000
