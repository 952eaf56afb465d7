"""The first screen of a run's report: what happened and why, before any table.

One headline (each migration's status and downtime; lost / spurious / misrouted / dropped
raises; KVM errors; the state comparison), the counts behind it, the scenario's expectations
apart from the outcome, then ``gicsim explain``'s cause lines for every section of its
"Outcomes" (:mod:`gicsim.present.explain.verdict`). The numbers are ``summary.json``'s.
"""

from __future__ import annotations

from typing import Any

from gicsim.present.explain.verdict import Outcome
from gicsim.present.explain.words import T, plural

MAX_FACTS = 8  # cause lines shown per section; the rest are in `gicsim explain`


def headline(oc: Outcome) -> str:
    """One sentence a reader cannot misread: the outcome, never the expectation verdict."""
    parts = [_migration_words(m) for m in oc.migrations] or ["No migration"]
    c = oc.counts
    bad = [f"**{plural(c['lost'], 'LPI raise')} lost**"] if c["lost"] else []
    bad += [f"**{plural(c[k], f'{k} delivery', f'{k} deliveries')}**" for k in ("spurious", "misrouted") if c[k]]
    if oc.dropped:
        bad.append(f"**{plural(sum(oc.dropped.values()), 'raise')} dropped**")
    if oc.errors:
        errnos = sorted({e for _, e in oc.errors})
        bad.append(f"**{plural(sum(oc.errors.values()), 'KVM error')}** ({', '.join(errnos)})")
    if oc.state_match is False:
        bad.append("**state mismatch**")
    if bad:
        what = ", ".join(bad)
    elif c["accepted"]:
        what = f"all {c['accepted']:,} accepted LPI raises delivered, once each, on their vCPU; no KVM error"
    else:
        what = "no LPI raise accepted; no KVM error"
    if oc.state_match is True and not bad:
        what += "; state matches"
    return "; ".join(parts) + " — " + what + "."


def _migration_words(m: dict[str, Any]) -> str:
    label = str(m["label"]).capitalize()
    if m["status"] in ("completed", "completed_with_errors"):
        s = f"**{label} {m['status'].replace('_', ' ')}** ({m['source']} → {m['destination']}"
        return s + (f", downtime {T(m['downtime_ns'])})" if m["downtime_ns"] is not None else ")")
    why = f" ({m['errno']} in `{m['failed_step']}`)" if m["errno"] else ""
    return f"**{label} {m['status']}**{why}, the VM resumed on {m['source']}"


def count_lines(oc: Outcome) -> list[str]:
    c = oc.counts

    def b(k: str) -> str:  # a count, bold when not zero
        return f"**{c[k]:,} {k}**" if c[k] else f"0 {k}"

    out = [
        f"LPIs: {b('lost')} of {c['accepted']:,} accepted raises; {b('spurious')} and {b('misrouted')} of "
        f"{c['delivered']:,} deliveries; {c['withdrawn']:,} withdrawn by the guest, {c['in_flight']:,} in flight at the end.",
        "Dropped: " + (f"**{sum(oc.dropped.values()):,}** (" + ", ".join(f"`{r}` {n:,}" for r, n in oc.dropped.items()) + ")."
                       if oc.dropped else "none."),
        "KVM errors: " + (", ".join(f"**{n} × {e}** in `{st}`" for (st, e), n in oc.errors.items()) + "."
                          if oc.errors else "none."),
        "State: " + {True: "the destination at resume matches the source at pause.",
                     False: "**mismatch**: the destination at resume differs from the source at pause.",
                     None: "not compared (no migration completed)."}[oc.state_match],
    ]  # fmt: skip
    if oc.expect_passed is None:
        out.append("Expectations: the scenario states none.")
    elif oc.expect_passed:
        out.append("Expectations: every expectation of the scenario holds (this says the scenario behaved as "
                   "written, not that the migration was healthy).")  # fmt: skip
    else:
        out.append("Expectations: **failed**: " + "; ".join(
            f"`{f['key']}` wanted {f['wanted']}, got {f['got']}" for f in oc.expect_failures) + ".")
    return out


def write(doc: Any, oc: Outcome) -> None:
    """The outcome block (HTML ``<section id="outcome">``), then the causes (``id="causes"``)."""
    doc.open("section", f'id="outcome" class="{"ok" if oc.healthy else "bad"}"')
    doc.h(2, "Outcome")
    doc.p(headline(oc))
    doc.bullets(count_lines(oc))
    doc.close("section")
    secs = [s for s in oc.sections if s.facts()]
    if not secs:
        return
    doc.open("section", 'id="causes"')
    doc.p("Why, in the words of `gicsim explain` (the cause lines of its Outcomes, each once):")
    for s in secs:
        facts = s.facts()
        doc.p(f"**{s.title}**")
        more = len(facts) - MAX_FACTS
        doc.bullets(facts[:MAX_FACTS] + ([f"… and {plural(more, 'more line')}: see `gicsim explain`."] if more > 0 else []))
    doc.close("section")


def write_comparison(doc: Any, ocs: list[Outcome], labels: list[str]) -> None:
    """A comparison's first block: each run's headline, before the side-by-side table."""
    doc.open("section", f'id="outcome" class="{"ok" if all(o.healthy for o in ocs) else "bad"}"')
    doc.h(2, "Outcomes")
    doc.bullets([f"`{lab}`: {headline(oc)}" for oc, lab in zip(ocs, labels, strict=True)])
    doc.close("section")
    doc.p("Runs side by side; each column is one run (scenario name or directory).")
