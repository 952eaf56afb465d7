"""What an ITS table save or restore run by the kernel touched, for the timing model.

timing: the kernel's ``vgic_its_save_tables_v0`` / ``vgic_its_restore_tables_v0`` return no
counts, and the SimPy side charges ``its_save_per_entry_ns`` per entry written and
``its_restore_scan_per_entry_ns`` / ``its_restore_per_mapping_ns`` per entry scanned /
mapping restored (:class:`gicsim.kvm.its.TableStats`). These counts are derived here from
the kernel's state (before a save) and from the tables in guest RAM (after a restore that
succeeded), walking them as ``scan_its_table`` does (REV0: ``next`` offsets, one 8-byte
entry at a time). Nothing here decides an outcome.
"""

from __future__ import annotations

from typing import Any

from gicsim.kvm import abi
from gicsim.kvm.its import (
    GITS_BASER_INDIRECT,
    GITS_BASER_NR_PAGES,
    GITS_VALID,
    GITS_BASER_ADDR_48_to_52,
    TableStats,
    VgicIts,
)

ESZ = abi.ESZ


def save_stats(dump: dict[str, Any]) -> TableStats:
    """Entries ``vgic_its_save_tables_v0`` writes for the ITS state in ``dump``
    (:meth:`gicsim.linux.lib.VM.its_dump`): a DTE per device, an ITE per event (a zero one
    for an ITE without collection), a CTE per collection and the terminating zero CTE
    unless the collection table is full."""
    st = TableStats()
    s = dump["state"]
    if s["baser_device"] & GITS_VALID:
        st.entries_written += len(dump["devices"]) + len(dump["ites"])
    bc = s["baser_coll"]
    if bc & GITS_VALID:
        n = len(dump["collections"])
        st.entries_written += n
        if n * ESZ != GITS_BASER_NR_PAGES(bc) * abi.SZ_64K:
            st.entries_written += 1
    return st


class _Walker:
    """The part of a VgicIts that ``VgicIts.scan_its_table`` uses: guest memory."""

    def __init__(self, mem: Any) -> None:
        self.mem = mem


def restore_stats(mem: Any, baser_device: int, baser_coll: int) -> TableStats:
    """Entries a successful ``vgic_its_restore_tables_v0`` scanned in ``mem``."""
    st = TableStats()
    if hasattr(mem, "scan_view"):
        mem = mem.scan_view()
    if baser_coll & GITS_VALID:
        gpa = GITS_BASER_ADDR_48_to_52(baser_coll)
        max_size = GITS_BASER_NR_PAGES(baser_coll) * abi.SZ_64K
        read = 0
        while read < max_size:
            st.entries_read += 1
            if not abi.decode_cte(mem.read_u64(gpa)).valid:
                st.invalid_read += 1
                break
            st.collections += 1
            gpa += ESZ
            read += ESZ
    if not baser_device & GITS_VALID:
        return st
    w = _Walker(mem)
    scan = VgicIts.scan_its_table

    def restore_ite(event_id: int, val: int) -> int:
        ite = abi.decode_ite(val)
        if ite.pintid == 0:
            st.invalid_read += 1
            return 1
        st.ites += 1
        return ite.next

    def restore_dte(id_: int, val: int) -> int:
        dte = abi.decode_dte(val)
        if not dte.valid:
            st.invalid_read += 1
            return 1
        st.devices += 1
        scan(w, dte.itt_addr, (1 << dte.num_eventid_bits) * ESZ, 0, restore_ite, st)  # type: ignore[arg-type]
        return dte.next

    base = GITS_BASER_ADDR_48_to_52(baser_device)
    size = GITS_BASER_NR_PAGES(baser_device) * abi.SZ_64K
    if baser_device & GITS_BASER_INDIRECT:

        def handle_l1_dte(l1_id: int, val: int) -> int:
            valid, l2 = abi.decode_l1e(val)
            if not valid:
                st.invalid_read += 1
                return 1
            return scan(w, l2, abi.SZ_64K, l1_id * abi.L2_DTES, restore_dte, st)  # type: ignore[arg-type]

        scan(w, base, size, 0, handle_l1_dte, st)  # type: ignore[arg-type]
    else:
        scan(w, base, size, 0, restore_dte, st)  # type: ignore[arg-type]
    return st
