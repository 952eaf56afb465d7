"""Cause rules: each outcome class of a run explained by a general rule over the mechanisms the
trace shows, citing the rows it rests on.

One small function per rule, ``rule(ev, outcome) -> Cause | None``. The rules mirror kernel
behaviour (``arch/arm64/kvm/vgic/vgic-its.c`` and ``vgic-v3.c`` of the modelled release):

* ``replayed_commands`` — a CBASER write resets CREADR (``vgic_mmio_write_its_cbaser``), and
  enabling the ITS runs everything between CREADR and CWRITER (``vgic_its_process_commands``):
  commands already run execute a second time.
* ``pending_bit_reread`` — a pending-table bit is latched by ``vgic_v3_lpi_sync_pending_status``
  (LPI creation: MAPTI, RESTORE_TABLES) and by ``its_sync_lpi_pending_table`` (EnableLPIs),
  cleared in RAM only when it is consumed there; a bit read again after it was consumed
  (cleared, or delivered while its copy in RAM stayed set) gives the wrong pending state.
* ``stale_translation`` — an MSI translated (``vgic_its_resolve_lpi`` / the translation cache)
  to an LPI the guest's commands no longer map it to.
* ``target_changed`` — an LPI's target changed by MOVI/MOVALL/MAPC while it was pending, or a
  target only the LPI record held (MOVALL updates records, not ITEs or CTEs) re-derived from
  the tables by a restore.
* ``ran_before_state`` — a call that reads state (guest memory, redistributor registers,
  GITS_BASER/CBASER) ran before the call that writes it on the same VM.
* ``ebusy_policy`` — a call that failed with -EBUSY (``lock_all_vcpus``), who held the lock
  and what the ``on_ebusy`` policy did next.
* ``msi_refused`` — MSIs dropped because the ITS was disabled / not restored / LPIs disabled
  / unmapped, and when that changed.
* ``pending_after_save`` — an LPI accepted after SAVE_PENDING_TABLES wrote the pending
  tables: its pending state lived only in an LPI record, which is not migrated.

An outcome no rule explains gets :data:`NO_EXPLANATION`; nothing here recognises a scenario,
a step order or a file name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from gicsim.judge import trace as TR
from gicsim.judge.oracles import GuestIntent
from gicsim.present.explain.evidence import Cause, Evidence
from gicsim.present.explain.words import T, ids, ids_short, plural

NO_EXPLANATION = "no explanation found"
Rule = Callable[[Evidence, str], "Cause | None"]
_READS_PENDING_CMD = ("MAPTI", "MAPI")


def _cause(ev: Evidence, outcome: str, rule: str, text: str, rows: list[int], head: str) -> Cause:
    rows_t = tuple(sorted(dict.fromkeys(int(r) for r in rows)))
    return Cause(outcome, rule, text, rows_t, tuple(ev.render(r) for r in rows_t), head[:1].upper() + head[1:] + ".")


def _lpis(ev: Evidence, outcome: str) -> set[int]:
    v = ev.verdict
    if outcome == "lost":
        return {int(x[1]) for x in v.lost_lpis}
    if outcome == "spurious":
        return {int(x[1]) for x in v.spurious_lpis}
    if outcome == "misrouted":
        return {int(x[1]) for x in v.misrouted_lpis}
    return set()


def _cmd_name(info: str) -> str:
    return info.split(":")[0]


# ============================================================== replayed commands ====
def signature(r: tuple[Any, ...]) -> tuple[Any, ...]:
    """A command and the arguments it uses, the same for the guest's write (``gcmd``) and the
    ITS's execution (``cmd``; MOVALL's vCPUs ride in swapped slots there)."""
    name = _cmd_name(r[TR.INFO]).rstrip("-")
    fields = TR.CMD_FIELDS.get(name, ())
    vcpu, icid = r[TR.VCPU], r[TR.ICID]
    if name == "MOVALL" and r[TR.KIND] == "cmd":
        vcpu, icid = icid, vcpu
    return (name, r[TR.DEVICE] if "device" in fields else -1, r[TR.EVENT] if "event" in fields else -1,
            r[TR.LPI] if "lpi" in fields else -1, icid if ("icid" in fields or name == "MOVALL") else -1,
            vcpu if ("cmd_vcpu" in fields or name == "MOVALL") else -1)  # fmt: skip


def replays(ev: Evidence) -> list[tuple[int, tuple[Any, ...]]]:
    """Executed commands that re-run an earlier execution of the same command and arguments
    (on any VM) with no guest write of it in between: the queue ran them a second time."""
    if "replays" in ev.cache:
        return ev.cache["replays"]
    ran: set[tuple[Any, ...]] = set()  # executed since the guest last wrote it
    out = []
    # the trace records a guest's command after the ITS ran it (same time): writes first
    for i, r in sorted(ev.ctl, key=lambda x: (x[1][TR.T], x[1][TR.KIND] != "gcmd", x[0])):
        if r[TR.KIND] == "gcmd":
            ran.discard(signature(r))
        elif r[TR.KIND] == "cmd" and ":" not in r[TR.INFO]:
            s = signature(r)
            if s in ran:
                out.append((i, r))
            ran.add(s)
    ev.cache["replays"] = out
    return out


def replayed_commands(ev: Evidence, outcome: str) -> Cause | None:
    rep = replays(ev)
    if not rep:
        return None
    want = _lpis(ev, outcome)
    if outcome in ("lost", "spurious", "misrouted"):
        devs = {r[TR.DEVICE] for _, r in ev.of("gcmd") if r[TR.LPI] in want}
        rep = [(i, r) for i, r in rep if r[TR.LPI] in want or (r[TR.DEVICE] in devs and _cmd_name(r[TR.INFO]) in ("MAPD", "INT"))]
        if not rep:
            return None
    elif outcome != "state_mismatch":
        return None
    side = rep[0][1][TR.SIDE]
    names = Counter(_cmd_name(r[TR.INFO]) for _, r in rep)
    what = ", ".join(f"{n} ×{c}" if c > 1 else n for n, c in names.items())
    text = (f"The ITS of {side} ran {plural(len(rep), 'command')} the guest wrote once a second time ({what}, "
            f"from {T(rep[0][1][TR.T])})")  # fmt: skip
    rows = [rep[0][0], rep[-1][0]]
    # why the read pointer went back: a CBASER write after CREADR was set resets CREADR
    creadr = [i for i, _ in ev.calls("SET_GITS_CREADR", side, ok=True) if i < rep[0][0]]
    cbaser = [i for i, _ in ev.calls("SET_GITS_CBASER", side, ok=True) if i < rep[0][0]]
    if creadr and cbaser and cbaser[-1] > creadr[-1]:
        text += (f": GITS_CBASER was written at {T(ev.t[cbaser[-1]])}, after GITS_CREADR at {T(ev.t[creadr[-1]])}, and a "
                 "CBASER write resets CREADR to 0, so the read pointer went back under commands already run")  # fmt: skip
        rows += [creadr[-1], cbaser[-1]]
    else:
        text += ": the command queue's read pointer was behind commands already run"
    en = sorted(i for i, _ in ev.calls("SET_GITS_CTLR", side, ok=True) + ev.calls("SET_GITS_CWRITER", side, ok=True) if i < rep[0][0])
    if en:
        text += f"; the write at {T(ev.t[en[-1]])} made them runnable"
        rows.append(en[-1])
    if any(_cmd_name(r[TR.INFO]) == "MAPD" for _, r in rep):
        text += ". A re-run MAPD frees the device's LPIs with their pending state"
    if any(_cmd_name(r[TR.INFO]) in _READS_PENDING_CMD for _, r in rep):
        text += "; a re-run MAPTI re-creates each LPI from its bit in the pending table"
    if any(_cmd_name(r[TR.INFO]) == "INT" for _, r in rep):
        text += "; a re-run INT makes its LPI pending again"
    head = f"the ITS of {side} re-ran {plural(len(rep), 'command')} the guest wrote once ({what})" + (
        "; a GITS_CBASER write after GITS_CREADR had reset the read pointer" if len(rows) > 3 else "")
    return _cause(ev, outcome, "replayed_commands", text + ".", rows, head)


# ============================================================ pending bit re-read ====
def _pending_reads(ev: Evidence, lpi: int) -> list[tuple[int, str, str]]:
    """(row, side, what) of every successful read of ``lpi``'s pending-table bit."""
    out = [(i, r[TR.SIDE], "RESTORE_TABLES re-created it") for i, r in ev.calls("ITS_RESTORE_TABLES", ok=True)]
    out += [(i, r[TR.SIDE], f"{_cmd_name(r[TR.INFO])} re-created it") for i, r in ev.of("cmd")
            if r[TR.LPI] == lpi and _cmd_name(r[TR.INFO]) in _READS_PENDING_CMD and ":" not in r[TR.INFO]]  # fmt: skip
    if ev.variants.get("pending_sync_on_ctlr"):
        out += [(i, r[TR.SIDE], "the GITS_CTLR write re-synced it (pending_sync_on_ctlr)")
                for i, r in ev.calls("SET_GITS_CTLR", ok=True)]  # fmt: skip
    return sorted(out)


def _pending_at(ev: Evidence, lpi: int, row: int) -> bool:
    """Was an accept of ``lpi`` before ``row`` still undelivered at ``row``?"""
    acc = ev.rows_of("accept", lpi)
    dl = ev.rows_of("deliver", lpi)
    acc, dl = acc[acc < row], dl[dl < row]
    return bool(len(acc)) and (not len(dl) or dl[-1] < acc[-1])


def pending_bit_reread(ev: Evidence, outcome: str) -> Cause | None:
    if outcome not in ("lost", "spurious", "state_mismatch"):
        return None
    saves = [i for i, _ in ev.calls("SAVE_PENDING_TABLES", ok=True)]
    clears = ev.variants.get("pending_sync_clears_ram", True)
    if outcome == "spurious":
        for t, lpi, _vc in ev.verdict.spurious_lpis:
            d = [i for i in ev.rows_of("deliver", int(lpi)) if ev.t[i] == t]
            if not d:
                continue
            d0 = int(d[0])
            reads = [x for x in _pending_reads(ev, int(lpi)) if x[0] < d0 and x[1] == ev.side[d0]]
            if not reads:
                continue
            rd = reads[-1]
            ws = [s for s in saves if s < rd[0] and _pending_at(ev, int(lpi), s)]
            if not ws:
                continue
            took = [int(x) for x in ev.rows_of("deliver", int(lpi)) if ws[-1] < x < rd[0]]
            if not took:
                continue
            text = (f"SAVE_PENDING_TABLES at {T(ev.t[ws[-1]])} wrote LPI {lpi}'s pending bit into guest RAM while it was "
                    f"pending; vCPU {ev.df['vcpu'].iat[took[0]]} then took the LPI at {T(ev.t[took[0]])}, which consumes "
                    "the LPI record's latch but leaves the bit in RAM set (KVM clears a bit only when it latches it); "
                    f"at {T(ev.t[rd[0]])} {rd[2]} and latched that stale bit, so the LPI was delivered again at "
                    f"{T(ev.t[d0])} with no raise")  # fmt: skip
            head = (f"LPI {lpi}'s pending bit, saved to RAM and then consumed by a delivery, was latched again "
                    f"({rd[2].replace(' re-created it', '')} at {T(ev.t[rd[0]])}): a stale bit")  # fmt: skip
            return _cause(ev, outcome, "pending_bit_reread", text + ".", [ws[-1], took[0], rd[0], d0], head)
        return None
    if not clears:
        return None
    chains: dict[tuple[Any, ...], list[tuple[int, int, tuple[int, str, str]]]] = {}  # -> (LPI, accept, read again)
    for t, lpi in ev.verdict.lost_lpis:
        acc = [int(i) for i in ev.rows_of("accept", int(lpi)) if ev.t[i] == t]
        a0 = acc[0] if acc else int(np.searchsorted(ev.t, t))
        ws = [s for s in saves if s > a0]
        if not ws:
            continue
        reads = [x for x in _pending_reads(ev, int(lpi)) if x[0] > ws[0]]
        more = [x for x in reads[1:] if x[1] == reads[0][1]]
        if more:  # one chain per (save, first read, how it was read again)
            chains.setdefault((ws[0], reads[0], more[0][2]), []).append((int(lpi), a0, more[0]))
    if not chains:
        return None
    (w, first, _how), found = max(chains.items(), key=lambda kv: len(kv[1]))
    lpis, accs = [x[0] for x in found], [x[1] for x in found]
    agains = sorted({x[2] for x in found})
    again = agains[0]
    one = len(set(lpis)) == 1
    when = (f"between {T(ev.t[again[0]])} and {T(ev.t[agains[-1][0]])}" if len(agains) > 1 else f"at {T(ev.t[again[0]])}")
    text = (f"{'LPI' if one else 'LPIs'} {ids_short(lpis)} {'was' if one else 'were'} pending when SAVE_PENDING_TABLES "
            f"wrote {'its bit' if one else 'their bits'} at {T(ev.t[w])}; on {first[1]} "
            f"{first[2] if one else first[2].replace(' it', ' them')} at {T(ev.t[first[0]])}, latching the bit and "
            f"clearing it in RAM (consumed); {when} {again[2] if one else again[2].replace(' it', ' them')} from the "
            f"cleared bit, so {'the LPI was' if one else 'they were'} no longer pending")  # fmt: skip
    head = (f"the pending {'bit' if one else 'bits'} of {'LPI' if one else 'LPIs'} {ids_short(lpis, 4)}, consumed by "
            f"{first[2].split(' ')[0]}, {'was' if one else 'were'} read again ({again[2].split(' re-')[0]}) and found clear")  # fmt: skip
    return _cause(ev, outcome, "pending_bit_reread", text + ".", [accs[0], w, first[0], again[0], agains[-1][0]], head)


# ============================================================= stale translation ====
def stale_hits(ev: Evidence) -> list[tuple[int, int, int, tuple[Any, ...]]]:
    """(accept row, LPI hit, LPI the guest maps it to (-1: none), last guest command for the pair)."""
    if "stale" in ev.cache:
        return ev.cache["stale"]
    intent = GuestIntent()
    last: dict[tuple[int, int], tuple[int, tuple[Any, ...]]] = {}
    sel = np.flatnonzero(np.isin(ev.kind, ("gcmd", "accept")))
    out = []
    df = ev.df
    cols = [df[c].to_numpy()[sel] for c in ("vcpu", "lpi", "device", "event", "icid")]
    info = df["info"].astype(object).to_numpy()[sel]
    for k, i in enumerate(sel):
        vcpu, lpi, dev, evn, icid = (int(c[k]) for c in cols)
        name = str(info[k])
        r = (int(ev.t[i]), ev.kind[i], ev.side[i], vcpu, lpi, dev, evn, icid, name)
        if ev.kind[i] == "gcmd":
            intent.apply(r)
            if evn >= 0 or name.startswith("MAPD"):
                for key in [(dev, evn)] if evn >= 0 else [x for x in last if x[0] == dev]:
                    last[key] = (int(i), r)
        else:
            want = intent.lpi_of(dev, evn)
            if lpi >= 0 and want != lpi:
                out.append((int(i), lpi, want, last.get((dev, evn), (-1, ()))))
    ev.cache["stale"] = out
    return out


def stale_translation(ev: Evidence, outcome: str) -> Cause | None:
    if outcome not in ("lost", "spurious", "state_mismatch"):
        return None
    hits = stale_hits(ev)
    want = _lpis(ev, outcome)
    if outcome == "lost":
        hits = [h for h in hits if h[2] in want]
    elif outcome == "spurious":
        hits = [h for h in hits if h[1] in want]
    if not hits:
        return None
    i, got, meant, (gi, gr) = hits[0]
    r = ev.rec(i)
    text = (f"The ITS of {r[TR.SIDE]} translated device {r[TR.DEVICE]} event {r[TR.EVENT]} to LPI {got} at {T(r[TR.T])} "
            + (f"although the guest's commands map it to LPI {meant}" if meant >= 0 else "although the guest's commands no longer map it")
            + (f" (its last command for the pair: {gr[TR.INFO]} at {T(gr[TR.T])})" if gi >= 0 else "")
            + f": a stale translation ({plural(len(hits), 'MSI')} hit an LPI the ITE no longer maps, "
            f"LPIs {ids(h[1] for h in hits)})")  # fmt: skip
    if ev.variants.get("translation_cache"):
        text += f"; kernel variant `translation_cache: {ev.variants['translation_cache']}` keeps cached translations after the commands that invalidate them"
    head = (f"{plural(len(hits), 'MSI')} of device {r[TR.DEVICE]} event {r[TR.EVENT]} hit LPI {got} through a stale "
            "translation" + (f"; the guest maps the pair to LPI {meant}" if meant >= 0 else "; the guest no longer maps the pair"))
    rows = [i] + ([gi] if gi >= 0 else []) + ([hits[-1][0]] if len(hits) > 1 else [])
    return _cause(ev, outcome, "stale_translation", text + ".", rows, head)


# ================================================================ target changed ====
def target_changed(ev: Evidence, outcome: str) -> Cause | None:
    if outcome not in ("misrouted", "state_mismatch"):
        return None
    mis = ev.verdict.misrouted_lpis
    if outcome == "state_mismatch" and not mis:
        return None
    t, lpi, got, want = mis[0]
    d = [int(i) for i in ev.rows_of("deliver", int(lpi)) if ev.t[i] == t]
    d0 = d[0] if d else int(np.searchsorted(ev.t, t))
    # the guest commands that decide the LPI's target, before the delivery
    tc = [(i, r) for i, r in ev.of("gcmd") if i < d0 and (
        (r[TR.INFO] == "MOVALL") or (r[TR.INFO] in ("MOVI", "MAPTI") and r[TR.LPI] in (lpi, -1)) or r[TR.INFO] == "MAPC")]
    mv = [(i, r) for i, r in tc if r[TR.INFO] == "MOVALL" and r[TR.VCPU] == want]
    if mv:
        gi, gr = mv[-1]
        rest = [i for i, r in ev.calls("ITS_RESTORE_TABLES", ev.side[d0], ok=True) if gi < i < d0]
        if rest:
            text = (f"MOVALL at {T(gr[TR.T])} moved the LPIs of vCPU {gr[TR.ICID]} to vCPU {gr[TR.VCPU]} in their LPI "
                    "records only (MOVALL changes neither the ITEs nor the collection table); RESTORE_TABLES at "
                    f"{T(ev.t[rest[0]])} re-created LPI {lpi} from the tables, whose collection still targets vCPU {got}, "
                    f"so it was delivered on vCPU {got} ({plural(len(mis), 'misrouted delivery', 'misrouted deliveries')})")  # fmt: skip
            head = (f"MOVALL's new target (vCPU {want}) lived only in the LPI records; RESTORE_TABLES re-derived vCPU "
                    f"{got} from the collection table")  # fmt: skip
            return _cause(ev, outcome, "target_changed", text + ".", [gi, rest[0], d0], head)
    if outcome != "misrouted":
        return None
    for gi, gr in reversed(tc):
        if gr[TR.INFO] in ("MOVI", "MOVALL", "MAPC") and _pending_at(ev, int(lpi), gi):
            text = (f"{gr[TR.INFO]} at {T(gr[TR.T])} changed LPI {lpi}'s target to vCPU {want} while it was pending: "
                    f"the pending LPI was still queued on vCPU {got}, which took it at {T(ev.t[d0])}")  # fmt: skip
            head = f"{gr[TR.INFO]} moved LPI {lpi} to vCPU {want} while it was pending on vCPU {got}"
            return _cause(ev, outcome, "target_changed", text + ".", [gi, d0], head)
        cmd = [i for i, r in ev.of("cmd") if i > gi and signature(r) == signature(gr)]
        if gr[TR.INFO] in ("MOVI", "MOVALL", "MAPC") and (not cmd or cmd[0] > d0):
            text = (f"The guest wrote {gr[TR.INFO]} at {T(gr[TR.T])} to move LPI {lpi} to vCPU {want}, but the ITS "
                    + (f"ran it only at {T(ev.t[cmd[0]])}" if cmd else "never ran it")
                    + f", after the delivery on vCPU {got} at {T(ev.t[d0])}")  # fmt: skip
            head = f"the ITS had not run the guest's {gr[TR.INFO]} (to vCPU {want}) when LPI {lpi} was delivered on vCPU {got}"
            return _cause(ev, outcome, "target_changed", text + ".", [gi, d0] + cmd[:1], head)
    return None


# ===================================================== a step before its state ====
#: reader call -> [(what it reads, writer calls (prefix ``*``) or ``step:<name>`` end rows)]
READS = {
    "ITS_RESTORE_TABLES": [("the device, ITT and collection tables in guest memory", ("step:memory",)),
                           ("the redistributors' GICR_PROPBASER/PENDBASER", ("REDIST_REGS_SET",)),
                           ("GITS_BASER0/1 (where the tables are)", ("SET_GITS_BASER*",))],
    "SET_GITS_CTLR": [("GITS_CBASER (an enable is ignored while it is invalid)", ("SET_GITS_CBASER",)),
                      ("GITS_BASER0/1 (an enable is ignored while they are invalid)", ("SET_GITS_BASER*",))],
}  # fmt: skip


def _writes(ev: Evidence, writer: str, side: str) -> list[int]:
    if writer.startswith("step:"):
        return [i for i, r in ev.of("step", f"{writer[5:]}:end", side)]
    return [i for i, _ in ev.calls(writer, side)]


def early_reads(ev: Evidence) -> list[tuple[int, str, int]]:
    """(reader row, what it read, the later writer row) on the same VM."""
    if "early" in ev.cache:
        return ev.cache["early"]
    out = []
    for reader, needs in READS.items():
        for i, r in ev.calls(reader):
            side = r[TR.SIDE]
            for what, writers in needs:
                ws = sorted(w for x in writers for w in _writes(ev, x, side))
                if ws and ws[0] > i:
                    out.append((i, what, ws[0]))
                elif not ws and ":" in r[TR.INFO]:
                    out.append((i, what, -1))  # it failed, and nothing ever wrote that state
    ev.cache["early"] = sorted(out)
    return ev.cache["early"]


def ran_before_state(ev: Evidence, outcome: str) -> Cause | None:
    early = early_reads(ev)
    if not early:
        return None
    i, what, w = early[0]
    r = ev.rec(i)
    call, _, err = r[TR.INFO].partition(":")
    text = f"{call} on {r[TR.SIDE]} at {T(r[TR.T])}" + (f" (returned -{err})" if err else "") + f" read {what} "
    if w >= 0:
        wr = ev.rec(w)
        wname = wr[TR.INFO].partition(":")[0] if wr[TR.KIND] == "kvm" else f"the `{wr[TR.INFO].split(':')[0]}` step"
        text += f"before {wname} wrote it at {T(wr[TR.T])}"
    else:
        text += f"before anything wrote it on {r[TR.SIDE]}"
    if call == "ITS_RESTORE_TABLES" and not err and "memory" in what:
        text += ": it could only walk what pre-copy had sent, not the entries saved at the stop"
    elif call == "SET_GITS_CTLR":
        text += ", and GITS_CTLR was not written again, so the ITS stayed disabled" if not [
            j for j, _ in ev.calls("SET_GITS_CTLR", r[TR.SIDE], ok=True) if j > w] else ""  # fmt: skip
    elif err:
        text += ": the addresses it used still held their reset value"
    head = (f"{call} on {r[TR.SIDE]}" + (f" (-{err})" if err else "")
            + (f" ran before {wname}, which writes {what.split(' (')[0]} that it reads" if w >= 0
               else f" read {what.split(' (')[0]} before anything on {r[TR.SIDE]} had set that state"))  # fmt: skip
    return _cause(ev, outcome, "ran_before_state", text + ".", [i] + ([w] if w >= 0 else []), head)


# ======================================================================== -EBUSY ====
def _inside(ev: Evidence, side: str, row: int) -> list[int]:
    """vCPUs inside KVM_RUN on ``side`` at ``row``: last vcpu row before it ``enter``, or none
    before and an ``exit`` after."""
    state: dict[int, str] = {}
    later: set[int] = set()
    for i, r in ev.of("vcpu", side=side):
        if i < row:
            state[r[TR.VCPU]] = r[TR.INFO]
        elif r[TR.INFO] == "exit":
            later.add(r[TR.VCPU])
    return sorted({v for v, s in state.items() if s == "enter"} | {v for v in later if v not in state})


def ebusy_policy(ev: Evidence, outcome: str) -> Cause | None:
    busy = [(i, r) for i, r in ev.calls() if r[TR.INFO].endswith(":EBUSY")]
    if not busy or (outcome.startswith("dropped:") and outcome != "dropped:its_disabled"):
        return None
    prefer = {"lost": "SAVE_PENDING_TABLES", "dropped:its_disabled": "ITS_REGS_GET"}.get(outcome)
    i, r = next(((j, x) for j, x in busy if x[TR.INFO].startswith(f"{prefer}:")), busy[0])
    call, side = r[TR.INFO].split(":")[0], r[TR.SIDE]
    same = [(j, x) for j, x in busy if x[TR.INFO] == r[TR.INFO] and x[TR.SIDE] == side]
    inside = _inside(ev, side, i)
    text = (f"{call} on {side} returned -EBUSY at {T(r[TR.T])}" + (f" ×{len(same)}" if len(same) > 1 else "")
            + (f": vCPU {ids(inside)} still inside KVM_RUN, so KVM could not take every vCPU's lock" if inside else ""))  # fmt: skip
    rows = [i, same[-1][0]]
    okc = [j for j, _ in ev.calls(call, side, ok=True) if j > i]
    ab = [j for j, x in ev.of("migration", side=side) if x[TR.INFO].startswith("aborted:EBUSY") and j > i]
    if okc:
        text += f"; on_ebusy retry: the VMM tried again and the call returned 0 at {T(ev.t[okc[0]])} (attempt {len(same) + 1})"
        rows.append(okc[0])
        if outcome in ("lost", "state_mismatch", "dropped:its_disabled", "spurious", "misrouted"):
            return None  # a retry that succeeded explains nothing lost
    elif ab:
        text += f"; on_ebusy abort: the migration was aborted at {T(ev.t[ab[0]])} and the source resumed"
        rows.append(ab[0])
    elif resumed := [j for j, x in ev.of("migration", side=side) if x[TR.INFO] == "resume" and j < i]:
        text += (f"; the call came after `resume` ({T(ev.t[resumed[0]])}): the destination was already "
                 "running, so nothing could be aborted and the state that call should have restored never was")
        rows.append(resumed[0])
    else:
        text += "; on_ebusy continue: the VMM went on without the state that call should have saved"
        if call == "SAVE_PENDING_TABLES":
            text += " (no LPI's pending state reached guest RAM)"
        elif call == "ITS_REGS_GET":
            text += " (the destination got no GITS_* values, so its ITS was never enabled)"
    if outcome in ("aborted",) and not ab:
        return None
    head = (f"{call} on {side} got -EBUSY" + (f" ×{len(same)}" if len(same) > 1 else "")
            + (f" (vCPU {ids(inside)} in KVM_RUN)" if inside else "") + "; on_ebusy "
            + ("retry succeeded" if okc else "abort aborted the migration" if ab else "continue went on without that state"))  # fmt: skip
    return _cause(ev, outcome, "ebusy_policy", text + ".", rows, head)


# ================================================================== MSIs refused ====
def msi_refused(ev: Evidence, outcome: str) -> Cause | None:
    if not outcome.startswith("dropped:"):
        return None
    reason = outcome.split(":", 1)[1]
    # the oracles count a destination's its_disabled/no_its refusals before it resumed as
    # not_restored (gicsim.judge.oracles.judge); the trace may carry either name
    dests = {f"vm{r[TR.ICID] + 1}" for _, r in ev.of("migration", "start")}
    resumed = {str(r[TR.SIDE]): i for i, r in reversed(ev.of("migration", "resume"))}

    def counted_as(i: int) -> str:
        name = str(ev.df["info"].iat[i])
        early = ev.side[i] in dests and i < resumed.get(str(ev.side[i]), 1 << 62)
        return "not_restored" if name in ("its_disabled", "no_its") and early else name

    dr = [int(i) for i in np.flatnonzero(ev.kind == "drop") if counted_as(int(i)) == reason]
    if not dr:
        return None
    parts = []
    for side in dict.fromkeys(ev.side[i] for i in dr):
        mine = [i for i in dr if ev.side[i] == side]
        c = _refused_on(ev, outcome, reason, str(side), mine)
        if c is not None:
            parts.append((len(mine), c))
    if not parts:
        return None
    parts = sorted(parts, key=lambda x: -x[0])
    if len(parts) == 1:
        return parts[0][1]
    return _joined(outcome, [c for _, c in parts])


def _joined(outcome: str, parts: list[Cause]) -> Cause:
    if len(parts) == 1:
        return parts[0]
    return Cause(outcome, "msi_refused", " ".join(c.text for c in parts), tuple(sorted({r for c in parts for r in c.rows})),
                 tuple(x for _, x in sorted({(r, x) for c in parts for r, x in zip(c.rows, c.cited, strict=True)})),
                 "; ".join(c.head.rstrip(".") for c in parts) + ".")  # fmt: skip


def _refused_on(ev: Evidence, outcome: str, reason: str, side: str, dr: list[int]) -> Cause | None:
    """The refusals of one VM."""
    span = f"{T(ev.t[dr[0]])}" + (f" to {T(ev.t[dr[-1]])}" if ev.t[dr[-1]] != ev.t[dr[0]] else "")
    rows = [dr[0], dr[-1]]
    if reason in ("its_disabled", "not_restored", "no_its"):
        en = [j for j, _ in ev.calls("SET_GITS_CTLR", side, ok=True) if j > dr[0]]
        res = [j for j, x in ev.of("migration", "resume", side) if j > dr[0]]
        text = f"{plural(len(dr), 'MSI')} reached the ITS of {side} ({span}) while it was disabled"
        if reason == "not_restored":
            text += ", before the VM had been restored there"
        if en:
            text += f"; GITS_CTLR was written at {T(ev.t[en[0]])}"
            rows.append(en[0])
        if res:
            text += f"; the VM resumed there at {T(ev.t[res[0]])}"
            rows.append(res[0])
        before = [j for j, _ in ev.calls("SET_GITS_CTLR", side, ok=True) if j < dr[0]]
        if not en and not res:
            text += (f"; GITS_CTLR had been written at {T(ev.t[before[-1]])} and yet the ITS stayed disabled, up to the "
                     "end of the run" if before else "; it was not enabled again up to the end of the run")  # fmt: skip
            rows += before[-1:]
        if reason == "not_restored" and not ev.of("quiesce"):
            text += "; no device was quiesced, so they kept sending while the VM was being migrated"
        head = (f"{plural(len(dr), 'MSI')} reached the ITS of {side} while it was disabled"
                + (f" (GITS_CTLR written at {T(ev.t[en[0]])})" if en else
                   f" (GITS_CTLR written at {T(ev.t[before[-1]])}, ignored)" if before and not res else
                   " (never enabled again)" if not res else ""))  # fmt: skip
        return _cause(ev, outcome, "msi_refused", text + ".", rows, head)
    if reason == "lpis_disabled":
        rd = [j for j, _ in ev.calls("REDIST_REGS_SET", side, ok=True) if j > dr[0]]
        text = f"{plural(len(dr), 'MSI')} targeted a vCPU of {side} with GICR_CTLR.EnableLPIs clear ({span})"
        if rd:
            text += f"; the redistributors were written at {T(ev.t[rd[0]])}"
            rows.append(rd[0])
        head = f"{plural(len(dr), 'MSI')} targeted a vCPU of {side} with LPIs disabled"
        return _cause(ev, outcome, "msi_refused", text + ".", rows, head)
    if reason == "unmapped":
        intent = GuestIntent()
        gc = ev.of("gcmd")
        k = 0
        mapped = 0
        for i in dr:
            while k < len(gc) and gc[k][0] < i:
                intent.apply(gc[k][1])
                k += 1
            mapped += intent.lpi_of(int(ev.df["device"].iat[i]), int(ev.df["event"].iat[i])) >= 0
        if mapped:
            text = (f"{plural(mapped, 'MSI')}" + (f" of {plural(len(dr), 'drop')}" if mapped < len(dr) else "")
                    + f" on {side} ({span}) were for pairs the guest "
                    f"had mapped, but the ITS of {side} held no ITE for them")  # fmt: skip
            early = [e for e in early_reads(ev) if ev.side[e[0]] == side and e[0] < dr[-1]]
            if early:
                e = early[0]
                text += f": its tables were restored at {T(ev.t[e[0]])}, before {e[1]} held them"
                rows += [x for x in e[::2] if x >= 0]
        else:
            text = f"{plural(len(dr), 'MSI')} on {side} ({span}) were for (DeviceID, EventID) pairs the guest had not mapped (yet)"
        head = (f"the ITS of {side} held no ITE for {plural(mapped, 'MSI')} the guest had mapped" if mapped
                else f"{plural(len(dr), 'MSI')} on {side} were for pairs the guest had not mapped (yet)")
        return _cause(ev, outcome, "msi_refused", text + ".", rows, head)
    return None


# ============================================================ after the save ====
def pending_after_save(ev: Evidence, outcome: str) -> Cause | None:
    if outcome not in ("lost", "state_mismatch"):
        return None
    saves = ev.calls("SAVE_PENDING_TABLES", ok=True)
    if not saves:
        return None
    late = []
    for t, lpi in ev.verdict.lost_lpis:
        acc = [int(i) for i in ev.rows_of("accept", int(lpi)) if ev.t[i] == t]
        for i in acc:
            prior = [s for s, r in saves if s < i and r[TR.SIDE] == ev.side[i]]
            if prior:
                later = [s for s, r in saves if s > i and r[TR.SIDE] == ev.side[i]]
                if not later:
                    late.append((i, prior[-1], int(lpi)))
    if not late:
        return None
    i, s, _ = late[0]
    side = ev.side[i]
    text = (f"{plural(len(late), 'raise')} of LPIs {ids(x[2] for x in late)} reached the ITS of {side} after "
            f"SAVE_PENDING_TABLES had written the pending tables at {T(ev.t[s])} (first at {T(ev.t[i])}): their pending "
            "state lived only in LPI records, which are not migrated")  # fmt: skip
    if not ev.of("quiesce"):
        text += "; no device was quiesced, so they kept sending while the VM was stopped"
    head = (f"{plural(len(late), 'raise')} reached {side} after SAVE_PENDING_TABLES had written the pending tables: "
            "their pending state was not migrated")  # fmt: skip
    return _cause(ev, outcome, "pending_after_save", text + ".", [s, i, late[-1][0]], head)


def no_pending_save(ev: Evidence, outcome: str) -> Cause | None:
    """Lost raises pending when a migration stopped, with no successful SAVE_PENDING_TABLES."""
    if outcome != "lost":
        return None
    stops = ev.of("migration", "start")
    if not stops or ev.calls("SAVE_PENDING_TABLES", ok=True):
        return None
    failed = ev.calls("SAVE_PENDING_TABLES", ok=False)
    if not failed:
        return None
    return ebusy_policy(ev, outcome) if failed[0][1][TR.INFO].endswith("EBUSY") else None


# ==================================================================== the driver ====
RULES: dict[str, tuple[Rule, ...]] = {
    "lost": (replayed_commands, pending_bit_reread, stale_translation, pending_after_save, no_pending_save,
             ran_before_state),
    "spurious": (pending_bit_reread, stale_translation, replayed_commands),
    "misrouted": (target_changed, replayed_commands),
    "state_mismatch": (replayed_commands, pending_bit_reread, target_changed, ran_before_state, ebusy_policy,
                       pending_after_save, stale_translation),
    "errors": (ran_before_state, ebusy_policy),
    "aborted": (ebusy_policy,),
    "failed": (ran_before_state,),
    "dropped": (msi_refused, ran_before_state, ebusy_policy),
}  # fmt: skip


def outcome_classes(ev: Evidence) -> list[tuple[str, int]]:
    """The outcome classes present, with their counts, in the order the verdict block lists them."""
    v = ev.verdict
    out = [(k, int(getattr(v, k))) for k in ("lost", "spurious", "misrouted") if getattr(v, k)]
    out += [(f"dropped:{r}", int(n)) for r, n in v.dropped.items() if n]
    errs = [r for _, r in ev.calls(ok=False)]
    if errs:
        out.append(("errors", len(errs)))
    if ev.state_match is False:
        out.append(("state_mismatch", 1))
    for kind in ("aborted", "failed"):
        n = sum(1 for _, r in ev.of("migration") if r[TR.INFO].startswith(kind + ":"))
        if n:
            out.append((kind, n))
    return out


def causes(ev: Evidence) -> list[tuple[str, int, list[Cause]]]:
    """Per outcome class present: (class, count, the causes the rules found; empty: none)."""
    out = []
    for oc, n in outcome_classes(ev):
        found: list[Cause] = []
        for rule in RULES[oc.split(":")[0]]:
            c = rule(ev, oc)
            if c is not None and all(c.text != x.text for x in found):
                found.append(c)
        out.append((oc, n, found))
    return out
