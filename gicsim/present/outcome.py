"""What a run did, in words a reader cannot misread: the lines ``gicsim run`` prints.

The expectation verdict (did the run do what the scenario's ``expect`` says) is kept apart
from the outcome (what happened to the migration and the LPIs): a hazard scenario whose
expect holds is ``expect met — migration completed, 16 LPIs lost, state mismatch``, never a
bare "PASS" that reads like a healthy migration. Everything comes from ``summary.json``
(docs/scenario-format.md), so the same words can be made from a run directory.
"""

from __future__ import annotations

from typing import Any

from gicsim.scenario.kernel_backend import kernel_line

#: the outcome of a run in which nothing went wrong
NOTHING_LOST = "nothing lost"


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k:,} {one if k == 1 else (many or one + 's')}"


def _migration_words(migs: list[dict[str, Any]]) -> list[str]:
    if not migs:
        return ["no migration"]
    out = []
    several = len(migs) > 1
    for i, m in enumerate(migs):
        st = m["status"].replace("_", " ")
        name = f"migration {i + 1}" if several else "migration"
        errs = m.get("errors") or []
        if m["status"] in ("aborted", "failed") and errs:
            e = errs[-1]
            out.append(f"{name} {st} ({e['errno']} in {e['step']})")
        elif m["status"] == "completed_with_errors":
            late = ", ".join(f"{e['errno']} in {e['step']}" for e in errs[-3:])
            out.append(f"{name} {st} ({late})")
        else:
            out.append(f"{name} {st}")
    return out


def outcome(s: dict[str, Any]) -> str:
    """The outcome of the run in ``summary`` ``s``: the migrations' statuses, then every
    count that means harm (lost, spurious, misrouted, dropped MSIs, a state mismatch), or
    ``nothing lost``."""
    lp = s["lpis"]
    words = _migration_words(s["migrations"])
    harm = []
    if lp["lost"]:
        harm.append(_n(lp["lost"], "LPI") + " lost")
    if lp["spurious"]:
        harm.append(_n(lp["spurious"], "spurious delivery", "spurious deliveries"))
    if lp["misrouted"]:
        harm.append(_n(lp["misrouted"], "LPI") + " misrouted")
    dropped = {k: v for k, v in lp.get("dropped", {}).items() if v}
    if dropped:
        why = ", ".join(f"{k} {v:,}" for k, v in dropped.items())
        harm.append(_n(sum(dropped.values()), "MSI") + f" dropped ({why})")
    if not (lp["lost"] or lp["spurious"] or lp["misrouted"]):
        harm.insert(0, NOTHING_LOST)
    if s.get("state_match") is False:
        harm.append("state mismatch")
    return ", ".join(words + harm)


def verdict(s: dict[str, Any], has_expect: bool) -> str:
    """``expect met — <outcome>``, ``expect NOT met — <outcome>`` or, for a scenario without
    an ``expect``, the outcome alone."""
    if not has_expect:
        return outcome(s)
    return f"expect {'met' if s['expect']['passed'] else 'NOT met'} — {outcome(s)}"


def wall(seconds: float) -> str:
    """``wall 0.8 s``: three significant digits at most."""
    return f"wall {seconds:.3g} s"


def counts(s: dict[str, Any]) -> str:
    """The counts line: deliveries, EBUSY returns, events, wall time."""
    lp = s["lpis"]
    ebusy = sum(m["ebusy"] for m in s["migrations"])
    return (f"{lp['accepted']:,} accepted, {lp['delivered']:,} delivered, {ebusy:,} EBUSY; "
            f"{s['events']:,} events, {wall(s['wall_s'])}")  # fmt: skip


def failure_lines(s: dict[str, Any]) -> list[str]:
    """One ``expect.KEY: wanted W, got G`` line per failed key."""
    return [
        f"expect.{f['key']}: wanted {f['wanted']}, got {f['got']}" for f in s["expect"]["failures"]
    ]


def run_lines(s: dict[str, Any], has_expect: bool, results: str, written: list[str]) -> list[str]:
    """What ``gicsim run`` prints for one scenario: ``NAME: <verdict>``, what differed from
    the expect, the counts, where the results went (``results``, a directory) and the paths
    of the extra files written (``written``: the report, the Perfetto trace)."""
    out = [f"{s['scenario']}: {verdict(s, has_expect)}"]
    out += ["  " + ln for ln in failure_lines(s)]
    out.append("  " + counts(s))
    if "kernel" in s:
        out.append("  " + kernel_line(s["kernel"]))
    out.append(f"  results: {results}")
    out += [f"  {ln}" for ln in written]
    return out


def has_expect(expect: Any) -> bool:
    """Whether a scenario's ``expect`` checks anything (a key left out is not checked)."""
    return any(getattr(expect, k) is not None for k in type(expect).model_fields)
