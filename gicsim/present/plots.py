"""Report figures (matplotlib, no pyplot: nothing touches a GUI backend).

Every function takes the report's :class:`gicsim.present.report.Analysis` (small aggregated frames;
large distributions are reduced to quantile grids before plotting) and returns a
:class:`gicsim.present.figures.Figure` holding SVG text and PNG bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from gicsim.judge import analysis as A
from gicsim.present.figures import Figure, figure_bytes

SOURCE_C = "#3465a4"
DEST_C = "#f57900"
ERR_C = "#cc0000"
PERIOD_C = {"before": "#555753", "precopy": "#4e9a06", "downtime": "#cc0000", "after": "#3465a4",
            "no migration": "#555753"}  # fmt: skip
QGRID = np.linspace(0.0, 1.0, 401)
BOX_MAX_VCPUS = 32  # more vCPUs: p50/p99/max lines instead of one box each


def _finish(fig: MplFigure, name: str, caption: str) -> Figure:
    svg, png = figure_bytes(fig)
    return Figure(name, caption, svg, png)


def _fmt_us(ns: float) -> str:
    v = ns / 1000
    if v >= 1000:
        return f"{v / 1000:,.2f} ms"
    return f"{v:,.1f} µs"


def waterfall(an: Any, caption: str) -> Figure:
    migs = [m for m in an.migs if not an.steps[an.steps["migration"] == m.index].empty]
    n = max(1, len(migs))
    heights = [max(2.0, 0.32 * (len(an.steps[an.steps["migration"] == m.index]) + 2)) for m in migs] or [2.0]
    fig = MplFigure(figsize=(9.5, sum(heights) + 0.6 * n))
    axes = fig.subplots(n, 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    if not migs:
        axes[0].text(0.5, 0.5, "no migration", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
        return _finish(fig, "waterfall", caption)
    errnos: set[str] = set()
    for ax, m in zip(axes, migs, strict=True):
        st = an.steps[an.steps["migration"] == m.index].reset_index(drop=True)
        t0 = m.stop_ns if m.stop_ns is not None else int(st["start_ns"].min())
        end = m.end_ns if m.end_ns is not None else int(st["end_ns"].max())
        total = max(1, end - t0)
        labels = [f"{r.step}  ({r.side})" for r in st.itertuples()]
        y = np.arange(len(st))
        colors = [SOURCE_C if r == "source" else DEST_C for r in st["role"]]
        left = (st["start_ns"].to_numpy() - t0) / 1000
        width = st["dur_ns"].to_numpy() / 1000
        ax.barh(y, width, left=left, color=colors, height=0.62)
        tiny = width < total / 1000 * 0.004
        ax.scatter(left[tiny], y[tiny], marker="|", s=120, color=np.array(colors, dtype=object)[tiny].tolist())
        for yi, (lf, w) in enumerate(zip(left, width, strict=True)):
            ax.text(lf + w + total / 1000 * 0.008, yi, _fmt_us(w * 1000), va="center", fontsize=8)
        err = an.errors[an.errors["migration"] == m.index] if len(an.errors) else an.errors
        if len(err):
            pos = {(r.step, r.side): i for i, r in enumerate(st.itertuples())}
            ey = [pos.get((s, sd), np.nan) for s, sd in zip(err["step"], err["side"], strict=True)]
            ax.scatter((err["t"].to_numpy() - t0) / 1000, ey, marker="x", color=ERR_C, s=40, zorder=5)
            errnos.update(err["errno"])
        out = an.vcpu_out.get(m.index)
        if out is not None:
            x = (out - t0) / 1000
            ax.axvline(x, color="#4e9a06", ls=":", lw=1.2)
            ax.text(x, -0.9, " all vCPUs out of KVM_RUN", fontsize=8, color="#4e9a06", va="center")
        if m.resume_ns is not None:
            ax.axvline((m.resume_ns - t0) / 1000, color="#888", ls="--", lw=1)
            ax.text((m.resume_ns - t0) / 1000, -0.9, f" resume ({m.resume_side})", fontsize=8, color="#555", va="center")
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(len(st) - 0.4, -1.3)
        ax.set_xlim(0, total / 1000 * 1.18)
        ax.set_xlabel("µs after the source stopped")
        title = f"{m.label}: {m.status}" + (f" ({m.errno} in {m.failed_step})" if m.errno else "")
        ax.set_title(f"{title}; downtime {_fmt_us(total)}", fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    handles = [_patch(SOURCE_C, "source step"), _patch(DEST_C, "destination step")]
    if errnos:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], ls="", marker="x", color=ERR_C,
                              label="failed KVM call (" + ", ".join(sorted(errnos)) + ")"))  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncols=len(handles))
    return _finish(fig, "waterfall", caption)


def _patch(color: str, label: str):  # noqa: ANN202
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def _period_color(p: str) -> str:
    return PERIOD_C.get(p.split(" ")[0], "#75507b")


def latency(an: Any, caption: str) -> Figure:
    fig = MplFigure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    lat = an.deliveries
    for p in A.period_order(an.migs):
        v = lat.loc[lat["period"] == p, "latency_ns"].to_numpy()
        if not len(v):
            continue
        q = np.quantile(v, QGRID, method="inverted_cdf") / 1000
        ax1.step(q, QGRID, where="post", label=f"{p} (n={len(v):,})", color=_period_color(p))
    ax1.set_xscale("log")
    ax1.set_xlabel("latency (µs, log)")
    ax1.set_ylabel("fraction of deliveries")
    ax1.set_title("by when the raise was accepted", fontsize=10, loc="left")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    bv = an.by_vcpu
    if 0 < len(bv) <= BOX_MAX_VCPUS:
        stats = []
        for _, g in lat.groupby("vcpu")["latency_ns"]:
            a = g.to_numpy() / 1000
            p1, p25, p50, p75, p99 = np.quantile(a, [0.01, 0.25, 0.5, 0.75, 0.99], method="inverted_cdf")
            stats.append({"med": p50, "q1": p25, "q3": p75, "whislo": p1, "whishi": p99, "fliers": []})
        ax2.bxp(stats, showfliers=False, patch_artist=True,
                boxprops={"facecolor": "#c6d7ee"}, medianprops={"color": "#204a87"})  # fmt: skip
        ax2.set_xticks(range(1, len(bv) + 1), [str(v) for v in bv.index])
        ax2.set_title("per vCPU", fontsize=10, loc="left")
    elif len(bv):
        x = bv.index.to_numpy()
        for col, c in (("p50", "#204a87"), ("p99", "#f57900"), ("max", "#cc0000")):
            ax2.plot(x, bv[col].to_numpy() / 1000, lw=0.8, color=c, label=col)
        ax2.legend(fontsize=8)
        ax2.set_title(f"per vCPU ({len(bv)} vCPUs): p50, p99, max", fontsize=10, loc="left")
    ax2.set_yscale("log")
    ax2.set_xlabel("vCPU")
    ax2.set_ylabel("latency (µs, log)")
    ax2.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, "latency", caption)


def outcomes(an: Any, caption: str) -> Figure:
    lp = an.run.summary.get("lpis", {})
    names = ["delivered", "lost", "spurious", "misrouted", "withdrawn", "in_flight"]
    vals = [int(lp.get(k) or 0) for k in names]
    for k, v in (lp.get("dropped") or {}).items():
        names.append(f"dropped: {k}")
        vals.append(int(v))
    bad = {"lost", "spurious", "misrouted"}
    colors = [ERR_C if (n in bad and v) else ("#c17d11" if n.startswith("dropped") else "#4e9a06") for n, v in zip(names, vals, strict=True)]
    fig = MplFigure(figsize=(8, 0.34 * len(names) + 1.0))
    ax = fig.subplots()
    y = np.arange(len(names))
    ax.barh(y, vals, color=colors, height=0.6)
    ax.set_xscale("symlog", linthresh=1)
    top = max(vals + [1])
    ax.set_xlim(0, top * 3)
    for yi, v in enumerate(vals):
        ax.text(max(v, 0) * 1.1 + 0.05, yi, f"{v:,}", va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("count (symmetric log)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, "outcomes", caption)


def compare_downtime(ans: list[Any], labels: list[str], caption: str) -> Figure:
    fig = MplFigure(figsize=(10, 0.55 * len(ans) + 1.6))
    ax = fig.subplots()
    cmap: dict[str, str] = {}
    palette = ["#3465a4", "#729fcf", "#204a87", "#4e9a06", "#8ae234", "#f57900", "#fcaf3e", "#ce5c00",
               "#75507b", "#ad7fa8", "#c17d11", "#e9b96e", "#cc0000", "#ef2929", "#555753"]  # fmt: skip
    downs = [a.migs[0].downtime_ns for a in ans if a.migs and a.migs[0].downtime_ns]
    share = bool(downs) and max(downs) > 10 * min(downs)  # scales too far apart: each run to 100 %
    for yi, a in enumerate(ans):
        if not a.migs:
            continue
        m = a.migs[0]
        st = a.steps[a.steps["migration"] == m.index]
        t0 = m.stop_ns if m.stop_ns is not None else 0
        scale = (100 / m.downtime_ns) if share and m.downtime_ns else 1 / 1000
        for r in st.itertuples():
            c = cmap.setdefault(r.step, palette[len(cmap) % len(palette)])
            ax.barh(yi, r.dur_ns * scale, left=(r.start_ns - t0) * scale, color=c, height=0.6, edgecolor="white", lw=0.5)
        if m.downtime_ns is not None:
            x = 100 if share else m.downtime_ns / 1000
            ax.text(x, yi, f"  {_fmt_us(m.downtime_ns)} ({m.status})", va="center", fontsize=8)
    ax.set_yticks(range(len(ans)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("share of each run's downtime (%)" if share else "µs after the source stopped")
    ax.grid(axis="x", alpha=0.3)
    handles = [_patch(c, s) for s, c in cmap.items()]
    ax.legend(handles=handles, fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    right = 100 if share else max([(a.migs[0].downtime_ns or 0) for a in ans if a.migs] + [1]) / 1000
    ax.set_xlim(0, right * 1.35)
    fig.tight_layout()
    return _finish(fig, "compare-downtime", caption)


def compare_latency(ans: list[Any], labels: list[str], caption: str) -> Figure:
    fig = MplFigure(figsize=(8, 3.6))
    ax = fig.subplots()
    for a, lab in zip(ans, labels, strict=True):
        v = a.deliveries["latency_ns"].to_numpy()
        if not len(v):
            continue
        q = np.quantile(v, QGRID, method="inverted_cdf") / 1000
        ax.step(q, QGRID, where="post", label=f"{lab} (n={len(v):,})")
    ax.set_xscale("log")
    ax.set_xlabel("latency accepted → delivered (µs, log)")
    ax.set_ylabel("fraction of deliveries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, "compare-latency", caption)
