"""The hazard report (gicsim.hazards.report), its precedence matrix (plots) and the comparison
with the documented orders (compare), on a hand-made result that follows the JSON contract
of docs/hazards-json.md: 4 steps (memory, redistributors, its_restore_tables, gits_ctlr),
the 24 orders plus each step left out (28 runs), clean exactly when memory and
redistributors precede its_restore_tables and its_restore_tables precedes gits_ctlr."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from gicsim.hazards import compare as C
from gicsim.hazards import plots as P
from gicsim.hazards import report as R
from gicsim.scenario.constants import DEFAULT_DEST_STEPS, DEST_STEPS

FIXTURE = Path(__file__).parent / "data" / "hazards-small.json"
STEPS = ["memory", "redistributors", "its_restore_tables", "gits_ctlr"]
CONSTRAINTS = [["memory", "its_restore_tables"], ["redistributors", "its_restore_tables"],
               ["its_restore_tables", "gits_ctlr"]]  # fmt: skip
HAZARD_PAIRS = {("memory", "its_restore_tables"), ("memory", "gits_ctlr"), ("redistributors", "its_restore_tables"),
                ("redistributors", "gits_ctlr"), ("its_restore_tables", "gits_ctlr")}  # fmt: skip
A = "completed; lost; dropped: unmapped; state mismatch"
B = "completed; dropped: its_disabled; state mismatch"
CC = "completed; lost; state mismatch"


@pytest.fixture
def result() -> dict:
    return json.loads(FIXTURE.read_text())


def test_the_fixture_follows_the_contract(result):
    """Hand-checked: 2 clean orders of 24, classes 14 + 7 + 5 hazardous runs, 12 ordered pairs."""
    assert result["steps"] == STEPS and result["constraints"] == CONSTRAINTS
    assert sorted(map(tuple, result["clean_orders"])) == [tuple(STEPS), ("redistributors", "memory", *STEPS[2:])]
    assert [(c["label"], c["clean"], c["count"]) for c in result["classes"]] == [
        ("clean", True, 2), (A, False, 14), (B, False, 7), (CC, False, 5)]
    assert sum(c["count"] for c in result["classes"]) == result["runs"] == 28
    assert len(result["pairs"]) == 12
    assert {(p["before"], p["after"]) for p in result["pairs"] if p["hazard"]} == HAZARD_PAIRS


# ============================================================================ report ====
def _first_block(md: str) -> str:
    i = md.index("## Outcome\n")
    return md[i:md.index("\n## ", i + 1)]


def test_the_first_block_has_the_counts_and_the_constraints(result):
    md = R.build(result, plots=False).markdown(figures=False)
    assert _first_block(md) == (
        "## Outcome\n\n"
        "**28 runs**: **2 clean** (7.1 %), 26 hazardous in 3 classes; 2 of the 24 orders of the 4 destination "
        "steps are clean. Derived: **3 precedence constraints**.\n\n"
        "The derived ordering rules (the fewest precedences that separate the clean orders from the others):\n\n"
        f"- `memory` before `its_restore_tables` — otherwise **A**: {A} (e.g. its_restore_tables → redistributors → "
        f"memory → gits_ctlr). Why: {result['mechanisms'][0]['cause']}\n"
        f"- `redistributors` before `its_restore_tables` — otherwise **C**: {CC} (e.g. memory → its_restore_tables → "
        f"redistributors → gits_ctlr). Why: {result['mechanisms'][1]['cause']}\n"
        f"- `its_restore_tables` before `gits_ctlr` — otherwise **B**: {B} (e.g. memory → redistributors → "
        f"gits_ctlr → its_restore_tables). Why: {result['mechanisms'][2]['cause']}\n\n"
        "Check: **holds** — every order that satisfies the set is clean, and every order that violates one of "
        "its members is not.\n"
    )
    # the first thing of the HTML page is that block too, before any figure or table
    page = R.build(result, plots=False).html()
    body = page[page.index("<body>"):]
    sec = body[body.index('<section id="outcome" class="ok">'):body.index("</section>")]
    assert body.index('<section id="outcome"') < min(body.find("<table"), body.find("<figure") % len(body))
    for a, b in CONSTRAINTS:
        assert f"<code>{a}</code> before <code>{b}</code>" in sec
    assert "<strong>28 runs</strong>" in sec and "<strong>2 clean</strong>" in sec


def test_a_failed_check_is_said_on_the_first_screen(result):
    result["constraint_check"] = {"holds": False, "clean_violating": 1, "hazard_satisfying": 2,
                                  "examples": [["gits_ctlr", "memory", "redistributors", "its_restore_tables"]]}
    md = R.build(result, plots=False).markdown(figures=False)
    assert ("Check: **does not hold** — 1 clean order violates the set, 2 hazardous orders satisfy it (e.g. "
            "gits_ctlr → memory → redistributors → its_restore_tables)") in _first_block(md)
    assert '<section id="outcome" class="bad">' in R.build(result, plots=False).html()


def test_the_sections_after_the_first_screen(result):
    md = R.build(result, plots=False).markdown(figures=False)
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## Outcome", "## Precedence matrix", "## Outcome classes", "## Steps left out",
                     "## Other dimensions", "## Against the documented orders", "## Reproduce"]  # fmt: skip
    assert "| A | " + A + " | no | 14 | redistributors → its_restore_tables → memory → gits_ctlr |" in md
    assert "| `gits_ctlr` | " + B + " | no |" in md
    assert "`gicsim hazards scenarios/hazard-toy.yaml`" in md
    assert "| `memory` before `redistributors` | not needed | clean | redistributors → memory → its_restore_tables → gits_ctlr |" in md


def test_write_puts_four_files_deterministically(result, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    paths = R.write(result, a)
    assert [p.name for p in paths] == list(R.FILES) and all(p.is_file() for p in paths)
    R.write(result, b)
    for name in R.FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    html = (a / "report.html").read_text()
    assert html.count("<svg") == 1 and "<img" not in html and "http://" not in html.replace("http://www.w3.org", "")
    # nothing else, no temporaries: the files and the manifest of a hazard map
    assert sorted(p.name for p in a.iterdir()) == sorted([*R.FILES, ".gicsim-report.json"])
    assert json.loads((a / ".gicsim-report.json").read_text())["gicsim"] == "hazards"


# ============================================================================ matrix ====
def test_the_matrix_marks_exactly_the_hazard_pairs(result):
    grid = P.cells(result)
    assert [[c.state for c in row] for row in grid] == [
        ["self", "clean", "hazard", "hazard"],
        ["clean", "self", "hazard", "hazard"],
        ["clean", "clean", "self", "hazard"],
        ["clean", "clean", "clean", "self"],
    ]
    assert [[c.letter for c in row] for row in grid] == [["", "", "A", "A"], ["", "", "C", "C"], ["", "", "", "B"],
                                                         ["", "", "", ""]]  # fmt: skip
    svg = P.matrix(result, "m").svg
    assert set(re.findall(r'id="hazard-([a-z_]+)-([a-z_]+)"', svg)) == HAZARD_PAIRS
    assert set(re.findall(r'id="constraint-([a-z_]+)-([a-z_]+)"', svg)) == {tuple(c) for c in CONSTRAINTS}
    # it follows the data: one more hazard pair, one more marked cell
    result["pairs"][3]["hazard"], result["pairs"][3]["class"] = True, B  # redistributors before memory
    svg = P.matrix(result, "m").svg
    assert set(re.findall(r'id="hazard-([a-z_]+)-([a-z_]+)"', svg)) == HAZARD_PAIRS | {("redistributors", "memory")}
    # ... drawn amber: a clean order has memory before redistributors, so it is no rule
    assert P.cells(result)[1][0].state == "mixed" and P.cells(result)[0][2].state == "hazard"


def test_class_letters_go_on_past_z():
    assert [P._letter(n) for n in (0, 25, 26, 27, 51, 52, 701, 702)] == ["A", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]


# =========================================================================== compare ====
def test_compare_on_the_hand_made_result(result):
    got = C.compare(result)
    assert got["documented"] == [
        {"before": "memory", "after": "redistributors", "status": "not needed",
         "witness": ["redistributors", "memory", "its_restore_tables", "gits_ctlr"], "class": None},
        {"before": "memory", "after": "its_restore_tables", "status": "necessary", "witness": None, "class": A},
        {"before": "memory", "after": "gits_ctlr", "status": "necessary", "witness": None, "class": A},
        {"before": "redistributors", "after": "its_restore_tables", "status": "necessary", "witness": None, "class": CC},
        {"before": "redistributors", "after": "gits_ctlr", "status": "necessary", "witness": None, "class": CC},
        {"before": "its_restore_tables", "after": "gits_ctlr", "status": "necessary", "witness": None, "class": B},
    ]  # fmt: skip
    assert (got["necessary"], got["not_needed"], got["undocumented"], got["clean_orders"]) == (5, 1, [], 2)
    assert [(o["key"], o["order"], o["satisfies"], o["violated"], o["clean"]) for o in got["orders"]] == [
        ("kernel", STEPS, True, [], True), ("qemu", STEPS, True, [], True), ("cloud-hypervisor", STEPS, True, [], True)]


def test_compare_finds_an_undocumented_constraint_and_a_violating_vmm(result):
    r = copy.deepcopy(result)
    r["steps"] = ["memory", "redistributors", "its_init", "its_restore_tables", "gits_ctlr"]
    r["clean_orders"] = [["memory", "its_init", "redistributors", "its_restore_tables", "gits_ctlr"]]
    r["constraints"] = [["memory", "its_init"], ["its_init", "redistributors"], ["redistributors", "its_restore_tables"],
                        ["its_restore_tables", "gits_ctlr"]]  # fmt: skip
    r["pairs"] = []
    got = C.compare(r)
    assert got["undocumented"] == [["its_init", "redistributors"]]
    status = {(d["before"], d["after"]): d["status"] for d in got["documented"]}
    assert status[("redistributors", "its_init")] == "not needed" and status[("memory", "its_init")] == "necessary"
    assert [(o["key"], o["order"], o["violated"], o["clean"]) for o in got["orders"]] == [
        ("kernel", ["memory", "redistributors", "its_init", "its_restore_tables", "gits_ctlr"],
         [["its_init", "redistributors"]], False),
        ("qemu", ["its_init", "memory", "redistributors", "its_restore_tables", "gits_ctlr"],
         [["memory", "its_init"]], False),
        ("cloud-hypervisor", ["memory", "its_init", "redistributors", "its_restore_tables", "gits_ctlr"], [], True),
    ]  # fmt: skip


def test_no_clean_order_leaves_the_documented_pairs_unknown(result):
    result["clean_orders"] = []
    got = C.compare(result)
    assert {d["status"] for d in got["documented"]} == {"unknown"}
    assert {o["clean"] for o in got["orders"]} == {None}


def test_the_documented_orders_on_the_shipped_step_sets():
    """docs/restore-orders.md, mapped: the default eight steps and all twelve."""
    eight = list(DEFAULT_DEST_STEPS)
    assert C.linear(C.KERNEL, eight) == eight
    assert C.linear(C.QEMU, eight) == ["its_init", "memory", "redistributors", "gits_cbaser", "gits_regs",
                                       "its_restore_tables", "gits_ctlr", "resume"]  # fmt: skip
    assert C.linear(C.CLOUD_HYPERVISOR, eight) == ["memory", "its_init", "redistributors", "gits_cbaser", "gits_regs",
                                                   "its_restore_tables", "gits_ctlr", "resume"]  # fmt: skip
    assert C.approximations(C.QEMU, eight) == [
        "`gits_iidr` before `gits_cbaser` is not kept: `gits_regs` runs after `gits_cbaser` here"]
    assert C.approximations(C.KERNEL, eight) == []
    assert len(C.projected_pairs(C.KERNEL, eight)) == 28  # a chain of 8: every pair
    assert C.project(C.KERNEL, list(DEST_STEPS))[4] == ["gits_iidr", "gits_regs", "gits_creadr", "gits_cwriter", "gits_baser"]
    assert C.linear(C.KERNEL, list(DEST_STEPS)) is None  # five register steps, unordered among themselves
    assert C.linear(C.QEMU, list(DEST_STEPS)) == ["its_init", "memory", "redistributors", "gits_iidr", "gits_cbaser",
                                                  "gits_creadr", "gits_cwriter", "gits_baser", "gits_regs",
                                                  "its_restore_tables", "gits_ctlr", "resume"]  # fmt: skip
    # a step the scenario leaves out drops out of every documented order
    assert C.linear(C.QEMU, [s for s in eight if s != "its_init"])[0] == "memory"
