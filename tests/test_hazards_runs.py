"""gicsim hazards on the model: the fast run path computes what `gicsim run` computes, a
small space of 24 orders is classified exactly (hand-checked below), and the store resumes
with only the missing runs."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pytest

from gicsim.hazards import expand, explore
from gicsim.hazards.runs import build, hazard_one, scenario_for, slim
from gicsim.scenario import load_scenario, resolved_dict, scenario_from_dict
from gicsim.sim.simulation import run

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "hazard-small.yaml"
FOUR = ("memory", "redistributors", "its_restore_tables", "gits_ctlr")
ORDERS = [["its_init", "gits_cbaser", "gits_regs", *p, "resume"] for p in itertools.permutations(FOUR)]


@pytest.fixture(scope="module")
def base():
    return resolved_dict(load_scenario(SMALL))


def _no_wall(s):
    return {k: v for k, v in s.items() if k != "wall_s"}


def test_the_default_order_of_hazard_small_is_clean(base):
    s = run(base).summary
    assert s["expect"]["passed"] is True, s["expect"]
    assert s["lpis"]["accepted"] == 49  # ~50 MSIs around the migration


@pytest.mark.parametrize("i", [0, 1, 5777, 40319])
def test_a_permuted_run_is_the_run_of_that_scenario(base, i):
    sp = expand(base, {"leave_out": False})
    sw, meta = build(sp)
    r = sw.runs[i]
    d = copy.deepcopy(base)
    d["migration"][0]["destination"]["steps"] = list(meta[i]["order"])
    assert scenario_for(r.scenario) == scenario_from_dict(d)  # same validated scenario
    full = run(d).summary  # what `gicsim run` of that scenario computes
    assert _no_wall(hazard_one(r.scenario)) == _no_wall(slim(full))


def test_a_left_out_step_is_validated_in_full(base):
    sp = expand(base, {"destination_orders": [base["migration"][0]["destination"]["steps"]]})
    sw, meta = build(sp)
    assert [m["left_out"] for m in meta] == [None, *base["migration"][0]["destination"]["steps"]]
    d = copy.deepcopy(base)
    d["migration"][0]["destination"]["steps"] = list(meta[3]["order"])
    assert _no_wall(hazard_one(sw.runs[3].scenario)) == _no_wall(slim(run(d).summary))


def _expected(order):
    """Hand-checked: RESTORE_TABLES walks the tables in guest RAM, which only hold the DTEs/
    ITEs saved at the stop once `memory` has loaded the final pages (before that it finds no
    device: nothing restored, the pending LPIs lost, later MSIs dropped as unmapped); with
    the memory loaded it reads each LPI's pending bit through GICR_PENDBASER, which is still
    0 until `redistributors` ran (-EFAULT, the migration fails). GITS_CTLR anywhere after
    the registers is harmless here: KVM ran every command when the guest wrote CWRITER, so
    none waits for the enable."""
    p = {s: i for i, s in enumerate(order)}
    if p["memory"] > p["its_restore_tables"]:
        return "completed; lost; dropped unmapped; state differs"
    if p["redistributors"] > p["its_restore_tables"]:
        return "failed (its_restore_tables EFAULT x1); no state compared"
    return "completed, clean"


def test_24_orders_are_classified_and_ruled_exactly(base, tmp_path):
    sp = expand(base, {"destination_orders": ORDERS, "leave_out": False})
    assert sp.runs == 24
    res = explore(sp, tmp_path / "out", "hazard-small", progress=False)
    want: dict[str, list[list[str]]] = {}
    for o in ORDERS:
        want.setdefault(_expected(o), []).append(o)
    got = {c["label"]: c for c in res["classes"]}
    assert set(got) == set(want)
    assert [c["label"] for c in res["classes"]] == [
        "completed, clean", "completed; lost; dropped unmapped; state differs",
        "failed (its_restore_tables EFAULT x1); no state compared"]  # clean first, then by count
    for lab, orders in want.items():
        assert got[lab]["count"] == len(orders)
        assert got[lab]["example_order"] == orders[0]
    assert {k: len(v) for k, v in want.items()} == {  # 1/3 of the orders have both before RESTORE_TABLES
        "completed, clean": 8, "completed; lost; dropped unmapped; state differs": 12,
        "failed (its_restore_tables EFAULT x1); no state compared": 4}  # fmt: skip
    assert res["clean_orders"] == want["completed, clean"]
    # the four permuted steps need exactly two rules; the fixed steps keep their places
    assert res["constraints"] == [
        ["memory", "its_restore_tables"], ["redistributors", "its_restore_tables"],
        ["its_init", "gits_cbaser"], ["gits_cbaser", "gits_regs"], ["gits_regs", "memory"],
        ["gits_regs", "redistributors"], ["gits_regs", "gits_ctlr"], ["its_restore_tables", "resume"],
        ["gits_ctlr", "resume"]]  # fmt: skip
    assert res["constraint_check"] == {"holds": True, "clean_violating": 0, "hazard_satisfying": 0, "examples": []}
    mech = {(m["before"], m["after"]): m for m in res["mechanisms"]}
    efault = mech[("redistributors", "its_restore_tables")]["cause"]
    assert "RESTORE_TABLES" in efault and "EFAULT" in efault  # explain's words for the failed call
    assert "before the `memory` step" in mech[("memory", "its_restore_tables")]["cause"]
    pairs = {(p["before"], p["after"]): p for p in res["pairs"]}
    assert pairs[("its_restore_tables", "gits_ctlr")]["hazard"] is False
    assert res["runs"] == 24 and res["ran_now"] == 24


def test_the_store_resumes_with_only_the_missing_runs(base, tmp_path):
    sp = expand(base, {"destination_orders": ORDERS[:6], "leave_out": True})
    out = tmp_path / "out"
    first = explore(sp, out, "x", progress=False, causes=False)
    assert first["ran_now"] == 6 + 8
    files = sorted((out / "runs").glob("*.json"))
    assert len(files) == 14
    for f in files[:3]:
        f.unlink()
    files[3].write_text("{not json")  # a damaged stored run is run again
    again = explore(sp, out, "x", progress=False, causes=False)
    assert again["ran_now"] == 4
    strip = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("wall_s", "runs_per_s", "ran_now")})  # noqa: E731
    assert strip(again) == strip(first)


def test_a_permuted_run_under_other_dimensions_is_the_run_of_that_scenario(base):
    sp = expand(base, {"destination_orders": [ORDERS[5], ORDERS[17]], "leave_out": False,
                       "quiesce_devices": [False], "kernel": [{"release": "6.1"}]})  # fmt: skip
    sw, meta = build(sp)
    for r, m in zip(sw.runs, meta, strict=True):
        d = copy.deepcopy(base)
        d["migration"][0]["destination"]["steps"] = list(m["order"])
        d["migration"][0]["source"]["steps"] = [s for s in d["migration"][0]["source"]["steps"] if s != "quiesce_devices"]
        d["kernel"] = {"release": "6.1"}
        assert scenario_for(r.scenario) == scenario_from_dict(d)
        assert _no_wall(hazard_one(r.scenario)) == _no_wall(slim(run(d).summary))
