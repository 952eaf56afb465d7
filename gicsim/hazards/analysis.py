"""The hazards result (docs/hazards-json.md): classes, pairs, constraints, their check,
mechanisms, left-out steps and the other dimensions, from the summaries of a space's runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gicsim.hazards import classes as C
from gicsim.hazards import rules as R

MAX_EXPLAINED = 100  # classes whose representative is run again for explain's cause line


def _json_value(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def analyse(space: Any, runs: list[Any], meta: list[dict[str, Any]], summaries: list[dict[str, Any]],
            wall_s: float, source: str, explain: Callable[[dict[str, Any]], str | None] | None = None,
            ran: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The result object. ``explain`` (payload -> cause line or None) reruns a
    representative with its trace (``gicsim.hazards.mechanism.explain_run``); None: no causes.
    ``ran``: how many of the runs ran in ``wall_s`` (the rest were stored; default all)."""
    sigs = [C.signature(s) for s in summaries]
    keys = [C.key(s) for s in sigs]
    table: dict[str, dict[str, Any]] = {}
    for i, (k, sig) in enumerate(zip(keys, sigs, strict=True)):
        e = table.get(k)
        if e is None:
            table[k] = {"signature": sig, "label": C.label(sig), "clean": C.is_clean(sig), "count": 1, "first": i}
        else:
            e["count"] += 1
    causes: dict[int, str | None] = {}

    def cause_of(i: int) -> str | None:
        if explain is None or table[keys[i]]["clean"]:
            return None
        if i not in causes:
            causes[i] = explain(runs[i].scenario)
        return causes[i]

    ordered = sorted(table.values(), key=lambda e: (not e["clean"], -e["count"], e["label"]))
    out_classes = []
    for n, e in enumerate(ordered):
        i = e["first"]
        over = {k: v for k, v in runs[i].overrides.items() if k != "migration.destination.steps"}
        out_classes.append({
            "signature": e["signature"], "label": e["label"], "clean": e["clean"], "count": e["count"],
            "example_order": list(meta[i]["order"]), "example_overrides": _json_value(over),
            "cause": cause_of(i) if n < MAX_EXPLAINED else None,
        })  # fmt: skip

    # the rules: full orders at the rules combination
    rc = space.rules_combo
    index: dict[tuple[str, ...], int] = {}
    for i, m in enumerate(meta):
        if m["combo"] == rc and m["left_out"] is None:
            index[tuple(m["order"])] = i
    outcome = {o: table[keys[i]]["clean"] for o, i in index.items()}
    label_of = {o: table[keys[i]]["label"] for o, i in index.items()}
    steps = space.steps
    pairs = R.pairs(steps, outcome, label_of.__getitem__)
    cons, chk = R.derive(steps, outcome)
    by_pair = {(p["before"], p["after"]): p for p in pairs}
    mechanisms = []
    for a, b in cons:
        p = by_pair[(a, b)]
        ex = tuple(p["example_order"]) if p["example_order"] else None
        mechanisms.append({"before": a, "after": b, "class": p["class"],
                           "cause": cause_of(index[ex]) if ex else None,
                           "example_order": list(ex) if ex else None})  # fmt: skip
    left = []
    for i, m in enumerate(meta):
        if m["combo"] == rc and m["left_out"] is not None:
            e = table[keys[i]]
            left.append({"step": m["left_out"], "class": e["label"], "clean": e["clean"], "cause": cause_of(i)})
    dims = []
    names = list(space.combos[0][0]) if space.combos else []
    for dim in names:
        seen: dict[str, dict[str, int]] = {}
        values: dict[str, Any] = {}
        for i, m in enumerate(meta):
            v = space.combos[m["combo"]][0][dim]
            vk = json.dumps(v, sort_keys=True, default=str)
            values.setdefault(vk, v)
            counts = seen.setdefault(vk, {})
            lab = table[keys[i]]["label"]
            counts[lab] = counts.get(lab, 0) + 1
        for vk, counts in seen.items():
            dims.append({"name": dim, "value": _json_value(values[vk]),
                         "classes": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))})  # fmt: skip
    base = space.base
    return {
        "scenario": base["name"],
        "source": source,
        # the kernel the rules were derived on: the ``kernel`` dimension's value there, if any
        "kernel": _json_value((space.combos[rc][0].get("kernel") if space.combos else None)
                              or base.get("kernel")),
        "space": _json_value(space.dims),
        "runs": len(runs),
        "wall_s": round(wall_s, 3),
        "runs_per_s": round((len(runs) if ran is None else ran) / wall_s, 1) if wall_s > 0 else 0.0,
        "steps": list(steps),
        "reference_order": list(steps),
        "classes": out_classes,
        "clean_orders": [list(o) for o, ok in outcome.items() if ok],
        "pairs": pairs,
        "constraints": [[a, b] for a, b in cons],
        "constraint_check": chk,
        "mechanisms": mechanisms,
        "left_out": left,
        "dimensions": dims,
        "rules_at": _json_value(space.combos[rc][0]) if space.combos else {},
    }
