"""gicsim hazards spaces: what each dimension sets in the scenario, the product, the cap."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gicsim.hazards import MAX_HAZARD_RUNS, expand
from gicsim.scenario import load_scenario, resolved_dict
from gicsim.scenario.constants import DEFAULT_SOURCE_STEPS
from gicsim.sweeps import SweepError

ROOT = Path(__file__).parent.parent


def base(name="hazard-small"):
    return resolved_dict(load_scenario(ROOT / "scenarios" / f"{name}.yaml"))


def src(d):
    return d["migration"][0]["source"]


def test_the_default_space_is_every_order_and_each_step_left_out():
    sp = expand(base(), {})
    assert len(sp.orders) == math.factorial(8) and len(set(sp.orders)) == len(sp.orders)
    assert sp.orders[0] == sp.steps  # the scenario's own order first
    assert [s for _, s in sp.left_out] == list(sp.steps)
    assert all(len(o) == 7 and s not in o for o, s in sp.left_out)
    assert sp.runs == 40_328 and len(sp.combos) == 1 and sp.combos[0][0] == {}


def test_dimensions_combine_as_a_product_and_set_the_scenario():
    b = base("straggler-retry")
    ref = [b["migration"][0]["destination"]["steps"]]
    sp = expand(b, {"destination_orders": ref, "leave_out": False, "quiesce_devices": [True, False],
                    "straggler_exit_us": [50, 300], "on_ebusy": ["abort", {"retry": 2, "backoff_us": 10}],
                    "kernel": [{"release": "6.12"}, {"release": "6.1"}]})  # fmt: skip
    assert sp.runs == 16 and len(sp.combos) == 16
    over, d = sp.combos[-1]
    assert over == {"quiesce_devices": False, "straggler_exit_us": 300,
                    "on_ebusy": {"retry": 2, "backoff_us": 10}, "kernel": {"release": "6.1"}}
    assert src(d)["steps"] == [s for s in DEFAULT_SOURCE_STEPS if s != "quiesce_devices"]
    assert src(d)["stragglers"][0]["exit_us"] == 300 and src(d)["on_ebusy"]["retry"] == 2
    assert d["kernel"]["release"] == "6.1"
    assert src(sp.combos[0][1])["steps"] == list(DEFAULT_SOURCE_STEPS)
    # the base's on_ebusy ({retry: 5}) is not among the values: the rules are taken at the first
    assert sp.rules_combo == 0
    sp2 = expand(b, {"destination_orders": ref, "leave_out": False, "straggler_exit_us": [50, 300]})
    assert sp2.rules_combo == 1 and sp2.combos[1][0] == {"straggler_exit_us": 300}  # the base's own 300


def test_all_source_orders_and_the_cap():
    b = base()
    ref = [b["migration"][0]["destination"]["steps"]]
    sp = expand(b, {"destination_orders": ref, "leave_out": False, "source_orders": "all"})
    assert sp.runs == math.factorial(5)
    with pytest.raises(SweepError) as e:
        expand(b, {"source_orders": "all"})
    (line,) = e.value.problems
    assert f"{40_328 * 120:,} runs" in line and f"the cap is {MAX_HAZARD_RUNS:,} (MAX_HAZARD_RUNS)" in line
