"""Checks shared by the fuzz, corruption and co-simulation tests.

``assert_invariants(vm)``: the kernel model's internal bookkeeping is consistent (LPI
refcounts, device/collection lists, command queue pointers, ap_lists).

``reference_restore(...)``: what ``KVM_DEV_ARM_ITS_RESTORE_TABLES`` must produce from the
bytes in guest memory, decoded independently of ``gicsim.kvm.its``: it walks every table slot by
slot exactly as SPEC §2 and ``vgic-its.c`` describe (``scan_its_table``, ``restore_cte``,
``restore_dte``, ``restore_ite``, ``vgic_add_lpi``), only skipping pages that were never
written, so the model's bulk skipping and its error paths are checked against it.

Known kernel divergence, deliberately not followed here nor in the model: ``scan_its_table``
takes ``int size``, so a (corrupted) DTE with Size >= 28 (ITT of 2^29..2^32 entries) gives a
size of 0 and the kernel reads only ITT entry 0 of that device; SPEC §2 (and both walks here)
read the whole ITT.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import attrs

from gicsim.kvm import abi
from gicsim.kvm.arm_gic_v3 import GICR_PENDBASER_ADDRESS, GICR_PROPBASER_ADDRESS
from gicsim.kvm.its import (
    GITS_BASER_INDIRECT,
    GITS_BASER_NR_PAGES,
    GITS_VALID,
    ITS_CMD_BUFFER_SIZE,
    GITS_BASER_ADDR_48_to_52,
)
from gicsim.kvm.memory import PAGE_SHIFT, GuestMemory

COLLECTION_NOT_MAPPED = 0xFFFF_FFFF


# ------------------------------------------------------------------------- invariants ----
def assert_invariants(vm: Any) -> None:
    """``vm`` is anything with a ``vgic`` (tests' conftest VM, ``gicsim.sim.vm.VirtualMachine``)."""
    vgic = vm.vgic
    nr = vgic.nr_vcpus
    refs: dict[int, int] = {}  # id(irq) -> references held by ITEs and cache entries
    for its in vgic.its_list:
        ids = [id(d) for d in its.device_list]
        assert len(set(ids)) == len(ids), "a device is twice in device_list"
        listed = set(ids)
        for dev_id, dev in its.devices.items():
            assert dev.device_id == dev_id, f"devices[{dev_id}] holds device {dev.device_id}"
            assert id(dev) in listed, f"device {dev_id} is in devices but not in device_list"
        for dev in its.device_list:
            assert dev.device_id in its.devices, f"device {dev.device_id} missing from devices"
            assert 1 <= dev.num_eventid_bits <= 32, dev.num_eventid_bits
            for ev, ite in dev.ites.items():
                where = f"ITE {dev.device_id}/{ev}"
                assert ite.event_id == ev, where
                assert ev < 1 << dev.num_eventid_bits, f"{where} beyond the ITT"
                if ite.collection is not None:
                    c = its.collection_list.get(ite.collection.collection_id)
                    assert c is ite.collection, f"{where}: collection not in collection_list"
                irq = ite.irq
                assert vgic.lpi_xa.get(irq.intid) is irq, f"{where}: LPI {irq.intid} not in lpi_xa"
                refs[id(irq)] = refs.get(id(irq), 0) + 1
        for key, irq in its.translation_cache.items():
            assert vgic.lpi_xa.get(irq.intid) is irq, f"cache entry {key:#x}: LPI not in lpi_xa"
            refs[id(irq)] = refs.get(id(irq), 0) + 1
        for icid, coll in its.collection_list.items():
            assert coll.collection_id == icid, f"collection_list[{icid}] is {coll.collection_id}"
            t = coll.target_addr
            assert t == COLLECTION_NOT_MAPPED or 0 <= t < nr, f"collection {icid} targets {t}"
        qsize = ITS_CMD_BUFFER_SIZE(its.cbaser)
        for name in ("creadr", "cwriter"):
            v = getattr(its, name)
            assert v % 32 == 0 and 0 <= v < qsize, f"{name} {v:#x} (queue {qsize:#x})"
    # vgic_queue_irq_unlock takes a reference for the ap_list (vgic_get_irq_kref) and
    # vgic_prune_ap_list drops it: a queued LPI is referenced even with no ITE left
    for cpu in vgic.cpus:
        for irq in cpu.ap_list.values():
            refs[id(irq)] = refs.get(id(irq), 0) + 1
    for intid, irq in vgic.lpi_xa.items():
        assert irq.intid == intid, f"lpi_xa[{intid}] is LPI {irq.intid}"
        n = refs.get(id(irq), 0)
        assert n >= 1, f"LPI {intid} is referenced by no ITE, no cache entry and no ap_list"
        assert irq.refcount == n, f"LPI {intid}: refcount {irq.refcount}, references {n}"
        assert irq.target_vcpu is None or 0 <= irq.target_vcpu < nr, irq
        if irq.vcpu is not None:
            assert vgic.cpus[irq.vcpu].ap_list.get(intid) is irq, f"LPI {intid} lost from ap_list"
    for cpu in vgic.cpus:
        for intid, irq in cpu.ap_list.items():
            assert irq.intid == intid
            assert irq.vcpu == cpu.vcpu_id, f"vCPU {cpu.vcpu_id} ap_list holds {irq} (vcpu {irq.vcpu})"
            assert vgic.lpi_xa.get(intid) is irq, f"vCPU {cpu.vcpu_id} ap_list holds freed LPI {intid}"


# ----------------------------------------------------------------- reference restore ----
class Reject(Exception):  # noqa: N818 - mirrors the kernel's "return -Exxx"
    def __init__(self, errno: str, why: str) -> None:
        super().__init__(f"{errno}: {why}")
        self.errno = errno


@attrs.define
class Restored:
    """What a restore yields: ``errno`` None (accepted) with the state, or the errno."""

    errno: str | None = None
    collections: dict[int, int] = attrs.Factory(dict)  # ICID -> target
    devices: dict[int, tuple[int, int]] = attrs.Factory(dict)  # DeviceID -> (ITT, bits)
    ites: dict[tuple[int, int], tuple[int, int]] = attrs.Factory(dict)  # -> (pINTID, ICID)
    lpis: dict[int, int | None] = attrs.Factory(dict)  # pINTID -> target vCPU
    pending: set[int] = attrs.Factory(set)


class _Mem:
    """Slot reads on a private copy of guest memory (pending bits get consumed)."""

    def __init__(self, mem: GuestMemory) -> None:
        self.m = GuestMemory(mem.size, mem.base)
        mem.copy_pages_to(self.m)
        self.pfns = self.m.present_pfns()

    def read_u64(self, gpa: int) -> int:
        if not self.m.is_visible(gpa, 8):
            raise Reject("EFAULT", f"read {gpa:#x} outside RAM")
        return self.m.read_u64(gpa)

    def next_slot(self, gpa: int, end: int) -> int:
        """The next slot at or after ``gpa`` that a walk must look at: in a written page, or
        the first one outside RAM (where a slot-by-slot walk faults). ``end`` if none."""
        m = self.m
        while gpa < end:
            if not m.is_visible(gpa, 8):
                return gpa
            pfn = gpa >> PAGE_SHIFT
            i = bisect_left(self.pfns, pfn)
            if i < len(self.pfns) and self.pfns[i] == pfn:
                return gpa
            # an untouched page reads as zeros (invalid slots): on to the next written page
            gpa = min(self.pfns[i] << PAGE_SHIFT if i < len(self.pfns) else m.end, m.end)
        return end


def reference_restore(
    mem: GuestMemory,
    baser_dev: int,
    baser_coll: int,
    nr_vcpus: int,
    propbaser: int,
    pendbasers: list[int],
    restore_scan: str = "full",
    clears_ram: bool = True,
) -> Restored:
    """The outcome of RESTORE_TABLES on a fresh ITS, from the tables in ``mem``."""
    out = Restored()
    m = _Mem(mem)
    hp = restore_scan == "head_pointer"
    try:
        _restore(m, out, baser_dev, baser_coll, nr_vcpus, propbaser, pendbasers, hp, clears_ram)
    except Reject as r:
        return Restored(errno=r.errno)
    return out


def _check_id(m: _Mem, baser: int, id_: int, device: bool) -> bool:
    if id_ >= 1 << 16:
        return False
    base = GITS_BASER_ADDR_48_to_52(baser)
    size = GITS_BASER_NR_PAGES(baser) * abi.SZ_64K
    if not (device and baser & GITS_BASER_INDIRECT):
        if id_ >= size // 8:
            return False
        return m.m.is_visible(base + id_ * 8, 8)
    l1 = id_ // abi.L2_DTES
    if l1 >= size // 8 or not m.m.is_visible(base + l1 * 8, 8):
        return False
    e = m.m.read_u64(base + l1 * 8)
    if not e >> 63:
        return False
    gpa = (e & abi.KVM_ITS_L1E_ADDR_MASK) + (id_ % abi.L2_DTES) * 8
    return m.m.is_visible(gpa, 8)


def _scan(m: _Mem, base: int, size: int, start_id: int, fn: Any) -> int:
    """``scan_its_table``: 0 = last element found, 1 = exhausted; errors raise."""
    gpa, length, id_ = base, size, start_id
    while length > 0:
        nxt = m.next_slot(gpa, gpa + length)
        if nxt >= gpa + length:
            return 1
        id_ += (nxt - gpa) // 8
        length -= nxt - gpa
        gpa = nxt
        val = m.read_u64(gpa)
        r = fn(id_, val)
        if r <= 0:
            return r
        if r * 8 >= length:
            break
        id_ += r
        gpa += r * 8
        length -= r * 8
    return 1


def _restore(m, out, baser_dev, baser_coll, nr, propbaser, pendbasers, hp, clears) -> None:  # noqa: ANN001
    # --- collection table: packed from the start, ended by the first invalid entry
    if baser_coll & GITS_VALID:
        gpa = GITS_BASER_ADDR_48_to_52(baser_coll)
        size = GITS_BASER_NR_PAGES(baser_coll) * abi.SZ_64K
        read = 0
        while read < size:
            val = m.read_u64(gpa)
            if not val >> 63:
                break
            target = (val >> 16) & 0xFFFF_FFFF
            icid = val & 0xFFFF
            if target != COLLECTION_NOT_MAPPED and target >= nr:
                raise Reject("EINVAL", f"CTE target {target}")
            if icid in out.collections:
                raise Reject("EEXIST", f"ICID {icid} twice")
            if not _check_id(m, baser_coll, icid, device=False):
                raise Reject("EINVAL", f"ICID {icid} outside the table")
            out.collections[icid] = target
            gpa += 8
            read += 8
    if not baser_dev & GITS_VALID:
        return
    prop = GICR_PROPBASER_ADDRESS(propbaser)

    def add_lpi(intid: int, vcpu: int | None) -> None:
        if intid in out.lpis:
            return
        a = prop + intid - abi.GIC_LPI_OFFSET
        if not m.m.is_visible(a, 1):
            raise Reject("EFAULT", f"property byte of LPI {intid}")
        if vcpu is not None:
            p = GICR_PENDBASER_ADDRESS(pendbasers[vcpu]) + intid // 8
            if not m.m.is_visible(p, 1):
                raise Reject("EFAULT", f"pending bit of LPI {intid}")
            byte = m.m.read_u8(p)
            bit = 1 << (intid % 8)
            if byte & bit:
                out.pending.add(intid)
                if clears:
                    m.m.write_u8(p, byte & ~bit)
        out.lpis[intid] = vcpu

    def restore_dte(id_: int, val: int) -> int:
        d = abi.decode_dte(val)
        if not d.valid:
            return d.next if hp and d.next else 1
        # vgic_its_restore_dte (vgic-its.c, 6.12.117 and 6.1.192): "Mimic the MAPD
        # behaviour": more than VITS_TYPER_IDBITS EventID bits is -EINVAL, checked before
        # the DeviceID and before the ITT is read
        if d.num_eventid_bits > abi.VITS_TYPER_IDBITS:
            raise Reject("EINVAL", f"DeviceID {id_}: {d.num_eventid_bits} EventID bits")
        if not _check_id(m, baser_dev, id_, device=True):
            raise Reject("EINVAL", f"DeviceID {id_} outside the table")
        out.devices[id_] = (d.itt_addr, d.num_eventid_bits)
        nbits = d.num_eventid_bits

        def restore_ite(ev: int, v: int) -> int:
            it = abi.decode_ite(v)
            if it.pintid == 0:
                return it.next if hp and it.next else 1
            if it.pintid < abi.VGIC_MIN_LPI:
                raise Reject("EINVAL", f"pINTID {it.pintid}")
            if ev + it.next >= 1 << nbits:
                raise Reject("EINVAL", "ITE chain past the ITT")
            if it.icid not in out.collections:
                raise Reject("EINVAL", f"ICID {it.icid} has no collection")
            if not m.m.is_visible(d.itt_addr + ev * 8, 8):
                raise Reject("EINVAL", "ITE outside RAM")
            t = out.collections[it.icid]
            add_lpi(it.pintid, None if t == COLLECTION_NOT_MAPPED else t)
            out.ites[(id_, ev)] = (it.pintid, it.icid)
            return it.next

        _scan(m, d.itt_addr, (1 << nbits) * 8, 0, restore_ite)
        return d.next

    base = GITS_BASER_ADDR_48_to_52(baser_dev)
    size = GITS_BASER_NR_PAGES(baser_dev) * abi.SZ_64K
    if baser_dev & GITS_BASER_INDIRECT:

        def l1(l1_id: int, val: int) -> int:
            if not val >> 63:
                return 1
            return _scan(m, val & abi.KVM_ITS_L1E_ADDR_MASK, abi.SZ_64K, l1_id * abi.L2_DTES, restore_dte)

        _scan(m, base, size, 0, l1)
    else:
        _scan(m, base, size, 0, restore_dte)


def model_restored(its: Any) -> Restored:
    """The same view of a live ITS (after a successful restore)."""
    vgic = its.vgic
    return Restored(
        errno=None,
        collections={c.collection_id: c.target_addr for c in its.collection_list.values()},
        devices={d.device_id: (d.itt_addr, d.num_eventid_bits) for d in its.device_list},
        ites=its.mappings(),
        lpis={i: irq.target_vcpu for i, irq in vgic.lpi_xa.items()},
        pending={i for i, irq in vgic.lpi_xa.items() if irq.pending_latch},
    )
