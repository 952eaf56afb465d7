"""The emulated ITS (``arch/arm64/kvm/vgic/vgic-its.c``): registers, command queue,
commands, MSI translation and the ABI REV0 table save/restore.

Plain Python, no SimPy. Command processing is synchronous as in KVM; the caller (a SimPy
process) charges the time. Save and restore return :class:`TableStats` so the timing model
can charge per entry read/written and per mapping created.

Kernel file: this module mirrors ``arch/arm64/kvm/vgic/vgic-its.c`` of Linux 6.12.117 (Debian
linux-source-6.12), function by function, which is why it is longer than the 800 lines the
project otherwise allows.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from gicsim.kvm import abi
from gicsim.kvm.abi import (
    COLLECTION_NOT_MAPPED,
    ESZ,
    GENMASK,
    L2_DTES,
    SZ_64K,
    VGIC_MIN_LPI,
    VITS_DTE_MAX_DEVID_OFFSET,
    VITS_ITE_MAX_EVENTID_OFFSET,
    VITS_MAX_DEVID,
)
from gicsim.kvm.commands import ITS_CMD_SIZE, ItsCmd, decode_cmd
from gicsim.kvm.errors import EBUSY, EEXIST, EFAULT, EINVAL, ItsCommandError, KernelOops, KvmError
from gicsim.kvm.vgic import VgicIrq
from gicsim.kvm.vgic_init import Vgic
from gicsim.kvm.vgic_mmio import (
    _sanitise_field,
    extract_bytes,
    update_64bit_reg,
    vgic_sanitise_inner_cacheability,
    vgic_sanitise_outer_cacheability,
    vgic_sanitise_shareability,
)

# ITS frame offsets
GITS_CTLR = 0x0000
GITS_IIDR = 0x0004
GITS_TYPER = 0x0008
GITS_CBASER = 0x0080
GITS_CWRITER = 0x0088
GITS_CREADR = 0x0090
GITS_BASER = 0x0100
GITS_PIDR4 = 0xFFD0
GITS_IDREGS_BASE = 0xFFD0
GITS_IDREGS_END = 0x10000
GITS_CTLR_ENABLE = 1 << 0
GITS_CTLR_QUIESCENT = 1 << 31
GITS_VALID = 1 << 63
GITS_BASER_INDIRECT = 1 << 62
GITS_BASER_TYPE_SHIFT = 56
GITS_BASER_TYPE_DEVICE = 1
GITS_BASER_TYPE_COLLECTION = 4
GITS_BASER_ENTRY_SIZE_SHIFT = 48
GITS_BASER_RO_MASK = GENMASK(52, 48) | GENMASK(58, 56)
GITS_BASER_PAGE_SIZE_MASK = GENMASK(9, 8)
GITS_BASER_PAGE_SIZE_64K = 2 << 8
GITS_BASER_NR_PAGES_MASK = 0xFF
_SHARE = (10, 0b11)
_ITS_INNER = (59, 0b111)
_ITS_OUTER = (53, 0b111)
IMPLEMENTER_ARM = 0x43B
PRODUCT_ID_KVM = 0x4B
KVM_VGIC_V3_ITS_SIZE = 2 * SZ_64K

_INITIAL_BASER_ATTRS = (3 << 59) | (1 << 10) | GITS_BASER_PAGE_SIZE_64K  # RaWb, InnerShareable
INITIAL_BASER_DEVICE = (
    _INITIAL_BASER_ATTRS
    | (GITS_BASER_TYPE_DEVICE << GITS_BASER_TYPE_SHIFT)
    | ((ESZ - 1) << GITS_BASER_ENTRY_SIZE_SHIFT)
)
INITIAL_BASER_COLLECTION = (
    _INITIAL_BASER_ATTRS
    | (GITS_BASER_TYPE_COLLECTION << GITS_BASER_TYPE_SHIFT)
    | ((ESZ - 1) << GITS_BASER_ENTRY_SIZE_SHIFT)
)
_ID_REGS = {0xFFE0: 0x92, 0xFFE4: 0xB4, 0xFFE8: 0x3B, 0xFFD0: 0x40,
            0xFFF0: 0x0D, 0xFFF4: 0xF0, 0xFFF8: 0x05, 0xFFFC: 0xB1}  # fmt: skip


# access widths of a register region (``vgic-mmio.h``)
VGIC_ACCESS_8bit = 1  # noqa: N816
VGIC_ACCESS_32bit = 2  # noqa: N816
VGIC_ACCESS_64bit = 4  # noqa: N816
_ACCESS_FLAG = {1: VGIC_ACCESS_8bit, 4: VGIC_ACCESS_32bit, 8: VGIC_ACCESS_64bit}


@attrs.frozen
class ItsRegion:
    """One ``struct vgic_register_region`` of ``its_registers[]``: ``len`` bytes from
    ``reg_offset``, reachable at the widths in ``access_flags``."""

    reg_offset: int
    len: int
    access_flags: int

    def width(self) -> int:
        """The width userspace accesses it at (``vgic_its_attr_regs_access``:
        ``region->access_flags & VGIC_ACCESS_64bit ? 8 : 4``)."""
        return 8 if self.access_flags & VGIC_ACCESS_64bit else 4


_A32_64 = VGIC_ACCESS_64bit | VGIC_ACCESS_32bit
#: ``its_registers[]`` (``vgic-its.c``, identical in 6.12.117 and 6.1.192)
ITS_REGISTERS = (
    ItsRegion(GITS_CTLR, 4, VGIC_ACCESS_32bit),
    ItsRegion(GITS_IIDR, 4, VGIC_ACCESS_32bit),
    ItsRegion(GITS_TYPER, 8, _A32_64),
    ItsRegion(GITS_CBASER, 8, _A32_64),
    ItsRegion(GITS_CWRITER, 8, _A32_64),
    ItsRegion(GITS_CREADR, 8, _A32_64),
    ItsRegion(GITS_BASER, 0x40, _A32_64),
    ItsRegion(GITS_IDREGS_BASE, 0x30, VGIC_ACCESS_32bit),
)


def vgic_find_mmio_region(offset: int) -> ItsRegion | None:
    """``vgic_find_mmio_region`` (``vgic-mmio.c``) over ``its_registers[]``."""
    for region in ITS_REGISTERS:
        if region.reg_offset <= offset < region.reg_offset + region.len:
            return region
    return None


def check_region(region: ItsRegion, offset: int, length: int) -> bool:
    """``check_region`` (``vgic-mmio.c``): the access width is one the region allows and
    the address is aligned to it (ITS regions have no ``bits_per_irq``)."""
    flag = _ACCESS_FLAG.get(length)
    return flag is not None and bool(region.access_flags & flag) and offset % length == 0


def vgic_get_mmio_region(offset: int, length: int) -> ItsRegion | None:
    """``vgic_get_mmio_region``: the region, or None when there is none or the access
    fails :func:`check_region` (then ``dispatch_mmio_read`` reads 0 and
    ``dispatch_mmio_write`` drops the write)."""
    region = vgic_find_mmio_region(offset)
    if region is None or not check_region(region, offset, length):
        return None
    return region


def GITS_BASER_ADDR_48_to_52(baser: int) -> int:  # noqa: N802
    """64 KiB pages: bits [47:16] are PA[47:16] and bits [15:12] are PA[51:48]."""
    return (baser & GENMASK(47, 16)) | (((baser >> 12) & 0xF) << 48)


def GITS_BASER_NR_PAGES(baser: int) -> int:  # noqa: N802
    return (baser & GITS_BASER_NR_PAGES_MASK) + 1


def GITS_CBASER_ADDRESS(cbaser: int) -> int:  # noqa: N802
    return cbaser & GENMASK(51, 12)


def ITS_CMD_BUFFER_SIZE(cbaser: int) -> int:  # noqa: N802
    return ((cbaser & 0xFF) + 1) << 12


def ITS_CMD_OFFSET(reg: int) -> int:  # noqa: N802
    return reg & GENMASK(19, 5)


def _sanitise_its_baser(reg: int) -> int:
    reg = _sanitise_field(reg, _SHARE, vgic_sanitise_shareability)
    reg = _sanitise_field(reg, _ITS_INNER, vgic_sanitise_inner_cacheability)
    reg = _sanitise_field(reg, _ITS_OUTER, vgic_sanitise_outer_cacheability)
    return (reg & ~GITS_BASER_PAGE_SIZE_MASK) | GITS_BASER_PAGE_SIZE_64K


def vgic_sanitise_its_cbaser(reg: int) -> int:
    reg = _sanitise_field(reg, _SHARE, vgic_sanitise_shareability)
    reg = _sanitise_field(reg, _ITS_INNER, vgic_sanitise_inner_cacheability)
    reg = _sanitise_field(reg, _ITS_OUTER, vgic_sanitise_outer_cacheability)
    return reg & ~GENMASK(15, 12)  # 64 KiB aligned queue


class ItsCollection:
    __slots__ = ("collection_id", "target_addr")

    def __init__(self, collection_id: int, target_addr: int = COLLECTION_NOT_MAPPED) -> None:
        self.collection_id = collection_id
        self.target_addr = target_addr

    @property
    def mapped(self) -> bool:
        return self.target_addr != COLLECTION_NOT_MAPPED


class ItsIte:
    __slots__ = ("event_id", "collection", "irq")

    def __init__(self, event_id: int, collection: ItsCollection | None, irq: VgicIrq) -> None:
        self.event_id = event_id
        self.collection = collection
        self.irq = irq


class ItsDevice:
    __slots__ = ("device_id", "itt_addr", "num_eventid_bits", "ites")

    def __init__(self, device_id: int, itt_addr: int, num_eventid_bits: int) -> None:
        self.device_id = device_id
        self.itt_addr = itt_addr
        self.num_eventid_bits = num_eventid_bits
        self.ites: dict[int, ItsIte] = {}


@attrs.define(slots=True)
class TableStats:
    """What a save or restore touched, for the timing model."""

    entries_read: int = 0  # every table slot read (untouched runs counted in bulk)
    invalid_read: int = 0  # of which empty/invalid slots the walk stepped over one by one
    entries_written: int = 0
    devices: int = 0  # restored
    ites: int = 0  # restored event -> LPI mappings
    collections: int = 0  # restored

    @property
    def mappings(self) -> int:
        return self.devices + self.ites + self.collections


CommandHook = Callable[["VgicIts", ItsCmd, "str | None"], None]

#: MSI outcomes (the trace's drop reasons)
MSI_ACCEPTED = "accepted"
MSI_ITS_DISABLED = "its_disabled"
MSI_LPIS_DISABLED = "lpis_disabled"
MSI_UNMAPPED = "unmapped"
#: ``KVM_SIGNAL_MSI`` = -EINVAL: no ITS on the MMIO bus at the doorbell address, e.g. a
#: destination ITS whose base (``KVM_VGIC_ITS_ADDR_TYPE``) is not set yet
#: (``vgic_msi_to_its`` -> ``__vgic_doorbell_to_its``); not ``its_disabled``
MSI_NO_ITS = "no_its"

#: vgic-its.c ``VITS_MAX_DEVID`` / ``VITS_MAX_EVENTID`` (16 bits each)
VITS_MAX_EVENTID = (1 << abi.VITS_TYPER_IDBITS) - 1


def vgic_its_cache_key(devid: int, eventid: int) -> int:
    """``vgic_its_cache_key`` (6.12): ``devid << VITS_TYPER_IDBITS | eventid``. Only IDs within
    ``VITS_MAX_DEVID``/``VITS_MAX_EVENTID`` ever reach it (``vgic_its_check_cache`` rejects
    the others before the lookup), so keys never alias; 6.1 compares (doorbell, devid,
    eventid) exactly (``__vgic_its_check_cache``), which is the same thing for one ITS."""
    return (devid << abi.VITS_TYPER_IDBITS) | eventid


class VgicIts:
    """One ITS of a VM. Creating it resets the VM-wide PROPBASER, as ``vgic_its_create``."""

    def __init__(self, vgic: Vgic, name: str = "its") -> None:
        self.vgic = vgic
        self.mem = vgic.mem
        self.name = name
        self.vgic_its_base: int | None = None
        self.enabled = False
        self.cbaser = 0
        self.creadr = 0
        self.cwriter = 0
        self.abi_rev = abi.ABI_REV0
        self.baser_device_table = INITIAL_BASER_DEVICE
        self.baser_coll_table = INITIAL_BASER_COLLECTION
        self.device_list: list[ItsDevice] = []
        self.devices: dict[int, ItsDevice] = {}
        self.collection_list: dict[int, ItsCollection] = {}  # creation order
        self.translation_cache: dict[int, VgicIrq] = {}
        self.on_command: CommandHook | None = None
        self.commands_run = 0
        self.deferred = False
        from gicsim.kvm.arm_gic_v3 import INITIAL_PROPBASER_VALUE

        vgic.propbaser = INITIAL_PROPBASER_VALUE
        vgic.its_list.append(self)

    @property
    def kernel(self):  # noqa: ANN201
        return self.vgic.kernel

    # ================================================================== lookups ====
    def find_its_device(self, device_id: int) -> ItsDevice | None:
        return self.devices.get(device_id)

    def find_ite(self, device_id: int, event_id: int) -> ItsIte | None:
        dev = self.devices.get(device_id)
        return None if dev is None else dev.ites.get(event_id)

    def find_collection(self, coll_id: int) -> ItsCollection | None:
        return self.collection_list.get(coll_id)

    def collection_to_vcpu(self, coll: ItsCollection | None) -> int | None:
        if coll is None or not coll.mapped:
            return None
        return self.vgic.kvm_get_vcpu_by_id(coll.target_addr)

    # ====================================================== table ID validation ====
    def vgic_its_check_id(self, baser: int, id_: int) -> int | None:
        """``vgic_its_check_id``: the GPA of entry ``id_``, or None (does not check Valid)."""
        esz = ESZ
        typ = (baser >> GITS_BASER_TYPE_SHIFT) & 7
        if typ == GITS_BASER_TYPE_DEVICE:
            if id_ > VITS_MAX_DEVID:
                return None
        elif typ == GITS_BASER_TYPE_COLLECTION:
            if id_ >= 1 << 16:
                return None
        else:
            return None
        base = GITS_BASER_ADDR_48_to_52(baser)
        size = GITS_BASER_NR_PAGES(baser) * SZ_64K
        if not baser & GITS_BASER_INDIRECT:
            if id_ >= size // esz:
                return None
            gpa = base + id_ * esz
            return gpa if self.mem.is_visible(gpa, esz) else None
        l1_idx = id_ // (SZ_64K // esz)
        if l1_idx >= size // 8:
            return None
        try:
            l1e = self.mem.read_u64(base + l1_idx * 8)
        except EFAULT:
            return None
        valid, l2 = abi.decode_l1e(l1e)
        if not valid:
            return None
        gpa = l2 + (id_ % (SZ_64K // esz)) * esz
        return gpa if self.mem.is_visible(gpa, esz) else None

    def vgic_its_check_event_id(self, dev: ItsDevice, event_id: int) -> bool:
        if event_id >= 1 << dev.num_eventid_bits:
            return False
        return self.mem.is_visible(dev.itt_addr + event_id * ESZ, ESZ)

    # ======================================================= translation cache ====
    def vgic_its_check_cache(self, device_id: int, event_id: int) -> VgicIrq | None:
        """``vgic_its_check_cache``: IDs beyond 16 bits miss (no aliasing), as does an ITS
        whose base is not set (``__vgic_doorbell_to_its`` fails)."""
        if device_id > VITS_MAX_DEVID or event_id > VITS_MAX_EVENTID or self.vgic_its_base is None:
            return None
        return self.translation_cache.get(vgic_its_cache_key(device_id, event_id))

    def vgic_its_cache_translation(self, device_id: int, event_id: int, irq: VgicIrq) -> None:
        key = vgic_its_cache_key(device_id, event_id)
        if key in self.translation_cache:
            return
        irq.refcount += 1
        self.translation_cache[key] = irq

    def vgic_its_invalidate_cache(self) -> None:
        """Whole-ITS invalidation; the ``stale`` kernel variant forgets to do it."""
        if self.kernel.translation_cache == "stale":
            return
        self._drop_cache()

    def _drop_cache(self) -> None:
        cache = self.translation_cache
        self.translation_cache = {}
        for irq in cache.values():
            self.vgic.vgic_put_irq(irq)

    # ================================================================ freeing ====
    def its_free_ite(self, dev: ItsDevice, ite: ItsIte) -> None:
        del dev.ites[ite.event_id]
        self.vgic.vgic_put_irq(ite.irq)

    def vgic_its_free_device(self, dev: ItsDevice) -> None:
        for ite in list(dev.ites.values()):
            self.its_free_ite(dev, ite)
        self.vgic_its_invalidate_cache()
        self.device_list.remove(dev)
        if self.devices.get(dev.device_id) is dev:
            del self.devices[dev.device_id]
            for other in self.device_list:  # a shadowed duplicate becomes visible
                if other.device_id == dev.device_id:
                    self.devices[dev.device_id] = other
                    break

    def vgic_its_free_device_list(self) -> None:
        for dev in list(self.device_list):
            self.vgic_its_free_device(dev)

    def vgic_its_free_collection(self, coll_id: int) -> None:
        coll = self.collection_list.pop(coll_id, None)
        if coll is None:
            return
        for dev in self.device_list:
            for ite in dev.ites.values():
                if ite.collection is coll:
                    ite.collection = None

    def vgic_its_free_collection_list(self) -> None:
        for coll_id in list(self.collection_list):
            self.vgic_its_free_collection(coll_id)

    def vgic_its_alloc_device(self, device_id: int, itt_addr: int, nbits: int) -> ItsDevice:
        dev = ItsDevice(device_id, itt_addr, nbits)
        self.device_list.append(dev)
        self.devices.setdefault(device_id, dev)  # list_add_tail: an older duplicate wins
        return dev

    def vgic_its_alloc_collection(self, coll_id: int) -> ItsCollection:
        coll = ItsCollection(coll_id)
        self.collection_list[coll_id] = coll
        return coll

    def vgic_its_alloc_ite(
        self, dev: ItsDevice, coll: ItsCollection | None, event_id: int, irq: VgicIrq
    ) -> ItsIte:
        ite = ItsIte(event_id, coll, irq)
        dev.ites[event_id] = ite
        return ite

    # ====================================================== MSI / translation ====
    def vgic_its_inject_msi(self, device_id: int, event_id: int) -> str:
        """``KVM_SIGNAL_MSI``/irqfd. Returns :data:`MSI_ACCEPTED` or the drop reason.

        The kernel returns 1 (accepted), 0 (guest blocked it: unmapped), ``-EBUSY`` (ITS
        disabled, or target vCPU with EnableLPIs clear) or ``-EINVAL`` (no ITS at the
        doorbell: base not set, :data:`MSI_NO_ITS`).
        """
        if self.vgic_its_inject_cached_translation(device_id, event_id) is not None:
            return MSI_ACCEPTED
        if self.vgic_its_base is None:
            return MSI_NO_ITS  # vgic_msi_to_its: -EINVAL
        return self.vgic_its_trigger_msi(device_id, event_id)

    def vgic_its_inject_cached_translation(self, device_id: int, event_id: int) -> VgicIrq | None:
        """The fast path (``vgic_its_inject_cached_translation``): a cached translation needs
        no its_lock and no enabled checks (the invalidations keep it honest). Returns the
        LPI, or None on a miss."""
        irq = self.vgic_its_check_cache(device_id, event_id)
        if irq is not None:
            irq.pending_latch = True
            self.vgic.vgic_queue_irq_unlock(irq)
        return irq

    def vgic_its_resolve_lpi(self, device_id: int, event_id: int) -> tuple[str, VgicIrq | None]:
        if not self.enabled:
            return MSI_ITS_DISABLED, None
        ite = self.find_ite(device_id, event_id)
        if ite is None or ite.collection is None or not ite.collection.mapped:
            return MSI_UNMAPPED, None
        vcpu = self.collection_to_vcpu(ite.collection)
        if vcpu is None:
            return MSI_UNMAPPED, None
        if not self.vgic.vgic_lpis_enabled(vcpu):
            return MSI_LPIS_DISABLED, None
        self.vgic_its_cache_translation(device_id, event_id, ite.irq)
        return MSI_ACCEPTED, ite.irq

    def vgic_its_trigger_msi(self, device_id: int, event_id: int) -> str:
        why, irq = self.vgic_its_resolve_lpi(device_id, event_id)
        if irq is not None:
            irq.pending_latch = True
            self.vgic.vgic_queue_irq_unlock(irq)
        return why

    def translate(self, device_id: int, event_id: int) -> VgicIrq | None:
        """The LPI an MSI would hit now (for tracing; no side effects)."""
        irq = self.vgic_its_check_cache(device_id, event_id)
        if irq is not None:
            return irq
        ite = self.find_ite(device_id, event_id)
        return None if ite is None else ite.irq

    # ============================================================ registers ====
    def its_read(self, offset: int, length: int) -> int:
        """Guest MMIO read (``dispatch_mmio_read``; userspace reads come here at the
        region's full width). An access ``its_registers[]`` does not allow at that offset
        and width (an 8-byte read of GITS_CTLR, IIDR or an ID register; a misaligned one;
        no region) reads 0."""
        if vgic_get_mmio_region(offset, length) is None:
            return 0
        if offset == GITS_CTLR:
            q = GITS_CTLR_QUIESCENT if self.creadr == self.cwriter else 0
            return q | (GITS_CTLR_ENABLE if self.enabled else 0)
        if offset == GITS_IIDR:
            return (PRODUCT_ID_KVM << 24) | (self.abi_rev << 12) | IMPLEMENTER_ARM
        base = offset & ~7
        if base == GITS_TYPER:
            reg = 1 | ((ESZ - 1) << 4) | ((abi.VITS_TYPER_IDBITS - 1) << 8)
            reg |= (abi.VITS_TYPER_DEVBITS - 1) << 13
            return extract_bytes(reg, offset, length)
        if base == GITS_CBASER:
            return extract_bytes(self.cbaser, offset, length)
        if base == GITS_CWRITER:
            return extract_bytes(self.cwriter, offset, length)
        if base == GITS_CREADR:
            return extract_bytes(self.creadr, offset, length)
        if GITS_BASER <= base < GITS_BASER + 0x40:
            n = (base - GITS_BASER) // 8
            reg = {0: self.baser_device_table, 1: self.baser_coll_table}.get(n, 0)
            return extract_bytes(reg, offset, length)
        if GITS_PIDR4 <= offset < GITS_IDREGS_END:
            return _ID_REGS.get(offset, 0)
        return 0

    def its_write(self, offset: int, length: int, val: int) -> None:
        """Guest MMIO write (``dispatch_mmio_write``). Returns after any commands it
        triggered have run. A width/alignment ``its_registers[]`` does not allow is
        dropped (e.g. an 8-byte write of GITS_CTLR)."""
        if vgic_get_mmio_region(offset, length) is None:
            return
        if offset == GITS_CTLR:
            self.vgic_mmio_write_its_ctlr(val)
            return
        base = offset & ~7
        if base == GITS_CBASER:
            self.vgic_mmio_write_its_cbaser(offset, length, val)
        elif base == GITS_CWRITER:
            self.vgic_mmio_write_its_cwriter(offset, length, val)
        elif GITS_BASER <= base < GITS_BASER + 0x40:
            self.vgic_mmio_write_its_baser(offset, length, val)
        # IIDR, TYPER, CREADR, ID registers: WI for the guest

    def vgic_mmio_write_its_ctlr(self, val: int) -> None:
        if not self.enabled and val & GITS_CTLR_ENABLE:
            if (
                not self.baser_device_table & GITS_VALID
                or not self.baser_coll_table & GITS_VALID
                or not self.cbaser & GITS_VALID
            ):
                return  # UNPREDICTABLE: KVM ignores the write
        self.enabled = bool(val & GITS_CTLR_ENABLE)
        if not self.enabled:
            self.vgic_its_invalidate_cache()
        self.vgic_its_process_commands()

    def vgic_mmio_write_its_cbaser(self, offset: int, length: int, val: int) -> None:
        if self.enabled:
            return
        self.cbaser = vgic_sanitise_its_cbaser(update_64bit_reg(self.cbaser, offset, length, val))
        self.creadr = 0
        self.cwriter = self.creadr

    def vgic_mmio_write_its_cwriter(self, offset: int, length: int, val: int) -> None:
        reg = update_64bit_reg(self.cwriter, offset, length, val)
        reg = ITS_CMD_OFFSET(reg)
        if reg >= ITS_CMD_BUFFER_SIZE(self.cbaser):
            return  # dropped silently
        self.cwriter = reg
        self.vgic_its_process_commands()

    def vgic_mmio_write_its_baser(self, offset: int, length: int, val: int) -> None:
        if self.enabled:
            return
        n = ((offset & ~7) - GITS_BASER) // 8
        if n == 0:
            reg, table_type, indirect_mask = self.baser_device_table, GITS_BASER_TYPE_DEVICE, 0
        elif n == 1:
            reg, table_type = self.baser_coll_table, GITS_BASER_TYPE_COLLECTION
            indirect_mask = GITS_BASER_INDIRECT
        else:
            return  # BASER2..7 RAZ/WI
        old = reg
        reg = update_64bit_reg(reg, offset, length, val)
        reg &= ~GITS_BASER_RO_MASK
        reg &= ~indirect_mask
        reg |= (ESZ - 1) << GITS_BASER_ENTRY_SIZE_SHIFT
        reg |= table_type << GITS_BASER_TYPE_SHIFT
        reg = _sanitise_its_baser(reg)
        # KernelProfile.baser_write_frees_on_change: 6.12.117 drops the list on any change
        # (and invalidates the cache), 6.1.192 when Valid is clear
        on_change = self.kernel.baser_write_frees_on_change
        drop = reg != old if on_change else not reg & GITS_VALID
        if n == 0:
            self.baser_device_table = reg
            if drop:
                self.vgic_its_free_device_list()
        else:
            self.baser_coll_table = reg
            if drop:
                self.vgic_its_free_collection_list()
        if drop and on_change:
            self.vgic_its_invalidate_cache()  # "A concurrent injection may have cached a translation"

    # userspace-only handlers (GRP_ITS_REGS)
    def vgic_mmio_uaccess_write_its_iidr(self, val: int) -> None:
        rev = (val >> 12) & 0xF
        if rev >= abi.NR_ITS_ABIS:
            raise EINVAL(f"GITS_IIDR revision {rev}: only ABI REV0 exists")
        self.abi_rev = rev
        # vgic_its_commit_v0: Entry_Size = 8 in both BASERs
        for attr in ("baser_device_table", "baser_coll_table"):
            reg = getattr(self, attr) & ~GENMASK(52, 48)
            setattr(self, attr, reg | ((ESZ - 1) << GITS_BASER_ENTRY_SIZE_SHIFT))

    def vgic_mmio_uaccess_write_its_creadr(self, val: int) -> None:
        if self.enabled:
            raise EBUSY("GITS_CREADR is read-only while the ITS is enabled")
        off = ITS_CMD_OFFSET(val)
        if off >= ITS_CMD_BUFFER_SIZE(self.cbaser):
            raise EINVAL(f"GITS_CREADR {off:#x} beyond the command queue")
        self.creadr = off

    def uaccess_write(self, offset: int, val: int) -> None:
        """Userspace write at full register width (after the KVM-layer checks)."""
        if offset == GITS_IIDR:
            self.vgic_mmio_uaccess_write_its_iidr(val)
        elif offset == GITS_CREADR:
            self.vgic_mmio_uaccess_write_its_creadr(val)
        elif offset == GITS_CTLR:
            self.vgic_mmio_write_its_ctlr(val)
            if self.kernel.pending_sync_on_ctlr and self.enabled:
                self.sync_pending_on_ctlr()
        else:
            region = vgic_find_mmio_region(offset)
            if region is not None:
                self.its_write(offset, region.width(), val)

    def sync_pending_on_ctlr(self) -> int:
        """The v5 series' extra sync on GITS_CTLR restore (SPEC §4 ``pending_sync_on_ctlr``)."""
        n = 0
        for dev in self.device_list:
            for ite in dev.ites.values():
                irq = ite.irq
                if irq.target_vcpu is not None and self.vgic.vgic_lpis_enabled(irq.target_vcpu):
                    self.vgic.vgic_v3_lpi_sync_pending_status(irq)
                    n += 1
        return n

    # ======================================================== command queue ====
    def vgic_its_process_commands(self) -> int:
        """Run every command from CREADR to CWRITER; returns how many ran.

        With ``deferred`` set (the co-simulation), nothing runs here: the SimPy ITS process
        drains the queue with :meth:`process_one`, charging time per command.
        """
        if self.deferred:
            return 0
        n = 0
        while self.process_one() is not None:
            n += 1
        return n

    def process_one(self) -> tuple[ItsCmd | None, str | None] | None:
        """Execute the command at CREADR and advance it; None when idle or disabled.

        Returns (command, error); the command is None when it could not be read.
        """
        if not self.enabled or self.cwriter == self.creadr:
            return None
        try:
            raw = self.mem.read(GITS_CBASER_ADDRESS(self.cbaser) + self.creadr, ITS_CMD_SIZE)
        except EFAULT:
            raw = None  # GICv3 spec 6.3.2: a command that cannot be read is ignored
        cmd = err = None
        if raw is not None:
            cmd = decode_cmd(raw)
            err = self.vgic_its_handle_command(cmd)
            self.commands_run += 1
            if self.on_command is not None:
                self.on_command(self, cmd, err)
        self.creadr += ITS_CMD_SIZE
        if self.creadr == ITS_CMD_BUFFER_SIZE(self.cbaser):
            self.creadr = 0
        return cmd, err

    def vgic_its_handle_command(self, cmd: ItsCmd) -> str | None:
        """Run one command; returns None or the error KVM would discard (E_ITS_* / errno)."""
        handler = _HANDLERS.get(cmd.opcode)
        if handler is None:
            return "ENODEV"
        try:
            handler(self, cmd)
        except ItsCommandError as e:
            return e.name
        except KvmError as e:
            return e.errno
        return None

    # --------------------------------------------------------------- commands ----
    def cmd_mapd(self, c: ItsCmd) -> None:
        gpa = self.vgic_its_check_id(self.baser_device_table, c.devid)
        if gpa is None:
            raise ItsCommandError("E_ITS_MAPD_DEVICE_OOR")
        num_eventid_bits = c.size + 1
        if c.valid and num_eventid_bits > abi.VITS_TYPER_IDBITS:
            raise ItsCommandError("E_ITS_MAPD_ITTSIZE_OOR")
        dev = self.find_its_device(c.devid)
        if dev is not None:
            self.vgic_its_free_device(dev)
        if not c.valid:
            if self.kernel.clear_on_unmap:
                self.mem.write_u64(gpa, 0)
            return
        self.vgic_its_alloc_device(c.devid, c.ittaddr, num_eventid_bits)

    def cmd_mapc(self, c: ItsCmd) -> None:
        """``vgic_its_cmd_handle_mapc``. 6.1.192 rejects an out-of-range RDbase before looking
        at V (so MAPC V=0 fails and keeps the collection); 6.12.117 only for V=1
        (:attr:`KernelProfile.mapc_checks_rdbase_first`)."""
        if self.kernel.mapc_checks_rdbase_first and self.vgic.kvm_get_vcpu_by_id(c.target_addr) is None:
            raise ItsCommandError("E_ITS_MAPC_PROCNUM_OOR")
        if not c.valid:
            self.vgic_its_free_collection(c.icid)
            self.vgic_its_invalidate_cache()
            return
        vcpu = self.vgic.kvm_get_vcpu_by_id(c.target_addr)
        if vcpu is None:
            raise ItsCommandError("E_ITS_MAPC_PROCNUM_OOR")
        coll = self.find_collection(c.icid)
        if coll is None:
            if self.vgic_its_check_id(self.baser_coll_table, c.icid) is None:
                raise ItsCommandError("E_ITS_MAPC_COLLECTION_OOR")
            coll = self.vgic_its_alloc_collection(c.icid)
            coll.target_addr = c.target_addr
        else:
            coll.target_addr = c.target_addr
            self.update_affinity_collection(coll)

    def update_affinity_collection(self, coll: ItsCollection) -> None:
        vcpu = self.collection_to_vcpu(coll)
        for dev in self.device_list:
            for ite in dev.ites.values():
                if ite.collection is coll:
                    self.update_affinity(ite.irq, vcpu)

    def update_affinity(self, irq: VgicIrq, vcpu: int | None) -> None:
        """``update_affinity``: only the target changes. Nothing is queued and no vCPU is
        kicked; an LPI already on the old vCPU's ap_list moves when that vCPU next prunes
        it (``vgic_prune_ap_list``, at its next exit)."""
        irq.target_vcpu = vcpu

    def cmd_mapi(self, c: ItsCmd) -> None:
        dev = self.find_its_device(c.devid)
        if dev is None:
            raise ItsCommandError("E_ITS_MAPTI_UNMAPPED_DEVICE")
        if not self.vgic_its_check_event_id(dev, c.eventid):
            raise ItsCommandError("E_ITS_MAPTI_ID_OOR")
        lpi_nr = c.pintid if c.opcode == 0x0A else c.eventid
        if not self.vgic.lpi_is_valid(lpi_nr):
            raise ItsCommandError("E_ITS_MAPTI_PHYSICALID_OOR")
        if c.eventid in dev.ites:
            return  # already mapped: UNPREDICTABLE, KVM keeps the old one
        coll = self.find_collection(c.icid)
        new_coll = None
        if coll is None:
            if self.vgic_its_check_id(self.baser_coll_table, c.icid) is None:
                raise ItsCommandError("E_ITS_MAPC_COLLECTION_OOR")
            coll = new_coll = self.vgic_its_alloc_collection(c.icid)  # placeholder
        vcpu = self.collection_to_vcpu(coll)
        try:
            irq = self.vgic.vgic_add_lpi(lpi_nr, vcpu)
        except KvmError:
            if new_coll is not None:
                self.vgic_its_free_collection(c.icid)
            raise
        self.vgic_its_alloc_ite(dev, coll, c.eventid, irq)

    def cmd_movi(self, c: ItsCmd) -> None:
        ite = self.find_ite(c.devid, c.eventid)
        if ite is None:
            raise ItsCommandError("E_ITS_MOVI_UNMAPPED_INTERRUPT")
        if ite.collection is None or not ite.collection.mapped:
            raise ItsCommandError("E_ITS_MOVI_UNMAPPED_COLLECTION")
        coll = self.find_collection(c.icid)
        if coll is None or not coll.mapped:
            raise ItsCommandError("E_ITS_MOVI_UNMAPPED_COLLECTION")
        ite.collection = coll
        self.vgic_its_invalidate_cache()
        self.update_affinity(ite.irq, self.collection_to_vcpu(coll))

    def cmd_discard(self, c: ItsCmd) -> None:
        dev = self.find_its_device(c.devid)
        ite = None if dev is None else dev.ites.get(c.eventid)
        if dev is None or ite is None or ite.collection is None or not ite.collection.mapped:
            raise ItsCommandError("E_ITS_DISCARD_UNMAPPED_INTERRUPT")
        self.vgic_its_invalidate_cache()
        self.its_free_ite(dev, ite)
        if self.kernel.clear_on_unmap:
            self.mem.write_u64(dev.itt_addr + c.eventid * ESZ, 0)

    def cmd_clear(self, c: ItsCmd) -> None:
        ite = self.find_ite(c.devid, c.eventid)
        if ite is None:
            raise ItsCommandError("E_ITS_CLEAR_UNMAPPED_INTERRUPT")
        ite.irq.pending_latch = False

    def cmd_inv(self, c: ItsCmd) -> None:
        ite = self.find_ite(c.devid, c.eventid)
        if ite is None:
            raise ItsCommandError("E_ITS_INV_UNMAPPED_INTERRUPT")
        self.vgic.update_lpi_config(ite.irq, None)

    def cmd_invall(self, c: ItsCmd) -> None:
        coll = self.find_collection(c.icid)
        if coll is None or not coll.mapped:
            raise ItsCommandError("E_ITS_INVALL_UNMAPPED_COLLECTION")
        vcpu = self.collection_to_vcpu(coll)
        vgic = self.vgic
        for intid in sorted(vgic.lpi_xa):
            irq = vgic.lpi_xa.get(intid)
            if irq is not None:
                try:
                    vgic.update_lpi_config(irq, vcpu)
                except KvmError:
                    pass  # vgic_its_invall ignores update_lpi_config's result: INVALL succeeds

    def cmd_movall(self, c: ItsCmd) -> None:
        vcpu1 = self.vgic.kvm_get_vcpu_by_id(c.target_addr)
        vcpu2 = self.vgic.kvm_get_vcpu_by_id(c.target_addr2)
        if vcpu1 is None or vcpu2 is None:
            raise ItsCommandError("E_ITS_MOVALL_PROCNUM_OOR")
        if vcpu1 == vcpu2:
            return
        # Every LPI of the VM is visited (xa_for_each), but update_affinity(irq, vcpu1, vcpu2)
        # only retargets those whose target is vcpu1 (6.1.192 and 6.12.117 alike, seen by the
        # kernel reference: tests/test_linux_differential.py).
        for intid in sorted(self.vgic.lpi_xa):
            irq = self.vgic.lpi_xa[intid]
            if irq.target_vcpu == vcpu1:
                self.update_affinity(irq, vcpu2)
        self.vgic_its_invalidate_cache()

    def cmd_int(self, c: ItsCmd) -> None:
        why = self.vgic_its_trigger_msi(c.devid, c.eventid)
        if why == MSI_UNMAPPED:
            raise ItsCommandError("E_ITS_INT_UNMAPPED_INTERRUPT")
        if why != MSI_ACCEPTED:
            raise EBUSY(why)

    def cmd_sync(self, c: ItsCmd) -> None:
        return None  # the emulation is always in sync

    # ============================================================ reset ====
    def vgic_its_reset(self) -> None:
        self.baser_device_table &= ~GITS_VALID
        self.baser_coll_table &= ~GITS_VALID
        self.cbaser = self.creadr = self.cwriter = 0
        self.enabled = False
        self.vgic_its_free_device_list()
        self.vgic_its_free_collection_list()
        self._drop_cache()

    # ====================================================== save (ABI REV0) ====
    def vgic_its_save_tables_v0(self) -> TableStats:
        st = TableStats()
        self.vgic_its_save_device_tables(st)
        self.vgic_its_save_collection_table(st)
        return st

    def _head_pointer(self) -> bool:
        return self.kernel.restore_scan == "head_pointer"

    def vgic_its_save_device_tables(self, st: TableStats) -> None:
        baser = self.baser_device_table
        if not baser & GITS_VALID:
            return
        self.device_list.sort(key=lambda d: d.device_id)
        devs = self.device_list
        for i, dev in enumerate(devs):
            gpa = self.vgic_its_check_id(baser, dev.device_id)
            if gpa is None:
                raise EINVAL(f"DeviceID {dev.device_id:#x} has no slot in the device table")
            self.vgic_its_save_itt(dev, st)
            if i + 1 < len(devs):
                next_offset = min(devs[i + 1].device_id - dev.device_id, VITS_DTE_MAX_DEVID_OFFSET)
            else:
                next_offset = 0
            self.mem.write_u64(
                gpa, abi.encode_dte(True, next_offset, dev.itt_addr, dev.num_eventid_bits)
            )
            st.entries_written += 1
        if self._head_pointer() and devs:
            self._save_dummy_dtes(baser, [d.device_id for d in devs], st)

    def _save_dummy_dtes(self, baser: int, ids: list[int], st: TableStats) -> None:
        """``head_pointer`` variant: invalid DTEs whose ``next`` leads to the next valid one.

        Written at slot 0 when it is free, wherever a capped ``next`` lands short of the next
        device, and (two-level table) at slot 0 of every level-2 page the walk enters.
        """
        cap = VITS_DTE_MAX_DEVID_OFFSET
        dummies: dict[int, int] = {}
        cur = 0
        for i, t in enumerate(ids):
            while cur < t:
                step = min(t - cur, cap)
                dummies[cur] = step
                cur += step
            cur = t + min(ids[i + 1] - t, cap) if i + 1 < len(ids) else t
        if baser & GITS_BASER_INDIRECT:
            valid = set(ids)
            for page in range(ids[-1] // L2_DTES + 1):
                slot = page * L2_DTES
                if slot in valid:
                    continue
                t = next(d for d in ids if d >= slot)
                dummies[slot] = min(t - slot, cap)
        for slot, nxt in sorted(dummies.items()):
            gpa = self.vgic_its_check_id(baser, slot)
            if gpa is not None:
                self.mem.write_u64(gpa, abi.encode_dte(False, nxt, 0, 1))
                st.entries_written += 1

    def vgic_its_save_itt(self, dev: ItsDevice, st: TableStats) -> None:
        ids = sorted(dev.ites)
        mem = self.mem
        if self._head_pointer() and ids and ids[0] > 0:
            mem.write_u64(dev.itt_addr, abi.encode_ite(min(ids[0], VITS_ITE_MAX_EVENTID_OFFSET), 0, 0))
            st.entries_written += 1
        for i, ev in enumerate(ids):
            ite = dev.ites[ev]
            if ite.collection is None:
                # vgic_its_save_ite: MAPC V=0 dropped the collection and its ICID
                if self.kernel.save_ite_no_collection == "oops":
                    raise KernelOops(
                        f"vgic_its_save_ite: ITE {dev.device_id}/{ev} has no collection "
                        "(MAPC V=0 earlier): NULL dereference of ite->collection")
                mem.write_u64(dev.itt_addr + ev * ESZ, 0)  # zero ITE: gone after restore
                st.entries_written += 1
                continue
            nxt = min(ids[i + 1] - ev, VITS_ITE_MAX_EVENTID_OFFSET) if i + 1 < len(ids) else 0
            mem.write_u64(
                dev.itt_addr + ev * ESZ, abi.encode_ite(nxt, ite.irq.intid, ite.collection.collection_id)
            )
            st.entries_written += 1

    def vgic_its_save_collection_table(self, st: TableStats) -> None:
        baser = self.baser_coll_table
        if not baser & GITS_VALID:
            return
        gpa = GITS_BASER_ADDR_48_to_52(baser)
        max_size = GITS_BASER_NR_PAGES(baser) * SZ_64K
        filled = 0
        for coll in self.collection_list.values():
            self.mem.write_u64(gpa, abi.encode_cte(coll.target_addr, coll.collection_id))
            st.entries_written += 1
            gpa += ESZ
            filled += ESZ
        if filled == max_size:
            return
        self.mem.write_u64(gpa, 0)
        st.entries_written += 1

    # =================================================== restore (ABI REV0) ====
    def vgic_its_restore_tables_v0(self) -> TableStats:
        st = TableStats()
        try:
            self.vgic_its_restore_collection_table(st)
        except KvmError:
            self.vgic_its_free_collection_list()
            raise
        try:
            self.vgic_its_restore_device_tables(st)
        except KvmError:
            self.vgic_its_free_device_list()
            self.vgic_its_free_collection_list()
            raise
        return st

    def vgic_its_restore_collection_table(self, st: TableStats) -> None:
        baser = self.baser_coll_table
        if not baser & GITS_VALID:
            return
        gpa = GITS_BASER_ADDR_48_to_52(baser)
        max_size = GITS_BASER_NR_PAGES(baser) * SZ_64K
        read = 0
        while read < max_size:
            val = self.mem.read_u64(gpa)
            st.entries_read += 1
            cte = abi.decode_cte(val)
            if not cte.valid:
                st.invalid_read += 1
                return
            if cte.target_addr != COLLECTION_NOT_MAPPED and self.vgic.kvm_get_vcpu_by_id(cte.target_addr) is None:
                raise EINVAL(f"CTE ICID {cte.icid} targets vCPU {cte.target_addr}, which does not exist")
            if self.find_collection(cte.icid) is not None:
                raise EEXIST(f"CTE ICID {cte.icid} appears twice")
            if self.vgic_its_check_id(baser, cte.icid) is None:
                raise EINVAL(f"CTE ICID {cte.icid} outside the collection table")
            self.vgic_its_alloc_collection(cte.icid).target_addr = cte.target_addr
            st.collections += 1
            gpa += ESZ
            read += ESZ

    def scan_its_table(
        self, base: int, size: int, start_id: int, fn: Callable[[int, int], int], st: TableStats
    ) -> int:
        """``scan_its_table``: <0 never (errors raise), 0 = last element found, 1 = exhausted.

        Runs of all-zero (untouched) entries are skipped in bulk but counted as read, since
        the kernel reads them one by one and each returns 1.
        """
        mem = self.mem
        length = size
        id_ = start_id
        gpa = base
        while length > 0:
            nz = mem.find_nonzero(gpa, gpa + length, ESZ)
            if nz is None:
                st.entries_read += length // ESZ
                st.invalid_read += length // ESZ
                return 1
            if nz != gpa:
                skipped = (nz - gpa) // ESZ
                st.entries_read += skipped
                st.invalid_read += skipped
                id_ += skipped
                length -= nz - gpa
                gpa = nz
            val = mem.read_u64(gpa)
            st.entries_read += 1
            next_offset = fn(id_, val)
            if next_offset <= 0:
                return next_offset
            byte_offset = next_offset * ESZ
            if byte_offset >= length:
                break
            id_ += next_offset
            gpa += byte_offset
            length -= byte_offset
        return 1

    def vgic_its_restore_device_tables(self, st: TableStats) -> None:
        baser = self.baser_device_table
        if not baser & GITS_VALID:
            return
        base = GITS_BASER_ADDR_48_to_52(baser)
        size = GITS_BASER_NR_PAGES(baser) * SZ_64K
        hp = self._head_pointer()

        def restore_dte(id_: int, val: int) -> int:
            return self.vgic_its_restore_dte(id_, val, st, hp)

        if baser & GITS_BASER_INDIRECT:
            def handle_l1_dte(l1_id: int, val: int) -> int:
                valid, l2 = abi.decode_l1e(val)
                if not valid:
                    st.invalid_read += 1
                    return 1
                return self.scan_its_table(l2, SZ_64K, l1_id * L2_DTES, restore_dte, st)

            self.scan_its_table(base, size, 0, handle_l1_dte, st)
        else:
            self.scan_its_table(base, size, 0, restore_dte, st)

    def vgic_its_restore_dte(self, id_: int, val: int, st: TableStats, hp: bool) -> int:
        dte = abi.decode_dte(val)
        if not dte.valid:
            st.invalid_read += 1
            # head_pointer variant: an invalid entry's next field jumps to the next valid one
            return dte.next if hp and dte.next else 1
        # "Mimic the MAPD behaviour and reject invalid EID bits": before the DeviceID check
        # and before anything reads the ITT
        if dte.num_eventid_bits > abi.VITS_TYPER_IDBITS:
            raise EINVAL(f"DTE for DeviceID {id_:#x}: {dte.num_eventid_bits} EventID bits "
                         f"> {abi.VITS_TYPER_IDBITS}")
        if self.vgic_its_check_id(self.baser_device_table, id_) is None:
            raise EINVAL(f"DTE for DeviceID {id_:#x} outside the device table")
        dev = self.vgic_its_alloc_device(id_, dte.itt_addr, dte.num_eventid_bits)
        st.devices += 1
        try:
            self.vgic_its_restore_itt(dev, st, hp)
        except KvmError:
            self.vgic_its_free_device(dev)
            raise
        return dte.next

    def vgic_its_restore_itt(self, dev: ItsDevice, st: TableStats, hp: bool) -> None:
        def restore_ite(event_id: int, val: int) -> int:
            return self.vgic_its_restore_ite(dev, event_id, val, st, hp)

        self.scan_its_table(dev.itt_addr, (1 << dev.num_eventid_bits) * ESZ, 0, restore_ite, st)

    def vgic_its_restore_ite(self, dev: ItsDevice, event_id: int, val: int, st: TableStats, hp: bool) -> int:
        ite = abi.decode_ite(val)
        if ite.pintid == 0:
            st.invalid_read += 1
            return ite.next if hp and ite.next else 1
        if ite.pintid < VGIC_MIN_LPI:
            raise EINVAL(f"ITE {dev.device_id}/{event_id}: pINTID {ite.pintid} < 8192")
        if event_id + ite.next >= 1 << dev.num_eventid_bits:
            raise EINVAL(f"ITE {dev.device_id}/{event_id}: next offset {ite.next} runs past the ITT")
        coll = self.find_collection(ite.icid)
        if coll is None:
            raise EINVAL(f"ITE {dev.device_id}/{event_id}: ICID {ite.icid} has no collection")
        if not self.vgic_its_check_event_id(dev, event_id):
            raise EINVAL(f"ITE {dev.device_id}/{event_id} outside guest RAM")
        vcpu = self.collection_to_vcpu(coll)
        irq = self.vgic.vgic_add_lpi(ite.pintid, vcpu)
        self.vgic_its_alloc_ite(dev, coll, event_id, irq)
        st.ites += 1
        return ite.next

    # ============================================== architectural snapshot ====
    def mappings(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(DeviceID, EventID) -> (pINTID, ICID) of every live ITE."""
        out = {}
        for dev in self.device_list:
            for ev, ite in dev.ites.items():
                icid = -1 if ite.collection is None else ite.collection.collection_id
                out[(dev.device_id, ev)] = (ite.irq.intid, icid)
        return out


_HANDLERS: dict[int, Callable[[VgicIts, ItsCmd], None]] = {
    0x01: VgicIts.cmd_movi,
    0x03: VgicIts.cmd_int,
    0x04: VgicIts.cmd_clear,
    0x05: VgicIts.cmd_sync,
    0x08: VgicIts.cmd_mapd,
    0x09: VgicIts.cmd_mapc,
    0x0A: VgicIts.cmd_mapi,
    0x0B: VgicIts.cmd_mapi,
    0x0C: VgicIts.cmd_inv,
    0x0D: VgicIts.cmd_invall,
    0x0E: VgicIts.cmd_movall,
    0x0F: VgicIts.cmd_discard,
}
