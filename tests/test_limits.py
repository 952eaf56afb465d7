"""Resource limits: a scenario asking for more than the caps of ``gicsim.scenario`` (MSIs,
sources, device x event pairs, mapped LPIs, guest operations, migrations, rates, seeds,
retries, bandwidths; guest RAM and a command queue too small for what boot puts in them) is
refused before it runs with one ``FILE:LINE:COL: key.path: message`` line, exit 2, nothing
written. The shipped scenarios, the 512-vCPU scale scenario included, stay inside the caps;
values at the caps are accepted and run without crashing."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.scenario import ScenarioError, load_scenario, scenario_from_dict
from gicsim.scenario import constants as S
from gicsim.scenario import limits as SL
from gicsim.sim.simulation import Simulation

ROOT = Path(__file__).parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")

HEAD = """\
name: caps
until_us: {until}
vm: {{vcpus: 2, memory_mib: {mem}{its}}}
"""
BOOT = """\
guest:
  boot:
    - enable_lpis: all
    - mapc: {icid: 0, vcpu: 0}
"""


def doc(until=1000, mem=64, its="", boot="", tail=""):
    return HEAD.format(until=until, mem=mem, its=its) + BOOT + boot + tail


# (YAML text, reported path, its line (a number, or the first line holding this text), words
# the message must contain)
OVER = {
    "msis_rate": (
        doc(until=10_000_000, tail="devices:\n  - {device: 0-99, events: 0, rate_per_s: 20000}\n"),
        "devices", "devices:", ["MSIs", "MAX_MSIS", f"{S.MAX_MSIS:,}"],
    ),
    # 9 M MSIs passed the old cap of 10 M and took ~12 GiB: MAX_MSIS comes from MAX_TRACE_ROWS
    "msis_under_old_cap": (
        doc(until=1_000_000, tail="devices:\n  - {device: 0-89, events: 0, rate_per_s: 100000}\n"),
        "devices", "devices:", ["MSIs", "9,000,090", "MAX_MSIS"],
    ),
    # 1.4 M MSIs (inside MAX_MSIS) plus 459 K property writes: too many trace rows together
    "trace_rows": (
        doc(until=1_000_000, boot="".join("    - lpi_config: {lpis: 8192-65535}\n" for _ in range(8)),
            tail="devices:\n  - {device: 0-13, events: 0, rate_per_s: 100000}\n"),
        "devices", "devices:", ["trace rows", "MAX_TRACE_ROWS", f"{S.MAX_TRACE_ROWS:,}", "GiB"],
    ),
    "msis_at_us": (
        doc(tail="devices:\n  - {device: 0-999, events: 0-99, at_us: [" + ", ".join(["1"] * 101) + "]}\n"),
        "devices", "devices:", ["MSIs", "MAX_MSIS"],
    ),
    "sources": (
        doc(tail="devices:\n  - {device: 0-65535, events: 0, at_us: [1]}\n"
                 "  - {device: 0-9, events: 0, at_us: [1]}\n"),
        "devices", "devices:", ["MAX_MSI_SOURCES", "65,546"],
    ),
    "device_events": (
        doc(tail="devices:\n  - {device: 0-65535, events: 0-64, rate_per_s: 1, start_us: 900}\n"),
        "devices", "devices:", ["device x event pairs", "MAX_DEVICE_EVENTS"],
    ),
    "mapped_lpis": (
        doc(mem=4096, boot="    - its_enable: true\n"
            "    - map_devices: {devices: 0-3583, event_bits: 4, events: 0-15, first_lpi: 8192, icid: 0}\n"
            "    - map_devices: {devices: 3584-4096, event_bits: 4, events: 0-15, first_lpi: 8192, icid: 0}\n"),
        "guest.boot.4.map_devices", "devices: 3584-", ["65,552", "MAX_MAPPED_LPIS"],
    ),
    "guest_ops": (
        doc(boot="".join("    - lpi_config: {lpis: 8192-65535}\n" for _ in range(18))),
        "guest.boot.19.lpi_config", 25, ["MAX_GUEST_OPS", "1,000,000"],
    ),
    "migrations": (
        doc(tail="migration:\n" + "".join(f"  - {{at_us: {i + 1}}}\n" for i in range(65))),
        "migration", "migration:", ["65 migrations", "MAX_MIGRATIONS"],
    ),
    "queue_before_enable": (
        doc(boot="    - mapd: {device: 1, event_bits: 12}\n"
                 "    - map_events: {device: 1, events: 0-4095, lpis: 8192-12287, icid: 0}\n"
                 "    - its_enable: true\n"),
        "guest.boot.3.map_events", "map_events", ["queued while the ITS", "cmdq_kib"],
    ),
    "queue_small": (
        doc(its=", its: {cmdq_kib: 4}", boot="    - map_events: {device: 1, events: 0-127, lpis: 8192-8319, icid: 0}\n"),
        "guest.boot.2.map_events", "map_events", ["129", "holds 127"],
    ),
    "guest_ram": (
        doc(mem=16, boot="    - its_enable: true\n"
            "    - map_devices: {devices: 0-63, event_bits: 16, events: 0, first_lpi: 8192, icid: 0}\n"),
        "guest.boot.3.map_devices", "map_devices", ["guest RAM", "memory_mib is 16"],
    ),
    "guest_ram_actions": (
        doc(mem=16, boot="    - its_enable: true\n",
            tail="  actions:\n" + "".join(f"    - {{at_us: 1, vcpu: 0, mapd: {{device: {d}, event_bits: 16}}}}\n"
                                            for d in range(40))),  # fmt: skip
        "guest.actions.", None, ["guest RAM", "up to"],
    ),
    "rate": (
        doc(tail="devices:\n  - {device: 1, events: 0, rate_per_s: 2.0e9, stop_us: 1}\n"),
        "devices.0.rate_per_s", "rate_per_s", ["MAX_RATE_PER_S"],
    ),
    "seed": ("name: caps\nseed: 18446744073709551616\n", "seed", 2, ["18446744073709551615"]),
    "retry": (
        doc(tail="migration: {at_us: 10, source: {on_ebusy: {retry: 10001, backoff_us: 1}}}\n"),
        "migration.source.on_ebusy.retry", "retry", ["10000"],
    ),
    "dirty_rate": (
        doc(tail="migration: {at_us: 10, precopy: {dirty_pages_per_s: 1.0e308}}\n"),
        "migration.precopy.dirty_pages_per_s", "dirty", ["MAX_DIRTY_PAGES_PER_S"],
    ),
    "bandwidth_tiny": (
        doc(tail="migration: {at_us: 10, precopy: {bandwidth_mib_s: 5.0e-324}}\n"),
        "migration.precopy.bandwidth_mib_s", "bandwidth", [">= 0.001"],
    ),
    "bandwidth_override_tiny": (
        "name: caps\ntiming: {base: altra-6.12, overrides: {switchover_bandwidth_mib_s: 5.0e-324}}\n",
        "timing.overrides.switchover_bandwidth_mib_s", 2, [">= 0.001"],
    ),
    "expect_delivered": (
        doc(tail="expect:\n  delivered:\n" + "    - {lpi: 8192-65535, vcpu: 0}\n" * 18),
        "expect.delivered", "delivered:", ["1,032,192", "MAX_EXPECT_LPIS"],
    ),
    "vcpus": ("name: caps\nvm: {vcpus: 513}\n", "vm.vcpus", 2, ["512"]),
    "memory": ("name: caps\nvm: {memory_mib: 1048577}\n", "vm.memory_mib", 2, ["1048576"]),
}


@pytest.mark.parametrize("case", sorted(OVER))
def test_over_a_cap_is_refused_before_running(tmp_path, case):
    text, path, line, words = OVER[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, ["run", str(f), "-o", str(out)])
    assert time.perf_counter() - t0 < 10, "refusing must not take a run's time"
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert "Traceback" not in r.output and not out.exists()
    (ln,) = r.stderr.splitlines()  # one problem, one line
    m = LINE.match(ln)
    assert m and m["file"] == str(f), ln
    assert m["path"] == path or (path.endswith(".") and m["path"].startswith(path)), ln
    if isinstance(line, str):
        line = next(i for i, t in enumerate(text.splitlines(), 1) if line in t)
    if line is not None:
        assert int(m["line"]) == line, ln
    for w in words:
        assert w in m["msg"], (w, ln)


def test_at_the_caps_is_accepted():
    base = {"name": "at-caps", "vm": {"vcpus": 2}, "until_us": 1000}
    ok = [
        {"seed": S.MAX_SEED},
        {"devices": [{"device": "0-65535", "events": 0, "at_us": [1]}]},  # MAX_MSI_SOURCES
        {"devices": [{"device": 1, "events": 0, "rate_per_s": S.MAX_RATE_PER_S}]},
        {"migration": {"at_us": 1, "source": {"on_ebusy": {"retry": S.MAX_RETRY, "backoff_us": 1}},
                       "precopy": {"dirty_pages_per_s": S.MAX_DIRTY_PAGES_PER_S,
                                   "bandwidth_mib_s": S.MIN_BANDWIDTH_MIB_S}}},  # fmt: skip
        {"migration": [{"at_us": i + 1} for i in range(S.MAX_MIGRATIONS)]},
        # MAX_MSIS (within one MSI a source) over one second
        {"until_us": 1_000_000, "devices": [{"device": "0-9", "events": 0,
                                             "rate_per_s": S.MAX_MSIS // 10 - 1}]},  # fmt: skip
    ]
    for extra in ok:
        scenario_from_dict({**copy.deepcopy(base), **extra})


def test_caps_are_what_the_scale_scenario_needs():
    assert S.MAX_VCPUS >= 512
    assert S.MAX_MAPPED_LPIS >= 57_344 and S.MAX_MSIS >= 1_100_000
    assert S.MAX_MSIS * S.ROWS_PER_MSI <= S.MAX_TRACE_ROWS
    # the memory the comment in constants.py promises: ~2.7 GiB at the cap
    assert S.MAX_TRACE_ROWS * S.BYTES_PER_TRACE_ROW < 2.75 * (1 << 30)


@pytest.mark.parametrize("path", [p for p in SCENARIOS if p.stat().st_size < 16_000], ids=lambda p: p.stem)
def test_trace_row_estimate_is_an_upper_bound(path):
    """The MAX_TRACE_ROWS cap is on an estimate; it must not be below the real trace."""
    sc = load_scenario(path)
    res = gicsim.run(sc)
    assert len(res.trace) <= SL.trace_rows(sc)


def test_trace_row_estimate_of_msis_and_commands_is_an_upper_bound():
    """Every MSI delivered (4 rows each), INTs and set_pending: still within the estimate."""
    d = {
        "name": "rows", "until_us": 2000, "vm": {"vcpus": 2},
        "guest": {"boot": [{"enable_lpis": "all"}, {"mapc": {"icid": 0, "vcpu": 0}},
                           {"mapc": {"icid": 1, "vcpu": 1}}, {"its_enable": True},
                           {"map_devices": {"devices": "1-4", "event_bits": 2, "events": "0-3",
                                            "first_lpi": 8192, "icid": [0, 1]}},
                           {"set_pending": {"vcpu": 1, "lpis": "9000-9010"}},
                           {"int": {"device": 1, "event": 0}}],
                  "actions": [{"at_us": 50, "vcpu": 0, "int": {"device": 2, "event": 1}}]},
        "devices": [{"device": "1-4", "events": "0-3", "rate_per_s": 20000}],
        "migration": {"at_us": 700, "source": {"stragglers": [{"vcpu": 1, "exit_us": 300}],
                                                "on_ebusy": {"retry": 20, "backoff_us": 5}}},
    }  # fmt: skip
    sc = scenario_from_dict(d)
    res = gicsim.run(sc)
    assert len(res.trace) <= SL.trace_rows(sc)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_are_inside_the_caps(path):
    sc = load_scenario(path)
    total, _ = SL._msis(sc)
    assert total <= S.MAX_MSIS
    assert SL._resource_problems(sc) == []


def test_scale_scenario_numbers():
    path = ROOT / "scenarios" / "scale-512.yaml"
    if not path.exists():
        pytest.skip("scale-512.yaml not shipped")
    sc = load_scenario(path)
    assert sc.vm.vcpus == 512
    total, _ = SL._msis(sc)
    assert 900_000 < total < 1_100_000  # ~1 M MSIs: 3,584 devices x 4 kHz x 70 ms
    mapti = sum(SL._step_cost(b.kind, b.args)[1] for b in sc.guest.boot)
    assert mapti == 3584 * 16 == 57_344


@pytest.mark.parametrize("path", [p for p in SCENARIOS if p.stat().st_size < 16_000], ids=lambda p: p.stem)
def test_guest_ram_replay_matches_the_guest_driver(path):
    """The loader's replay of the guest driver's allocator ends where the real one does."""
    sc = load_scenario(path)
    ram = SL._GuestRam(sc)
    for st in (*sc.guest.boot, *sc.guest.actions):
        ram.step(st.kind, st.args)
    sim = Simulation(sc)
    sim.run()
    assert ram.brk == sim.driver.drv._brk


def test_guest_ram_just_enough_runs():
    """At exactly the RAM the replay says, boot completes (no guest out-of-memory)."""
    d = {
        "name": "tight", "until_us": 200, "vm": {"vcpus": 2, "memory_mib": 16},
        "guest": {"boot": [{"enable_lpis": "all"}, {"mapc": {"icid": 0, "vcpu": 0}},
                           {"its_enable": True},
                           {"map_devices": {"devices": "0-13", "event_bits": 16, "events": 0,
                                            "first_lpi": 8192, "icid": 0}}]},
    }  # fmt: skip
    sc = scenario_from_dict(d)
    res = gicsim.run(sc)
    assert res.summary["sim_ns"] == 200_000
    d["guest"]["boot"][3]["map_devices"]["devices"] = "0-30"
    with pytest.raises(ScenarioError, match="guest RAM exhausted"):
        scenario_from_dict(d)


EXTREME = [
    # each ran into a ZeroDivisionError / OverflowError before the caps; now refused
    ({"migration": {"at_us": 100, "precopy": {"bandwidth_mib_s": 5e-324}}}, "bandwidth_mib_s"),
    ({"migration": {"at_us": 100, "precopy": {"dirty_pages_per_s": 1e308}}}, "dirty_pages_per_s"),
    ({"timing": {"base": "altra-6.12", "overrides": {"precopy_bandwidth_mib_s": 5e-324}}}, "precopy_bandwidth"),
]


@pytest.mark.parametrize("extra, key", EXTREME, ids=[k for _, k in EXTREME])
def test_values_that_crashed_the_run_are_refused(extra, key):
    with pytest.raises(ScenarioError, match=key):
        scenario_from_dict({"name": "x", "until_us": 1000, **extra})


def test_values_at_the_edges_run_without_crashing():
    from simhelp import scenario

    edges = [
        {"migration": {"at_us": 100, "precopy": {"bandwidth_mib_s": S.MIN_BANDWIDTH_MIB_S,
                                                  "dirty_pages_per_s": S.MAX_DIRTY_PAGES_PER_S}}},  # fmt: skip
        {"timing": {"base": "altra-6.12", "overrides": {"switchover_bandwidth_mib_s": S.MIN_BANDWIDTH_MIB_S,
                                                        "precopy_bandwidth_mib_s": S.MAX_BANDWIDTH_MIB_S}},
         "migration": {"at_us": 100}},  # fmt: skip
        {"devices": [{"device": 2, "events": "0-15", "rate_per_s": S.MAX_RATE_PER_S, "start_us": 100,
                      "stop_us": 120}], "migration": {"at_us": 110}},  # fmt: skip
    ]
    for extra in edges:
        res = gicsim.run(scenario(until_us=3000, **extra))
        assert res.summary["sim_ns"] == 3_000_000
