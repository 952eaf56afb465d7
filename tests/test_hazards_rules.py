"""gicsim hazards, the rules on outcome tables built by hand: pairs, the minimal constraint
set (transitive reduction of P) and its exact check, including a clean set that is not the
set of linear extensions of any partial order."""

from __future__ import annotations

import itertools

from gicsim.hazards import classes as C
from gicsim.hazards import rules as R

STEPS = ("a", "b", "c", "d")
ALL = list(itertools.permutations(STEPS))


def table(clean):
    return {o: clean(o) for o in ALL}


def test_a_partial_order_is_rediscovered_exactly():
    # clean iff a < c and b < c (c after both), d free: 24 * 1/3 = 8 clean orders
    out = table(lambda o: o.index("a") < o.index("c") and o.index("b") < o.index("c"))
    assert sum(out.values()) == 8
    cons, chk = R.derive(STEPS, out)
    assert cons == [("a", "c"), ("b", "c")]
    assert chk == {"holds": True, "clean_violating": 0, "hazard_satisfying": 0, "examples": []}


def test_transitive_pairs_are_reduced_away():
    # a chain a < b < c < d: P has all 6 forward pairs, the minimal set only the 3 links
    out = table(lambda o: o == STEPS)
    assert R.precedence(STEPS, [STEPS]) == {(x, y) for i, x in enumerate(STEPS) for y in STEPS[i + 1:]}
    cons, chk = R.derive(STEPS, out)
    assert cons == [("a", "b"), ("b", "c"), ("c", "d")]
    assert chk["holds"] is True


def test_a_clean_set_that_is_not_order_shaped_is_caught():
    # clean: a before b, unless d comes before both (a disjunction no partial order states)
    def clean(o):
        p = {s: i for i, s in enumerate(o)}
        return p["a"] < p["b"] or p["d"] < min(p["a"], p["b"])

    out = table(clean)
    cons, chk = R.derive(STEPS, out)
    assert cons == []  # (a, b) is broken by d-first clean orders, so P is empty
    assert chk["holds"] is False
    # the hazardous orders all satisfy the (empty) set: b before a with d not first of the three
    bad = [o for o in ALL if not clean(o)]
    assert chk["hazard_satisfying"] == len(bad) == 8
    assert chk["clean_violating"] == 0
    assert [tuple(e) for e in chk["examples"]] == bad[:5]


def test_an_empty_clean_set_never_holds():
    cons, chk = R.derive(STEPS, table(lambda o: False))
    assert cons == [] and chk["holds"] is False and chk["hazard_satisfying"] == 24


def test_pairs_transpose_adjacent_steps_of_a_clean_order():
    out = table(lambda o: o.index("a") < o.index("c") and o.index("b") < o.index("c"))
    pairs = {(p["before"], p["after"]): p for p in R.pairs(STEPS, out, lambda o: "L" + "".join(o))}
    assert len(pairs) == 12
    p = pairs[("a", "c")]
    # the first clean order (table order) with c right after a: b, a, c, d -> b, c, a, d
    assert p["hazard"] is True and p["example_order"] == ["b", "c", "a", "d"] and p["class"] == "Lbcad"
    q = pairs[("a", "b")]
    assert q["hazard"] is False and q["class"] is None and q["example_order"] is None
    assert pairs[("c", "d")]["hazard"] is False  # moving d before c never breaks a < c, b < c
    assert {k for k, v in pairs.items() if v["hazard"]} == {("a", "c"), ("b", "c")}


def test_signature_label_and_clean():
    s = {"migrations": [{"status": "failed", "errors": [{"step": "its_restore_tables", "errno": "EFAULT", "t_ns": 1}]}],
         "lpis": {"lost": 0, "spurious": 0, "misrouted": 0, "dropped": {"unmapped": 3, "its_disabled": 0}},
         "state_match": None}  # fmt: skip
    sig = C.signature(s)
    assert sig == {"status": "failed", "errors": {"its_restore_tables:EFAULT": 1}, "lost": False,
                   "spurious": False, "misrouted": False, "dropped": {"unmapped": True}, "state_match": None}
    assert not C.is_clean(sig)
    assert C.label(sig) == "failed (its_restore_tables EFAULT x1); dropped unmapped; no state compared"
    ok = {"migrations": [{"status": "completed", "errors": []}],
          "lpis": {"lost": 0, "spurious": 0, "misrouted": 0, "dropped": {"unmapped": 0}}, "state_match": True}
    assert C.is_clean(C.signature(ok)) and C.label(C.signature(ok)) == "completed, clean"
    ok["state_match"] = False
    assert not C.is_clean(C.signature(ok)) and C.label(C.signature(ok)) == "completed; state differs"


def test_the_cause_line_is_the_cause_most_outcomes_cite():
    from types import SimpleNamespace as NS

    from gicsim.hazards.mechanism import cause_line
    from gicsim.present.explain.verdict import Group, Section

    symptom, root = NS(text="MSIs reached a disabled ITS"), NS(text="CTLR was written before the BASERs")
    oc = NS(causes=({"outcome": "dropped:its_disabled", "count": 24, "causes": (symptom, root)},
                    {"outcome": "state_mismatch", "count": 1, "causes": (root,)}),
            cause_line=lambda: None, sections=())  # fmt: skip
    assert cause_line(oc) == root.text
    # no rule found a cause: the failed KVM call of explain's migration section, else None
    mig = Section("migration", "Migration 1: failed", (Group("", ("Downtime 1 µs.", "SET_GITS_CBASER → -ENXIO ×1.")),))
    assert cause_line(NS(causes=({"outcome": "failed", "count": 1, "causes": ()},), cause_line=lambda: None,
                         sections=(mig,))) == "SET_GITS_CBASER → -ENXIO ×1."  # fmt: skip
    assert cause_line(NS(causes=(), cause_line=lambda: None, sections=())) is None
