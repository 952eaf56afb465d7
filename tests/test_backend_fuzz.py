"""Property test: the whole co-simulation on the Python model and on the 6.12 kernel
backend, from the shipped scenarios with random seeds, migration times, step orders (any
subset, any order, on both sides), ``-EBUSY`` policies and stop waits: the same trace,
record for record (hence the same verdicts). Release defaults only: variant overrides have
no kernel code to run (tests/test_backend_parity.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from linux_helpers import kernel

import gicsim
from gicsim.kvm.releases import RELEASES, VARIANT_FIELDS
from gicsim.scenario import DEST_STEPS, SOURCE_STEPS, load_scenario, resolved_dict

ROOT = Path(__file__).parent.parent
BASES = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if p.stat().st_size < 16_000)


def steps(valid):
    return st.lists(st.sampled_from(valid), unique=True, max_size=len(valid))


on_ebusy = st.one_of(
    st.sampled_from(["abort", "continue"]),
    st.fixed_dictionaries({"retry": st.integers(0, 3), "backoff_us": st.integers(0, 300)}),
)


@st.composite
def variants(draw):
    d = resolved_dict(load_scenario(draw(st.sampled_from(BASES))))
    d["seed"] = draw(st.integers(0, 2**32))
    d["expect"] = {}
    release = draw(st.sampled_from(["6.12", "6.1"]))
    d["kernel"] = {"release": release}
    for i, m in enumerate(d.get("migration") or []):
        if i == 0 and draw(st.booleans()):
            m["at_us"] = draw(st.integers(200, int(d["until_us"])))
        src = m["source"]
        src["steps"] = draw(st.one_of(st.just(list(SOURCE_STEPS)), steps(SOURCE_STEPS)))
        m["destination"]["steps"] = draw(st.one_of(st.just(list(DEST_STEPS)), steps(DEST_STEPS)))
        src["on_ebusy"] = draw(on_ebusy)
        src["stop_wait_us"] = draw(st.one_of(st.none(), st.integers(0, 500)))
    return d


@settings(max_examples=40, deadline=None)
@given(d=variants())
def test_random_migrations_same_trace_on_python_and_kernel(d):
    kernel(d["kernel"]["release"])
    py = gicsim.run(d)
    lx = gicsim.run({**d, "kernel": {**d["kernel"], "backend": "linux"}})
    assert lx.summary["kernel"]["backend"] == "linux"
    assert all(getattr(py.scenario.kernel, f) == RELEASES[d["kernel"]["release"]][f] for f in VARIANT_FIELDS)
    assert lx.summary["migrations"] == py.summary["migrations"]
    assert lx.summary["lpis"] == py.summary["lpis"]
    assert lx.records == py.records
