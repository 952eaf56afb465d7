"""``gicsim explain``: a narrated, time-ordered account of a run, in plain words.

Everything here *describes* what the trace shows; nothing decides an outcome. Which raises
were lost, spurious or misrouted comes from the oracles (:func:`gicsim.judge.oracles.judge`, the
same verdict as ``summary.json``); this module then gathers, for each of them, the trace facts
around it — when and where it was raised and accepted, whether that was after
``SAVE_PENDING_TABLES`` had written the pending tables, what the destination's state held at
resume, which commands the destination replayed, which steps ran in a non-default order,
which kernel variant differs from mainline, which KVM call failed with which errno — and
prints them as a causal chain, grouping LPIs whose chains read the same.

The model knowledge used to say *why* (e.g. "a ``GITS_CBASER`` write resets ``CREADR``")
is the kernel behaviour of SPEC §1–4, quoted only when the trace shows the situation it is
about.
"""

from __future__ import annotations

import textwrap
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pandas as pd

from gicsim.judge import analysis as A
from gicsim.kvm.releases import MAINLINE
from gicsim.present.rundata import RunData

WIDTH = 100

#: what each migration step does (SPEC §5; QEMU's sequence)
STEP_DOC = {
    "stop_vcpus": "the VMM asks every vCPU to leave KVM_RUN",
    "quiesce_devices": "devices stop sending MSIs and hold them until the VM runs again",
    "save_pending_tables": "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES writes every targeted LPI's "
    "pending_latch into its bit of the target vCPU's pending table in guest RAM",
    "save_its_tables": "KVM_DEV_ARM_ITS_SAVE_TABLES writes the DTEs, ITEs and CTEs into the "
    "device, ITT and collection tables in guest RAM",
    "final_memory": "the VMM reads the GIC and ITS registers through the KVM API and sends the "
    "last dirty pages (with the tables just written)",
    "memory": "the destination loads the final guest memory and device state",
    "redistributors": "GICR_PROPBASER, GICR_PENDBASER and GICR_CTLR of every vCPU are restored",
    "its_init": "KVM_DEV_ARM_VGIC_CTRL_INIT on the destination ITS",
    "gits_cbaser": "GITS_CBASER is restored (a CBASER write resets CREADR and CWRITER to 0)",
    "gits_iidr": "GITS_IIDR (the table ABI revision) is restored",
    "gits_regs": "the GITS_* registers not restored yet, except GITS_CTLR, are restored",
    "gits_creadr": "GITS_CREADR is restored",
    "gits_cwriter": "GITS_CWRITER is restored",
    "gits_baser": "GITS_BASER0..7 (device and collection tables) are restored",
    "its_restore_tables": "KVM_DEV_ARM_ITS_RESTORE_TABLES walks the collection and device tables "
    "in guest RAM and re-creates every LPI, latching its pending bit from the target vCPU's "
    "pending table",
    "gits_ctlr": "GITS_CTLR (Enable) is restored; enabling the ITS runs any command queued "
    "between CREADR and CWRITER",
    "resume": "the vCPUs re-enter KVM_RUN; held MSIs are sent",
}
CALL_DOC = {
    "SAVE_PENDING_TABLES": "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES",
    "ITS_SAVE_TABLES": "KVM_DEV_ARM_ITS_SAVE_TABLES",
    "ITS_RESTORE_TABLES": "KVM_DEV_ARM_ITS_RESTORE_TABLES",
    "ITS_CTRL_INIT": "KVM_DEV_ARM_VGIC_CTRL_INIT (ITS)",
    "ITS_REGS_GET": "reading the GITS_* registers (KVM_DEV_ARM_VGIC_GRP_ITS_REGS)",
    "REDIST_REGS_GET": "reading the redistributor registers (KVM_DEV_ARM_VGIC_GRP_REDIST_REGS)",
    "REDIST_REGS_SET": "writing the redistributor registers (KVM_DEV_ARM_VGIC_GRP_REDIST_REGS)",
}
VARIANT_DOC = {
    "pending_sync_on_ctlr": "restoring GITS_CTLR also re-reads every LPI's pending bit from the "
    "pending tables and overwrites pending_latch with it (the v5 series of 2017)",
    "pending_sync_clears_ram": "creating an LPI latches its pending bit but leaves the consumed "
    "bit set in guest RAM (before 2020)",
    "clear_on_unmap": "MAPD V=0 and DISCARD leave the stale DTE/ITE in guest RAM (before 6.13)",
    "restore_scan": "the 2024 dummy-head proposal: save writes invalid head entries whose next "
    "field points at the first valid one, and restore follows them",
    "translation_cache": "the MSI translation cache forgets its invalidations (DISCARD, MAPD "
    "V=0, MOVI, MOVALL, ...), so a cached (DeviceID, EventID) keeps hitting the old LPI",
}


def T(ns: int | float | None) -> str:
    return "?" if ns is None else f"{ns / 1000:,.3f} µs"


def ids(xs: Any) -> str:
    """Compress sorted integers into 'a-b, c' runs."""
    v = sorted({int(x) for x in xs})
    if not v:
        return "none"
    out = []
    start = prev = v[0]
    for x in v[1:]:
        if x == prev + 1:
            prev = x
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = x
    out.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(out)


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def counts(names: list[str]) -> str:
    c: OrderedDict[str, int] = OrderedDict()
    for n in names:
        c[n] = c.get(n, 0) + 1
    return ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in c.items())


# ======================================================================= the context ====
@attrs.define
class Ctx:
    run: RunData
    df: pd.DataFrame
    migs: list[A.MigInfo]
    acc: pd.DataFrame
    dl: pd.DataFrame
    vr: pd.DataFrame
    masks: pd.DataFrame
    kvm: pd.DataFrame
    steps: pd.DataFrame
    rows: pd.DataFrame  # the non-traffic rows (everything but raise/accept/drop/deliver/eoi)
    variants: dict[str, Any]
    verdict: Any
    first_side: str
    end_ns: int
    cache: dict[tuple[Any, ...], Any] = attrs.Factory(dict)


def context(run: RunData) -> Ctx:
    from gicsim.judge import oracles

    df = run.trace
    migs = A.migrations(df, run.summary, run.scenario)
    acc = A.attribute(df)
    acc["drop_reason"] = A.drop_reasons(acc, df).reindex(acc.index).fillna("")
    dl = A.deliveries(df, acc)
    traffic = df["kind"].isin(["raise", "accept", "drop", "deliver", "eoi", "lpi_config"]).to_numpy()
    rows = df.loc[~traffic].copy()
    rows["pos"] = A.positions(df)[~traffic]
    for c in ("kind", "side", "info"):
        rows[c] = A._info_str(rows[c])
    lp = run.summary.get("lpis", {})
    if run.result is not None:
        verdict = run.result.verdict
    elif all(lp.get(k) == 0 for k in ("lost", "spurious", "misrouted")):
        # nothing to explain per LPI: the summary's counts are the verdict (no re-judging)
        verdict = oracles.Verdict(**{k: lp[k] for k in ("accepted", "delivered", "lost", "spurious", "misrouted",
                                                         "withdrawn", "in_flight") if k in lp})  # fmt: skip
        verdict.dropped = dict(lp.get("dropped") or verdict.dropped)
    else:
        verdict = oracles.judge(run.records(), run.until_ns)
    k = run.resolved.get("kernel") or {}
    variants = {f: v for f, v in k.items() if getattr(MAINLINE, f, v) != v}
    return Ctx(
        run=run, df=df, migs=migs, acc=acc, dl=dl, vr=A.vcpu_rows(df), masks=A.mask_rows(df),
        kvm=A.kvm_calls(df), steps=A.steps(df, migs), rows=rows, variants=variants, verdict=verdict,
        first_side=str(df["side"].iloc[0]) if len(df) else "vm0",
        end_ns=int(run.summary.get("sim_ns", run.until_ns)),
    )  # fmt: skip


# ========================================================================== narrative ====
@attrs.define
class Line:
    t: int
    pos: int
    text: str
    indent: int = 0


def explain(run: RunData) -> str:
    """The whole account as text (Markdown-flavoured plain text)."""
    cx = context(run)
    out: list[str] = []
    sc = run.scenario
    out.append(f"# What happened in {run.name}")
    out.append("")
    if sc.description:
        out += _wrap(" ".join(sc.description.split())) + [""]
    out += ["## Setup", ""]
    out += _setup(cx)
    out += ["", "## Timeline", ""]
    for ln in _timeline(cx):
        out += _wrap(f"[{ln.t / 1000:>12,.3f} µs] " + ln.text, indent=ln.indent, hang=17)
    out += ["", "## Outcomes", ""]
    out += _outcomes(cx)
    return "\n".join(out).rstrip() + "\n"


def _wrap(text: str, indent: int = 0, hang: int = 2) -> list[str]:
    pre = " " * (4 * indent)
    return textwrap.wrap(text, WIDTH, initial_indent=pre, subsequent_indent=pre + " " * hang,
                         break_on_hyphens=False, break_long_words=False) or [""]  # fmt: skip


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
    # -- guest commands written (batches of one time) --------------------------------------
    g = rows[rows["kind"] == "gcmd"]
    for t, grp in g.groupby("t", sort=True):
        lines.append(Line(int(t), int(grp["pos"].iloc[0]), "The guest wrote " + _gcmd_words(grp) + " into the command queue."))
    # -- commands the ITS executed (bursts) -------------------------------------------------
    c = rows[rows["kind"] == "cmd"]
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
            lines.append(Line(int(t), int(grp["pos"].iloc[0]), txt, 0))
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
    lines = _with_traffic(cx, lines)
    return _indent(cx, lines)


def _pos_at(cx: Ctx, t: int) -> int:
    return int(np.searchsorted(cx.df["t"].to_numpy(), t, side="left"))


def _gcmd_words(grp: pd.DataFrame) -> str:
    names = grp["info"].tolist()
    bits = []
    for name, sub in grp.groupby("info", sort=False):
        n = len(sub)
        if name == "MAPTI":
            devs = sorted(set(sub["device"]))
            bits.append(f"MAPTI ×{n} (device {ids(devs)}, events {ids(sub['event'])} → LPIs {ids(sub['lpi'])})"
                        if n > 1 else f"MAPTI (device {sub['device'].iloc[0]} event {sub['event'].iloc[0]} → "
                        f"LPI {sub['lpi'].iloc[0]}, collection {sub['icid'].iloc[0]})")  # fmt: skip
        elif name == "MAPC":
            bits.append(", ".join(f"MAPC (collection {r.icid} → vCPU {r.vcpu})" for r in sub.itertuples()))
        elif name in ("MAPD", "MAPD-"):
            bits.append(("MAPD V=0" if name == "MAPD-" else "MAPD") + f" (device {ids(sub['device'])})")
        elif name in ("MOVI", "DISCARD", "CLEAR", "INV", "INT"):
            bits.append(", ".join(f"{name} (device {r.device} event {r.event}" + (f" → collection {r.icid})" if name == "MOVI" else ")")
                                  for r in sub.itertuples()))  # fmt: skip
        elif name == "MOVALL":
            bits.append(", ".join(f"MOVALL (vCPU {r.icid} → vCPU {r.vcpu})" for r in sub.itertuples()))
        else:
            bits.append(f"{name} ×{n}" if n > 1 else name)
    return f"{plural(len(names), 'command')}: " + "; ".join(bits)


def _replayed(cx: Ctx, side: str, pos: int) -> bool:
    """Commands executed on a destination VM before it ever resumed."""
    for m in cx.migs:
        if m.destination == side and (m.resume_ns is None or m.resume_side != side or pos < _pos_of_resume(cx, m)):
            return True
    return False


def _pos_of_resume(cx: Ctx, m: A.MigInfo) -> int:
    def f() -> int:
        r = cx.rows[(cx.rows["kind"] == "migration") & (cx.rows["icid"] == m.index) & (cx.rows["info"] == "resume")]
        return int(r["pos"].iloc[0]) if len(r) else 1 << 62

    return _cached(cx, ("resume_pos", m.index), f)


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
    ptxt = f"{len(pend)} pending ({ids(pend)})" if pend else "none pending"
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
        for c in calls.itertuples():
            if c.call.startswith("SET_GITS_") and not c.errno:
                regs.append((c.t, c.pos, c.call[4:]))
                continue
            if regs:
                out.append(_regs_line(regs))
                regs = []
            name = CALL_DOC.get(c.call, c.call.replace("SET_", "write of ").replace("_GET", " read"))
            if not c.errno:
                txt = f"{name} returned 0"
                if attempt:
                    txt += f" (attempt {attempt + 1})"
                out.append(Line(c.t, c.pos, txt + ".", 2))
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
        return "the restored data or register value is inconsistent (SPEC §2/§3)."
    return "see SPEC §3 for this call's errors."


def _with_traffic(cx: Ctx, lines: list[Line]) -> list[Line]:
    """Insert one summary line per window between narrated lines for MSIs, drops, deliveries."""
    df = cx.df
    kind = df["kind"]
    sel = kind.isin(["raise", "accept", "drop", "deliver"]).to_numpy()
    if not sel.any() or not lines:
        return lines
    pos = A.positions(df)[sel]
    bounds = np.array([ln.pos for ln in lines], dtype=np.int64)
    win = np.searchsorted(bounds, pos, side="right")  # window w = after line w-1
    tr = pd.DataFrame({"win": win, "kind": A._info_str(kind[sel]).to_numpy(), "side": A._info_str(df.loc[sel, "side"]).to_numpy(),
                       "t": df.loc[sel, "t"].to_numpy(), "lpi": df.loc[sel, "lpi"].to_numpy(),
                       "vcpu": df.loc[sel, "vcpu"].to_numpy(), "pos": pos})  # fmt: skip
    drops = cx.acc[cx.acc["kind"] == "drop"].set_index("pos")["drop_reason"]
    tr["reason"] = tr["pos"].map(drops).astype(object).fillna("")
    extra: dict[int, list[Line]] = {}
    for w, grp in tr.groupby("win", sort=True):
        bits = []
        for side, g in grp.groupby("side", sort=True):
            kc = g["kind"].value_counts()
            part = []
            if kc.get("raise"):
                part.append(f"{kc['raise']:,} raised")
            if kc.get("accept"):
                part.append(f"{kc['accept']:,} accepted")
            dr = g.loc[g["kind"] == "drop", "reason"].value_counts()
            if len(dr):
                part.append("dropped " + ", ".join(f"{n:,} {r}" for r, n in dr.items()))
            dv = g[g["kind"] == "deliver"]
            if len(dv):
                per = dv.groupby("vcpu").size()
                part.append(f"{len(dv):,} delivered (" + ", ".join(f"vCPU {v}: {n:,}" for v, n in per.items()) + ")")
            bits.append(f"{side}: " + ", ".join(part))
        t0, t1 = int(grp["t"].iloc[0]), int(grp["t"].iloc[-1])
        span = f" until {T(t1)}" if t1 != t0 else ""
        txt = f"Interrupt traffic{span} — " + "; ".join(bits) + "."
        extra.setdefault(int(w), []).append(Line(t0, int(grp["pos"].iloc[0]), txt, 0))
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


# =========================================================================== outcomes ====
@attrs.define
class Fact:
    key: tuple[Any, ...]
    text: Callable[..., str]  # rendered from every member of a group (called with that list)


def _outcomes(cx: Ctx) -> list[str]:
    v = cx.verdict
    s = cx.run.summary.get("lpis", {})
    out = _wrap(f"Oracles (SPEC §6): {s.get('accepted', v.accepted):,} raises accepted, {v.delivered:,} "
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
                    bits.append(f"LPIs pending when the VM stopped ({T(m.stop_ns)}): {ids(pend['lpi'])}.")
                    got = pend[pend["d_pos"].notna()]
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
        out += _order_rules(cx, m, tuple(msc.destination.steps))
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


def _cached(cx: Ctx, key: tuple[Any, ...], fn: Callable[[], Any]) -> Any:
    if key not in cx.cache:
        cx.cache[key] = fn()
    return cx.cache[key]


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


def _order_rules(cx: Ctx, m: A.MigInfo, steps: tuple[str, ...]) -> list[Fact]:
    """Kernel rules that make a particular destination order matter (quoted only when the
    configured order shows the situation)."""
    out: list[Fact] = []
    pos = {s: i for i, s in enumerate(steps)}

    def before(a: str, b: str) -> bool:
        return a in pos and b in pos and pos[a] < pos[b]

    st = cx.steps[cx.steps["migration"] == m.index].set_index("step")

    def at(s: str) -> str:
        return T(st.loc[s, "start_ns"]) if s in st.index else "?"

    if before("its_restore_tables", "memory"):
        out.append(Fact(("rule", "tables-before-memory"), lambda ms: (
            f"RESTORE_TABLES (at {at('its_restore_tables')}) walked the tables before the `memory` step "
            f"(at {at('memory')}) loaded the final dirty pages, which hold the DTEs/ITEs/CTEs that "
            "ITS_SAVE_TABLES wrote during the downtime: it could only walk what pre-copy had already "
            "sent, not the entries saved at the stop.")))
    if before("gits_creadr", "gits_cbaser"):
        out.append(Fact(("rule", "creadr-before-cbaser"), lambda ms: (
            f"GITS_CREADR was restored (at {at('gits_creadr')}) before GITS_CBASER (at {at('gits_cbaser')}); "
            "the CBASER write reset CREADR to 0, so the queue read pointer went back to the start of the "
            "command history.")))
    baser_steps = [s for s in ("gits_baser", "gits_regs") if s in pos]
    if "gits_ctlr" in pos and baser_steps and all(pos["gits_ctlr"] < pos[s] for s in baser_steps):
        out.append(Fact(("rule", "ctlr-before-baser"), lambda ms: (
            f"GITS_CTLR (Enable) was restored at {at('gits_ctlr')}, before GITS_BASER0/1 were valid: KVM "
            "ignores an enable while CBASER, BASER0 or BASER1 is not valid, and GITS_CTLR is not written "
            "again, so the ITS stayed disabled.")))
    if before("its_restore_tables", "redistributors"):
        out.append(Fact(("rule", "restore-before-redist"), lambda ms: (
            "RESTORE_TABLES ran before the redistributors were restored (GICR_PROPBASER/PENDBASER at "
            "their reset value).")))
    return out


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
        facts += _order_rules(cx, mm, tuple(msc.destination.steps))
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
            for f in _order_rules(cx, m, tuple(msc.destination.steps)):
                if f.key[1] == "ctlr-before-baser":
                    out.append(f.text([]))
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
            msc = cx.run.scenario.migrations[m.index]
            for f in _order_rules(cx, m, tuple(msc.destination.steps)):
                if f.key[1] == "tables-before-memory":
                    out.append(f.text([]))
        else:
            out.append("The ITS had no mapping for that (DeviceID, EventID), or its collection had no target.")
    elif reason == "lpis_disabled":
        out.append("The target vCPU had GICR_CTLR.EnableLPIs clear.")
    return out
