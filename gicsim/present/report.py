"""Timing reports: the trace aggregated with pandas into Markdown and self-contained HTML.

A report is computed from a run's ``summary.json``, ``trace.parquet`` and ``resolved.yaml``
only (:class:`gicsim.present.rundata.RunData`), so ``gicsim report reports/<name>`` reproduces what
``gicsim run --report`` wrote. Aggregations are vectorised (:mod:`gicsim.judge.analysis`); plots are
drawn with matplotlib without pyplot (no GUI backend), written as PNG and SVG beside the
report, and inlined as SVG into the HTML, which therefore opens with no network.

Sections: first the outcome and its cause (:mod:`gicsim.present.firstscreen`: counts, KVM
errors, state comparison, expectations, ``explain``'s cause lines), before any table; then the
migration timeline and downtime per step (waterfall); ``-EBUSY`` and other KVM errors with the
step that got them; LPI outcomes; LPI latency accepted → delivered before / during / after the
migration and per vCPU; last, the timing profile with each value's source (collapsed in HTML).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pandas as pd

from gicsim.judge import analysis as A
from gicsim.present import firstscreen
from gicsim.present.document import Doc
from gicsim.present.explain.verdict import outcome
from gicsim.present.rundata import RunData, from_result

if TYPE_CHECKING:
    from gicsim.sim.simulation import Result

QS = (50, 90, 99)
MAX_VCPU_ROWS = 16  # per-vCPU latency rows shown in full up to this many vCPUs
#: profile fields each figure depends on (what the simulator charges on that path)
FIGURE_FIELDS: dict[str, tuple[str, ...]] = {
    "waterfall": (
        "vcpu_exit_ns", "vcpu_pause_per_vcpu_ns", "kvm_attr_ns", "pending_save_per_lpi_ns", "its_save_per_entry_ns",
        "its_restore_scan_per_entry_ns", "its_restore_per_mapping_ns", "its_cmd_ns",
        "switchover_bandwidth_mib_s", "vcpu_resume_ns",
    ),
    "precopy": ("precopy_bandwidth_mib_s", "switchover_bandwidth_mib_s", "downtime_limit_ms"),
    "latency": ("lpi_delivery_ns", "wfi_wakeup_ns", "halt_poll_ns", "handler_ns", "its_cmd_ns",
                "mmio_kernel_ns"),
}  # fmt: skip
FIGURE_TITLES = {
    "waterfall": "downtime waterfall",
    "precopy": "pre-copy",
    "latency": "LPI latency",
}


# =========================================================================== numbers ====
def us(ns: float | int | None, digits: int = 3) -> str | None:
    if ns is None or (isinstance(ns, float) and np.isnan(ns)):
        return None
    return f"{ns / 1000:,.{digits}f}"


def nearest_rank(values: pd.Series, by: pd.Series | None, qs: Sequence[int] = QS) -> pd.DataFrame:
    """n, p<q> (nearest rank, as the oracle), max and mean of ``values`` per group of ``by``."""
    v = values.to_numpy(np.int64)
    g = np.zeros(len(v), dtype=np.int64) if by is None else by.to_numpy()
    frame = pd.DataFrame({"g": g, "v": v}).sort_values(["g", "v"], kind="stable")
    sizes = frame.groupby("g", sort=True).size()
    starts = np.concatenate([[0], np.cumsum(sizes.to_numpy())[:-1]])
    vals = frame["v"].to_numpy()
    out = pd.DataFrame(index=sizes.index)
    out["n"] = sizes.to_numpy()
    for q in qs:
        k = np.maximum(1, np.ceil(q / 100 * out["n"].to_numpy()).astype(np.int64))
        out[f"p{q}"] = vals[starts + k - 1]
    out["max"] = vals[starts + out["n"].to_numpy() - 1]
    out["mean"] = frame.groupby("g", sort=True)["v"].mean().to_numpy()
    return out


# ========================================================================== analysis ====
@attrs.define
class Analysis:
    """Everything a report shows, as small frames (all times ns)."""

    run: RunData
    migs: list[A.MigInfo]
    steps: pd.DataFrame
    kvm: pd.DataFrame
    errors: pd.DataFrame
    acc: pd.DataFrame
    deliveries: pd.DataFrame
    drop_reason: pd.Series
    by_period: pd.DataFrame
    by_vcpu: pd.DataFrame
    overall: pd.DataFrame
    by_side: pd.DataFrame
    kinds: pd.Series
    vcpu_out: dict[int, int]  # migration -> when the last vCPU left KVM_RUN on the source
    outcome: Any = None  # gicsim.present.explain.verdict.Outcome, set by build()


def analyse(run: RunData) -> Analysis:
    df = run.trace
    migs = A.migrations(df, run.summary, run.scenario)
    steps = A.steps(df, migs)
    kvm = A.kvm_calls(df)
    errors = kvm[kvm["errno"] != ""].copy()
    if len(errors):
        vr = A.vcpu_rows(df)
        n = run.scenario.vm.vcpus
        first = str(df["side"].iloc[0]) if len(df) else "vm0"
        errors["in_kvm_run"] = [
            A.in_kvm_run(vr, n, s, p, first) if e == "EBUSY" else []
            for s, p, e in zip(errors["side"], errors["pos"], errors["errno"], strict=True)
        ]
    else:
        errors["in_kvm_run"] = []
    acc = A.attribute(df)
    dl = A.deliveries(df, acc)
    lat = dl[dl["latency_ns"] >= 0].copy()
    lat["period"] = A.periods(migs, lat["accept_t"].to_numpy())
    order = A.period_order(migs)
    if len(lat):
        by_period = nearest_rank(lat["latency_ns"], lat["period"])
        by_period = by_period.reindex([p for p in order if p in by_period.index])
        by_vcpu = nearest_rank(lat["latency_ns"], lat["vcpu"])
        overall = nearest_rank(lat["latency_ns"], None)
    else:
        by_period = by_vcpu = overall = pd.DataFrame()
    dr = A.drop_reasons(acc, df)
    acc = acc.assign(drop_reason=dr.reindex(acc.index).fillna(""))
    # per side: raises, accepts, drops (by reason), deliveries
    sides = sorted(set(_side_list(df)))
    rows = []
    raise_sel = df["kind"] == "raise"
    raises = df.loc[raise_sel, "side"].value_counts()
    accepts = acc.loc[acc["kind"] == "accept", "side"].value_counts()
    delivered = dl["side"].value_counts()
    drops = acc[acc["kind"] == "drop"].groupby(["side", "drop_reason"]).size()
    for s in sides:
        r = {"side": s, "role": _role(s, migs), "raised": int(raises.get(s, 0)),
             "accepted": int(accepts.get(s, 0)), "delivered": int(delivered.get(s, 0))}  # fmt: skip
        for reason in A.DROP_REASONS:
            r[f"dropped: {reason}"] = int(drops.get((s, reason), 0))
        rows.append(r)
    by_side = pd.DataFrame(rows)
    kinds = df["kind"].value_counts()
    vr = A.vcpu_rows(df)
    vcpu_out = {}
    for m in migs:
        ex = vr[(vr["side"] == m.source) & (vr["what"] == "exit") & (vr["t"] >= m.start_ns)]
        if m.pause_ns is not None:
            ex = ex[ex["t"] <= m.pause_ns]
        if len(ex) and ex["vcpu"].nunique() == run.scenario.vm.vcpus:
            vcpu_out[m.index] = int(ex["t"].max())
    return Analysis(run, migs, steps, kvm, errors, acc, lat, dr, by_period, by_vcpu, overall, by_side,
                    kinds, vcpu_out)  # fmt: skip


def _side_list(df: pd.DataFrame) -> list[str]:
    s = df["side"]
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = s.cat.remove_unused_categories().cat.categories
        return [str(x) for x in present]
    return [str(x) for x in s.unique()]


def _role(side: str, migs: list[A.MigInfo]) -> str:
    roles = []
    for m in migs:
        if m.source == side:
            roles.append(f"source of migration {m.index + 1}")
        if m.destination == side:
            roles.append(f"destination of migration {m.index + 1}")
    return ", ".join(roles) or ("the VM" if not migs else "—")


def _lat_table(stats: pd.DataFrame, label: str) -> pd.DataFrame:
    out = pd.DataFrame({label: [str(i) for i in stats.index], "LPIs delivered": stats["n"].to_numpy()})
    for q in QS:
        out[f"p{q} (µs)"] = [us(x) for x in stats[f"p{q}"]]
    out["max (µs)"] = [us(x) for x in stats["max"]]
    out["mean (µs)"] = [us(x) for x in stats["mean"]]
    return out


# ============================================================================ report ====
def build(run: RunData, plots: bool = True, an: Analysis | None = None) -> Doc:
    """The single-run report document (with figures rendered when ``plots``)."""
    an = an or analyse(run)
    s = run.summary
    sc = run.scenario
    doc = Doc(f"{run.name}: timing report")
    an.outcome = outcome(run, an.migs)
    firstscreen.write(doc, an.outcome)
    doc.h(2, "The run")
    if sc.description:
        doc.p(" ".join(sc.description.split()))
    doc.p(
        f"Seed {s.get('seed')}, simulated {s.get('sim_ns', 0) / 1e6:,.3f} ms, "
        f"{s.get('events', 0):,} SimPy events, {len(run.trace):,} trace records; "
        f"{sc.vm.vcpus} vCPUs, timing profile `{run.timing_base}`, kernel {_kernel_words(run)}."
    )
    _migration_section(doc, an, plots)
    _errors_section(doc, an)
    _outcomes_section(doc, an, plots)
    _latency_section(doc, an, plots)
    _profile_section(doc, run)
    return doc


def _kernel_words(run: RunData) -> str:
    from gicsim.kvm.releases import MAINLINE

    k = run.resolved.get("kernel") or {}
    diff = [f"`{f}: {v}`" for f, v in k.items() if getattr(MAINLINE, f, v) != v]
    return "mainline" if not diff else "variant " + ", ".join(diff)


def _migration_section(doc: Doc, an: Analysis, plots: bool) -> None:
    doc.h(2, "Migration timeline and downtime")
    migs = an.migs
    if not migs:
        doc.p("This scenario has no migration.")
        return
    rows = []
    for m in migs:
        sm = an.run.summary.get("migrations", [])
        ebusy = sm[m.index]["ebusy"] if m.index < len(sm) else None
        pre = (m.stop_ns - m.start_ns) if m.stop_ns is not None else None
        rows.append({
            "migration": m.index + 1, "status": m.status + (f" ({m.errno} in `{m.failed_step}`)" if m.errno else ""),
            "source → destination": f"{m.source} → {m.destination or '—'}",
            "start (µs)": us(m.start_ns), "pre-copy (µs)": us(pre), "stop (µs)": us(m.stop_ns),
            "resume (µs)": us(m.resume_ns), "downtime (µs)": us(m.downtime_ns), "-EBUSY": ebusy,
        })  # fmt: skip
    doc.table(pd.DataFrame(rows), right=("start (µs)", "pre-copy (µs)", "stop (µs)", "resume (µs)", "downtime (µs)", "-EBUSY"))
    for m in migs:
        st = an.steps[an.steps["migration"] == m.index]
        if st.empty:
            continue
        if len(migs) > 1:
            doc.h(3, f"Migration {m.index + 1}")
        calls = an.kvm[an.kvm["migration"] == m.index]
        ncalls = calls.groupby(["side", "step"]).size()
        nerr = calls[calls["errno"] != ""].groupby(["side", "step"]).size()
        down = m.downtime_ns or 0
        t0 = m.stop_ns if m.stop_ns is not None else m.start_ns
        tab = pd.DataFrame({
            "step": [f"`{x}`" for x in st["step"]],
            "side": [f"{r} ({sd})" for r, sd in zip(st["role"], st["side"], strict=True)],
            "start (µs after stop)": [us(x - t0) for x in st["start_ns"]],
            "duration (µs)": [us(x) for x in st["dur_ns"]],
            "share of downtime": [f"{100 * x / down:.1f} %" if down else None for x in st["dur_ns"]],
            "KVM calls": [int(ncalls.get((sd, x), 0)) for sd, x in zip(st["side"], st["step"], strict=True)],
            "failed calls": [int(nerr.get((sd, x), 0)) for sd, x in zip(st["side"], st["step"], strict=True)],
        })  # fmt: skip
        gap = down - int(st["dur_ns"].sum()) if down else 0
        if down and gap > 0:
            tab.loc[len(tab)] = ["(between steps: resume of the source, held MSIs)", "", None, us(gap),
                                 f"{100 * gap / down:.1f} %", 0, 0]  # fmt: skip
        doc.p(
            f"Pre-copy ran {us((m.stop_ns or m.start_ns) - m.start_ns)} µs; then the downtime "
            f"({us(down)} µs) breaks down as follows (times from the stop):"
        )
        doc.table(tab, right=("start (µs after stop)", "duration (µs)", "share of downtime", "KVM calls", "failed calls"))
    if plots:
        from gicsim.present import plots as P

        doc.fig(P.waterfall(an, caption=_fig_caption(an.run, "waterfall",
                "Downtime waterfall: each migration step as a bar from the moment the source "
                "stopped; red crosses are failed KVM calls, and a step whose calls returned an errno is "
                "labelled in red with them; the rows on top mark the MSIs that were later lost (when "
                "accepted) or dropped (per reason), in bursts.")))  # fmt: skip
    else:
        doc.p(_fig_caption(an.run, "waterfall", "Timing inputs of these steps:"))


def _fig_caption(run: RunData, key: str, text: str) -> str:
    prof = run.scenario.timing
    vals = ", ".join(f"`{f}` = {_with_unit(f, getattr(prof, f))}" for f in FIGURE_FIELDS[key])
    extra = ""
    if key == "waterfall" and run.scenario.migrations:
        src = run.scenario.migrations[0].source
        bits = [f"vCPU exit {us(src.vcpu_exit_ns)} µs"]
        if src.stragglers:
            bits.append("stragglers " + ", ".join(f"vCPU {s.vcpu} {us(s.exit_ns)} µs" for s in src.stragglers))
        bits.append("stop wait " + ("until every vCPU is out" if src.stop_wait_ns is None else f"{us(src.stop_wait_ns)} µs"))
        pol = src.on_ebusy
        bits.append("on -EBUSY " + (pol.policy if pol.policy != "retry" else f"retry {pol.retry}× every {us(pol.backoff_ns)} µs"))
        extra = " Scenario inputs: " + "; ".join(bits) + "."
    return f"{text} Timing inputs (profile, sources in the last table): {vals}.{extra}"


def _with_unit(field: str, v: Any) -> str:
    from gicsim.scenario.timing import _unit

    u = _unit(field)
    return f"{v:,} {u}" if u else str(v)


def _errors_section(doc: Doc, an: Analysis) -> None:
    doc.h(2, "-EBUSY and other KVM errors")
    e = an.errors
    if e.empty:
        doc.p("Every KVM device call of the migration returned 0." if an.migs else "No migration, no KVM device call.")
        return
    counts = e.groupby(["errno"]).size()
    doc.p("Failed KVM calls: " + ", ".join(f"{n} × {k}" for k, n in counts.items()) + ".")
    tab = pd.DataFrame({
        "at (µs)": [us(x) for x in e["t"]],
        "migration": e["migration"] + 1,
        "side": e["side"],
        "step": [f"`{x}`" for x in e["step"]],
        "call": [f"`{x}`" for x in e["call"]],
        "errno": e["errno"],
        "vCPUs still in KVM_RUN": [", ".join(map(str, v)) if v else ("—" if er == "EBUSY" else "")
                                   for v, er in zip(e["in_kvm_run"], e["errno"], strict=True)],
    })  # fmt: skip
    doc.table(tab, right=("at (µs)",))
    doc.p("An `EBUSY` comes from the all-vCPU trylock of the KVM device call: a vCPU thread was "
          "still inside `KVM_RUN` (its `vcpu->mutex` held). `gicsim explain` narrates each one.")  # fmt: skip


def _outcomes_section(doc: Doc, an: Analysis, plots: bool) -> None:
    doc.h(2, "LPI outcomes")
    lp = an.run.summary.get("lpis", {})
    rows = [(k, lp.get(k)) for k in ("accepted", "delivered", "lost", "spurious", "misrouted", "withdrawn", "in_flight")]
    rows += [(f"dropped: {k}", v) for k, v in (lp.get("dropped") or {}).items()]
    doc.p("Verdicts of the oracles (defined in docs/summary-json.md) over the whole run, from `summary.json`:")
    doc.table(pd.DataFrame(rows, columns=["outcome", "count"]), right=("count",))
    doc.p("Per VM incarnation, from the trace (raises are counted where they start; a quiesced "
          "device's MSI is raised on the source and accepted where it is finally sent):")  # fmt: skip
    bs = an.by_side.copy()
    doc.table(bs, right=tuple(c for c in bs.columns if c not in ("side", "role")))
    if plots:
        from gicsim.present import plots as P

        doc.fig(P.outcomes(an, caption="LPI outcomes (log scale; zero counts are labelled)."))


def _latency_section(doc: Doc, an: Analysis, plots: bool) -> None:
    doc.h(2, "LPI latency, accepted → delivered")
    if an.overall.empty:
        doc.p("No LPI was delivered after an accepted raise.")
        return
    o = an.overall.iloc[0]
    doc.p(
        f"For each delivery, the time since the oldest raise of that LPI accepted since its "
        f"previous delivery (the oracle's definition; {int(o['n']):,} deliveries). Overall p50 "
        f"{us(o['p50'])} µs, p99 {us(o['p99'])} µs, max {us(o['max'])} µs. By when the raise was "
        f"accepted (pre-copy = VM still running; downtime = from the stop to the resume):"
    )
    doc.table(_lat_table(an.by_period, "accepted during"), right=tuple(c for c in _lat_table(an.by_period, "x").columns if c != "x"))
    bv = an.by_vcpu
    if len(bv) <= MAX_VCPU_ROWS:
        doc.p("By the vCPU that took the LPI:")
    else:
        p99 = bv["p99"]
        doc.p(f"By the vCPU that took the LPI: {len(bv)} vCPUs; their p99 ranges from {us(p99.min())} to "
              f"{us(p99.max())} µs (median {us(float(p99.median()))} µs). The {MAX_VCPU_ROWS} vCPUs with the "
              f"highest p99:")  # fmt: skip
        bv = bv.sort_values(["p99", "max"], ascending=False).head(MAX_VCPU_ROWS)
    t = _lat_table(bv, "vCPU")
    doc.table(t, right=tuple(c for c in t.columns if c != "vCPU"))
    if plots:
        from gicsim.present import plots as P

        doc.fig(P.latency(an, caption=_fig_caption(an.run, "latency",
                "LPI latency: distribution by period (left) and per vCPU (right; box = p25–p75, "
                "whiskers p1–p99).")))  # fmt: skip
    else:
        doc.p(_fig_caption(an.run, "latency", "Timing inputs of these latencies:"))


def _profile_section(doc: Doc, run: RunData) -> None:
    from gicsim.scenario.timing import profile_table

    doc.open("details", 'id="timing-profile"', summary="Timing profile")
    base = run.timing_base
    used: dict[str, list[str]] = {}
    for key, fields in FIGURE_FIELDS.items():
        for f in fields:
            used.setdefault(f, []).append(FIGURE_TITLES[key])
    rows = []
    for f, v, unit, src in profile_table(run.scenario.timing, base):
        shown = us(v) if f.endswith("_ns") else v
        u = "µs" if unit == "ns" else unit.replace("ns/", "µs/") if f.endswith("_ns") else unit
        rows.append({"field": f"`{f}`", "value": shown, "unit": u, "used in": ", ".join(used.get(f, [])) or "—", "source": src})
    doc.p(f"Profile `{base}` as resolved for this run (scenario overrides marked). The "
          "\"used in\" column names the figures whose numbers the field drives. Source keys "
          "such as [KUT-Altra] are listed in gicsim's docs/bibliography.md; \"row N\" is row N of "
          "the table in docs/timing-anchors.md.")  # fmt: skip
    doc.table(pd.DataFrame(rows), right=("value",))
    doc.close("details")


# ======================================================================== comparison ====
def build_comparison(runs: list[RunData], labels: list[str], plots: bool = True) -> Doc:
    ans = [analyse(r) for r in runs]
    doc = Doc("Comparison: " + ", ".join(labels))
    firstscreen.write_comparison(doc, [outcome(r, a.migs, causes=False) for r, a in zip(runs, ans, strict=True)], labels)
    metrics: dict[str, list[Any]] = {}

    def put(k: str, vals: list[Any]) -> None:
        metrics[k] = vals

    put("scenario", [r.name for r in runs])
    put("kernel", [_kernel_words(r) for r in runs])
    put("migration status", [", ".join(m.status for m in a.migs) or "none" for a in ans])
    put("downtime (µs)", [", ".join(us(m.downtime_ns) or "—" for m in a.migs) or None for a in ans])
    put("pre-copy (µs)", [", ".join(us((m.stop_ns or m.start_ns) - m.start_ns) or "—" for m in a.migs) or None for a in ans])
    put("-EBUSY", [sum(m.get("ebusy", 0) for m in r.summary.get("migrations", [])) for r in runs])
    put("KVM errors", [", ".join(f"`{c}` {e} ×{n}" for (c, e), n in a.errors.groupby(["call", "errno"], sort=False).size().items())
                       or "—" for a in ans])
    for k in ("accepted", "delivered", "lost", "spurious", "misrouted", "withdrawn", "in_flight"):
        put(k, [r.summary.get("lpis", {}).get(k) for r in runs])
    for k in A.DROP_REASONS:
        put(f"dropped: {k}", [(r.summary.get("lpis", {}).get("dropped") or {}).get(k, 0) for r in runs])
    put("state match", [r.summary.get("state_match") for r in runs])
    for q in ("p50", "p99", "max"):
        put(f"latency {q} (µs)", [us(a.overall.iloc[0][q]) if not a.overall.empty else None for a in ans])
    periods: list[str] = []
    for a in ans:
        periods += [p for p in a.by_period.index if p not in periods]
    for p in periods:
        put(f"latency p99 of raises accepted in `{p}` (µs)", [us(a.by_period.loc[p, "p99"]) if p in a.by_period.index else None for a in ans])
    step_names: list[str] = []
    for a in ans:
        step_names += [s for s in a.steps["step"] if s not in step_names]
    for st in step_names:
        put(f"step `{st}` (µs)", [us(a.steps.loc[a.steps["step"] == st, "dur_ns"].sum()) if (a.steps["step"] == st).any() else None for a in ans])
    tab = pd.DataFrame({"metric": list(metrics)} | {lab: [metrics[k][i] for k in metrics] for i, lab in enumerate(labels)})
    doc.h(2, "Side by side")
    doc.table(tab, right=tuple(labels))
    if plots:
        from gicsim.present import plots as P

        doc.h(2, "Downtime per step")
        doc.fig(P.compare_downtime(ans, labels, caption="Downtime of each run split by step (first migration of each "
                                   "run; as a share of each run's downtime when the totals differ tenfold or more)."))
        doc.h(2, "Latency")
        doc.fig(P.compare_latency(ans, labels, caption="LPI latency accepted → delivered, distribution per run."))
    return doc


# ========================================================================= writing ====
def render_files(doc: Doc, md: bool = True, html_: bool = True) -> dict[str, bytes]:
    """File name -> content for a report directory."""
    files: dict[str, bytes] = {}
    if md:
        files["report.md"] = doc.markdown().encode()
    if html_:
        files["report.html"] = doc.html().encode()
    for f in doc.figures:
        files[f"{f.name}.png"] = f.png
        files[f"{f.name}.svg"] = f.svg.encode()
    return files


def markdown(res: Result | RunData) -> str:
    """The text-only Markdown report (no figures; fast, no matplotlib)."""
    run = res if isinstance(res, RunData) else from_result(res)
    return build(run, plots=False).markdown(figures=False)


def write_markdown(res: Result | RunData, path: Path) -> None:
    from gicsim.present.output import write_text_atomic

    write_text_atomic(path, markdown(res))


def run_files(run: RunData) -> dict[str, bytes]:
    """resolved.yaml, summary.json, trace.parquet of a run: the original bytes when it was read
    from a directory, else freshly serialised."""
    import json

    from gicsim.present.output import dump_yaml

    if run.result is None and run.origin and Path(run.origin).is_dir():
        d = Path(run.origin)
        return {f: (d / f).read_bytes() for f in ("resolved.yaml", "summary.json", "trace.parquet")}
    buf = io.BytesIO()
    from gicsim.judge.trace import public_frame

    public_frame(run.trace).to_parquet(buf, index=False)
    return {
        "resolved.yaml": dump_yaml(run.resolved).encode(),
        "summary.json": (json.dumps(run.summary, indent=2, default=str) + "\n").encode(),
        "trace.parquet": buf.getvalue(),
    }


def report_files(run: RunData, plots: bool = True, perfetto: bool = False) -> dict[str, bytes]:
    """Everything ``gicsim report`` writes for one run (report, figures, optional Perfetto)."""
    files = render_files(build(run, plots=plots))
    if perfetto:
        from gicsim.present import perfetto as pf

        files.update(pf.files(run))
    return files


#: Every file a gicsim run directory can hold (`gicsim run`, with --report and --perfetto,
#: then `gicsim report` in place); what a new run may replace there (``trace.perfetto.json``:
#: the uncompressed export of earlier versions).
RUN_DIR_FILES = frozenset(
    {"resolved.yaml", "summary.json", "trace.parquet", "report.md", "report.html", "trace.perfetto.json.gz",
     "trace.perfetto.json"}
    | {f"{fig}.{ext}" for fig in ("waterfall", "latency", "outcomes") for ext in ("png", "svg")}
)
#: ... and every top-level file a report directory can hold (comparisons, the examples).
REPORT_DIR_FILES = RUN_DIR_FILES | {"explain.md"} | {
    f"compare-{fig}.{ext}" for fig in ("downtime", "latency") for ext in ("png", "svg")
}


def _names(d: Path) -> set[str] | None:
    from gicsim.present.output import MANIFEST, is_temp_name

    try:
        return {p.name for p in d.iterdir() if not is_temp_name(p.name)} - {MANIFEST}
    except OSError:
        return None


def is_run_dir(d: Path) -> bool:
    """A directory `gicsim run` wrote: its three run files, and nothing it would not write."""
    from gicsim.present.rundata import RUN_FILES

    names = _names(d)
    return names is not None and set(RUN_FILES) <= names and names <= RUN_DIR_FILES


def _written_by_gicsim(d: Path) -> bool:
    """A run directory, or a report directory written before reports had a manifest (its
    report.md and report.html, and only files gicsim writes)."""
    names = _names(d)
    if names is None:
        return False
    return is_run_dir(d) or ({"report.md", "report.html"} <= names and names <= REPORT_DIR_FILES)


def publish(files: dict[str, bytes], target: Path, guard: Any = None, check_only: bool = False) -> None:
    """Write ``files`` into directory ``target`` (made if missing): each file atomically, and
    only over files gicsim wrote there (a report's manifest, or a run directory's own files);
    a non-empty directory of anything else is refused (:class:`~gicsim.present.rundata.RunInputError`).
    The directory itself is never replaced, so nothing else in it is lost. ``check_only``:
    the same refusals, nothing written (to check every output before writing the first)."""
    import contextlib

    from gicsim.present.output import OutputError, check_report_dir, write_report_dir
    from gicsim.present.rundata import RunInputError

    target = Path(target)
    also = REPORT_DIR_FILES if target.is_dir() and _written_by_gicsim(target) else ()
    try:
        if check_only:
            check_report_dir(target, files, also_ours=also)
        else:
            write_report_dir(target, files, also_ours=also, guard=guard or contextlib.nullcontext)
    except OutputError as e:
        raise RunInputError(e.lines) from None


# ============================================================================ command ====
def _labels(runs: list[RunData]) -> list[str]:
    names = [r.name for r in runs]
    out: list[str] = []
    for i, r in enumerate(runs):
        lab = r.name
        if names.count(lab) > 1:
            tail = Path(r.origin).name if r.origin else ""
            lab = f"{lab} ({tail or i + 1})"
            if out.count(lab):
                lab = f"{lab} #{i + 1}"
        out.append(lab)
    return out


def load_inputs(inputs: Sequence[str]) -> list[RunData]:
    """Check every input first (RUN_DIRs readable, scenario files valid), then run the
    scenarios; any problem -> RunInputError with one line per problem, nothing run."""
    from gicsim.present.rundata import RunInputError, from_result, read_run_dir
    from gicsim.scenario import ScenarioError, load_scenario
    from gicsim.sim.simulation import run as run_scenario

    problems: list[str] = []
    plan: list[tuple[str, Any, str]] = []
    for p in inputs:
        path = Path(p)
        try:
            if path.is_dir():
                plan.append(("dir", read_run_dir(path), p))
            elif not path.exists():
                problems.append(f"{p}: no such file or directory")
            else:
                plan.append(("scenario", load_scenario(path), p))
        except RunInputError as e:
            problems += e.lines
        except ScenarioError as e:
            problems += list(e.problems)
    if problems:
        raise RunInputError(problems)
    return [x if kind == "dir" else from_result(run_scenario(x), origin=p) for kind, x, p in plan]


def report_command(
    inputs: Sequence[str], outdir: str | None, perfetto: bool = False, guard: Any = None
) -> list[Path]:
    """``gicsim report``: one input -> its report (beside the run when it is a RUN_DIR);
    several -> a comparison report. Returns the directories written. The output directory is
    written into, never replaced (see :func:`publish`); ``guard()`` wraps the writing."""
    from gicsim.present.output import printable
    from gicsim.present.rundata import RunInputError

    if outdir is not None and Path(outdir).exists() and not Path(outdir).is_dir():
        raise RunInputError([f"{printable(outdir, 200)}: exists and is not a directory"])
    runs = load_inputs(inputs)
    if len(runs) == 1:
        run = runs[0]
        files = report_files(run, perfetto=perfetto)
        src = Path(run.origin) if run.result is None else None
        target = Path(outdir) if outdir else (src if src is not None else Path("reports") / run.name)
        if src is not None and target.resolve() == src.resolve():
            publish(files, target, guard)
        else:
            publish(run_files(run) | files, target, guard)
        return [target]
    target = Path(outdir) if outdir else Path("reports") / "compare"
    for r in runs:
        if r.result is None and Path(r.origin).resolve() == target.resolve():
            raise RunInputError([f"{printable(outdir, 200)}: the output directory is one of the inputs; choose another -o"])
    labels = _labels(runs)
    files = render_files(build_comparison(runs, labels))
    for r, lab in zip(runs, labels, strict=True):
        if r.result is not None:  # a scenario run here: keep its run directory with the comparison
            sub = re.sub(r"[^A-Za-z0-9_.-]+", "_", lab)
            files |= {f"runs/{sub}/{k}": v for k, v in run_files(r).items()}
            if perfetto:
                from gicsim.present import perfetto as pf

                files[f"runs/{sub}/{pf.FILENAME}"] = pf.to_gzip(r)
    publish(files, target, guard)
    return [target]
