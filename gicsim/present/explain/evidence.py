"""What the cause rules read: a trace (records as :mod:`gicsim.judge.trace` defines them), the
oracles' verdict on it, and the kernel variant fields that differ from mainline.

Rows are named by their index in the trace (``#12``) and rendered compactly, so that every
cause can cite the rows it rests on. Nothing here knows a scenario, a step order or a file
name: the rules match mechanisms (a register write, a KVM call, a command the ITS ran).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pandas as pd

from gicsim.judge import trace as TR

#: kinds the rules read row by row (the interrupt traffic is read through numpy columns)
CONTROL = ("kvm", "step", "migration", "state", "cmd", "gcmd", "vcpu", "quiesce", "mask")


@attrs.frozen
class Cause:
    """One explanation of one outcome class, resting on the trace rows it cites."""

    outcome: str  # "lost", "spurious", "misrouted", "dropped:<reason>", "errors", "state_mismatch", "aborted", "failed"
    rule: str  # the rule's function name
    text: str
    rows: tuple[int, ...]  # trace row indices
    cited: tuple[str, ...]  # a compact rendering of each cited row
    head: str = ""  # the one-line summary the verdict block shows

    def line(self) -> str:
        """The text, then the rows it rests on."""
        return self.text + (" (trace rows " + ", ".join(f"#{r}" for r in self.rows) + ")" if self.rows else "")


@attrs.define
class Evidence:
    df: pd.DataFrame  # record layout (``COLUMNS``), row i = trace row i
    verdict: Any  # gicsim.judge.oracles.Verdict
    variants: dict[str, Any] = attrs.Factory(dict)
    state_match: bool | None = None
    ctl: list[tuple[int, tuple[Any, ...]]] = attrs.Factory(list)  # (row, record) of CONTROL kinds
    t: np.ndarray = attrs.Factory(lambda: np.zeros(0, np.int64))
    kind: np.ndarray = attrs.Factory(lambda: np.zeros(0, object))
    side: np.ndarray = attrs.Factory(lambda: np.zeros(0, object))
    cache: dict[Any, Any] = attrs.Factory(dict)

    # ---------------------------------------------------------------- row access ----
    def rec(self, i: int) -> tuple[Any, ...]:
        r = self.df.iloc[i]
        return (int(r["t"]), str(r["kind"]), str(r["side"]), int(r["vcpu"]), int(r["lpi"]), int(r["device"]),
                int(r["event"]), int(r["icid"]), str(r["info"]))  # fmt: skip

    def rows_of(self, kind: str, lpi: int | None = None) -> np.ndarray:
        """Rows of ``kind`` (of one LPI), in trace order; the per-LPI index is built once."""
        if lpi is None:
            return np.flatnonzero(self.kind == kind)
        key = ("by_lpi", kind)
        if key not in self.cache:
            rows = np.flatnonzero(self.kind == kind)
            lp = self.df["lpi"].to_numpy()[rows]
            order = np.argsort(lp, kind="stable")
            uniq, start = np.unique(lp[order], return_index=True)
            parts = np.split(rows[order], start[1:])
            self.cache[key] = dict(zip(uniq.tolist(), parts, strict=True))
        return self.cache[key].get(int(lpi), np.zeros(0, np.int64))

    def calls(self, name: str | None = None, side: str | None = None, ok: bool | None = None) -> list[tuple[int, tuple[Any, ...]]]:
        """``kvm`` rows of call ``name`` (``SET_GITS_CBASER``; a prefix ending in ``*``)."""
        out = []
        for i, r in self.ctl:
            if r[TR.KIND] != "kvm":
                continue
            call, _, err = r[TR.INFO].partition(":")
            if name is not None and not (call == name or (name.endswith("*") and call.startswith(name[:-1]))):
                continue
            if side is not None and r[TR.SIDE] != side:
                continue
            if ok is not None and ok != (not err):
                continue
            out.append((i, r))
        return out

    def of(self, kind: str, info: str | None = None, side: str | None = None) -> list[tuple[int, tuple[Any, ...]]]:
        return [(i, r) for i, r in self.ctl if r[TR.KIND] == kind and (info is None or r[TR.INFO] == info)
                and (side is None or r[TR.SIDE] == side)]  # fmt: skip

    def render(self, i: int) -> str:
        return render(self.rec(i), i)


def evidence(trace: Any, verdict: Any, variants: dict[str, Any] | None = None, state_match: bool | None = None) -> Evidence:
    """Evidence from a record list or a record-layout frame (``records_to_frame``)."""
    df = trace if isinstance(trace, pd.DataFrame) else TR.records_to_frame(list(trace))
    if list(df.columns) == list(TR.PUBLIC_COLUMNS):
        df = TR.internal_frame(df)
    df = df.reset_index(drop=True)
    kind = df["kind"].astype(object).to_numpy()
    ctl_idx = np.flatnonzero(np.isin(kind, CONTROL))
    sub = df.iloc[ctl_idx]
    cols = [sub[c].astype(object).tolist() if c in TR.CATEGORICAL else [int(x) for x in sub[c].tolist()] for c in TR.COLUMNS]
    ctl = [(int(i), tuple(r)) for i, r in zip(ctl_idx, zip(*cols, strict=True), strict=True)] if len(ctl_idx) else []
    return Evidence(df=df, verdict=verdict, variants=dict(variants or {}), state_match=state_match, ctl=ctl,
                    t=df["t"].to_numpy(), kind=kind, side=df["side"].astype(object).to_numpy())  # fmt: skip


def render(r: tuple[Any, ...], i: int) -> str:
    """``#12 1,149.664 µs vm1 kvm ITS_RESTORE_TABLES:EFAULT`` plus the fields that apply."""
    info = str(r[TR.INFO])
    if r[TR.KIND] == "state":
        info = info.partition(":")[0]
    bits = [f"#{i}", f"{r[TR.T] / 1000:,.3f} µs", str(r[TR.SIDE]), str(r[TR.KIND])]
    if info:
        bits.append(info)
    names = ("vcpu", "lpi", "device", "event", "icid")
    slots = (TR.VCPU, TR.LPI, TR.DEVICE, TR.EVENT, TR.ICID)
    kv = [f"{n}={r[s]}" for n, s in zip(names, slots, strict=True) if r[s] >= 0
          and not (n == "icid" and r[TR.KIND] in TR.MIGRATION_KINDS)]  # fmt: skip
    return " ".join(bits) + (f" [{' '.join(kv)}]" if kv else "")
