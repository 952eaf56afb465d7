"""The mechanism behind a hazard: a representative run again, in this process, with its
full trace, and ``gicsim explain``'s cause line for it (``gicsim.present.explain.verdict``:
the Outcomes text of ``explain`` split into sections, groups and fact lines).

The cause line is explain's, as data (``Outcome.causes``: per outcome class present, the
causes its rules found over the trace): the cause cited by the most outcome classes (the
one behind the loss, the drops and the state mismatch alike, rather than a symptom of one
of them), the first such in explain's order. When no rule found a cause (or without
``Outcome.causes``, an older explain), the Outcomes text is read by its shape instead: a
failed KVM call of the migration section (``→ -E…``), else, in the first group of the first
section about raises, the first fact after the last one saying which steps ran out of the
default order or were left out (explain states the consequence right after it); None
when explain has neither.
"""

from __future__ import annotations

from typing import Any

KINDS = ("lost", "spurious", "misrouted", "dropped")
ORDER_FACTS = ("(the default order runs it", "was left out of the destination steps")
FAILED_CALL = " → -"


def _is_order_fact(f: str) -> bool:
    return any(w in f for w in ORDER_FACTS)


def cause_line(oc: Any) -> str | None:
    """explain's cause line of an Outcome (None: explain gave none)."""
    found = getattr(oc, "causes", None)
    if found is not None and hasattr(oc, "cause_line"):
        cited: dict[str, int] = {}
        for c in found:
            for text in dict.fromkeys(x.text for x in c["causes"]):
                cited[text] = cited.get(text, 0) + 1
        if cited:
            return max(cited, key=lambda s: cited[s])  # the first of the most cited (dicts keep order)
    return _from_sections(oc)


def _from_sections(oc: Any) -> str | None:
    for s in oc.sections:
        if s.kind == "migration":
            for f in s.facts():
                if FAILED_CALL in f:
                    return f
    for kind in KINDS:
        for s in oc.sections:
            if s.kind != kind:
                continue
            for g in s.groups:
                facts = list(g.facts)
                at = [i for i, f in enumerate(facts) if _is_order_fact(f)]
                if not at:
                    continue
                after = [f for f in facts[at[-1] + 1:] if not _is_order_fact(f)]
                before = [f for f in facts[:at[0]] if not _is_order_fact(f)]
                if after or before:
                    return after[0] if after else before[-1]
    return None


def explain_run(payload: dict[str, Any]) -> str | None:
    """Run one space point again with its trace; explain's cause line (None when the run
    is healthy or explain finds nothing to say)."""
    from gicsim.hazards.runs import scenario_for
    from gicsim.present.explain.verdict import outcome
    from gicsim.present.rundata import from_result
    from gicsim.sim.simulation import run

    res = run(scenario_for(payload))
    oc = outcome(from_result(res))
    if oc.healthy:
        return None
    return cause_line(oc)
