"""A run's outcome as data, for the first screen of a report: the counts the oracles gave
(``summary.json``), the KVM errors and the state comparison, and ``explain``'s cause lines.

Nothing is decided here. The counts are the summary's (the oracles of docs/summary-json.md); the cause lines are
the text ``gicsim explain`` prints under "Outcomes" (:func:`gicsim.present.explain.outcomes._outcomes`),
split back into its sections (``### Migration 1: …``, ``### Lost: …``), their numbered groups
and their ``-`` fact lines, so a report shows the same words as ``explain`` and follows its
rules wherever they change.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from gicsim.present.rundata import RunData

BAD = ("lost", "spurious", "misrouted")


@attrs.frozen
class Group:
    head: str  # "LPIs 8193, 8195 (2 raises):" (empty for a migration section's own bullets)
    facts: tuple[str, ...]


@attrs.frozen
class Section:
    kind: str  # "migration", "lost", "spurious", "misrouted", "dropped"
    title: str  # explain's heading without "### "
    groups: tuple[Group, ...]

    def facts(self) -> list[str]:
        """Every fact line of the section once, in order (groups often share most of theirs)."""
        seen: dict[str, None] = {}
        for g in self.groups:
            for f in g.facts:
                seen.setdefault(f, None)
        return list(seen)


@attrs.frozen
class Outcome:
    counts: dict[str, int]  # accepted, delivered, lost, spurious, misrouted, withdrawn, in_flight
    dropped: dict[str, int]  # reason -> raises (only reasons that occurred)
    errors: dict[tuple[str, str], int]  # (step, errno) -> failed KVM calls, in order of first failure
    state_match: bool | None  # None: no completed migration to compare
    migrations: tuple[dict[str, Any], ...]  # status, errno, failed_step, downtime_ns, source, destination
    expect_passed: bool | None  # None: the scenario states no expectation
    expect_failures: tuple[dict[str, Any], ...]
    sections: tuple[Section, ...] = ()
    lost_t: tuple[int, ...] = ()  # when each lost raise was accepted (the oracle's list; with causes)
    #: the cause rules' results as data: per outcome class present, {"outcome", "count",
    #: "causes": (gicsim.present.explain.evidence.Cause, ...)} (empty causes: no explanation found)
    causes: tuple[dict[str, Any], ...] = ()

    def cause_line(self, outcome: str | None = None) -> str | None:
        """The first cause's text for ``outcome`` (default: the first class present)."""
        for c in self.causes:
            if outcome is None or c["outcome"] == outcome:
                return c["causes"][0].text if c["causes"] else None
        return None

    @property
    def healthy(self) -> bool:
        return (not any(self.counts.get(k) for k in BAD) and not self.dropped and not self.errors
                and self.state_match is not False
                and all(m["status"] == "completed" for m in self.migrations))  # fmt: skip


def outcome(run: RunData, migs: list[Any] | None = None, causes: bool = True) -> Outcome:
    """The outcome of ``run``; ``migs`` (:func:`gicsim.judge.analysis.migrations`) when the caller
    has them. The cause lines (and lost raises' accept times) are gathered only when ``causes``
    and the run is not healthy: building explain's context costs seconds on big runs."""
    from gicsim.judge import analysis as A

    s = run.summary
    lp = s.get("lpis", {})
    counts = {k: int(lp.get(k) or 0) for k in ("accepted", "delivered", "lost", "spurious", "misrouted",
                                                "withdrawn", "in_flight")}  # fmt: skip
    dropped = {k: int(v) for k, v in (lp.get("dropped") or {}).items() if v}
    errors: dict[tuple[str, str], int] = {}
    for m in s.get("migrations", []):
        for e in m.get("errors", []):
            errors[(e["step"], e["errno"])] = errors.get((e["step"], e["errno"]), 0) + 1
    if migs is None:
        migs = A.migrations(run.trace, s, run.scenario)
    mrows = tuple({"label": m.label, "status": m.status, "errno": m.errno, "failed_step": m.failed_step,
                   "downtime_ns": m.downtime_ns, "source": m.source, "destination": m.destination}
                  for m in migs)  # fmt: skip
    exp = s.get("expect") or {}
    oc = Outcome(counts, dropped, errors, s.get("state_match"), mrows,
                 exp.get("passed") if exp else None, tuple(exp.get("failures", [])))  # fmt: skip
    if not causes or oc.healthy:  # nothing to explain: no explain context (seconds on big runs)
        return oc
    from gicsim.present.explain.block import as_data, run_causes
    from gicsim.present.explain.context import context
    from gicsim.present.explain.outcomes import _outcomes

    cx = context(run)
    return attrs.evolve(oc, sections=tuple(parse_sections(_outcomes(cx))),
                        lost_t=tuple(int(t) for t, _ in cx.verdict.lost_lpis),
                        causes=as_data(run_causes(cx)))  # fmt: skip


_ITEM = re.compile(r"^(?:\d+\. |- )")


def parse_sections(lines: list[str]) -> list[Section]:
    """explain's Outcomes lines -> sections. A wrapped line continues the item above it (it is
    indented by the hang, never a multiple of four); an item is a numbered group or a ``-`` fact."""
    items: list[tuple[int, str]] = []  # (indent, text) of each unwrapped line
    for raw in lines:
        if not raw.strip():
            items.append((0, ""))
            continue
        ind = len(raw) - len(raw.lstrip(" "))
        text = raw.strip()
        if ind % 4 and items and items[-1][1]:
            items[-1] = (items[-1][0], items[-1][1] + " " + text)
        else:
            items.append((ind, text))
    out: list[Section] = []
    kind = title = ""
    groups: list[Group] = []
    head: str | None = None
    facts: list[str] = []

    def close_group() -> None:
        nonlocal head, facts
        if head is not None or facts:
            groups.append(Group(head or "", tuple(facts)))
        head, facts = None, []

    def close_section() -> None:
        nonlocal groups
        close_group()
        if title:
            out.append(Section(kind, title, tuple(groups)))
        groups = []

    for ind, text in items:
        if text.startswith("### "):
            close_section()
            title = text[4:]
            word = title.split(":")[0].split(" ")[0].lower()
            kind = word if word in ("lost", "spurious", "misrouted", "dropped", "causes") else "migration"
        elif not title or not text:
            continue
        elif ind == 0 and re.match(r"^\d+\. ", text):
            close_group()
            head = _ITEM.sub("", text, count=1)
        elif text.startswith("- "):
            facts.append(text[2:])
        elif ind == 0:  # a closing sentence ("Every accepted raise was delivered ...")
            close_section()
            title = ""
    close_section()
    return out
