"""What a Linux guest's ITS driver does to memory and registers, as plain Python.

``irq-gic-v3-its.c`` allocates the command queue, device/collection tables and LPI tables in
guest RAM at probe, then posts commands by writing them at ``GITS_CWRITER`` and writing the
register. The SimPy guest-driver process and the tests both use this class.
"""

from __future__ import annotations

import copy

from gicsim.kvm import commands as C
from gicsim.kvm.abi import GIC_LPI_OFFSET, L2_DTES, SZ_64K, encode_l1e
from gicsim.kvm.arm_gic_v3 import GICR_CTLR, GICR_PENDBASER, GICR_PROPBASER
from gicsim.kvm.its import (
    GITS_BASER,
    GITS_BASER_INDIRECT,
    GITS_CBASER,
    GITS_CTLR,
    GITS_CWRITER,
    GITS_VALID,
    ITS_CMD_BUFFER_SIZE,
    VgicIts,
)
from gicsim.kvm.memory import GuestMemory
from gicsim.kvm.vgic_init import Vgic

LPI_PROP_DEFAULT_PRIO = 0xA0
LPI_PROP_GROUP1 = 1 << 1
LPI_PROP_ENABLED = 1 << 0
LPI_ID_BITS = 16


class QueueFull(Exception):
    """The command queue has no room; a real driver would poll ``GITS_CREADR``."""


class GuestItsDriver:
    """A guest's view of one ITS: a bump allocator in RAM plus command posting."""

    def __init__(
        self,
        vgic: Vgic,
        its: VgicIts,
        cmdq_kib: int = 64,
        device_table: str = "flat",
    ) -> None:
        self.vgic = vgic
        self.its = its
        self.mem: GuestMemory = vgic.mem
        self.cmdq_size = cmdq_kib * 1024
        self.two_level = device_table == "two_level"
        self._brk = self.mem.base
        self.cmdq_base = 0
        self.dt_base = 0
        self.ct_base = 0
        self.prop_base = 0
        self.pend_base: dict[int, int] = {}
        self.itt: dict[int, int] = {}  # DeviceID -> ITT address (reused on re-map)
        self.itt_bits: dict[int, int] = {}
        self.cwriter = 0

    # -- allocation ---------------------------------------------------------------------
    def alloc(self, size: int, align: int = SZ_64K) -> int:
        addr = (self._brk + align - 1) & ~(align - 1)
        if addr + size > self.mem.end:
            raise MemoryError(f"guest RAM exhausted allocating {size} bytes")
        self._brk = addr + size
        return addr

    def probe(self) -> None:
        """its_probe + its_alloc_lpi_tables: queue, tables, property table."""
        its = self.its
        self.cmdq_base = self.alloc(self.cmdq_size)
        its.its_write(GITS_CBASER, 8, GITS_VALID | self.cmdq_base | (self.cmdq_size // 4096 - 1))
        self.cwriter = 0
        if self.two_level:
            self.dt_base = self.alloc(SZ_64K)  # level 1: 8 entries cover 64K DeviceIDs
            baser0 = GITS_VALID | GITS_BASER_INDIRECT | self.dt_base
        else:
            pages = (1 << 16) * 8 // SZ_64K
            self.dt_base = self.alloc(pages * SZ_64K)
            baser0 = GITS_VALID | self.dt_base | (pages - 1)
        its.its_write(GITS_BASER, 8, baser0)
        self.ct_base = self.alloc(SZ_64K)
        its.its_write(GITS_BASER + 8, 8, GITS_VALID | self.ct_base)
        nr_lpis = (1 << LPI_ID_BITS) - GIC_LPI_OFFSET
        self.prop_base = self.alloc(nr_lpis, 4096)
        self.vgic.redist_write(0, GICR_PROPBASER, 8, self.prop_base | (LPI_ID_BITS - 1))

    def enable_lpis(self, vcpu: int) -> None:
        if vcpu not in self.pend_base:
            self.pend_base[vcpu] = self.alloc((1 << LPI_ID_BITS) // 8)
        self.vgic.redist_write(vcpu, GICR_PENDBASER, 8, self.pend_base[vcpu])
        self.vgic.redist_write(vcpu, GICR_CTLR, 4, 1)

    def disable_lpis(self, vcpu: int) -> None:
        self.vgic.redist_write(vcpu, GICR_CTLR, 4, 0)

    def its_enable(self, on: bool = True) -> None:
        self.its.its_write(GITS_CTLR, 4, int(on))

    # -- memory the guest writes directly ------------------------------------------------
    def lpi_config(self, lpi: int, priority: int = LPI_PROP_DEFAULT_PRIO, enabled: bool = True) -> None:
        byte = (priority & 0xFC) | LPI_PROP_GROUP1 | (LPI_PROP_ENABLED if enabled else 0)
        self.mem.write_u8(self.prop_base + lpi - GIC_LPI_OFFSET, byte)

    def set_pending(self, vcpu: int, lpi: int) -> None:
        if vcpu not in self.pend_base:
            self.pend_base[vcpu] = self.alloc((1 << LPI_ID_BITS) // 8)
        addr = self.pend_base[vcpu] + lpi // 8
        self.mem.write_u8(addr, self.mem.read_u8(addr) | 1 << (lpi % 8))

    # -- commands -----------------------------------------------------------------------
    def queue_space(self) -> int:
        used = (self.cwriter - self.its.creadr) % self.cmdq_size
        return self.cmdq_size - 32 - used

    def write_cmd(self, raw: bytes) -> None:
        """Place one command in the ring (without telling the ITS)."""
        if self.queue_space() < 32:
            raise QueueFull("command queue full")
        self.mem.write(self.cmdq_base + self.cwriter, raw)
        self.cwriter = (self.cwriter + 32) % ITS_CMD_BUFFER_SIZE(self.its.cbaser)

    def kick(self) -> int:
        """Write GITS_CWRITER (an MMIO exit; KVM runs the queue). Returns commands run."""
        before = self.its.commands_run
        self.its.its_write(GITS_CWRITER, 8, self.cwriter)
        return self.its.commands_run - before

    def post(self, *raws: bytes) -> int:
        for raw in raws:
            self.write_cmd(raw)
        return self.kick()

    def ensure_dt_slot(self, device: int) -> None:
        """Two-level table: allocate the level-2 page for ``device`` (its_alloc_table_entry)."""
        if not self.two_level:
            return
        l1 = self.dt_base + (device // L2_DTES) * 8
        if not self.mem.read_u64(l1) >> 63:
            self.mem.write_u64(l1, encode_l1e(self.alloc(SZ_64K)))

    def mapd_cmd(self, device: int, event_bits: int, valid: bool = True) -> bytes:
        if valid:
            self.ensure_dt_slot(device)
            size = (1 << event_bits) * 8
            itt = self.itt.get(device)
            if itt is None or self.itt_bits.get(device, 0) < event_bits:
                itt = self.alloc(max(size, 256), 256)
                self.itt[device] = itt
                self.itt_bits[device] = event_bits
            return C.mapd(device, itt, event_bits, True)
        return C.mapd(device, 0, 1, False)

    def rebind(self, vgic: Vgic, its: VgicIts) -> GuestItsDriver:
        """The same guest (allocations, queue position) now running on another VM."""
        new = copy.copy(self)
        new.vgic, new.its, new.mem = vgic, its, vgic.mem
        new.pend_base = dict(self.pend_base)
        new.itt = dict(self.itt)
        new.itt_bits = dict(self.itt_bits)
        return new
