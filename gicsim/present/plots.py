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
DROP_C = "#c17d11"
LOST_ROW, DROP_ROW = -2.4, -1.7  # y of the waterfall's MSI rows (above the vCPU / resume labels)
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


def _num(v: float, _pos: Any = None) -> str:
    """A tick label in plain digits: 0.5, 2, 40, 1,000, 20,000 (no 10^x mantissas)."""
    if v >= 1:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def log_ticks(ax: Any, which: str) -> None:
    """Readable ticks on a log axis whose limits are already set: labelled majors at 1-2-5 per
    decade when they fit the axis, else every (n-th) decade, a linear MaxNLocator when the range
    spans less than one decade; plain-digit labels, unlabelled minors: labels never overlap."""
    from matplotlib import ticker

    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    lo, hi = max(min(lo, hi), 1e-9), max(lo, hi)
    decades = np.log10(hi / lo)
    bbox = ax.get_position()
    inches = (bbox.width * ax.figure.get_figwidth()) if which == "x" else (bbox.height * ax.figure.get_figheight())
    room = max(3, int(inches / (0.85 if which == "x" else 0.3)))  # labels that fit side by side
    major: Any = None
    if decades < 1:
        major = ticker.MaxNLocator(nbins=min(5, room), steps=[1, 2, 2.5, 5, 10])
    else:
        for subs in ((1.0, 2.0, 5.0), (1.0, 3.0), (1.0,)):
            e = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
            n = int(np.sum([(lo <= v <= hi) for v in (10.0 ** e[:, None] * np.array(subs)).ravel()]))
            if 2 <= n <= room:
                major = ticker.LogLocator(base=10, subs=subs, numticks=room + 2)
                break
        if major is None:  # every n-th decade: even one label per decade does not fit
            major = ticker.LogLocator(base=10, subs=(1.0,), numticks=room)
    axis.set_major_locator(major)
    axis.set_major_formatter(ticker.FuncFormatter(_num))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=[float(k) for k in range(2, 10)], numticks=12))
    axis.set_minor_formatter(ticker.NullFormatter())


def waterfall(an: Any, caption: str) -> Figure:
    migs = [m for m in an.migs if not an.steps[an.steps["migration"] == m.index].empty]
    n = max(1, len(migs))
    heights = [max(2.0, 0.32 * (len(an.steps[an.steps["migration"] == m.index]) + 4)) for m in migs] or [2.0]
    fig = MplFigure(figsize=(9.5, sum(heights) + 0.6 * n))
    axes = fig.subplots(n, 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    if not migs:
        axes[0].text(0.5, 0.5, "no migration", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
        return _finish(fig, "waterfall", caption)
    errnos: set[str] = set()
    msi_kinds: set[str] = set()
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
        err = an.errors[an.errors["migration"] == m.index] if len(an.errors) else an.errors
        bad: dict[int, str] = {}  # step row -> "3× -EBUSY": the steps whose KVM calls returned an errno
        if len(err):
            pos = {(r.step, r.side): i for i, r in enumerate(st.itertuples())}
            ey = [pos.get((s, sd), np.nan) for s, sd in zip(err["step"], err["side"], strict=True)]
            ax.scatter((err["t"].to_numpy() - t0) / 1000, ey, marker="x", color=ERR_C, s=40, zorder=5)
            errnos.update(err["errno"])
            for (s, sd), g in err.groupby(["step", "side"], sort=False):
                if (s, sd) in pos:
                    bad[pos[(s, sd)]] = ", ".join(f"{n}× -{e}" for e, n in g["errno"].value_counts(sort=False).items())
        for yi, (lf, w) in enumerate(zip(left, width, strict=True)):
            txt = _fmt_us(w * 1000) + (f"  {bad[yi]}" if yi in bad else "")
            ax.text(lf + w + total / 1000 * 0.008, yi, txt, va="center", fontsize=8,
                    **({"color": ERR_C, "fontweight": "bold"} if yi in bad else {}))  # fmt: skip
        marks = _msi_marks(an, m, t0, end)
        row_names = {LOST_ROW: "MSIs later lost", DROP_ROW: "MSIs dropped"}
        for mx, my, mk, c, txt in marks:
            ax.scatter([mx], [my], marker=mk, color=c, s=36, zorder=5, clip_on=False)
            right = mk == ">" or mx > 0.55 * total / 1000  # the label to its left, inside the axes
            ax.annotate(txt, (mx, my), xytext=(-7 if right else 4, 0), textcoords="offset points", fontsize=8,
                        color=c, va="center", ha="right" if right else "left", fontweight="bold")  # fmt: skip
        msi_kinds.update(c for _, _, _, c, _ in marks)
        rows = sorted({r for _, r, _, _, _ in marks})
        out = an.vcpu_out.get(m.index)
        if out is not None:
            x = (out - t0) / 1000
            ax.axvline(x, color="#4e9a06", ls=":", lw=1.2)
            ax.text(x, -0.9, " all vCPUs out of KVM_RUN", fontsize=8, color="#4e9a06", va="center")
        if m.resume_ns is not None:
            ax.axvline((m.resume_ns - t0) / 1000, color="#888", ls="--", lw=1)
            ax.text((m.resume_ns - t0) / 1000, -0.9, f" resume ({m.resume_side})", fontsize=8, color="#555", va="center")
        ax.set_yticks(list(y) + rows, labels + [row_names[r] for r in rows], fontsize=8)
        for yi, lab in enumerate(ax.get_yticklabels()):
            if yi in bad or yi >= len(st):
                lab.set_color(ERR_C if yi < len(st) or rows[yi - len(st)] == LOST_ROW else DROP_C)
        ax.set_ylim(len(st) - 0.4, (rows[0] - 0.5) if rows else -1.3)
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
    if msi_kinds:
        from matplotlib.lines import Line2D

        for c, lab in ((ERR_C, "MSI accepted, later lost"), (DROP_C, "MSI dropped")):
            if c in msi_kinds:
                handles.append(Line2D([], [], ls="", marker="v", color=c, label=lab))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncols=len(handles))
    return _finish(fig, "waterfall", caption)


def _bursts(t: np.ndarray, gap: float) -> list[np.ndarray]:
    """Sorted times split where consecutive ones are more than ``gap`` apart."""
    t = np.sort(t)
    if not len(t):
        return []
    return np.split(t, np.flatnonzero(np.diff(t) > gap) + 1)


def _msi_marks(an: Any, m: Any, t0: int, end: int) -> list[tuple[float, float, str, str, str]]:
    """(x, row, marker, colour, label) for the MSI rows of a migration's waterfall: the raises
    the oracles found lost (at their accept) and the raises the ITS dropped (per reason), from
    the end of the previous migration to the end of this one (the last one: to the end of the
    run). Bursts inside the window are marked where they start; those before the stop or after
    the downtime are gathered into one mark at that edge, saying so."""
    prev = max((x.end_ns for x in an.migs if x.index < m.index and x.end_ns is not None), default=-1)
    last = m.index == max(x.index for x in an.migs)
    hi = (1 << 62) if last or m.end_ns is None else m.end_ns
    total = max(1, end - t0)
    groups: list[tuple[np.ndarray, str, str, float]] = []
    oc = getattr(an, "outcome", None)
    if oc is not None and oc.lost_t:
        groups.append((np.asarray(oc.lost_t, dtype=np.int64), "lost", ERR_C, LOST_ROW))
    dr = an.acc[an.acc["kind"] == "drop"]
    for reason, g in dr.groupby("drop_reason", sort=True):
        groups.append((g["t"].to_numpy(np.int64), f"dropped ({reason})", DROP_C, DROP_ROW))
    out: list[tuple[float, float, str, str, str]] = []
    for tt, what, c, row in groups:
        tt = np.sort(tt[(tt > prev) & (tt <= hi)])
        before, inside, after = tt[tt < t0], tt[(tt >= t0) & (tt <= end)], tt[tt > end]
        if len(before):
            ago = f"accepted {_fmt_us(t0 - int(before[-1]))}" if what == "lost" else f"the last {_fmt_us(t0 - int(before[-1]))}"
            out.append((0.0, row, "<", c, f"{len(before):,} {what}, {ago} before the stop"))
        bursts = _bursts(inside, total / 20)
        for b in bursts:
            out.append(((int(b[0]) - t0) / 1000, row, "v", c, f"{len(b):,} {what}"))
        if len(after) and bursts:  # said by the last burst's label
            x, r, mk, c, txt = out[-1]
            out[-1] = (x, r, mk, c, f"{txt}; {len(after):,} more after the downtime")
        elif len(after):  # at the right edge, its label to its left
            out.append((total / 1000 * 1.18, row, ">", c, f"{len(after):,} {what} after the downtime"))
    return out


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
    log_ticks(ax1, "x")
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
    log_ticks(ax2, "y")
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
    from matplotlib import ticker

    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_num))  # 0, 1, 10, 100: no 10^x
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
    log_ticks(ax, "x")
    ax.set_xlabel("latency accepted → delivered (µs, log)")
    ax.set_ylabel("fraction of deliveries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, "compare-latency", caption)


def sweep(df: Any, x: str, y: str, group: str | None, caption: str) -> Figure:
    """A sweep's chosen ``report: {x, y, group}``: every run as a dot, the mean per x as a line
    (one per group); a non-numeric x is drawn as categories in the order of first appearance."""
    import pandas as pd

    fig = MplFigure(figsize=(8, 3.8))
    ax = fig.subplots()
    d = df[[c for c in dict.fromkeys([x, y, group]) if c]].copy()
    d[y] = pd.to_numeric(d[y], errors="coerce")
    d = d[d[y].notna()]
    numeric = pd.api.types.is_numeric_dtype(d[x]) and not pd.api.types.is_bool_dtype(d[x])
    cats = list(dict.fromkeys(str(v) for v in d[x])) if not numeric else []
    xs = d[x].to_numpy(float) if numeric else np.array([cats.index(str(v)) for v in d[x]], dtype=float)
    d = d.assign(_x=xs)
    palette = ["#3465a4", "#f57900", "#4e9a06", "#cc0000", "#75507b", "#c17d11", "#555753", "#729fcf"]
    keys = list(dict.fromkeys(str(v) for v in d[group])) if group else [""]
    for i, k in enumerate(keys):
        g = d[d[group].astype(str) == k] if group else d
        c = palette[i % len(palette)]
        ax.scatter(g["_x"], g[y], s=14, alpha=0.45, color=c, lw=0)
        mean = g.groupby("_x", sort=True)[y].mean()
        ax.plot(mean.index, mean.to_numpy(), marker="o", ms=4, lw=1.4, color=c, label=k or f"mean {y}")
    if not numeric:
        ax.set_xticks(range(len(cats)), cats, fontsize=8, rotation=20 if max(map(len, cats), default=0) > 12 else 0)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if group:
        ax.legend(fontsize=8, title=group, title_fontsize=8)
    fig.tight_layout()
    return _finish(fig, "sweep", caption)
