"""Guest physical memory: sparse 4 KiB pages, little-endian, with dirty-page tracking.

Guest memory is the migrated truth (SPEC §1): the ITS tables, the property table and the
pending tables all live here, and pre-copy migration resends the pages that were written.
Pages materialise on first write; untouched RAM reads as zeros, which lets table walks skip
whole untouched pages instead of looping over millions of empty slots.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, insort
from collections.abc import Iterable

from gicsim.kvm.errors import EFAULT

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
PA_BITS = 52
PA_LIMIT = 1 << PA_BITS
#: Guest RAM base on the arm ``virt`` machine (QEMU hw/arm/virt.c, VIRT_MEM).
RAM_BASE = 0x4000_0000

_U64 = struct.Struct("<Q")


class GuestMemory:
    """Sparse RAM ``[base, base + size)``; any access outside it is ``-EFAULT`` as in KVM."""

    __slots__ = ("base", "size", "end", "_pages", "_sorted", "dirty")

    def __init__(self, size: int, base: int = RAM_BASE) -> None:
        if size <= 0 or base & PAGE_MASK or size & PAGE_MASK or base + size > PA_LIMIT:
            raise ValueError(f"bad RAM layout base={base:#x} size={size:#x}")
        self.base = base
        self.size = size
        self.end = base + size
        self._pages: dict[int, bytearray] = {}
        self._sorted: list[int] = []  # page numbers present, ascending (for bulk skips)
        self.dirty: set[int] = set()

    # -- access -------------------------------------------------------------------------
    def is_visible(self, addr: int, n: int = 1) -> bool:
        """``kvm_is_visible_gfn``: the range lies in a memslot."""
        return self.base <= addr and addr + n <= self.end

    def _page_for_write(self, pfn: int) -> bytearray:
        page = self._pages.get(pfn)
        if page is None:
            page = bytearray(PAGE_SIZE)
            self._pages[pfn] = page
            insort(self._sorted, pfn)
        self.dirty.add(pfn)
        return page

    def read(self, addr: int, n: int) -> bytes:
        if addr < self.base or addr + n > self.end:
            raise EFAULT(f"guest read {addr:#x}+{n} outside RAM")
        out = bytearray()
        while n:
            pfn, off = addr >> PAGE_SHIFT, addr & PAGE_MASK
            chunk = min(n, PAGE_SIZE - off)
            page = self._pages.get(pfn)
            out += page[off : off + chunk] if page is not None else bytes(chunk)
            addr += chunk
            n -= chunk
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        n = len(data)
        if addr < self.base or addr + n > self.end:
            raise EFAULT(f"guest write {addr:#x}+{n} outside RAM")
        pos = 0
        while pos < n:
            pfn, off = addr >> PAGE_SHIFT, addr & PAGE_MASK
            chunk = min(n - pos, PAGE_SIZE - off)
            self._page_for_write(pfn)[off : off + chunk] = data[pos : pos + chunk]
            addr += chunk
            pos += chunk

    def read_u8(self, addr: int) -> int:
        if addr < self.base or addr >= self.end:
            raise EFAULT(f"guest read {addr:#x} outside RAM")
        page = self._pages.get(addr >> PAGE_SHIFT)
        return 0 if page is None else page[addr & PAGE_MASK]

    def write_u8(self, addr: int, value: int) -> None:
        if addr < self.base or addr >= self.end:
            raise EFAULT(f"guest write {addr:#x} outside RAM")
        self._page_for_write(addr >> PAGE_SHIFT)[addr & PAGE_MASK] = value & 0xFF

    def read_u64(self, addr: int) -> int:
        """Little-endian u64; ``addr`` must be 8-byte aligned (all ITS entries are)."""
        if addr < self.base or addr + 8 > self.end:
            raise EFAULT(f"guest read {addr:#x}+8 outside RAM")
        page = self._pages.get(addr >> PAGE_SHIFT)
        return 0 if page is None else _U64.unpack_from(page, addr & PAGE_MASK)[0]

    def write_u64(self, addr: int, value: int) -> None:
        if addr < self.base or addr + 8 > self.end:
            raise EFAULT(f"guest write {addr:#x}+8 outside RAM")
        _U64.pack_into(self._page_for_write(addr >> PAGE_SHIFT), addr & PAGE_MASK, value)

    # -- bulk scanning ------------------------------------------------------------------
    def find_nonzero(self, addr: int, end: int, esz: int = 8) -> int | None:
        """First ``esz``-aligned entry address in ``[addr, end)`` whose bytes are not all zero.

        Returns None when every entry in the range reads as zero. Raises ``EFAULT`` when
        the walk would leave RAM before finding one, exactly where an entry-by-entry walk
        would have faulted. Untouched pages are skipped without looking at them.
        """
        if addr >= end:
            return None
        if addr < self.base:
            raise EFAULT(f"guest read {addr:#x} outside RAM")
        limit = min(end, self.end)
        pages = self._pages
        sorted_pfns = self._sorted
        cur = addr
        while cur < limit:
            pfn = cur >> PAGE_SHIFT
            page = pages.get(pfn)
            if page is None:
                i = bisect_left(sorted_pfns, pfn)
                if i == len(sorted_pfns):
                    cur = limit
                    break
                cur = max(cur, sorted_pfns[i] << PAGE_SHIFT)
                continue
            off = cur & PAGE_MASK
            stop = min(PAGE_SIZE, off + (limit - cur))
            chunk = page[off:stop]
            stripped = len(chunk) - len(chunk.lstrip(b"\x00"))
            if stripped < len(chunk):
                hit = cur + stripped
                hit -= (hit - addr) % esz
                return hit
            cur += stop - off
        if end > self.end and cur >= self.end:
            raise EFAULT(f"table walk left RAM at {self.end:#x}")
        return None

    # -- migration ----------------------------------------------------------------------
    def take_dirty(self) -> set[int]:
        """Return the dirty page numbers and start a new dirty-logging round."""
        d = self.dirty
        self.dirty = set()
        return d

    def copy_pages_to(self, other: GuestMemory, pfns: Iterable[int] | None = None) -> int:
        """Copy the given pages (default: every present page) into ``other``; returns bytes."""
        todo = self._sorted if pfns is None else sorted(pfns)
        n = 0
        for pfn in todo:
            page = self._pages.get(pfn)
            if page is None:
                if pfn in other._pages:
                    other._pages[pfn][:] = bytes(PAGE_SIZE)
                continue
            dst = other._pages.get(pfn)
            if dst is None:
                other._pages[pfn] = bytearray(page)
                insort(other._sorted, pfn)
            else:
                dst[:] = page
            n += PAGE_SIZE
        return n

    @property
    def present_pages(self) -> int:
        return len(self._pages)

    def present_pfns(self) -> list[int]:
        return list(self._sorted)
