"""Outcomes and their causes: each lost, spurious, misrouted or dropped interrupt traced back to the mechanism that produced it."""


from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pandas as pd

from gicsim.judge import analysis as A
from gicsim.kvm.releases import MAINLINE
from gicsim.present.explain.block import cause_detail
from gicsim.present.explain.context import Ctx, _cached, _pos_at, _pos_of_resume
from gicsim.present.explain.words import CALL_DOC, VARIANT_DOC, T, _wrap, ids, ids_short, plural


# =========================================================================== outcomes ====
@attrs.define
class Fact:
    key: tuple[Any, ...]
    text: Callable[..., str]  # rendered from every member of a group (called with that list)


def _outcomes(cx: Ctx) -> list[str]:
    v = cx.verdict
    s = cx.run.summary.get("lpis", {})
    out = _wrap(f"Oracles (docs/summary-json.md): {s.get('accepted', v.accepted):,} raises accepted, {v.delivered:,} "
                f"deliveries, {v.lost:,} lost, {v.spurious:,} spurious, {v.misrouted:,} misrouted, {v.withdrawn:,} "
                f"withdrawn by the guest, {v.in_flight:,} still in flight at the end; dropped: "
                + (", ".join(f"{n:,} {r}" for r, n in v.dropped.items() if n) or "none") + ".")  # fmt: skip
    out.append("")
    out += _migration_summaries(cx)
    accs = cx.acc[cx.acc["kind"] == "accept"].copy()
    accs["nth"] = accs.groupby(["t", "lpi"]).cumcount()
    if v.lost:
        lost = pd.DataFrame(v.lost_lpis, columns=["t", "lpi"])
        lost["nth"] = lost.groupby(["t", "lpi"]).cumcount()
        lost = lost.merge(accs, on=["t", "lpi", "nth"], how="left")
        out += [f"### Lost: {plural(v.lost, 'raise')} of LPIs {ids(lost['lpi'])}", ""]
        out += _render_groups([_lost_facts(cx, a) for a in lost.itertuples()], "raise")
    if v.spurious:
        sp = _locate(cx, pd.DataFrame(v.spurious_lpis, columns=["t", "lpi", "vcpu"]))
        out += [f"### Spurious: {plural(v.spurious, 'delivery', 'deliveries')} of LPIs {ids(sp['lpi'])}", ""]
        out += _render_groups([_spurious_facts(cx, r) for r in sp.itertuples()], "delivery")
    if v.misrouted:
        mr = pd.DataFrame(v.misrouted_lpis, columns=["t", "lpi", "vcpu", "want"])
        mr = _locate(cx, mr)
        out += [f"### Misrouted: {plural(v.misrouted, 'delivery', 'deliveries')} of LPIs {ids(mr['lpi'])}", ""]
        out += _render_groups([_misrouted_facts(cx, r) for r in mr.itertuples()], "delivery")
    drops = cx.acc[cx.acc["kind"] == "drop"]
    if len(drops):
        out += [f"### Dropped: {plural(len(drops), 'raise')}", ""]
        out += _drop_lines(cx, drops)
    if out and out[-1]:
        out.append("")
    out += cause_detail(cx)
    if not (v.lost or v.spurious or v.misrouted or len(drops)):
        out += _wrap("Every accepted raise was delivered, once, on the vCPU the guest mapped it to." if v.accepted
                     else "No raise was accepted in this run.")  # fmt: skip
    return out


def _locate(cx: Ctx, d: pd.DataFrame) -> pd.DataFrame:
    """Oracle deliveries (t, lpi, vcpu) -> their delivery rows (pos, side), the previous
    delivery of the LPI (prev_pos) and the last accept that hit that LPI record before it
    (hit_*; -1 when none since the previous delivery)."""
    d = d.copy()
    d["nth"] = d.groupby(["t", "lpi", "vcpu"]).cumcount()
    dl = cx.dl.sort_values("pos").copy()
    dl["prev_pos"] = dl.groupby("lpi")["pos"].shift(1).fillna(-1).astype("int64")
    dl["nth"] = dl.groupby(["t", "lpi", "vcpu"]).cumcount()
    d = d.merge(dl[["t", "lpi", "vcpu", "nth", "pos", "side", "prev_pos"]], on=["t", "lpi", "vcpu", "nth"], how="left")
    d["pos"] = d["pos"].fillna(0).astype("int64")
    hits = cx.acc.loc[cx.acc["kind"] == "accept", ["pos", "t", "rec_lpi", "lpi", "dev", "ev", "side", "vcpu"]]
    hits = hits.rename(columns={c: "hit_" + c for c in hits.columns if c != "rec_lpi"}).rename(columns={"rec_lpi": "lpi"})
    d = pd.merge_asof(d.sort_values("pos"), hits.sort_values("hit_pos"), left_on="pos", right_on="hit_pos",
                      by="lpi", allow_exact_matches=False, direction="backward")  # fmt: skip
    ok = d["hit_pos"].notna() & (d["hit_pos"] > d["prev_pos"])
    for c in ("hit_pos", "hit_t", "hit_lpi", "hit_dev", "hit_ev", "hit_vcpu"):
        d[c] = np.where(ok, d[c].fillna(-1), -1).astype("int64")
    d["hit_side"] = np.where(ok, d["hit_side"].fillna(""), "")
    return d.sort_values(["t", "lpi"]).reset_index(drop=True)


def _render_groups(chains: list[tuple[dict[str, Any], list[Fact]]], what: str) -> list[str]:
    groups: OrderedDict[tuple[Any, ...], list[tuple[dict[str, Any], list[Fact]]]] = OrderedDict()
    for member, facts in chains:
        groups.setdefault(tuple(f.key for f in facts), []).append((member, facts))
    out: list[str] = []
    many = what + "s" if what != "delivery" else "deliveries"
    for n, members in enumerate(groups.values(), 1):
        ms = [m for m, _ in members]
        lpis = ids(m["lpi"] for m in ms)
        out += _wrap(f"{n}. LPI{'s' if len({m['lpi'] for m in ms}) > 1 else ''} {lpis} ({plural(len(ms), what, many)}):")
        for f in members[0][1]:
            out += _wrap("- " + f.text(ms), indent=1)
        out.append("")
    return out


def _when(ms: list[dict[str, Any]], key: str = "t") -> str:
    ts = sorted({m[key] for m in ms if m.get(key) is not None})
    if not ts:
        return "at ?"
    return f"at {T(ts[0])}" if len(ts) == 1 else f"between {T(ts[0])} and {T(ts[-1])}"


def _mig_for(cx: Ctx, t: int) -> A.MigInfo | None:
    """The migration in progress at t, else the next one to start, else None."""
    for m in cx.migs:
        end = m.end_ns if m.end_ns is not None else 1 << 62
        if t < end:
            return m
    return None


def _masked_at(cx: Ctx, vcpu: int, pos: int) -> tuple[bool, int | None]:
    mk = cx.masks[(cx.masks["vcpu"] == vcpu) & (cx.masks["pos"] < pos)]
    if mk.empty:
        return False, None
    return bool(mk["masked"].iloc[-1]), int(mk["t"].iloc[-1])


# ------------------------------------------------------------------- per migration ----
def _stop_pos(cx: Ctx, m: A.MigInfo) -> int:
    r = cx.rows[(cx.rows["kind"] == "step") & (cx.rows["icid"] == m.index) & (cx.rows["side"] == m.source)]
    return int(r["pos"].iloc[0]) if len(r) else _pos_at(cx, m.stop_ns or m.start_ns)


def _migration_summaries(cx: Ctx) -> list[str]:
    out: list[str] = []
    sc = cx.run.scenario
    dl = cx.dl.sort_values("pos")
    for m in cx.migs:
        msc = sc.migrations[m.index] if m.index < len(sc.migrations) else None
        head = f"### {m.label.capitalize()}: {m.status}"
        if m.errno:
            head += f" ({m.errno} in `{m.failed_step}`)"
        out += [head, ""]
        bits: list[str] = []
        if m.downtime_ns is not None:
            bits.append(f"Downtime {T(m.downtime_ns)} ({m.source} → {m.destination or '—'}).")
        errs = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["errno"] != "")]
        for (call, errno), g in errs.groupby(["call", "errno"], sort=False):
            txt = f"{CALL_DOC.get(call, call)} → -{errno} ×{len(g)} (first at {T(g['t'].iloc[0])}, step `{g['step'].iloc[0]}`)"
            if errno == "EBUSY":
                inside = sorted({v for p, sd in zip(g["pos"], g["side"], strict=True)
                                 for v in A.in_kvm_run(cx.vr, sc.vm.vcpus, sd, int(p), cx.first_side)})  # fmt: skip
                if inside:
                    txt += f": vCPU{'s' if len(inside) > 1 else ''} {ids(inside)} still inside KVM_RUN"
                    strag = [s.vcpu for s in msc.source.stragglers if s.vcpu in inside] if msc else []
                    if strag:
                        txt += (" (the configured straggler)" if strag == inside
                                else f" (configured straggler{'s' if len(strag) > 1 else ''}: vCPU {ids(strag)})")
            bits.append(txt + ".")
        if msc is not None:
            for side, steps in (("source", msc.source.steps), ("destination", msc.destination.steps)):
                for sen in A.order_diff(tuple(steps), side).sentences():
                    bits.append(f"On the {side}, {sen}.")
        for f, val in cx.variants.items():
            bits.append(f"Kernel variant `{f}: {val}` (mainline: {getattr(MAINLINE, f)}).")
        # LPIs pending when the VM stopped, and what became of them
        if m.stop_ns is not None:
            sp = _stop_pos(cx, m)
            acc = cx.acc[(cx.acc["kind"] == "accept") & (cx.acc["lpi"] >= 0) & (cx.acc["pos"] < sp)][["pos", "lpi", "t"]]
            if len(acc):
                nxt = pd.merge_asof(acc.sort_values("pos"), dl[["pos", "lpi", "t", "side", "vcpu"]].rename(
                    columns={"pos": "d_pos", "t": "d_t", "side": "d_side", "vcpu": "d_vcpu"}).sort_values("d_pos"),
                    left_on="pos", right_on="d_pos", by="lpi", direction="forward")  # fmt: skip
                pend = nxt[nxt["d_pos"].isna() | (nxt["d_pos"] > sp)]
                pend = pend.drop_duplicates("lpi")
                if len(pend):
                    bits.append(f"LPIs pending when the VM stopped ({T(m.stop_ns)}): {ids_short(pend['lpi'])}.")
                    got = pend[pend["d_pos"].notna()]
                    if got.groupby(["d_side", "d_vcpu"]).ngroups > 3:
                        for side, g in got.groupby("d_side"):
                            bits.append(f"Of these, LPIs {ids_short(g['lpi'])} were delivered on {side} (vCPUs "
                                        f"{ids_short(g['d_vcpu'])}) {_when([{'t': int(x)} for x in g['d_t']])}.")  # fmt: skip
                        got = got.iloc[0:0]
                    for (side, vc), g in got.groupby(["d_side", "d_vcpu"]):
                        bits.append(f"Of these, LPIs {ids(g['lpi'])} were delivered on {side} (vCPU {int(vc)}) "
                                    f"{_when([{'t': int(x)} for x in g['d_t']])}.")  # fmt: skip
                    never = pend[pend["d_pos"].isna()]
                    if len(never):
                        bits.append(f"LPIs {ids(never['lpi'])} were never delivered afterwards.")
        for b in bits:
            out += _wrap("- " + b)
        out.append("")
    return out


def _origin_fact(cx: Ctx, a: Any) -> Fact:
    how, side, rside, dev, rec = a.how, a.side, a.raise_side, int(a.dev), int(a.rec_lpi)
    held = rside != side or a.raise_t != a.t
    key = ("origin", how, side, rside if held else "", dev, rec != a.lpi)

    def text(ms: list[dict[str, Any]]) -> str:
        one = len(ms) == 1
        if how == "msi":
            evs = {m["ev"] for m in ms}
            s = (f"Device {dev} sent an MSI for event {ms[0]['ev']}" if one else
                 f"Device {dev} sent {len(ms)} MSIs for event{'s' if len(evs) > 1 else ''} {ids(evs)}")  # fmt: skip
            s += f" {_when(ms, 'raise_t')} on {rside}"
        elif how == "int":
            s = f"The guest wrote INT (device {dev}, event{'' if one else 's'} {ids(m['ev'] for m in ms)}) {_when(ms, 'raise_t')} on {rside}"
        else:
            s = f"The guest set the pending bit {_when(ms, 'raise_t')} on {rside}"
        if held:
            s += f"; {'it' if one else 'they'} reached the ITS of {side} {_when(ms)}, which"
        else:
            s += f", and the ITS of {side}"
        vs = sorted({m["vcpu"] for m in ms})
        s += f" accepted {'it' if one else 'them'} for vCPU{'s' if len(vs) > 1 else ''} {ids(vs)}"
        if rec != a.lpi:
            s += (f" — as LPI {ids(m['rec'] for m in ms)}, although the guest's own commands map (device {dev}, "
                  f"event {ids(m['ev'] for m in ms)}) to LPI {ids(m['lpi'] for m in ms)}")  # fmt: skip
        return s + "."

    return Fact(key, text)


def _lost_facts(cx: Ctx, a: Any) -> tuple[dict[str, Any], list[Fact]]:
    lpi, t = int(a.lpi), int(a.t)
    member: dict[str, Any] = {"lpi": lpi, "t": t}
    if pd.isna(a.pos):
        return member, [Fact(("?",), lambda ms: "No accept row was found for this raise.")]
    member.update(ev=int(a.ev), raise_t=int(a.raise_t), rec=int(a.rec_lpi), vcpu=int(a.vcpu))
    facts: list[Fact] = [_origin_fact(cx, a)]
    masked, since = _masked_at(cx, int(a.vcpu), int(a.pos))
    if masked:
        facts.append(Fact(("masked", int(a.vcpu)), lambda ms, v=int(a.vcpu), s=since: (
            f"vCPU {v} had interrupts masked (since {T(s)}), so the LPI stayed pending instead of being taken.")))
    if a.rec_lpi != lpi:
        facts += _stale_cache_facts(cx, int(a.pos), int(a.dev), int(a.ev))
    m = _mig_for(cx, t)
    if m is not None:
        facts += _migration_chain(cx, m, a, lpi)
    un = cx.masks[(cx.masks["vcpu"] == a.vcpu) & (cx.masks["pos"] > a.pos) & ~cx.masks["masked"]]
    tail = f"No delivery of the LPI followed up to the end of the run ({T(cx.end_ns)})"
    if len(un) and masked:
        tail += f", although vCPU {int(a.vcpu)} unmasked interrupts at {T(un['t'].iloc[0])}"
    facts.append(Fact(("end",), lambda ms, s=tail: s + "."))
    return member, facts


def _stale_cache_facts(cx: Ctx, pos: int, dev: int, ev: int) -> list[Fact]:
    g = cx.rows[(cx.rows["kind"] == "gcmd") & (cx.rows["pos"] < pos) & (cx.rows["device"] == dev)]
    hit = g[((g["event"] == ev) & g["info"].isin(["DISCARD", "MAPTI"])) | g["info"].isin(["MAPD", "MAPD-"])]
    hist = ", ".join(f"{r.info} at {T(r.t)}" for r in hit.tail(3).itertuples())
    out = [Fact(("remap", dev, ev, hist), lambda ms, h=hist: f"The guest's last commands for (device {dev}, event {ev}): {h or 'none'}.")]
    if cx.variants.get("translation_cache") == "stale":
        out.append(Fact(("variant", "translation_cache"), lambda ms: (
            "Kernel variant `translation_cache: stale` (mainline: correct): the translation cache kept "
            f"the old (device {dev}, event {ev}) → LPI translation after the commands that should have "
            "invalidated it, so MSIs kept hitting the old LPI record.")))
    return out


def _migration_chain(cx: Ctx, m: A.MigInfo, a: Any, lpi: int) -> list[Fact]:
    """Facts linking an accepted raise to migration m (in progress at, or next after, t)."""
    out: list[Fact] = []
    t, side = int(a.t), str(a.side)
    sc = cx.run.scenario
    msc = sc.migrations[m.index] if m.index < len(sc.migrations) else None
    src_steps = tuple(msc.source.steps) if msc else ()
    on_source = side == m.source
    if on_source and (m.stop_ns is None or t < m.stop_ns):
        out.append(Fact(("before-stop", m.index), lambda ms: f"It was accepted before {m.label} stopped the VM at {T(m.stop_ns)}, and was still pending then."))
    elif on_source and m.stop_ns is not None and t >= m.stop_ns:
        if m.save_pending_ns is not None and t > m.save_pending_ns:
            st = cx.steps[(cx.steps["migration"] == m.index) & (cx.steps["step"] == "save_pending_tables")]
            end = f"; the step ended at {T(int(st['end_ns'].iloc[0]))}" if len(st) else ""
            txt = (f"It was accepted {{when}}, after SAVE_PENDING_TABLES had written the pending tables "
                   f"(the call ran at {T(m.save_pending_ns)}{end}): its pending state lived only in the LPI "
                   f"record of {side}, which is not migrated.")  # fmt: skip
            out.append(Fact(("after-save", m.index), lambda ms, s=txt: s.replace("{when}", _when(ms))))
            if "quiesce_devices" not in src_steps:
                out.append(Fact(("no-quiesce", m.index), lambda ms: (
                    "`quiesce_devices` is not among the source steps, so the devices kept sending MSIs "
                    "while the VM was stopped and being saved.")))
        else:
            out.append(Fact(("during-stop", m.index), lambda ms: f"It was accepted {_when(ms)}, after the stop and before the pending tables were saved."))
    elif side == m.destination and (m.resume_ns is None or t < m.resume_ns):
        out.append(Fact(("dest-early", m.index), lambda ms: f"It was accepted by the destination {side} {_when(ms)}, before the VM resumed there."))
        return out
    else:
        return out
    # -- what carried (or not) its pending state to the destination ---------------------
    after_save = m.save_pending_ns is not None and t > m.save_pending_ns
    if not after_save:
        if "save_pending_tables" not in src_steps:
            out.append(Fact(("no-save-step", m.index), lambda ms: "`save_pending_tables` is not among the source steps: no pending bit was written to guest RAM."))
        elif m.save_pending_ns is None:
            out.append(_save_failed_fact(cx, m, msc))
        else:
            out.append(Fact(("saved", m.index), lambda ms: f"SAVE_PENDING_TABLES at {T(m.save_pending_ns)} wrote pending_latch into the pending table in guest RAM."))
    out += _source_failures(cx, m)
    if m.pause_state is not None:
        pend = lpi in set(m.pause_state["gic"]["pending"])
        out.append(Fact(("pause-pending", m.index, pend), lambda ms, p=pend: (
            f"At the pause ({T(m.pause_ns)}) the source's LPI record {'was still pending' if p else 'was not pending'}.")))
    if m.status not in ("completed", "completed_with_errors"):
        out.append(Fact(("status", m.index), lambda ms: f"{m.label.capitalize()} {m.status} ({m.errno} in `{m.failed_step}`): the source resumed."))
        return out
    if m.resume_ns is None or m.destination is None:
        return out
    if msc is not None:
        for s in A.order_diff(tuple(msc.destination.steps), "destination").sentences():
            out.append(Fact(("order", m.index, s), lambda ms, s=s: f"On the destination {s}."))
    out += _replay_facts(cx, m, int(a.dev), lpi)
    out += _variant_facts(cx, m)
    rs = m.resume_state
    if rs is not None:
        rec = {x[0]: x for x in rs["gic"]["lpis"]}
        pend = lpi in set(rs["gic"]["pending"])
        when = T(_resume_state_t(cx, m))
        if lpi not in rec:
            txt = f"At resume ({when}) {m.destination} had no LPI record for it: no ITE mapping it was restored."
            key: tuple[Any, ...] = ("resume", m.index, "none")
        else:
            txt = f"At resume ({when}) {m.destination} had the LPI record (target vCPU {rec[lpi][1]}) " + ("pending." if pend else "but not pending.")
            key = ("resume", m.index, "pending" if pend else "not-pending", rec[lpi][1])
        out.append(Fact(key, lambda ms, s=txt: s))
    return out



def _resume_state_t(cx: Ctx, m: A.MigInfo) -> int:
    def f() -> int:
        r = cx.rows[(cx.rows["kind"] == "state") & (cx.rows["icid"] == m.index) & cx.rows["info"].str.startswith("resume:")]
        return int(r["t"].iloc[0]) if len(r) else (m.resume_ns or 0)

    return _cached(cx, ("rst", m.index), f)


def _save_failed_fact(cx: Ctx, m: A.MigInfo, msc: Any) -> Fact:
    errs = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["call"] == "SAVE_PENDING_TABLES") & (cx.kvm["errno"] != "")]
    e = errs.iloc[-1] if len(errs) else None
    pol = msc.source.on_ebusy.policy if msc else "?"
    why = ""
    if e is not None and e["errno"] == "EBUSY":
        inside = A.in_kvm_run(cx.vr, cx.run.scenario.vm.vcpus, e["side"], int(e["pos"]), cx.first_side)
        if inside:
            strag = [s.vcpu for s in msc.source.stragglers if s.vcpu in inside] if msc else []
            why = (f": vCPU{'s' if len(inside) > 1 else ''} {ids(inside)} still inside KVM_RUN"
                   + (", the configured straggler" if strag else ""))  # fmt: skip
    txt = ("SAVE_PENDING_TABLES never succeeded in this migration"
           + (f" (-{e['errno']} at {T(e['t'])}{why}; on_ebusy {pol})" if e is not None else "")
           + ", so the pending table in guest RAM was never updated with this LPI's pending state.")  # fmt: skip
    return Fact(("save-failed", m.index), lambda ms, s=txt: s)


def _source_failures(cx: Ctx, m: A.MigInfo) -> list[Fact]:
    out = []
    ist = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["call"] == "ITS_SAVE_TABLES")]
    if len(ist) and (ist["errno"] != "").all():
        e = ist.iloc[-1]
        out.append(Fact(("its-save-failed", m.index), lambda ms, e=e: (
            f"ITS_SAVE_TABLES failed too (-{e['errno']} at {T(e['t'])}): the device, ITT and collection tables were not written.")))
    rg = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["call"] == "ITS_REGS_GET")]
    if len(rg) and (rg["errno"] != "").all():
        e = rg.iloc[-1]
        out.append(Fact(("regs-failed", m.index), lambda ms, e=e: (
            f"Reading the GITS_* registers failed (-{e['errno']} at {T(e['t'])}): the destination ITS got no register "
            "values, so it was never configured or enabled.")))
    return out


def _replay_facts(cx: Ctx, m: A.MigInfo, dev: int, lpi: int) -> list[Fact]:
    cmds = _cached(cx, ("replay", m.index), _replay_rows(cx, m))
    if cmds.empty:
        return []
    touch = cmds[(cmds["info"].str.startswith("MAPD") & (cmds["device"] == dev))
                 | (cmds["info"].str.startswith("MAPTI") & (cmds["lpi"] == lpi))]  # fmt: skip
    if touch.empty:
        return []
    what = "; ".join(f"{r.info} at {T(r.t)}" for r in touch.itertuples())
    k = tuple(touch["info"].tolist())
    return [Fact(("replay", m.index, k), lambda ms, w=what: (
        f"Before the VM resumed, the ITS of {m.destination} re-executed commands from the queue in guest "
        f"memory that touch this LPI (the guest wrote none of them there): {_group_lpis(w, ms)}. A MAPD "
        "of a mapped device frees its LPIs with their pending state; MAPTI re-creates each LPI from "
        "its pending bit, which RESTORE_TABLES had already consumed."))]


def _replay_rows(cx: Ctx, m: A.MigInfo) -> Callable[[], pd.DataFrame]:
    def f() -> pd.DataFrame:
        r = cx.rows
        return r[(r["kind"] == "cmd") & (r["side"] == m.destination) & (r["pos"] < _pos_of_resume(cx, m))]

    return f


def _variant_facts(cx: Ctx, m: A.MigInfo) -> list[Fact]:
    out = []
    if "pending_sync_on_ctlr" in cx.variants:
        ct = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["call"] == "SET_GITS_CTLR") & (cx.kvm["errno"] == "")]
        if len(ct):
            out.append(Fact(("variant", "pending_sync_on_ctlr"), lambda ms, tc=int(ct["t"].iloc[0]): (
                f"Kernel variant `pending_sync_on_ctlr: true` (mainline: false): restoring GITS_CTLR at {T(tc)} "
                "synced the pending tables again and overwrote pending_latch with the bit in RAM, which "
                "RESTORE_TABLES had already consumed (cleared).")))
    for f in ("pending_sync_clears_ram", "clear_on_unmap"):
        if f in cx.variants:
            out.append(Fact(("variant", f), lambda ms, f=f: f"Kernel variant `{f}: {cx.variants[f]}` (mainline: {getattr(MAINLINE, f)}): {VARIANT_DOC[f]}."))
    return out


def _group_lpis(text: str, ms: list[dict[str, Any]]) -> str:
    if len({m["lpi"] for m in ms}) == 1:
        return text
    return "for each of these LPIs, the MAPD of its device and its own MAPTI (e.g. " + text + ")"


def _spurious_facts(cx: Ctx, r: Any) -> tuple[dict[str, Any], list[Fact]]:
    lpi, t, vcpu, side = int(r.lpi), int(r.t), int(r.vcpu), str(r.side)
    member: dict[str, Any] = {"lpi": lpi, "t": t}
    facts = [Fact(("delivered", vcpu, side), lambda ms: f"vCPU {vcpu} took the LPI on {side} {_when(ms)}.")]
    if r.prev_pos >= 0:
        facts.append(Fact(("prev",), lambda ms: "Each time, its previous delivery came before, and no raise of the LPI (MSI, INT "
                          "or pending-bit write the guest meant for it) happened in between."))  # fmt: skip
    else:
        facts.append(Fact(("prev",), lambda ms: "It had never been delivered before, and the guest had not raised it."))
    if r.hit_pos >= 0:
        meant = int(r.hit_lpi)
        facts.append(Fact(("hit", int(r.hit_dev), int(r.hit_ev), meant), lambda ms, r=r, meant=meant: (
            f"The ITS of {r.hit_side} translated device {r.hit_dev} event {r.hit_ev} to this LPI (e.g. at {T(r.hit_t)}), "
            + (f"although the guest's commands map it to LPI {meant}." if meant >= 0 else "although the guest's commands no longer map it."))))
        facts += _stale_cache_facts(cx, int(r.hit_pos), int(r.hit_dev), int(r.hit_ev))
    else:
        for m in cx.migs:
            if m.resume_state and m.pause_state and m.resume_ns is not None and r.prev_pos < _pos_of_resume(cx, m) < r.pos:
                was = lpi in set(m.pause_state["gic"]["pending"])
                now = lpi in set(m.resume_state["gic"]["pending"])
                if now and not was:
                    facts.append(Fact(("resurrect", m.index), lambda ms, m=m: (
                        f"{m.destination} had the LPI pending at resume although {m.source} did not at the pause: "
                        "the restore latched a stale pending bit from guest RAM.")))
                cmds = _cached(cx, ("replay", m.index), _replay_rows(cx, m))
                ints = cmds[cmds["info"] == "INT"] if len(cmds) else cmds
                if len(ints):
                    txt = (f"Before the VM resumed, the ITS of {m.destination} re-executed {plural(len(ints), 'INT command')} "
                           "still in the command queue in guest memory.")  # fmt: skip
                    facts.append(Fact(("replay-int", m.index), lambda ms, s=txt: s))
        for f in ("pending_sync_clears_ram", "clear_on_unmap"):
            if f in cx.variants:
                facts.append(Fact(("variant", f), lambda ms, f=f: f"Kernel variant `{f}: {cx.variants[f]}`: {VARIANT_DOC[f]}."))
    return member, facts


def _misrouted_facts(cx: Ctx, r: Any) -> tuple[dict[str, Any], list[Fact]]:
    lpi, t, got, want = int(r.lpi), int(r.t), int(r.vcpu), int(r.want)
    member: dict[str, Any] = {"lpi": lpi, "t": t}
    facts = [Fact(("routed", got, want), lambda ms: (
        f"Delivered on vCPU {got} {_when(ms)}; the guest's own commands (MAPC/MAPTI/MOVI/MOVALL) target vCPU {want}."))]
    if r.hit_pos >= 0:
        facts.append(Fact(("its-target", int(r.hit_vcpu)), lambda ms, r=r: (
            f"The ITS of {r.hit_side} accepted its last raise for vCPU {r.hit_vcpu} (e.g. at {T(r.hit_t)}).")))
    prior = [x for x in cx.migs if x.end_ns is not None and x.end_ns <= t]
    if prior:
        mm = prior[-1]
        msc = cx.run.scenario.migrations[mm.index]
        for s in A.order_diff(tuple(msc.destination.steps), "destination").sentences():
            facts.append(Fact(("order", mm.index, s), lambda ms, s=s: f"In {mm.label}, on the destination {s}."))
        facts += _variant_facts(cx, mm)
    if "translation_cache" in cx.variants:
        facts.append(Fact(("variant", "translation_cache"), lambda ms: f"Kernel variant `translation_cache: stale`: {VARIANT_DOC['translation_cache']}."))
    return member, facts


def _drop_lines(cx: Ctx, drops: pd.DataFrame) -> list[str]:
    out: list[str] = []
    d = drops.copy()
    d["phase"] = _phases(cx, d["t"].to_numpy(), d["side"].to_numpy())
    n = 0
    for (side, reason, phase), g in d.groupby(["side", "drop_reason", "phase"], sort=False):
        n += 1
        lp = [x for x in g["lpi"] if x >= 0]
        who = f"LPIs {ids(lp)}" if lp else "no LPI (the guest had not mapped them)"
        out += _wrap(f"{n}. {plural(len(g), 'raise')} dropped as `{reason}` on {side} {phase} "
                     f"({_when([{'t': int(g['t'].min())}, {'t': int(g['t'].max())}])}): device {ids(g['dev'])} "
                     f"events {ids(g['ev'])}, meant by the guest for {who}.")  # fmt: skip
        for f in _drop_facts(cx, side, reason, int(g["t"].iloc[0])):
            out += _wrap("- " + f, indent=1)
        out.append("")
    return out


def _phases(cx: Ctx, t: np.ndarray, side: np.ndarray) -> np.ndarray:
    out = np.full(len(t), "", dtype=object)
    if not cx.migs:
        return out
    n = len(cx.migs)
    done = np.zeros(len(t), dtype=bool)
    for m in cx.migs:
        end = m.end_ns if m.end_ns is not None else 1 << 62
        before = ~done & (t < m.start_ns)
        out[before] = "before the migration" if n == 1 else f"before {m.label}"
        done |= before
        during = ~done & (t < end)
        out[during & (side == m.destination)] = f"before the destination resumed ({m.label})"
        out[during & (side != m.destination)] = f"during {m.label}"
        done |= during
    out[~done] = "after the migration" if n == 1 else "after the migrations"
    return out


def _drop_facts(cx: Ctx, side: str, reason: str, t: int) -> list[str]:
    out: list[str] = []
    m = next((x for x in cx.migs if x.destination == side), None)
    if reason == "not_restored" and m is not None:
        ct = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["call"] == "SET_GITS_CTLR")]
        out.append(f"They reached the ITS of {side} before it was restored and enabled ("
                   + (f"GITS_CTLR restored at {T(ct['t'].iloc[0])}; " if len(ct) else "")
                   + f"the VM resumed there at {T(m.resume_ns)}): an MSI to a disabled ITS is refused.")  # fmt: skip
        msc = cx.run.scenario.migrations[m.index]
        if "quiesce_devices" not in msc.source.steps:
            out.append("`quiesce_devices` is not among the source steps, so the devices were never held and "
                       "signalled the destination as soon as its memory (device state) was loaded.")  # fmt: skip
    elif reason == "its_disabled":
        if m is not None and m.resume_state is not None and t >= (m.resume_ns or 0):
            en = (m.resume_state["its"] or [{}])[0].get("enabled")
            out.append(f"At resume the ITS of {side} was {'enabled' if en else 'disabled'} (state snapshot at {T(_resume_state_t(cx, m))}).")
            msc = cx.run.scenario.migrations[m.index]
            for s in A.order_diff(tuple(msc.destination.steps), "destination").sentences():
                out.append(f"On the destination {s}.")
            rg = cx.kvm[(cx.kvm["migration"] == m.index) & (cx.kvm["call"] == "ITS_REGS_GET") & (cx.kvm["errno"] != "")]
            if len(rg):
                e = rg.iloc[-1]
                inside = A.in_kvm_run(cx.vr, cx.run.scenario.vm.vcpus, e["side"], int(e["pos"]), cx.first_side)
                out.append(f"Reading the source's GITS_* registers failed (-{e['errno']} at {T(e['t'])}"
                           + (f"; vCPU {ids(inside)} still inside KVM_RUN" if inside else "")
                           + "), so no GITS_* value reached the destination and its ITS was never enabled.")  # fmt: skip
        else:
            out.append(f"The ITS of {side} was disabled at that moment (GITS_CTLR.Enable clear).")
    elif reason == "unmapped":
        if m is not None and m.resume_state is not None and t >= (m.resume_ns or 0):
            its = (m.resume_state["its"] or [{}])[0]
            out.append(f"At resume the ITS of {side} held {plural(len(its.get('devices', [])), 'device')} and "
                       f"{plural(len(its.get('ites', [])), 'event mapping')}.")  # fmt: skip
        else:
            out.append("The ITS had no mapping for that (DeviceID, EventID), or its collection had no target.")
    elif reason == "lpis_disabled":
        out.append("The target vCPU had GICR_CTLR.EnableLPIs clear.")
    return out

