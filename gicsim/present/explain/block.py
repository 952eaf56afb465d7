"""The verdict block ``explain`` leads with: each outcome class present, its count and the cause
the rules of :mod:`gicsim.present.explain.rules` found (or "no explanation found"), and the
detail of every cause with the trace rows it cites."""

from __future__ import annotations

from typing import Any

from gicsim.present.explain.context import Ctx
from gicsim.present.explain.evidence import Cause, evidence
from gicsim.present.explain.rules import NO_EXPLANATION, causes
from gicsim.present.explain.words import _wrap, plural


def label(oc: str, n: int) -> str:
    """``lost`` -> ``Lost: 16 raises``."""
    if oc == "lost":
        return f"Lost: {plural(n, 'raise')}"
    if oc in ("spurious", "misrouted"):
        return f"{oc.capitalize()}: {plural(n, 'delivery', 'deliveries')}"
    if oc.startswith("dropped:"):
        return f"Dropped as `{oc.split(':', 1)[1]}`: {plural(n, 'raise')}"
    if oc == "errors":
        return f"KVM errors: {plural(n, 'failed call')}"
    if oc == "state_mismatch":
        return "State mismatch (destination at resume vs source at pause)"
    return f"{oc.capitalize()}: {plural(n, 'migration')}"


def run_causes(cx: Ctx) -> list[tuple[str, int, list[Cause]]]:
    """The rules' results for a run (cached on its context)."""
    key = ("causes",)
    if key not in cx.cache:
        ev = evidence(cx.df, cx.verdict, cx.variants, cx.run.summary.get("state_match"))
        cx.cache[key] = causes(ev)
    return cx.cache[key]


def verdict_block(cx: Ctx) -> list[str]:
    found = run_causes(cx)
    out = ["## Verdict", ""]
    if not found:
        v = cx.verdict
        out += _wrap("- Healthy: " + (f"every accepted raise ({v.accepted:,}) was delivered once, on the vCPU the guest "
                                      "mapped it to; no raise dropped, no KVM error" if v.accepted else
                                      "no raise was accepted; no raise dropped, no KVM error")
                     + ("" if cx.run.summary.get("state_match") is None else ", state at resume matches") + ".")  # fmt: skip
        return out + [""]
    for oc, n, cs in found:
        out += _wrap(f"- {label(oc, n)} — " + ((cs[0].head or cs[0].text) if cs else NO_EXPLANATION + ".")
                     + (f" ({plural(len(cs) - 1, 'more cause')} below.)" if len(cs) > 1 else ""))  # fmt: skip
    return out + [""]


def cause_detail(cx: Ctx) -> list[str]:
    """Every cause found, with the rows it cites (``### Causes`` of the Outcomes)."""
    found = run_causes(cx)
    if not found:
        return []
    out = ["### Causes", ""]
    out += _wrap("Each outcome class, the rules that explain it and the trace rows each rests on (row "
                 "numbers of `trace.parquet`).") + [""]  # fmt: skip
    for k, (oc, n, cs) in enumerate(found, 1):
        out += _wrap(f"{k}. {label(oc, n)}:")
        if not cs:
            out += _wrap(f"- {NO_EXPLANATION}: no rule over the trace's mechanisms applies.", indent=1)
        for c in cs:
            out += _wrap(f"- {c.text} [rule `{c.rule}`]", indent=1)
            for r in c.cited:
                out += _wrap(f"{r}", indent=2)
        out.append("")
    return out


def as_data(found: list[tuple[str, int, list[Cause]]]) -> tuple[dict[str, Any], ...]:
    return tuple({"outcome": oc, "count": n, "causes": tuple(cs)} for oc, n, cs in found)
