"""Guest RAM of a kernel-backend VM: the library's memslot (:class:`gicsim.linux.lib.VM`
``ram``, an anonymous ``mmap``) seen through the interface of
:class:`gicsim.kvm.memory.GuestMemory`, so the SimPy side reads and writes the very bytes
the kernel's ``kvm_read_guest``/``kvm_write_guest`` use (no copy per access).

Dirty tracking keeps ``GuestMemory``'s meaning for pre-copy: a page is dirty once written
since the last :meth:`take_dirty`, by the guest (a store through this class) or by KVM
(``kvm_write_guest``: the library's dirty log, ``h_vm_dirty_log``); a page is present once
it was ever written, which is what the migration copies.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterable

import numpy as np

from gicsim.kvm.errors import EFAULT
from gicsim.kvm.memory import PAGE_SHIFT, PAGE_SIZE
from gicsim.linux import lib as L

_U64 = struct.Struct("<Q")


class KernelMemory:
    """Slot 0 of a :class:`~gicsim.linux.lib.VM` as a ``GuestMemory``."""

    __slots__ = (
        "vm",
        "base",
        "size",
        "end",
        "view",
        "dirty",
        "_present",
        "_nwords",
        "_log",
        "_log_np",
    )

    def __init__(self, vm: L.VM) -> None:
        slot = vm.slots[0]
        self.vm = vm
        self.base = slot.gpa
        self.size = slot.size
        self.end = slot.gpa + slot.size
        self.view = slot.view
        self.dirty: set[int] = set()
        self._present: set[int] = set()
        self._nwords = (self.size // PAGE_SIZE + 63) // 64
        self._log = (L._u64 * self._nwords)()
        self._log_np = np.frombuffer(self._log, dtype=np.uint64)  # type: ignore[call-overload]

    # -- bookkeeping ----------------------------------------------------------------------
    def _mark(self, addr: int, n: int) -> None:
        first, last = addr >> PAGE_SHIFT, (addr + max(n, 1) - 1) >> PAGE_SHIFT
        if first == last:
            self.dirty.add(first)
            self._present.add(first)
        else:
            r = range(first, last + 1)
            self.dirty.update(r)
            self._present.update(r)

    def poll_kernel(self) -> None:
        """Fold the pages KVM wrote (the library's dirty log, ``h_vm_dirty_log`` as
        :meth:`gicsim.linux.lib.VM.dirty_pages`, read into a reused bitmap) into
        dirty/present."""
        n = self.vm.k.h_vm_dirty_log(self.vm.kvm, 0, self._log, self._nwords, 1)
        if n <= 0:
            return
        words = self._log_np[: min(n, self._nwords)]
        hit = np.flatnonzero(words)
        if not len(hit):
            return
        bits = np.unpackbits(words[hit].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        rows, cols = np.nonzero(bits)
        pfns = set(((self.base >> PAGE_SHIFT) + hit[rows] * 64 + cols).tolist())
        self.dirty |= pfns
        self._present |= pfns

    # -- access ---------------------------------------------------------------------------
    def is_visible(self, addr: int, n: int = 1) -> bool:
        return self.base <= addr and addr + n <= self.end

    def read(self, addr: int, n: int) -> bytes:
        if addr < self.base or addr + n > self.end:
            raise EFAULT(f"guest read {addr:#x}+{n} outside RAM")
        o = addr - self.base
        return bytes(self.view[o : o + n])

    def write(self, addr: int, data: bytes) -> None:
        n = len(data)
        if addr < self.base or addr + n > self.end:
            raise EFAULT(f"guest write {addr:#x}+{n} outside RAM")
        o = addr - self.base
        self.view[o : o + n] = data
        self._mark(addr, n)

    def read_u8(self, addr: int) -> int:
        if addr < self.base or addr >= self.end:
            raise EFAULT(f"guest read {addr:#x} outside RAM")
        return self.view[addr - self.base]

    def write_u8(self, addr: int, value: int) -> None:
        if addr < self.base or addr >= self.end:
            raise EFAULT(f"guest write {addr:#x} outside RAM")
        self.view[addr - self.base] = value & 0xFF
        self._mark(addr, 1)

    def read_u64(self, addr: int) -> int:
        if addr < self.base or addr + 8 > self.end:
            raise EFAULT(f"guest read {addr:#x}+8 outside RAM")
        return _U64.unpack_from(self.view, addr - self.base)[0]

    def write_u64(self, addr: int, value: int) -> None:
        if addr < self.base or addr + 8 > self.end:
            raise EFAULT(f"guest write {addr:#x}+8 outside RAM")
        _U64.pack_into(self.view, addr - self.base, value)
        self._mark(addr, 8)

    def poke_raw(self, addr: int, data: bytes) -> None:
        """Store without dirtying (the backend's own bookkeeping, restored right after)."""
        o = addr - self.base
        self.view[o : o + len(data)] = data

    # -- bulk scanning (GuestMemory.find_nonzero semantics) --------------------------------
    def find_nonzero(self, addr: int, end: int, esz: int = 8) -> int | None:
        """``GuestMemory.find_nonzero``: the first ``esz``-aligned non-zero entry in
        ``[addr, end)``; pages never written (by the guest or by KVM) are zero and skipped."""
        if addr >= end:
            return None
        if addr < self.base:
            raise EFAULT(f"guest read {addr:#x} outside RAM")
        self.poll_kernel()
        limit = min(end, self.end)
        present, base, view = self._present, self.base, self.view
        if limit > addr:
            for pfn in range(addr >> PAGE_SHIFT, ((limit - 1) >> PAGE_SHIFT) + 1):
                if pfn not in present:
                    continue
                lo = max(addr, pfn << PAGE_SHIFT)
                hi = min(limit, (pfn + 1) << PAGE_SHIFT)
                chunk = bytes(view[lo - base : hi - base])
                stripped = len(chunk) - len(chunk.lstrip(b"\x00"))
                if stripped < len(chunk):
                    hit = lo + stripped
                    return hit - (hit - addr) % esz
        if end > self.end:
            raise EFAULT(f"table walk left RAM at {self.end:#x}")
        return None

    def scan_view(self) -> _ScanView:
        """A read-only view for a table walk that does not leave the kernel in between
        (``restore_stats``): the dirty log is folded in once, present pages bisected."""
        self.poll_kernel()
        return _ScanView(self)

    # -- migration ------------------------------------------------------------------------
    def take_dirty(self) -> set[int]:
        self.poll_kernel()
        d = self.dirty
        self.dirty = set()
        return d

    def copy_pages_to(self, other: KernelMemory, pfns: Iterable[int] | None = None) -> int:
        """Copy pages into ``other`` (default: every present page); returns bytes copied.
        A page never written here but present there is zeroed there (as GuestMemory)."""
        self.poll_kernel()
        todo = sorted(self._present) if pfns is None else sorted(pfns)
        n = 0
        src, dst = self.view, other.view
        for pfn in todo:
            o = (pfn << PAGE_SHIFT) - self.base
            if pfn in self._present:
                p = (pfn << PAGE_SHIFT) - other.base
                dst[p : p + PAGE_SIZE] = src[o : o + PAGE_SIZE]
                other._present.add(pfn)
                n += PAGE_SIZE
            elif pfn in other._present:
                p = (pfn << PAGE_SHIFT) - other.base
                dst[p : p + PAGE_SIZE] = bytes(PAGE_SIZE)
        return n

    @property
    def present_pages(self) -> int:
        self.poll_kernel()
        return len(self._present)

    def present_pfns(self) -> list[int]:
        self.poll_kernel()
        return sorted(self._present)


class _ScanView:
    """``read_u64`` / ``find_nonzero`` of a KernelMemory whose present pages are fixed for
    the walk (nothing writes guest memory meanwhile)."""

    def __init__(self, mem: KernelMemory) -> None:
        self.mem = mem
        self.read_u64 = mem.read_u64
        self.pfns = sorted(mem._present)

    def find_nonzero(self, addr: int, end: int, esz: int = 8) -> int | None:
        mem = self.mem
        if addr >= end:
            return None
        if addr < mem.base:
            raise EFAULT(f"guest read {addr:#x} outside RAM")
        limit = min(end, mem.end)
        pfns, base, view = self.pfns, mem.base, mem.view
        i = bisect_left(pfns, addr >> PAGE_SHIFT)
        while i < len(pfns) and (pfns[i] << PAGE_SHIFT) < limit:
            pfn = pfns[i]
            lo = max(addr, pfn << PAGE_SHIFT)
            hi = min(limit, (pfn + 1) << PAGE_SHIFT)
            chunk = bytes(view[lo - base : hi - base])
            stripped = len(chunk) - len(chunk.lstrip(b"\x00"))
            if stripped < len(chunk):
                hit = lo + stripped
                return hit - (hit - addr) % esz
            i += 1
        if end > mem.end:
            raise EFAULT(f"table walk left RAM at {mem.end:#x}")
        return None
