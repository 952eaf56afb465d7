"""The run's trace: one tuple per event in the hot path, one table at the end.

Two forms, one schema module (this one):

* the **record** — the hot path's compact tuple ``(t, kind, side, vcpu, lpi, device, event,
  icid, info)`` with ``-1`` where a field does not apply; readers index it with the named
  constants below (``r[KIND]``, never ``r[1]``). Some slots are shared by kinds to keep the
  tuple small: ``icid`` holds the migration index on ``kvm``/``step``/``migration``/``state``
  rows, and a command's vCPU arguments ride in ``vcpu``/``icid`` on ``gcmd``/``cmd`` rows.
* the **trace table** users see (``Result.trace``, ``trace.parquet``; ``public_frame``):
  one meaning per column and no sentinels — nullable integer columns hold ``<NA>`` where a
  field does not apply. Its columns are ``PUBLIC_COLUMNS``, documented in
  ``docs/trace-schema.md``. ``internal_frame`` turns it back into the record layout
  (``-1`` sentinels) that the vectorised analysis reads.

Kinds and what their fields hold (record form; the table's column in brackets):

==============  =============================================================================
``raise``       a guest-visible intent to interrupt. info: ``msi`` (device), ``int`` (guest
                wrote an INT command), ``set_pending`` (guest wrote a pending bit; lpi set)
``accept``      the ITS took an MSI/INT: lpi = the LPI record it hit, vcpu = its target
``drop``        the ITS refused it; info = reason (its_disabled, lpis_disabled, unmapped,
                not_restored)
``deliver``     vcpu acknowledged lpi (the handler starts)
``eoi``         vcpu finished lpi's handler
``gcmd``        the guest wrote a command (its intent): info = MAPD, MAPD-, MAPC, MAPC-, MAPTI,
                MOVI, DISCARD, MOVALL, CLEAR, INV, INVALL, SYNC. MAPC: vcpu = target vCPU
                [cmd_vcpu]; MOVALL: icid = from vCPU [cmd_from_vcpu], vcpu = to vCPU
                [cmd_vcpu]
``gcmd_dropped`` the guest driver gave up on a command: the queue stayed full for 1 s
``cmd``         the ITS executed a command: info = name or ``name:ERROR``; the decoded
                fields the command uses (``CMD_FIELDS``): vcpu = RDbase [cmd_vcpu; MOVALL:
                cmd_from_vcpu], icid (MOVALL: RDbase2 [cmd_vcpu])
``lpi_config``  the guest rewrote an LPI's property byte: info ``enabled`` / ``disabled``
``mask``        vcpu masked (info ``1``) or unmasked (``0``) interrupts
``vcpu``        vcpu left (info ``exit``) or entered (``enter``) KVM_RUN on that side
``kvm``         a KVM device call: info = ``CALL`` or ``CALL:ERRNO``; icid = migration index
                [migration]
``step``        a migration step: info = ``name:start`` / ``name:end``; icid = migration
                index [migration]
``migration``   info = ``start``, ``resume``, ``completed``, ``completed_with_errors``,
                ``aborted:ERRNO:step``, ``failed:ERRNO:step``; icid = migration index
                [migration]
``quiesce``     devices held (info ``1``) / released (``0``)
``state``       architectural state snapshot (gicsim.judge.state) for the state-match oracle:
                info ``pause:JSON`` on the source after its last step, ``resume:JSON`` on
                the destination at resume; icid = migration index [migration]
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
#: indices of a record's fields
T, KIND, SIDE, VCPU, LPI, DEVICE, EVENT, ICID, INFO = range(9)

#: the trace table's columns (``public_frame``); integer columns other than ``t`` are nullable
PUBLIC_COLUMNS = ("t", "kind", "side", "vcpu", "lpi", "device", "event", "icid", "migration",
                  "cmd_vcpu", "cmd_from_vcpu", "info")  # fmt: skip
#: kinds whose ``icid`` slot holds the migration index
MIGRATION_KINDS = ("kvm", "step", "migration", "state")
#: which decoded fields each executed command uses (``its_cmd_get_*`` of vgic-its.c); a
#: ``cmd`` row shows only these
CMD_FIELDS = {
    "MAPD": ("device",), "MAPC": ("icid", "cmd_vcpu"), "MAPTI": ("device", "event", "lpi", "icid"),
    "MAPI": ("device", "event", "icid"), "MOVI": ("device", "event", "icid"),
    "DISCARD": ("device", "event"), "CLEAR": ("device", "event"), "INV": ("device", "event"),
    "INT": ("device", "event"), "INVALL": ("icid",), "MOVALL": ("cmd_from_vcpu", "cmd_vcpu"),
    "SYNC": ("cmd_vcpu",),
}  # fmt: skip


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
    """Columnar conversion without building per-row objects: one pass per column.

    Categories are built from the distinct values themselves (an object index turned into
    the ``str`` dtype), never through a fixed-width NumPy string array: ``info`` holds
    multi-MB state JSON on a few rows, and ``astype(str)`` of the distinct values would pad
    every one of them to the longest (1.5 GB on the scale benchmark)."""
    n = len(rec)
    data: dict[str, Any] = {}
    for i, name in enumerate(COLUMNS):
        it = map(itemgetter(i), rec)
        if name in CATEGORICAL:
            codes, uniq = pd.factorize(np.fromiter(it, dtype=object, count=n))
            cats = pd.Index([str(u) for u in uniq], dtype=object).astype("str")
            data[name] = pd.Categorical.from_codes(codes, categories=cats)
        else:
            data[name] = np.fromiter(it, dtype=np.int64 if name == "t" else np.int32, count=n)
    return pd.DataFrame(data, columns=list(COLUMNS), copy=False)


def frame_to_records(df: pd.DataFrame) -> list[Record]:
    """Records from a frame in either layout (the trace table or the record layout)."""
    if list(df.columns) == list(PUBLIC_COLUMNS):
        df = internal_frame(df)
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


def public_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The trace table users see, from the record-layout frame (``records_to_frame``): no
    shared columns, ``<NA>`` instead of ``-1``."""
    cols = {c: df[c].to_numpy() for c in ("vcpu", "lpi", "device", "event", "icid")}
    n = len(df)
    out = {c: cols[c].astype(np.int32, copy=True) for c in cols}
    out["migration"] = np.full(n, -1, np.int32)
    out["cmd_vcpu"] = np.full(n, -1, np.int32)
    out["cmd_from_vcpu"] = np.full(n, -1, np.int32)
    mig = _is(df["kind"], *MIGRATION_KINDS)
    out["migration"][mig], out["icid"][mig] = cols["icid"][mig], -1
    gcmd = _is(df["kind"], "gcmd")
    movall = gcmd & _is(df["info"], "MOVALL")
    out["cmd_vcpu"][gcmd], out["vcpu"][gcmd] = cols["vcpu"][gcmd], -1
    out["cmd_from_vcpu"][movall], out["icid"][movall] = cols["icid"][movall], -1
    # executed commands carry only the fields they use (recorded so by the VM): the RDbase
    # is a command argument, MOVALL's RDbase2 rides in icid
    cmd = _is(df["kind"], "cmd")
    cmd_movall = cmd & _starts(df["info"], "MOVALL")
    cmd_other = cmd & ~cmd_movall
    out["cmd_vcpu"][cmd_other], out["vcpu"][cmd_other] = cols["vcpu"][cmd_other], -1
    out["cmd_from_vcpu"][cmd_movall], out["vcpu"][cmd_movall] = cols["vcpu"][cmd_movall], -1
    out["cmd_vcpu"][cmd_movall], out["icid"][cmd_movall] = cols["icid"][cmd_movall], -1
    data: dict[str, Any] = {"t": df["t"].to_numpy(), "kind": df["kind"], "side": df["side"]}
    for c in ("vcpu", "lpi", "device", "event", "icid", "migration", "cmd_vcpu", "cmd_from_vcpu"):
        v = out[c]
        data[c] = pd.arrays.IntegerArray(v, v < 0)
    data["info"] = df["info"]
    return pd.DataFrame(data, columns=list(PUBLIC_COLUMNS))


def internal_frame(pub: pd.DataFrame) -> pd.DataFrame:
    """The record-layout frame (``COLUMNS``, ``-1`` sentinels) from the trace table."""

    def col(c: str) -> np.ndarray:
        return pub[c].fillna(-1).to_numpy().astype(np.int64)

    vcpu, lpi, device, event, icid = (col(c) for c in ("vcpu", "lpi", "device", "event", "icid"))
    mig, cv, cfv = col("migration"), col("cmd_vcpu"), col("cmd_from_vcpu")
    sel = _is(pub["kind"], *MIGRATION_KINDS)
    icid[sel] = mig[sel]
    gcmd = _is(pub["kind"], "gcmd")
    vcpu[gcmd] = cv[gcmd]
    movall = gcmd & _is(pub["info"], "MOVALL")
    icid[movall] = cfv[movall]
    cmd = _is(pub["kind"], "cmd")
    cmd_movall = cmd & _starts(pub["info"], "MOVALL")
    cmd_other = cmd & ~cmd_movall
    vcpu[cmd_other] = cv[cmd_other]
    vcpu[cmd_movall] = cfv[cmd_movall]
    icid[cmd_movall] = cv[cmd_movall]
    data: dict[str, Any] = {"t": pub["t"].to_numpy().astype(np.int64), "kind": pub["kind"],
                            "side": pub["side"]}  # fmt: skip
    for c, v in (("vcpu", vcpu), ("lpi", lpi), ("device", device), ("event", event), ("icid", icid)):
        data[c] = v.astype(np.int32)
    data["info"] = pub["info"]
    return pd.DataFrame(data, columns=list(COLUMNS))


def _is(col: pd.Series, *values: str) -> np.ndarray:
    """Rows whose value is one of ``values``, decided once per category (no per-row strings:
    a str array of ``info`` would copy every row's text)."""
    return col.isin(values).to_numpy(dtype=bool)


def _starts(info: pd.Series, name: str) -> np.ndarray:
    """Rows whose ``info`` is ``name`` or starts with ``name:`` (a command and its error),
    decided once per category (``info`` holds multi-MB state JSON on a few rows: never turn
    the column into a fixed-width string array)."""
    cat = info if isinstance(info.dtype, pd.CategoricalDtype) else info.astype("category")
    names = cat.cat.categories
    hit = np.fromiter((str(c) == name or str(c).startswith(name + ":") for c in names), bool, len(names))
    codes = cat.cat.codes.to_numpy()
    return (codes >= 0) & hit[np.maximum(codes, 0)] if len(names) else np.zeros(len(info), bool)
