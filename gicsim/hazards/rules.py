"""Ordering rules derived from an outcome table (order -> clean?), by exhaustion.

- pairs: for every ordered pair (a, b), take each clean order with b right after a and
  transpose a and b (all else as in that clean order; only when no clean order has them
  adjacent, every clean order with a before b); the pair is a hazard when one of those
  orders ran and is not clean.
- the candidate constraints: P = {(a, b): a precedes b in every clean order}, transitively
  reduced (``networkx.transitive_reduction``);
- the check: every order run that satisfies the set must be clean and every order that
  violates a member must not be; where the clean set is not exactly the linear extensions
  of a partial order, the exceptions are counted, with examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

MAX_EXAMPLES = 5


def _pos(order: tuple[str, ...]) -> dict[str, int]:
    return {s: i for i, s in enumerate(order)}


def transpose(order: tuple[str, ...], a: str, b: str) -> tuple[str, ...]:
    p = _pos(order)
    o = list(order)
    o[p[a]], o[p[b]] = b, a
    return tuple(o)


def preferred(clean: list[tuple[tuple[str, ...], dict[str, int]]], a: str, b: str) -> Iterator[tuple[str, ...]]:
    """The clean orders (with their positions) to transpose a and b in: those where b
    follows a directly (the transposition changes nothing but the order of a and b), in
    table order; only when there is none, those with a anywhere before b."""
    adjacent = False
    for o, p in clean:
        if p[b] == p[a] + 1:
            adjacent = True
            yield o
    if adjacent:
        return
    for o, p in clean:
        if p[a] + 1 < p[b]:
            yield o


def pairs(steps: tuple[str, ...], outcome: dict[tuple[str, ...], bool],
          cls: Callable[[tuple[str, ...]], str]) -> list[dict[str, Any]]:  # fmt: skip
    """One entry per ordered pair a != b (in step order): does b before a (else as in a
    clean order) lead to a hazard, of which class, with the first such order."""
    clean = [(o, _pos(o)) for o, ok in outcome.items() if ok]
    out = []
    for a in steps:
        for b in steps:
            if a == b:
                continue
            found = None
            for o in preferred(clean, a, b):
                t = transpose(o, a, b)
                if t in outcome and not outcome[t]:
                    found = t
                    break
            out.append({"before": a, "after": b, "hazard": found is not None,
                        "class": cls(found) if found else None,
                        "example_order": list(found) if found else None})  # fmt: skip
    return out


def precedence(steps: tuple[str, ...], clean: Iterable[tuple[str, ...]]) -> set[tuple[str, str]]:
    """P: the pairs (a, b) with a before b in every clean order (empty without clean orders)."""
    clean = list(clean)
    if not clean:
        return set()
    ps = [_pos(o) for o in clean]
    return {(a, b) for a in steps for b in steps if a != b and all(p[a] < p[b] for p in ps)}


def reduce(steps: tuple[str, ...], p: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The transitive reduction of P (a DAG: it is a strict order), in step order."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(steps)
    g.add_edges_from(p)
    red = set(nx.transitive_reduction(g).edges())
    rank = _pos(steps)
    return sorted(red, key=lambda e: (rank[e[0]], rank[e[1]]))


def satisfies(order: tuple[str, ...], constraints: Iterable[tuple[str, str]]) -> bool:
    p = _pos(order)
    return all(p[a] < p[b] for a, b in constraints)


def check(outcome: dict[tuple[str, ...], bool], constraints: list[tuple[str, str]]) -> dict[str, Any]:
    """Whether the constraints separate clean orders from hazardous ones, exactly."""
    clean_violating = []
    hazard_satisfying = []
    for o, ok in outcome.items():
        sat = satisfies(o, constraints)
        if ok and not sat:
            clean_violating.append(o)
        elif sat and not ok:
            hazard_satisfying.append(o)
    ex = (hazard_satisfying + clean_violating)[:MAX_EXAMPLES]
    return {"holds": not clean_violating and not hazard_satisfying and bool(outcome),
            "clean_violating": len(clean_violating), "hazard_satisfying": len(hazard_satisfying),
            "examples": [list(o) for o in ex]}  # fmt: skip


def derive(steps: tuple[str, ...], outcome: dict[tuple[str, ...], bool]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(the minimal constraint set, its check) for an outcome table over full orders."""
    cons = reduce(steps, precedence(steps, [o for o, ok in outcome.items() if ok]))
    return cons, check(outcome, cons)
