"""Oracles (SPEC §6): verdicts computed from the trace alone, from the guest's point of view.

Nothing here looks at the kernel model. The guest's intent (which LPI a DeviceID/EventID
should raise, which vCPU it should reach) is replayed from the ``gcmd``/``lpi_config``/
``mask`` rows the guest driver wrote; what the ITS and vCPUs actually did comes from the
``accept``/``drop``/``deliver`` rows.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from typing import Any

import attrs

from gicsim.judge.trace import DEVICE, EVENT, ICID, INFO, KIND, LPI, SIDE, VCPU, Record, T
from gicsim.scenario.constants import DROP_REASONS

#: drop reasons that mean "not restored yet" on a destination that has not resumed
_NOT_RESTORED_FROM = ("its_disabled", "no_its")


@attrs.define
class GuestIntent:
    """What the guest's own commands say, replayed in trace order."""

    ite: dict[tuple[int, int], list[int]] = attrs.Factory(dict)  # (dev, ev) -> [lpi, icid]
    coll: dict[int, int] = attrs.Factory(dict)  # icid -> vCPU
    override: dict[int, int] = attrs.Factory(dict)  # lpi -> vCPU after MOVALL
    enabled: dict[int, bool] = attrs.Factory(dict)  # lpi -> property enable bit
    masked: dict[int, bool] = attrs.Factory(dict)
    by_lpi: dict[int, tuple[int, int]] = attrs.Factory(dict)  # lpi -> (dev, ev)
    by_dev: dict[int, set[int]] = attrs.Factory(dict)  # dev -> events mapped

    def lpi_of(self, dev: int, ev: int) -> int:
        m = self.ite.get((dev, ev))
        return -1 if m is None else m[0]

    def target(self, lpi: int) -> int:
        if lpi in self.override:
            return self.override[lpi]
        key = self.by_lpi.get(lpi)
        if key is None:
            return -1
        return self.coll.get(self.ite[key][1], -1)

    def _drop(self, key: tuple[int, int]) -> int:
        m = self.ite.pop(key)
        self.by_dev[key[0]].discard(key[1])
        if self.by_lpi.get(m[0]) == key:
            del self.by_lpi[m[0]]
        return m[0]

    def apply(self, r: Record) -> list[int]:
        """Apply a guest command; returns LPIs the guest withdrew (made undeliverable)."""
        _, _, _, vcpu, lpi, dev, ev, icid, info = r
        out: list[int] = []
        if info in ("MAPD", "MAPD-"):
            for e in list(self.by_dev.get(dev, ())):
                out.append(self._drop((dev, e)))
        elif info == "MAPTI":
            if (dev, ev) in self.ite:
                self._drop((dev, ev))
            self.ite[(dev, ev)] = [lpi, icid]
            self.by_lpi[lpi] = (dev, ev)
            self.by_dev.setdefault(dev, set()).add(ev)
            self.override.pop(lpi, None)
        elif info == "MAPC":
            self.coll[icid] = vcpu
            for m in self.ite.values():
                if m[1] == icid:
                    self.override.pop(m[0], None)
        elif info == "MAPC-":
            self.coll.pop(icid, None)
        elif info == "MOVI":
            mm = self.ite.get((dev, ev))
            if mm is not None:
                mm[1] = icid
                self.override.pop(mm[0], None)
        elif info == "MOVALL":
            for m in self.ite.values():
                if self.target(m[0]) == icid:  # icid column holds the source vCPU
                    self.override[m[0]] = vcpu
        elif info == "DISCARD":
            if (dev, ev) in self.ite:
                out.append(self._drop((dev, ev)))
        elif info == "CLEAR":
            cm = self.ite.get((dev, ev))
            if cm is not None:
                out.append(cm[0])
        return out


@attrs.define
class Verdict:
    accepted: int = 0
    delivered: int = 0
    lost: int = 0
    withdrawn: int = 0
    in_flight: int = 0
    spurious: int = 0
    misrouted: int = 0
    dropped: dict[str, int] = attrs.Factory(lambda: {r: 0 for r in DROP_REASONS})
    latency_ns: dict[str, int | None] = attrs.Factory(lambda: {"p50": None, "p99": None, "max": None})
    lost_lpis: list[tuple[int, int]] = attrs.Factory(list)  # (t, lpi) of each lost raise
    spurious_lpis: list[tuple[int, int, int]] = attrs.Factory(list)  # (t, lpi, vcpu)
    misrouted_lpis: list[tuple[int, int, int, int]] = attrs.Factory(list)  # (t, lpi, got, want)


def percentile(sorted_vals: list[int], q: float) -> int:
    """Nearest-rank percentile (no interpolation: a latency that happened)."""
    import math

    k = max(1, math.ceil(q / 100 * len(sorted_vals)))
    return sorted_vals[k - 1]


def judge(rec: list[Record], until_ns: int, inflight_ns: int = 100_000) -> Verdict:
    """Judge the trace ``rec``. One vocabulary of drop reasons for trace and summary: a
    ``drop`` row whose reason is ``its_disabled`` or ``no_its`` on a destination before that
    VM resumed is rewritten in ``rec`` to ``not_restored`` (the reason it is counted under),
    so the same MSI carries the same reason in ``trace.parquet`` and ``summary.json``."""
    v = Verdict()
    intent = GuestIntent()
    destinations: set[str] = set()
    resumed: set[str] = set()
    # per LPI: accepted raises awaiting a delivery [(t, idx)], raise seen since last delivery
    waiting: dict[int, list[tuple[int, int]]] = defaultdict(list)
    raised_since: dict[int, bool] = defaultdict(bool)
    withdrawn_at: dict[int, int] = {}
    pending_outcome: dict[tuple[int, int], deque[int]] = defaultdict(deque)  # (dev, ev) -> lpis
    latencies: list[int] = []
    stopped: dict[int, bool] = {}  # vCPU out of KVM_RUN (the VM is paused)
    for idx, r in enumerate(rec):
        t, kind, side = r[T], r[KIND], r[SIDE]
        if kind == "raise":
            info = r[INFO]
            if info == "set_pending":
                lpi = r[LPI]
                raised_since[lpi] = True
                waiting[lpi].append((t, idx))
                v.accepted += 1
            else:
                lpi = intent.lpi_of(r[DEVICE], r[EVENT])
                pending_outcome[(r[DEVICE], r[EVENT])].append(lpi)
                if lpi >= 0:
                    raised_since[lpi] = True
        elif kind == "accept" or kind == "drop":
            q = pending_outcome.get((r[DEVICE], r[EVENT]))
            lpi = q.popleft() if q else -1
            if kind == "accept":
                v.accepted += 1
                if lpi >= 0:
                    waiting[lpi].append((t, idx))
                    # a raise a quiesced device held is accepted only at its release: a
                    # delivery in between (of a restored pending copy) consumed the raise
                    # flag, and this accept is a cause of its own for the next delivery
                    raised_since[lpi] = True
            else:
                reason = r[INFO]
                if reason in _NOT_RESTORED_FROM and side in destinations and side not in resumed:
                    reason = "not_restored"
                    rec[idx] = (*r[:8], reason)  # the trace carries the reason counted
                v.dropped[reason] = v.dropped.get(reason, 0) + 1
        elif kind == "deliver":
            lpi, vcpu = r[LPI], r[VCPU]
            v.delivered += 1
            if not raised_since[lpi]:
                v.spurious += 1
                v.spurious_lpis.append((t, lpi, vcpu))
            raised_since[lpi] = False
            w = waiting.pop(lpi, None)
            if w:
                latencies.append(t - w[0][0])
            want = intent.target(lpi)
            if want >= 0 and want != vcpu:
                v.misrouted += 1
                v.misrouted_lpis.append((t, lpi, vcpu, want))
        elif kind == "gcmd":
            for lpi in intent.apply(r):
                withdrawn_at[lpi] = idx
        elif kind == "lpi_config":
            en = r[INFO] == "enabled"
            intent.enabled[r[LPI]] = en
            if not en:
                withdrawn_at[r[LPI]] = idx
        elif kind == "mask":
            intent.masked[r[VCPU]] = r[INFO] == "1"
        elif kind == "vcpu":
            stopped[r[VCPU]] = r[INFO] == "exit"
        elif kind == "migration":
            info = r[INFO]
            if info == "start":
                destinations.add(f"vm{r[ICID] + 1}")
            elif info == "resume":
                resumed.add(side)
    for lpi, w in waiting.items():
        for t, idx in w:
            if withdrawn_at.get(lpi, -1) > idx:
                v.withdrawn += 1
            elif (
                intent.masked.get(tgt := intent.target(lpi), False)
                or stopped.get(tgt, False)
                or t > until_ns - inflight_ns
            ):
                v.in_flight += 1
            else:
                v.lost += 1
                v.lost_lpis.append((t, lpi))
    if latencies:
        latencies.sort()
        v.latency_ns = {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": latencies[-1],
        }
    return v


#: the host the run starts on: the first migration's source (``vm0``)
SOURCE_SIDE = "vm0"


def delivered_counts(rec: list[Record]) -> dict[tuple[int, int, str], int]:
    """(lpi, vcpu, side) -> deliveries; ``side`` says which host delivered: ``source`` when
    the VM the run started on did (before a migration, and after one that aborted or failed
    and resumed the source), ``destination`` when a VM a migration made did."""
    out: dict[tuple[int, int, str], int] = defaultdict(int)
    for r in rec:
        if r[KIND] == "deliver":
            out[(r[LPI], r[VCPU], "source" if r[SIDE] == SOURCE_SIDE else "destination")] += 1
    return dict(out)


def state_match(rec: list[Record]) -> bool | None:
    """Source state at pause vs destination at resume, per completed migration, allowing for
    LPIs accepted in between (they must show up pending on the destination)."""
    pauses: dict[int, tuple[int, dict[str, Any]]] = {}
    results: list[bool] = []
    for idx, r in enumerate(rec):
        if r[KIND] != "state":
            continue
        mig, what = r[ICID], r[INFO].split(":", 1)
        snap = json.loads(what[1])
        if what[0] == "pause":
            pauses[mig] = (idx, snap)
        elif what[0] == "resume" and mig in pauses:
            p_idx, src = pauses.pop(mig)
            between = {
                q[4] for q in rec[p_idx:idx] if q[1] == "accept" and q[4] >= 0
            }
            want = json.loads(json.dumps(src))
            want["gic"]["pending"] = sorted(set(want["gic"]["pending"]) | between)
            results.append(want == snap)
    if not results:
        return None
    return all(results)
