"""``gicsim diff A B``: two runs side by side (typically one step order against another).

The traces are aligned record by record (time, kind, side and fields; a ``state`` row by its
label only): the same scenario and seed give the same records until the two runs first do
something different, so the first unequal record is the first divergence, told in plain
words with the migration step each side was in. After it, ``difflib.SequenceMatcher`` on the
records without time and side says what each side did that the other did not. Then the
outcome difference (the summary keys that differ) and, at the divergence, the state of the
ITS on every host (``gicsim.judge.state.its_state``: enabled, CREADR/CWRITER, devices, ITEs,
collections) and of the affected LPIs (accepted or delivered a different number of times, or
named by the divergent rows): kernel record and pending-table bit, from re-running each
scenario (a scenario file, or a run directory's ``resolved.yaml``) with
:mod:`gicsim.present.probe` up to that record.
"""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path
from typing import Any

from gicsim.judge.trace import INFO, KIND, LPI, SIDE, T
from gicsim.present.lpi_life import _describe
from gicsim.present.probe import kernel_record, ram_bits, run_probed

SHOW_LPIS = 64  # affected LPIs whose state is shown (grouped by state)
SHOW_OUTCOME = 40  # differing summary keys shown (the rest are counted)
SHOW_ERRORS = 8
SHOW_STEPS = 40  # migration steps listed after the steps part  # failed calls of one migration shown in its outcome cell
ALIGN_CAP = 4000  # records after the divergence aligned by SequenceMatcher (it is quadratic)
SKIP_KEYS = ("scenario", "seed", "wall_s", "events", "sim_ns", "kernel", "expect", "delivered", "phases", "latency_ns")


def _key(r: tuple[Any, ...]) -> tuple[Any, ...]:
    return r[:-1] + (str(r[INFO]).partition(":")[0],) if r[KIND] == "state" else r


def first_divergence(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> int | None:
    """Index of the first record that differs (one trace ending first counts), None if equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if _key(x) != _key(y):
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _did(r: tuple[Any, ...] | None) -> str:
    if r is None:
        return "had nothing more (its trace ends)"
    if r[KIND] == "step":
        name, _, edge = str(r[INFO]).rpartition(":")
        return f"ran {name}" if edge == "start" else f"finished {name}"
    return f"recorded “{_describe(r)}” on {r[SIDE]}"


def divergence_sentence(x: tuple[Any, ...] | None, y: tuple[Any, ...] | None) -> str:
    """The first divergence in plain words: what each side did (at one time, or at two)."""
    from gicsim.present.explain.words import T as fmt_t

    if x is not None and y is not None and x[T] != y[T] and x[1:] == y[1:]:
        return f"the same row at different times (A at {fmt_t(x[T])}, B at {fmt_t(y[T])}): {_did(x)}"
    if x is not None and y is not None and x[T] == y[T]:
        return f"at {fmt_t(x[T])} A {_did(x)}, B {_did(y)}"
    wa = f" at {fmt_t(x[T])}" if x is not None else ""
    wb = f" at {fmt_t(y[T])}" if y is not None else ""
    return f"A {_did(x)}{wa}, B {_did(y)}{wb}"


def step_starts(rec: list[tuple[Any, ...]]) -> list[tuple[str, int, int]]:
    """(step, record index, t) of every migration step started, in order."""
    return [(str(r[INFO]).rpartition(":")[0], i, int(r[T])) for i, r in enumerate(rec)
            if r[KIND] == "step" and str(r[INFO]).endswith(":start")]  # fmt: skip


def first_step_divergence(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> int | None:
    """Position of the first migration step the two runs do not share, None if none."""
    oa, ob = [x[0] for x in step_starts(a)], [x[0] for x in step_starts(b)]
    k = next((j for j, (p, q) in enumerate(zip(oa, ob, strict=False)) if p != q), None)
    if k is None and len(oa) != len(ob):
        k = min(len(oa), len(ob))
    return k


def _step_at(rec: list[tuple[Any, ...]], i: int) -> str:
    for r in reversed(rec[:i]):
        if r[KIND] == "step":
            name, _, edge = str(r[INFO]).rpartition(":")
            return f"in step {name}" if edge == "start" else f"after step {name}"
    return "before any migration step"


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if k in SKIP_KEYS:
                continue
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(d, list) and d and all(isinstance(x, dict) and "errno" in x for x in d):
        shown = ", ".join(f"{x['step']}: -{x['errno']}" for x in d[:SHOW_ERRORS])
        out[prefix[:-1]] = shown + (f", … ({len(d) - SHOW_ERRORS:,} more)" if len(d) > SHOW_ERRORS else "")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.update(flatten(v, f"{prefix}{i + 1}."))
        if not d:
            out[prefix[:-1]] = "none"
    else:
        out[prefix[:-1]] = d
    return out


def outcome_diff(sa: dict[str, Any], sb: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    fa, fb = flatten(sa), flatten(sb)
    return [(k, fa.get(k, "—"), fb.get(k, "—")) for k in sorted(set(fa) | set(fb)) if fa.get(k, "—") != fb.get(k, "—")]


def _counts(rec: list[tuple[Any, ...]]) -> Counter[tuple[str, int]]:
    return Counter((str(r[KIND]), int(r[LPI])) for r in rec if r[KIND] in ("accept", "deliver") and r[LPI] >= 0)


def affected_lpis(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], named: list[int]) -> list[int]:
    ca, cb = _counts(a), _counts(b)
    lpis = {lpi for (_, lpi) in set(ca) | set(cb) if ca[("accept", lpi)] != cb[("accept", lpi)]
            or ca[("deliver", lpi)] != cb[("deliver", lpi)]}  # fmt: skip
    return sorted(lpis | {n for n in named if n >= 0})


def state_at(sc: Any, index: int, t_ns: int, lpis: list[int]) -> dict[str, Any]:
    """Re-run ``sc`` and take the ITS state of each host and the LPIs' records just before the
    SimPy event that appends record ``index`` (at the end of the run if it never comes)."""
    from gicsim.judge.state import its_state

    got: dict[str, Any] = {}
    done = [False]

    def take(sim: Any, t: int) -> None:
        hosts = {}
        for vm in sim.vms:
            hosts[vm.side] = {"its": its_state(vm.its),
                              "lpis": {n: (kernel_record(vm, n), ram_bits(vm, sim.vms, n)) for n in lpis}}  # fmt: skip
        got.clear()
        got.update(t_ns=t, hosts=hosts)

    def before(sim: Any, rec: list[Any], t_next: int) -> None:
        if done[0]:
            return
        if len(rec) > index:
            done[0] = True
            return
        if t_next >= t_ns:
            take(sim, t_ns)  # the state the divergent event finds

    sim = run_probed(sc, before=before)
    if not done[0]:
        take(sim, int(sim.env.now))
    from gicsim.judge import oracles

    oracles.judge(sim.trace.rec, sc.until_ns)  # as `gicsim run` does (drop reasons rewritten)
    got["records"] = sim.trace.rec
    return got


def _its_lines(st: dict[str, Any]) -> list[str]:
    from gicsim.present.explain.words import ids

    cols = ", ".join(f"{c}→vCPU {v}" for c, v in st["collections"])
    return [f"ITS Enable={int(st['enabled'])} CREADR=0x{st['creadr']:x} CWRITER=0x{st['cwriter']:x}; "
            f"{len(st['devices'])} devices ({ids(d[0] for d in st['devices'])}), {len(st['ites'])} ITEs, "
            f"collections: {cols or 'none'}"]  # fmt: skip


def _lpi_cell(kr: Any, bits: tuple[int, ...]) -> str:
    from gicsim.present.lpi_life import _cell, _ram

    return f"latch {_cell(kr)} RAM {_ram(bits)}"


def render(na: str, nb: str, ra: Any, rb: Any, sa: dict[str, Any] | None, sb: dict[str, Any] | None,
           lpis: list[int], notes: list[str] | None = None) -> str:  # fmt: skip
    from gicsim.present.explain.words import T as fmt_t
    from gicsim.present.explain.words import ids

    a, b = ra.records(), rb.records()
    out = [f"# diff: A = {na}, B = {nb}", ""]
    i = first_divergence(a, b)
    if i is None:
        out += ["The two traces are identical: no divergence.", ""]
    else:
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        out += ["## First divergence", "",
                f"{divergence_sentence(x, y)} (record {i + 1}; A {_step_at(a, i)}, B {_step_at(b, i)}).", ""]  # fmt: skip
        k = first_step_divergence(a, b)
        if k is not None:
            sa_, sb_ = step_starts(a), step_starts(b)
            after = f" (after {sa_[k - 1][0]})" if k > 0 else ""
            pa = sa_[k] if k < len(sa_) else None
            pb = sb_[k] if k < len(sb_) else None
            what_a = f"A ran {pa[0]} at {fmt_t(pa[2])}" if pa else "A ran no more steps"
            what_b = f"B ran {pb[0]} at {fmt_t(pb[2])}" if pb else "B ran no more steps"
            out += [f"The migration steps part at step {k + 1}{after}: {what_a}, {what_b}.",
                    f"  A: {_steps(sa_[k:])}", f"  B: {_steps(sb_[k:])}", ""]  # fmt: skip
        ka = [r[1:2] + r[3:] for r in a[i : i + ALIGN_CAP]]
        kb = [r[1:2] + r[3:] for r in b[i : i + ALIGN_CAP]]
        only_a: Counter[str] = Counter()
        only_b: Counter[str] = Counter()
        for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
            if op != "equal":
                only_a.update(str(r[0]) for r in ka[a0:a1])
                only_b.update(str(r[0]) for r in kb[b0:b1])
        capped = f" (of the first {ALIGN_CAP} records after it)" if len(a) - i > ALIGN_CAP or len(b) - i > ALIGN_CAP else ""
        out += [f"After it{capped}: only in A {_kinds(only_a)}; only in B {_kinds(only_b)}.", ""]
    diffs = outcome_diff(ra.summary, rb.summary)
    out += ["## Outcome", ""]
    if diffs:
        shown = diffs[:SHOW_OUTCOME]
        w = max(len(k) for k, _, _ in shown)
        out += [f"  {'':<{w}}  {'A':>14}  {'B':>14}"] + [f"  {k:<{w}}  {_v(p):>14}  {_v(q):>14}" for k, p, q in shown]
        if len(diffs) > SHOW_OUTCOME:
            out.append(f"  ({len(diffs) - SHOW_OUTCOME:,} more keys differ, not shown)")
    else:
        out.append("  the same outcome")
    out.append("")
    for label, st in (("A", sa), ("B", sb)):
        if not st:
            continue
        out += [f"## State of {label} just before {st['what']} (t = {fmt_t(st['t_ns'])}, re-run)", ""]
        for host, h in st["hosts"].items():
            out += [f"  {host}: {ln}" for ln in _its_lines(h["its"])]
            groups: dict[str, list[int]] = {}
            for n in lpis[:SHOW_LPIS]:
                groups.setdefault(_lpi_cell(*h["lpis"][n]), []).append(n)
            out += [f"    {cell}: LPI {ids(ns)}" for cell, ns in groups.items()]
        if len(lpis) > SHOW_LPIS:
            out.append(f"    ({len(lpis) - SHOW_LPIS} more affected LPIs not shown)")
        out.append("")
    if lpis:
        out += [f"Affected LPIs (accepted or delivered a different number of times, or named at the divergence): "
                f"{ids(lpis)}", ""]  # fmt: skip
    out += list(notes or [])
    return "\n".join(out).rstrip() + "\n"


def _steps(starts: list[tuple[str, int, int]]) -> str:
    shown = " → ".join(n for n, _, _ in starts[:SHOW_STEPS]) or "(none)"
    return shown + (f" → … ({len(starts) - SHOW_STEPS:,} more steps)" if len(starts) > SHOW_STEPS else "")


def _v(x: Any) -> str:
    return "—" if x is None else str(x)


def _kinds(c: Counter[str]) -> str:
    return "nothing" if not c else ", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def diff_command(pa: str | Path, pb: str | Path) -> str:
    """The text of ``gicsim diff A B``. The state is taken where the migration steps first
    part (when they do), else at the first record that differs."""
    from gicsim.judge.trace import digest
    from gicsim.present import rundata
    from gicsim.present.tables import load_input

    ra, rb = rundata.load(pa), rundata.load(pb)
    a, b = ra.records(), rb.records()
    i = first_divergence(a, b)
    sa = sb = None
    lpis: list[int] = []
    notes: list[str] = []
    if i is not None:
        named = [int(r[i][LPI]) for r in (a, b) if i < len(r)]
        lpis = affected_lpis(a, b, named)
        k = first_step_divergence(a, b)
        got = []
        for p, rec in ((pa, a), (pb, b)):
            starts = step_starts(rec)
            if k is not None and k < len(starts):
                name, idx, t = starts[k]
                what = f"step {name}"
            elif i < len(rec):
                idx, t, what = i, int(rec[i][T]), "the divergence"
            else:
                idx, t, what = len(rec), int(rec[-1][T]) if rec else 0, "the end of its run"
            st = state_at(load_input(p), idx, t, lpis[:SHOW_LPIS])
            st["what"] = what
            got.append(st)
            if Path(p).is_dir() and digest(st.pop("records")) != digest(rec):
                notes.append(f"note: re-running {p}'s resolved.yaml gives another trace than its trace.parquet; "
                             "the state shown is the re-run's")  # fmt: skip
            st.pop("records", None)
        sa, sb = got
    return render(ra.name, rb.name, ra, rb, sa, sb, lpis, notes)
