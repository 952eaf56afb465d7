"""A first timing report in Markdown: verdict, migration phases, LPI outcomes, latency."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gicsim.simulation import Result


def markdown(res: Result) -> str:
    s = res.summary
    sc = res.scenario
    out = [f"# {s['scenario']}", ""]
    if sc.description:
        out += [sc.description.strip(), ""]
    out += [
        f"Seed {s['seed']}, simulated {s['sim_ns'] / 1e6:.3f} ms, {s['events']} events, "
        f"{s['wall_s']} s wall.",
        "",
        "## Expectations",
        "",
        "All expectations hold." if s["expect"]["passed"] else "Failed expectations:",
        "",
    ]
    for f in s["expect"]["failures"]:
        out.append(f"- `{f['key']}`: wanted {f['wanted']}, got {f['got']}")
    for i, m in enumerate(s["migrations"]):
        out += ["", f"## Migration {i + 1}: {m['status']}", ""]
        dt = m["downtime_ns"]
        out.append(f"Downtime: {dt / 1e3:.1f} µs; -EBUSY: {m['ebusy']}." if dt is not None else "")
        out += ["", "| phase | start (µs) | end (µs) | duration (µs) |", "|---|---:|---:|---:|"]
        for name, p in m["phases"].items():
            out.append(
                f"| {name} | {p['start_ns'] / 1e3:.3f} | {p['end_ns'] / 1e3:.3f} | "
                f"{(p['end_ns'] - p['start_ns']) / 1e3:.3f} |"
            )
        if m["errors"]:
            out += ["", "| step | errno | at (µs) |", "|---|---|---:|"]
            out += [f"| {e['step']} | {e['errno']} | {e['t_ns'] / 1e3:.3f} |" for e in m["errors"]]
    lp = s["lpis"]
    out += ["", "## LPIs", "", "| outcome | count |", "|---|---:|"]
    for k in ("accepted", "delivered", "lost", "spurious", "misrouted", "withdrawn", "in_flight"):
        out.append(f"| {k} | {lp[k]} |")
    for k, n in lp["dropped"].items():
        out.append(f"| dropped: {k} | {n} |")
    lat = lp["latency_ns"]
    if lat["p50"] is not None:
        out += ["", f"Latency accepted → delivered: p50 {lat['p50']} ns, p99 {lat['p99']} ns, "
                f"max {lat['max']} ns."]  # fmt: skip
    out += ["", f"State match (source at pause vs destination at resume): {s['state_match']}.", ""]
    return "\n".join(out)


def write_markdown(res: Result, path: Path) -> None:
    path.write_text(markdown(res))
