"""The run's trace: one tuple per event in the hot path, one DataFrame at the end.

Columns: ``t`` (ns), ``kind``, ``side`` (VM incarnation: vm0 is the source of the first
migration, vm1 its destination...), ``vcpu``, ``lpi``, ``device``, ``event``, ``icid``
(-1 where not applicable) and ``info`` (a reason, errno, command or step name).

Kinds and what their columns hold:

==============  =============================================================================
``raise``       a guest-visible intent to interrupt. info: ``msi`` (device), ``int`` (guest
                wrote an INT command), ``set_pending`` (guest wrote a pending bit; lpi set)
``accept``      the ITS took an MSI/INT: lpi = the LPI record it hit, vcpu = its target
``drop``        the ITS refused it; info = reason (its_disabled, lpis_disabled, unmapped)
``deliver``     vcpu acknowledged lpi (the handler starts)
``eoi``         vcpu finished lpi's handler
``gcmd``        the guest wrote a command (its intent): info = MAPD, MAPD-, MAPC, MAPC-, MAPTI,
                MOVI, DISCARD, MOVALL (icid = from vCPU, vcpu = to vCPU), CLEAR, INV, INVALL...
``gcmd_dropped`` the guest driver gave up on a command: the queue stayed full for 1 s
``cmd``         the ITS executed a command: info = name or ``name:ERROR``
``lpi_config``  the guest rewrote an LPI's property byte: info ``enabled`` / ``disabled``
``mask``        vcpu masked (info ``1``) or unmasked (``0``) interrupts
``vcpu``        vcpu left (info ``exit``) or entered (``enter``) KVM_RUN on that side
``kvm``         a KVM device call: info = ``CALL`` or ``CALL:ERRNO``; icid = migration index
``step``        a migration step: info = ``name:start`` / ``name:end`` / ``name:skipped``
``migration``   info = ``start``, ``resume``, ``completed``, ``aborted:ERRNO:step``,
                ``failed:ERRNO:step``; icid = migration index
``quiesce``     devices held (info ``1``) / released (``0``)
``state``       architectural state snapshot (gicsim.judge.state) for the state-match oracle:
                info ``pause:JSON`` on the source after its last step, ``resume:JSON`` on
                the destination at resume; icid = migration index
==============  =============================================================================
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ("t", "kind", "side", "vcpu", "lpi", "device", "event", "icid", "info")
CATEGORICAL = ("kind", "side", "info")
Record = tuple[Any, ...]  # (t, kind, side, vcpu, lpi, device, event, icid, info)


class Trace:
    """Append-only list of records; the hot path calls ``self.rec.append((...))`` directly."""

    __slots__ = ("rec",)

    def __init__(self) -> None:
        self.rec: list[Record] = []

    def emit(
        self,
        t: int,
        kind: str,
        side: str,
        vcpu: int = -1,
        lpi: int = -1,
        device: int = -1,
        event: int = -1,
        icid: int = -1,
        info: str = "",
    ) -> None:
        self.rec.append((t, kind, side, vcpu, lpi, device, event, icid, info))

    def __len__(self) -> int:
        return len(self.rec)

    def to_frame(self) -> pd.DataFrame:
        return records_to_frame(self.rec)


def records_to_frame(rec: list[Any]) -> pd.DataFrame:
    """Columnar conversion without building per-row objects: one pass per column."""
    n = len(rec)
    data: dict[str, Any] = {}
    for i, name in enumerate(COLUMNS):
        it = map(itemgetter(i), rec)
        if name in CATEGORICAL:
            codes, uniq = pd.factorize(np.fromiter(it, dtype=object, count=n))
            data[name] = pd.Categorical.from_codes(codes, categories=uniq.astype(str))
        else:
            data[name] = np.fromiter(it, dtype=np.int64 if name == "t" else np.int32, count=n)
    return pd.DataFrame(data, columns=list(COLUMNS), copy=False)


def frame_to_records(df: pd.DataFrame) -> list[Record]:
    cols = [
        df[c].astype(object).tolist() if c in CATEGORICAL else [int(x) for x in df[c].tolist()]
        for c in COLUMNS
    ]
    return list(zip(*cols, strict=True))


def digest(rec: list[Record]) -> str:
    import hashlib

    h = hashlib.sha256()
    for r in rec:
        h.update(repr(r).encode())
    return h.hexdigest()[:16]
