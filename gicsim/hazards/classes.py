"""Outcome classes of hazard runs, from the summary alone (the oracles' counts, SPEC §6).

A run's signature is (migration status, KVM errors by step and errno, lost > 0,
spurious > 0, misrouted > 0, dropped by reason > 0, state_match). A run is clean when every
migration completed with no KVM error, nothing was lost, spurious, misrouted or dropped,
and the destination's state matched the source's.
"""

from __future__ import annotations

import json
from typing import Any


def signature(summary: dict[str, Any]) -> dict[str, Any]:
    migs = summary.get("migrations") or []
    status = ",".join(m["status"] for m in migs) or "none"
    errors: dict[str, int] = {}
    for m in migs:
        for e in m.get("errors", []):
            k = f"{e['step']}:{e['errno']}"
            errors[k] = errors.get(k, 0) + 1
    lp = summary["lpis"]
    return {
        "status": status,
        "errors": errors,
        "lost": lp["lost"] > 0,
        "spurious": lp["spurious"] > 0,
        "misrouted": lp["misrouted"] > 0,
        "dropped": {r: True for r, n in sorted(lp["dropped"].items()) if n > 0},
        "state_match": summary.get("state_match"),
    }


def is_clean(sig: dict[str, Any]) -> bool:
    return (all(s == "completed" for s in sig["status"].split(",")) and not sig["errors"]
            and not (sig["lost"] or sig["spurious"] or sig["misrouted"]) and not sig["dropped"]
            and sig["state_match"] is True)  # fmt: skip


def key(sig: dict[str, Any]) -> str:
    """A stable, hashable form of a signature."""
    return json.dumps(sig, sort_keys=True)


def label(sig: dict[str, Any]) -> str:
    """Short human text: ``completed, clean`` or e.g. ``failed (its_restore_tables EFAULT x1)``,
    ``completed; lost; dropped its_disabled; state differs``."""
    if is_clean(sig):
        return f"{sig['status']}, clean"
    head = sig["status"]
    if sig["errors"]:
        errs = ", ".join(f"{k.replace(':', ' ')} x{n}" for k, n in sig["errors"].items())
        head += f" ({errs})"
    parts = [head]
    parts += [w for w in ("lost", "spurious", "misrouted") if sig[w]]
    if sig["dropped"]:
        parts.append("dropped " + ", ".join(sig["dropped"]))
    sm = sig["state_match"]
    if sm is False:
        parts.append("state differs")
    elif sm is None:
        parts.append("no state compared")
    return "; ".join(parts)
