"""The narrative: set-up, timeline of steps and calls, then the outcomes (``explain``)."""


from typing import Any

import attrs
import numpy as np
import pandas as pd

from gicsim.judge import analysis as A
from gicsim.kvm.releases import MAINLINE
from gicsim.present.explain.block import verdict_block
from gicsim.present.explain.context import Ctx, _gcmd_words, _pos_at, _replayed, context
from gicsim.present.explain.outcomes import _outcomes
from gicsim.present.explain.rules import signature
from gicsim.present.explain.words import (
    CALL_DOC,
    STEP_DOC,
    VARIANT_DOC,
    T,
    _wrap,
    counts,
    ids,
    ids_short,
    plural,
)
from gicsim.present.rundata import RunData


# ========================================================================== narrative ====
@attrs.define
class Line:
    t: int
    pos: int
    text: str
    indent: int = 0
    merge: tuple[Any, ...] | None = None  # consecutive lines with the same key are one bulk action
    items: list[Any] = attrs.Factory(list)


def explain(run: RunData) -> str:
    """The whole account as text (Markdown-flavoured plain text)."""
    cx = context(run)
    out: list[str] = []
    sc = run.scenario
    out.append(f"# What happened in {run.name}")
    out.append("")
    if sc.description:
        out += _wrap(" ".join(sc.description.split())) + [""]
    out += verdict_block(cx)
    out += ["## Setup", ""]
    out += _setup(cx)
    out += ["", "## Timeline", ""]
    for ln in _timeline(cx):
        out += _wrap(f"[{ln.t / 1000:>12,.3f} µs] " + ln.text, indent=ln.indent, hang=17)
    out += ["", "## Outcomes", ""]
    out += _outcomes(cx)
    return "\n".join(out).rstrip() + "\n"



def _setup(cx: Ctx) -> list[str]:
    sc = cx.run.scenario
    out = []
    out += _wrap(f"- {sc.vm.vcpus} vCPUs, {sc.vm.memory_mib} MiB of guest RAM, "
                 f"{'two-level' if sc.vm.its.device_table == 'two_level' else 'flat'} device table; "
                 f"timing profile `{cx.run.timing_base}`; run until {T(sc.until_ns)}.")  # fmt: skip
    if cx.variants:
        for f, v in cx.variants.items():
            out += _wrap(f"- Kernel variant: `{f}: {v}` (mainline: {getattr(MAINLINE, f)}) — {VARIANT_DOC.get(f, '')}.")
    else:
        out += _wrap("- Kernel: mainline (every variant field at its default).")
    for i, mc in enumerate(sc.migrations):
        if mc.at_ns is not None or mc.after is None:
            when = f"at {T(mc.at_ns)}"
        else:
            when = f"{T(mc.delay_ns or 0)} after {mc.after.event} of migration {(mc.after.migration or 0) + 1}"
        out += _wrap(f"- Migration {i + 1} starts {when}.")
        src = mc.source
        od = A.order_diff(tuple(src.steps), "source")
        out += _wrap(f"  Source steps: {', '.join(src.steps)}" + (" (the default)." if not od.differs else "."), hang=4)
        for sen in od.sentences():
            out += _wrap(f"  Differs from the default: {sen}.", hang=4)
        od = A.order_diff(tuple(mc.destination.steps), "destination")
        out += _wrap(f"  Destination steps: {', '.join(mc.destination.steps)}" + (" (the default)." if not od.differs else "."), hang=4)
        for sen in od.sentences():
            out += _wrap(f"  Differs from the default: {sen}.", hang=4)
        wait = "until every vCPU is out of KVM_RUN" if src.stop_wait_ns is None else f"{T(src.stop_wait_ns)} (stop_wait_us), out or not"
        bits = [f"vCPUs leave KVM_RUN {T(src.vcpu_exit_ns)} after the stop request", f"the VMM waits {wait}"]
        for st in src.stragglers:
            bits.append(f"vCPU {st.vcpu} is a straggler and needs {T(st.exit_ns)} to leave KVM_RUN")
        pol = src.on_ebusy
        bits.append("on -EBUSY: " + {"abort": "abort the migration", "continue": "report it and go on without that state"}.get(
            pol.policy, f"retry up to {pol.retry} times, {T(pol.backoff_ns)} apart, then abort"))
        out += _wrap("  " + "; ".join(bits) + ".", hang=4)
    if not sc.migrations:
        out += _wrap("- No migration.")
    return out


def _timeline(cx: Ctx) -> list[Line]:
    lines: list[Line] = []
    rows = cx.rows
    sc = cx.run.scenario
    cmd_ns = sc.timing.its_cmd_ns
    mig_by_idx = {m.index: m for m in cx.migs}
    # -- guest commands written (batches of one time), with the commands the ITS ran during
    # the write: the trace records a guest's batch when its CWRITER write returns, after the
    # ITS ran it, so the batch is narrated where its execution began ---------------------------
    g = rows[rows["kind"] == "gcmd"]
    c = rows[rows["kind"] == "cmd"]
    done = np.zeros(len(c), dtype=bool)
    cpos, cside = c["pos"].to_numpy(), c["side"].to_numpy()
    last: dict[str, int] = {}
    for (t, side), grp in g.groupby(["t", "side"], sort=True, observed=True):
        p0 = int(grp["pos"].iloc[0])
        # the commands run during the write: the last len(grp) executions before its rows, if
        # they are the batch's commands (else the ITS was off and ran them later)
        lo = int(np.searchsorted(cpos, last.get(side, -1), side="right"))  # cpos is sorted: only the
        hi = max(lo, int(np.searchsorted(cpos, p0, side="left")))  # executions in between are looked at
        ran = (lo + np.flatnonzero((cside[lo:hi] == side) & ~done[lo:hi]))[-len(grp):]
        last[side] = p0
        if len(ran) != len(grp) or sorted(map(_sig, c.iloc[ran].itertuples())) != sorted(map(_sig, grp.itertuples())):
            ran = ran[:0]
        txt = "The guest wrote " + _gcmd_words(grp) + " into the command queue"
        if len(ran):
            done[ran] = True
            sub = c.iloc[ran]
            t0, t1 = int(sub["t"].iloc[0]), int(sub["t"].iloc[-1])
            txt += (f"; the ITS of {side} ran {plural(len(sub), 'command')} ({counts([n.split(':')[0] for n in sub['info']])})"
                    f" from {T(t0)}" + (f" until {T(t1)}" if t1 != t0 else "") + f" and the write returned at {T(int(t))}")  # fmt: skip
            errs = [n for n in sub["info"] if ":" in n]
            if errs:
                txt += f"; failed (no effect, the queue moves on): {counts(errs)}"
            lines.append(Line(t0, int(sub["pos"].iloc[0]), txt + ".", merge=("gcmd", side), items=[grp, sub]))
        else:
            lines.append(Line(int(t), p0, txt + ".", merge=("gcmd-queued", side), items=[grp]))
    # -- commands the ITS executed on its own (bursts): queued earlier, or re-run -------------
    c = c[~done]
    if len(c):
        gap = (c["t"].diff().fillna(10**18) > 2 * cmd_ns + 1) | (c["side"] != c["side"].shift())
        for _, grp in c.groupby(gap.cumsum(), sort=True):
            side = grp["side"].iloc[0]
            names = grp["info"].tolist()
            errs = [n for n in names if ":" in n]
            txt = f"The ITS of {side} executed {plural(len(grp), 'command')} ({counts([n.split(':')[0] for n in names])})"
            if len(grp) > 1:
                txt += f", until {T(grp['t'].iloc[-1])}"
            replay = _replayed(cx, side, int(grp["pos"].iloc[0]))
            if replay:
                txt += (". The guest wrote none of them on " + side + ": they were still in the command queue in "
                        "guest memory, and enabling the ITS executes everything between CREADR and CWRITER")  # fmt: skip
            if errs:
                txt += f"; failed (no effect, the queue moves on): {counts(errs)}"
            lines.append(Line(int(grp["t"].iloc[0]), int(grp["pos"].iloc[0]), txt + "."))
    # -- mask / unmask ----------------------------------------------------------------------
    for r in cx.masks.itertuples():
        lines.append(Line(r.t, r.pos, f"vCPU {r.vcpu} {'masked' if r.masked else 'unmasked'} interrupts."))
    # -- vCPUs leaving/entering KVM_RUN (grouped per time and side) -------------------------
    if len(cx.vr):
        for (t, side, what), grp in cx.vr.groupby(["t", "side", "what"], sort=True):
            vs = grp["vcpu"].tolist()
            who = f"vCPU {vs[0]}" if len(vs) == 1 else f"vCPUs {ids(vs)}"
            if what == "exit":
                txt = f"{who} left KVM_RUN on {side}."
                for mc in sc.migrations:
                    for st in mc.source.stragglers:
                        if st.vcpu in vs:
                            txt += f" vCPU {st.vcpu} is the configured straggler ({T(st.exit_ns)} to leave)."
            else:
                txt = f"{who} entered KVM_RUN on {side}."
            strag = "straggler" in txt
            lines.append(Line(int(t), int(grp["pos"].iloc[0]), txt, 0, None if strag else ("vcpu", side, what), vs))
    # -- migrations ---------------------------------------------------------------------
    for r in rows[rows["kind"].isin(["migration", "quiesce", "state"])].itertuples():
        mi = mig_by_idx.get(int(r.icid))
        if r.kind == "migration":
            txt = _migration_words(cx, mi, str(r.info), str(r.side))
            lines.append(Line(int(r.t), int(r.pos), txt, 0))
        elif r.kind == "quiesce":
            lines.append(Line(int(r.t), int(r.pos), "Devices quiesced: they hold their MSIs until the VM runs again."
                              if r.info == "1" else "Devices released: every held MSI is sent now.", 0))  # fmt: skip
        else:
            lines.append(Line(int(r.t), int(r.pos), _state_words(cx, mi, str(r.info)), 0))
    for m in cx.migs:
        if m.stop_ns is not None:
            p = int(cx.steps[(cx.steps["migration"] == m.index)]["start_ns"].min()) if len(cx.steps) else m.stop_ns
            lines.append(Line(m.stop_ns, _pos_at(cx, p), f"Pre-copy of {m.label} done after {T(m.stop_ns - m.start_ns)}; "
                              f"the stop-and-copy begins (downtime starts).", 0))  # fmt: skip
    # -- steps and KVM calls ----------------------------------------------------------------
    lines += _step_lines(cx)
    # -- traffic between milestones -----------------------------------------------------
    lines.sort(key=lambda ln: (ln.pos, ln.t))
    lines = _bulk(lines)
    lines = _with_traffic(cx, lines)
    return _indent(cx, lines)



def _sig(r: Any) -> tuple[Any, ...]:
    """A command and its arguments from a ``rows`` tuple (``gcmd`` or ``cmd``)."""
    return signature((int(r.t), str(r.kind), str(r.side), int(r.vcpu), int(r.lpi), int(r.device), int(r.event),
                      int(r.icid), str(r.info)))  # fmt: skip


def _bulk(lines: list[Line]) -> list[Line]:
    """Consecutive lines of one bulk action (one command per write, vCPUs leaving one by one)
    become one line: ``The guest wrote 512 commands: MAPC ×512 (…), between … and …``."""
    out: list[Line] = []
    i = 0
    while i < len(lines):
        j = i + 1
        while j < len(lines) and lines[i].merge is not None and lines[j].merge == lines[i].merge:
            j += 1
        if j - i < 3:
            out += lines[i:j]
            i = j
            continue
        run, first = lines[i:j], lines[i]
        key = first.merge or ("",)
        if key[0].startswith("gcmd"):
            grp = pd.concat([ln.items[0] for ln in run])
            txt = "The guest wrote " + _gcmd_words(grp) + " into the command queue in " + plural(len(run), "write")
            if key[0] == "gcmd":
                sub = pd.concat([ln.items[1] for ln in run])
                txt += (f"; the ITS of {key[1]} ran them ({counts([n.split(':')[0] for n in sub['info']])}) from "
                        f"{T(int(sub['t'].iloc[0]))}; the last write returned at {T(int(grp['t'].iloc[-1]))}")  # fmt: skip
                errs = [n for n in sub["info"] if ":" in n]
                if errs:
                    txt += f"; failed (no effect, the queue moves on): {counts(errs)}"
            else:
                txt += f" (between {T(first.t)} and {T(run[-1].t)})"
            txt += "."
        else:
            _, side, what = key
            vs = [v for ln in run for v in ln.items]
            txt = (f"vCPUs {ids(vs)} {'left' if what == 'exit' else 'entered'} KVM_RUN on {side}, one after the other "
                   f"(between {T(first.t)} and {T(run[-1].t)}).")  # fmt: skip
        out.append(Line(first.t, first.pos, txt, first.indent))
        i = j
    return out


def _migration_words(cx: Ctx, m: A.MigInfo | None, info: str, side: str) -> str:
    label = m.label.capitalize() if m else "Migration"
    if info == "start":
        dst = f" to {m.destination}" if m and m.destination else ""
        return f"{label} starts: pre-copy of guest memory from {side}{dst} while the guest keeps running."
    if info == "resume":
        return f"The VM runs again on {side} (vCPUs back in KVM_RUN)."
    if info == "completed":
        return f"{label} completed; downtime {T(m.downtime_ns if m else None)}."
    if info == "completed_with_errors":
        return (f"{label} completed, but a destination step listed after resume failed on the "
                f"running destination; downtime {T(m.downtime_ns if m else None)}.")
    parts = info.split(":")
    if parts[0] == "aborted":
        return (f"{label} aborted by the source: {parts[1]} in `{':'.join(parts[2:])}`. The source VM "
                f"resumes; the destination is discarded.")  # fmt: skip
    if parts[0] == "failed":
        return (f"{label} failed on the destination: {parts[1]} in `{':'.join(parts[2:])}`. The "
                f"destination is discarded and the source VM resumes.")  # fmt: skip
    return f"{label}: {info}."


def _state_words(cx: Ctx, m: A.MigInfo | None, info: str) -> str:
    what, _, _ = info.partition(":")
    st = (m.pause_state if what == "pause" else m.resume_state) if m else None
    if not st:
        return f"State snapshot ({what})."
    gic, its = st["gic"], (st["its"] or [{}])[0]
    pend = st["gic"]["pending"]
    ptxt = f"{len(pend)} pending ({ids_short(pend)})" if pend else "none pending"
    head = "Source state at pause" if what == "pause" else "Destination state at resume"
    return (f"{head}: ITS {'enabled' if its.get('enabled') else 'disabled'}, {plural(len(its.get('devices', [])), 'device')}, "
            f"{plural(len(its.get('ites', [])), 'event mapping')}, {plural(len(its.get('collections', [])), 'collection')}; "
            f"{plural(len(gic['lpis']), 'LPI record')}, {ptxt}.")  # fmt: skip


def _step_lines(cx: Ctx) -> list[Line]:
    out: list[Line] = []
    sc = cx.run.scenario
    k = cx.kvm
    for s in cx.steps.itertuples():
        m = next((x for x in cx.migs if x.index == s.migration), None)
        doc = STEP_DOC.get(s.step, "")
        if s.step == "stop_vcpus" and m is not None and s.migration < len(sc.migrations):
            w = sc.migrations[s.migration].source.stop_wait_ns
            doc += ", then waits " + ("until all are out" if w is None else f"{T(w)} whether or not they are out")
        if s.step == "its_restore_tables" and not cx.run.resolved.get("kernel", {}).get("pending_sync_clears_ram", True):
            doc += " (leaving the consumed bit set in RAM: pending_sync_clears_ram false)"
        elif s.step == "its_restore_tables":
            doc += " and clearing the consumed bit in RAM"
        p = _step_pos(cx, s)
        out.append(Line(s.start_ns, p, f"{s.role.capitalize()} step `{s.step}` on {s.side}: {doc} (took {T(s.dur_ns)}).", 0))
        calls = k[(k["migration"] == s.migration) & (k["step"] == s.step) & (k["side"] == s.side)]
        regs: list[tuple[int, int, str]] = []
        attempt = 0
        # a call's row is written when its ioctl's work is done but before the time that work
        # costs is charged: it returned when the next call began (one KVM_*_DEVICE_ATTR round
        # trip before that call's row), or, for the last call of a step, by the step's end
        nxt = (list(calls["t"].iloc[1:] - sc.timing.kvm_attr_ns) + [None]) if len(calls) else []
        for c, after in zip(calls.itertuples(), nxt, strict=True):
            if c.call.startswith("SET_GITS_") and not c.errno:
                regs.append((c.t, c.pos, c.call[4:]))
                continue
            if regs:
                out.append(_regs_line(regs))
                regs = []
            name = CALL_DOC.get(c.call, c.call.replace("SET_", "write of ").replace("_GET", " read"))
            if not c.errno:
                ret = max(int(c.t), int(after) if after is not None else int(s.end_ns))
                txt = f"{name} returned 0" + (f" (attempt {attempt + 1})" if attempt else "")
                if after is None and ret > c.t:
                    txt += " by the end of the step"
                out.append(Line(ret, max(int(c.pos), _pos_at(cx, ret)), txt + ".", 2))
                attempt = 0
                continue
            attempt += 1
            out.append(Line(c.t, c.pos, f"{name} returned -{c.errno}: " + _why_errno(cx, m, c, attempt), 2))
        if regs:
            out.append(_regs_line(regs))
    return out


def _step_pos(cx: Ctx, s: Any) -> int:
    r = cx.rows[(cx.rows["kind"] == "step") & (cx.rows["icid"] == s.migration) & (cx.rows["info"] == f"{s.step}:start")
                & (cx.rows["side"] == s.side)]  # fmt: skip
    return int(r["pos"].iloc[0]) if len(r) else _pos_at(cx, s.start_ns)


def _regs_line(regs: list[tuple[int, int, str]]) -> Line:
    names = [r[2] for r in regs]
    basers = [n for n in names if n.startswith("GITS_BASER")]
    shown = [n for n in names if not n.startswith("GITS_BASER")]
    if basers:
        shown.append("GITS_BASER0-7" if len(basers) == 8 else ", ".join(basers))
    return Line(regs[0][0], regs[0][1], f"wrote {', '.join(shown)} (each returned 0).", 2)


def _why_errno(cx: Ctx, m: A.MigInfo | None, c: Any, attempt: int) -> str:
    sc = cx.run.scenario
    pol = sc.migrations[c.migration].source.on_ebusy if c.migration < len(sc.migrations) else None
    if c.errno == "EBUSY":
        inside = A.in_kvm_run(cx.vr, sc.vm.vcpus, c.side, c.pos, cx.first_side)
        if inside:
            who = f"vCPU {inside[0]} was" if len(inside) == 1 else f"vCPUs {ids(inside)} were"
            why = f"{who} still inside KVM_RUN"
            later = cx.vr[(cx.vr["pos"] > c.pos) & (cx.vr["vcpu"].isin(inside)) & (cx.vr["what"] == "exit") & (cx.vr["side"] == c.side)]
            if len(later):
                firsts = later.groupby("vcpu")["t"].min()
                why += " (" + "; ".join(f"vCPU {v} left it at {T(t)}" for v, t in firsts.items()) + ")"
            why += ", so the all-vCPU trylock failed: EBUSY."
            strag = {s.vcpu: s.exit_ns for s in sc.migrations[c.migration].source.stragglers} if c.migration < len(sc.migrations) else {}
            named = [v for v in inside if v in strag]
            if named:
                why += f" vCPU {named[0]} is the configured straggler ({T(strag[named[0]])} to leave KVM_RUN)."
            cmds = cx.rows[(cx.rows["kind"] == "cmd") & (cx.rows["side"] == c.side) & (cx.rows["pos"] < c.pos)]
            if m is not None and len(cmds) and int(cmds["t"].iloc[-1]) >= m.start_ns:
                why += (f" The ITS of {c.side} had been executing guest commands (last at "
                        f"{T(cmds['t'].iloc[-1])}): the vCPU that wrote GITS_CWRITER stays in its MMIO "
                        f"exit, inside KVM_RUN, until KVM has run them all.")  # fmt: skip
        elif c.call == "SET_GITS_CREADR":
            why = "GITS_CREADR cannot be written while the ITS is enabled."
        else:
            why = "no vCPU was inside KVM_RUN according to the trace."
        if pol is not None:
            if pol.policy == "retry":
                why += (f" on_ebusy retry: attempt {attempt} of {pol.retry + 1}"
                        + (f", next in {T(pol.backoff_ns)}." if attempt <= pol.retry else "; no retries left: abort."))  # fmt: skip
            elif pol.policy == "continue":
                why += " on_ebusy continue: the VMM goes on without this state."
            else:
                why += " on_ebusy abort: the migration is aborted."
        return why
    if c.errno == "EFAULT":
        why = "a guest memory access fell outside guest RAM."
        if c.call == "ITS_RESTORE_TABLES" and m is not None:
            rd = cx.steps[(cx.steps["migration"] == m.index) & (cx.steps["step"] == "redistributors")]
            if rd.empty or int(rd["start_ns"].iloc[0]) > c.t:
                why += (" The redistributors of " + c.side + " were not restored yet: re-creating each LPI reads its "
                        "property byte through GICR_PROPBASER and its pending bit through GICR_PENDBASER, which "
                        "still held their reset value (address 0; guest RAM starts at 0x40000000).")  # fmt: skip
        return why + " Any other failure than EBUSY on the " + ("destination fails the migration." if m and c.side == m.destination else "source aborts it.")
    if c.errno == "EINVAL":
        return "the restored data or register value is inconsistent (docs/02-save-restore-abi.md)."
    return "see docs/02-save-restore-abi.md for this call's errors."


def _with_traffic(cx: Ctx, lines: list[Line]) -> list[Line]:
    """Insert one summary line per window between narrated lines for MSIs, drops, deliveries.

    Every count is taken in one pass over the traffic rows (grouped by window, side and what
    is counted), so the cost grows with the trace, not with windows × rows."""
    df = cx.df
    kind = df["kind"]
    sel = kind.isin(["raise", "accept", "drop", "deliver"]).to_numpy()
    if not sel.any() or not lines:
        return lines
    pos = A.positions(df)[sel]
    bounds = np.array([ln.pos for ln in lines], dtype=np.int64)
    win = np.searchsorted(bounds, pos, side="right")  # window w = after line w-1
    kinds = A._info_str(kind[sel]).to_numpy()
    sides = A._info_str(df.loc[sel, "side"]).to_numpy()
    drops = cx.acc[cx.acc["kind"] == "drop"].set_index("pos")["drop_reason"]
    reason = pd.Series(pos).map(drops).astype(object).fillna("").to_numpy()
    vcpu = df.loc[sel, "vcpu"].to_numpy()
    t = df.loc[sel, "t"].to_numpy()
    # one row per (window, side, what): what is a kind, ("drop", reason) or ("deliver", vCPU)
    is_drop, is_dv = kinds == "drop", kinds == "deliver"
    sub = np.where(is_drop, reason, np.where(is_dv, vcpu, None))
    tab = pd.DataFrame({"win": win, "side": sides, "kind": kinds, "sub": sub, "i": np.arange(len(win))})
    kc = tab.groupby(["win", "side", "kind"], sort=True)["i"].size()
    dr = tab[is_drop].groupby(["win", "side", "sub"], sort=False)["i"].agg(["size", "min"])
    dv = tab[is_dv].groupby(["win", "side", "sub"], sort=True)["i"].size()
    counts_: dict[tuple[int, str], dict[str, int]] = {}
    for (w, side, k), n in kc.items():
        counts_.setdefault((int(w), side), {})[k] = int(n)
    reasons: dict[tuple[int, str], list[tuple[int, int, str]]] = {}
    for (w, side, r), (n, first) in dr.iterrows():
        reasons.setdefault((int(w), side), []).append((-int(n), int(first), r))  # as value_counts orders
    per_vcpu: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for (w, side, v), n in dv.items():
        per_vcpu.setdefault((int(w), side), []).append((int(v), int(n)))
    starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])  # win is sorted: the rows of a window are contiguous
    ends = np.r_[starts[1:], len(win)] - 1
    by_win: dict[int, list[str]] = {}
    for w, side in counts_:
        by_win.setdefault(w, []).append(side)
    extra: dict[int, list[Line]] = {}
    for i0, i1 in zip(starts, ends, strict=True):
        w = int(win[i0])
        bits = []
        for side in sorted(by_win[w]):
            c = counts_[(w, side)]
            part = []
            if c.get("raise"):
                part.append(f"{c['raise']:,} raised")
            if c.get("accept"):
                part.append(f"{c['accept']:,} accepted")
            if c.get("drop"):
                part.append("dropped " + ", ".join(f"{-n:,} {r}" for n, _, r in sorted(reasons[(w, side)])))
            if c.get("deliver"):
                per = per_vcpu[(w, side)]
                part.append(f"{c['deliver']:,} delivered (" + (", ".join(f"vCPU {v}: {n:,}" for v, n in per) if len(per) <= 8
                            else f"on {len(per)} vCPUs, {ids(v for v, _ in per)}") + ")")  # fmt: skip
            bits.append(f"{side}: " + ", ".join(part))
        t0, t1 = int(t[i0]), int(t[i1])
        span = f" until {T(t1)}" if t1 != t0 else ""
        txt = f"Interrupt traffic{span} — " + "; ".join(bits) + "."
        extra.setdefault(w, []).append(Line(t0, int(pos[i0]), txt, 0))
    out: list[Line] = []
    for i in range(len(lines) + 1):
        out += extra.get(i, [])
        if i < len(lines):
            out.append(lines[i])
    return out


def _indent(cx: Ctx, lines: list[Line]) -> list[Line]:
    """Lines inside a migration's window are indented one level (its milestones are not)."""
    for ln in lines:
        if ln.indent == 0 and not ln.text.startswith(("Migration", "Pre-copy of", "The VM runs again")):
            if any(m.start_ns <= ln.t <= (m.end_ns if m.end_ns is not None else 1 << 62) for m in cx.migs):
                ln.indent = 1
    return lines


