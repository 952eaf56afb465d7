"""The kernel ITS's state, read through the harness's ``h_its_dump`` (its_wrap.c) and parsed
only as far as a caller needs: the translation cache and the ITEs as lookup tables
(parsed once per dump, on first use); the full state (devices, ITEs, collections, cache) is
parsed once, on demand, into :meth:`gicsim.linux.lib.VM.its_dump`'s layout.

Record lines (its_wrap.c): ``S enabled cbaser creadr cwriter baser_device baser_coll
abi_rev`` / ``D devid bits itt`` / ``E devid eventid intid icid`` / ``C icid target`` /
``T devid eventid intid``.
"""

from __future__ import annotations

import ctypes as C
import re
from typing import Any

from gicsim.linux import lib as L

_T = re.compile(r"^T (\d+) (\d+) (\d+)$", re.M)
_E = re.compile(r"^E (\d+) (\d+) (\d+) -?\d+$", re.M)
_STATE_KEYS = ("enabled", "cbaser", "creadr", "cwriter", "baser_device", "baser_coll", "abi_rev")


class DumpReader:
    """A reusable buffer for ``h_its_dump`` of one ITS device."""

    def __init__(self, vm: L.VM) -> None:
        self.vm = vm
        self.size = 1 << 16
        self.buf = C.create_string_buffer(self.size)

    def read(self) -> ItsDump:
        k, its = self.vm.k, self.vm.its
        while True:
            n = k.h_its_dump(its, self.buf, self.size)
            if n >= 0:
                return ItsDump("\n" + C.string_at(self.buf, n).decode())
            self.size *= 4
            self.buf = C.create_string_buffer(self.size)


class ItsDump:
    """One dump's text ('\\n'-prefixed so every record starts with '\\n')."""

    __slots__ = ("text", "_state", "_full", "_cache", "_ites")

    def __init__(self, text: str) -> None:
        self.text = text
        self._state: dict[str, int] | None = None
        self._full: dict[str, Any] | None = None
        self._cache: dict[tuple[int, int], int] | None = None
        self._ites: dict[tuple[int, int], int] | None = None

    @property
    def state(self) -> dict[str, int]:
        s = self._state
        if s is None:
            line = self.text[1 : self.text.index("\n", 1)].split()
            s = self._state = dict(zip(_STATE_KEYS, (int(x, 0) for x in line[1:]), strict=True))
        return s

    def cache_intid(self, devid: int, eventid: int) -> int | None:
        """The translation cache's LPI for (DeviceID, EventID), None on a miss."""
        c = self._cache
        if c is None:
            c = self._cache = {(int(d), int(e)): int(i) for d, e, i in _T.findall(self.text)}
        return c.get((devid, eventid))

    def ite_intid(self, devid: int, eventid: int) -> int | None:
        """The ITE's pINTID for (DeviceID, EventID), None without an ITE."""
        m = self._ites
        if m is None:
            m = self._ites = {(int(d), int(e)): int(i) for d, e, i in _E.findall(self.text)}
        return m.get((devid, eventid))

    def full(self) -> dict[str, Any]:
        out = self._full
        if out is not None:
            return out
        out = self._full = dict(state=self.state, devices={}, ites={}, collections={}, cache={})
        for line in self.text[1:].splitlines():
            f = line.split()
            num = [int(x, 0) for x in f[1:]]
            if f[0] == "D":
                out["devices"][num[0]] = dict(nr_eventid_bits=num[1], itt=num[2])
            elif f[0] == "E":
                out["ites"][(num[0], num[1])] = dict(intid=num[2], icid=num[3])
            elif f[0] == "C":
                out["collections"][num[0]] = num[1]
            elif f[0] == "T":
                out["cache"][(num[0], num[1])] = num[2]
        return out
