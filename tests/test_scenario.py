import io
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from gicsim.scenario import (
    DEFAULT_DEST_STEPS,
    DEFAULT_SOURCE_STEPS,
    After,
    Compare,
    Scenario,
    ScenarioError,
    check_scenario,
    format_range,
    load_scenario,
    load_scenario_text,
    parse_range,
    resolved_dict,
    scenario_from_dict,
)
from gicsim.scenario.timing import PROFILES

# The example of SCENARIO-FORMAT.md, verbatim.
EXAMPLE = """\
name: its-pending-migration
description: >
  256 LPIs are pending on vCPU 1 (interrupts masked) when the VM migrates.
  After the restore the guest unmasks and must receive all of them.
seed: 7
until_us: 20000
timing: altra-6.12              # profile name, or a mapping {base: altra-6.12, overrides: {...}}
kernel: {}                      # kernel variant fields (SPEC §4); {} = mainline
vm:
  vcpus: 4
  memory_mib: 512
guest:
  boot:                         # run in order on vcpu 0 at t=0, through the ITS command queue
    - enable_lpis: all          # PROPBASER/PENDBASER/EnableLPIs on every redistributor
    - mapc: {icid: 0, vcpu: 0}
    - mapc: {icid: 1, vcpu: 1}
    - mapd: {device: 2, event_bits: 8}
    - map_events: {device: 2, events: 0-255, lpis: 8192-8447, icid: 1}   # MAPTI per pair
    - sync: {icid: 1}
    - its_enable: true          # commands queued while the ITS was disabled run now
  actions:                      # timed guest actions; each runs on the given vCPU
    - {at_us: 100, vcpu: 1, mask: true}
    - {after: resume, delay_us: 50, vcpu: 1, mask: false}
    - {after: resume, delay_us: 60, vcpu: 0, int: {device: 2, event: 0}}
devices:
  - {device: 2, events: 0-255, at_us: [500]}            # each event fires once at 500 µs
  - {device: 3, events: [0, 1], rate_per_s: 20000, pattern: poisson, start_us: 0, stop_us: 15000}
migration:
  at_us: 1000                   # migration starts (pre-copy)
  precopy: {dirty_pages_per_s: 2000, bandwidth_mib_s: 128, downtime_limit_ms: 300}
  source:
    vcpu_exit_us: 2             # per-vCPU exit latency after the stop request
    stragglers: [{vcpu: 3, exit_us: 400}]
    stop_wait_us: null          # null: wait until every vCPU is out of KVM_RUN; a number: go on after it
    steps: [stop_vcpus, quiesce_devices, save_pending_tables, save_its_tables, final_memory]  # default
    on_ebusy: {retry: 5, backoff_us: 100}     # or: abort | continue
  destination:
    steps: [memory, redistributors, its_init, gits_cbaser, gits_regs, its_restore_tables, gits_ctlr, resume]
expect:
  migration: completed
  lost: 0
  spurious: 0
  misrouted: 0
  state_match: true
  delivered:
    - {lpi: 8192-8447, vcpu: 1, side: destination, count: 1}
"""

LINE_RE = re.compile(r"^(.+):(\d+):(\d+): (\S+): (.+)$")


def problems_of(text, filename="s.yaml"):
    with pytest.raises(ScenarioError) as exc:
        load_scenario_text(text, filename)
    for p in exc.value.problems:
        assert LINE_RE.match(p), p
    return exc.value.problems


# --------------------------------------------------------------------------- the example


@pytest.fixture(scope="module")
def example():
    return load_scenario_text(EXAMPLE, "example.yaml")


def test_example_values(example):
    s = example
    assert s.name == "its-pending-migration"
    assert s.seed == 7
    assert s.until_ns == 20_000_000
    assert s.timing == PROFILES["altra-6.12"] and s.timing_base == "altra-6.12"
    assert s.kernel.restore_scan == "full" and s.kernel.pending_sync_clears_ram is True
    assert (s.vm.vcpus, s.vm.memory_mib, s.vm.its.device_table, s.vm.its.cmdq_kib) == (
        4,
        512,
        "flat",
        64,
    )
    boot = s.guest.boot
    assert [b.kind for b in boot] == [
        "enable_lpis",
        "mapc",
        "mapc",
        "mapd",
        "map_events",
        "sync",
        "its_enable",
    ]
    assert boot[0].args == (0, 1, 2, 3)  # "all" expanded
    assert boot[4].args.events == tuple(range(256))
    assert boot[4].args.lpis == tuple(range(8192, 8448))
    assert boot[4].args.icid == (1,)
    assert boot[6].args is True
    a0, a1, a2 = s.guest.actions
    assert (a0.kind, a0.args, a0.vcpu, a0.at_ns, a0.after) == ("mask", True, 1, 100_000, None)
    assert (a1.kind, a1.args, a1.after, a1.delay_ns) == ("mask", False, After("resume", 0), 50_000)
    assert (a2.kind, a2.args.device, a2.args.event, a2.delay_ns) == ("int", 2, 0, 60_000)
    d0, d1 = s.devices
    assert d0.device == (2,) and d0.at_ns == (500_000,) and d0.rate_per_s is None
    assert (d1.events, d1.rate_per_s, d1.pattern, d1.start_ns, d1.stop_ns) == (
        (0, 1),
        20000,
        "poisson",
        0,
        15_000_000,
    )
    (m,) = s.migrations
    assert m.at_ns == 1_000_000 and m.after is None
    assert m.precopy.downtime_limit_ns == 300_000_000
    assert m.source.vcpu_exit_ns == 2000
    assert [(x.vcpu, x.exit_ns) for x in m.source.stragglers] == [(3, 400_000)]
    assert m.source.stop_wait_ns is None
    assert m.source.steps == DEFAULT_SOURCE_STEPS
    assert (m.source.on_ebusy.policy, m.source.on_ebusy.retry, m.source.on_ebusy.backoff_ns) == (
        "retry",
        5,
        100_000,
    )
    assert m.destination.steps == DEFAULT_DEST_STEPS
    e = s.expect
    assert e.migration == ("completed",)
    assert e.lost == Compare("==", 0) and e.ebusy is None
    assert e.state_match is True
    assert e.delivered[0].lpi == tuple(range(8192, 8448)) and e.delivered[0].side == "destination"


def test_example_round_trips_through_resolved_dict(example):
    d = resolved_dict(example)
    assert scenario_from_dict(d) == example
    # JSON and YAML serialisable, and re-loadable from both
    assert scenario_from_dict(json.loads(json.dumps(d))) == example
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(d, buf)
    again = load_scenario_text(buf.getvalue(), "resolved.yaml")
    assert again == example
    assert resolved_dict(again) == d


def test_resolved_dict_is_in_yaml_units_with_defaults(example):
    d = resolved_dict(example)
    assert d["until_us"] == 20000
    assert d["timing"]["base"] == "altra-6.12"
    assert d["timing"]["overrides"]["mmio_kernel_us"] == 0.451
    assert d["migration"][0]["source"]["stop_wait_us"] is None
    assert d["migration"][0]["source"]["on_ebusy"] == {"retry": 5, "backoff_us": 100}
    assert d["guest"]["boot"][0] == {"enable_lpis": "0-3"}
    assert d["guest"]["actions"][2] == {
        "vcpu": 0,
        "after": "resume:1",
        "delay_us": 60,
        "int": {"device": 2, "event": 0},
    }
    assert d["kernel"] == {
        "release": "6.12",
        "pending_sync_on_ctlr": False,
        "pending_sync_clears_ram": True,
        "clear_on_unmap": True,
        "restore_scan": "full",
        "translation_cache": "correct",
        # release-dependent fields, filled from the release (gicsim.kvm.releases.RELEASES)
        "mapc_checks_rdbase_first": False,
        "save_ite_no_collection": "zero",
        "baser_write_frees_on_change": True,
    }
    d["kernel"] = {"release": "6.1"}
    k61 = resolved_dict(scenario_from_dict(d))["kernel"]
    assert k61["mapc_checks_rdbase_first"] is True and k61["baser_write_frees_on_change"] is False


def test_minimal_defaults():
    s = scenario_from_dict({})
    assert s.name == "scenario" and s.seed == 0 and s.until_ns == 100_000_000
    assert s.vm.vcpus == 1 and s.vm.memory_mib == 512
    assert s.migrations == () and s.devices == () and s.guest.boot == ()
    assert s.timing_base == "altra-6.12"
    assert scenario_from_dict(resolved_dict(s)) == s


def test_migration_defaults_come_from_the_timing_profile():
    s = scenario_from_dict(
        {
            "timing": {
                "base": "xgene-2016",
                "overrides": {"vcpu_exit_us": 3.5, "downtime_limit_ms": 50},
            },
            "migration": {"at_us": 10, "source": {"quiesce_devices": False}},
        }
    )
    m = s.migrations[0]
    assert s.timing_base == "xgene-2016"
    assert s.timing.hvc_ns == 2708 and s.timing.vcpu_exit_ns == 3500
    assert m.source.vcpu_exit_ns == 3500
    assert m.precopy.bandwidth_mib_s == 128 and m.precopy.downtime_limit_ns == 50_000_000
    assert m.source.steps == tuple(x for x in DEFAULT_SOURCE_STEPS if x != "quiesce_devices")
    assert m.source.on_ebusy.policy == "abort"
    assert scenario_from_dict(resolved_dict(s)) == s


def test_several_migrations_and_after():
    s = scenario_from_dict(
        {
            "vm": {"vcpus": 2},
            "migration": [{"at_us": 10}, {"after": "resume", "delay_us": 5}, {"after": "resume:1"}],
            "guest": {"actions": [{"vcpu": 1, "after": "migration_start:2", "mask": True}]},
            "expect": {"migration": ["completed", "aborted", "none"], "ebusy": ">=1"},
        }
    )
    assert [m.after for m in s.migrations] == [None, After("resume", 0), After("resume", 0)]
    assert [m.delay_ns for m in s.migrations] == [None, 5000, 0]
    assert s.guest.actions[0].after == After("migration_start", 1)
    assert s.expect.ebusy == Compare(">=", 1) and s.expect.ebusy.holds(2)
    assert scenario_from_dict(resolved_dict(s)) == s


def test_file_name_gives_the_default_name(tmp_path):
    f = tmp_path / "my-case.yaml"
    f.write_text("seed: 3\n")
    assert load_scenario(f).name == "my-case"


# --------------------------------------------------------------------------- problems, exact


@pytest.mark.parametrize(
    "text,expected",
    [
        pytest.param(
            "name: t\nseed: 1\ncolour: blue\n",
            "s.yaml:3:1: colour: unknown key 'colour'; valid keys: name, description, seed, "
            "until_us, timing, kernel, vm, guest, devices, migration, expect",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "name: t\nvm: {vcpus: 2}\nguest:\n  boot:\n    - mapc: {icid: 0, vcpu: 0}\n"
            "    - mapd: {device: 2, event_bits: 8, colour: 1}\n",
            "s.yaml:6:40: guest.boot.1.mapd.colour: unknown key 'colour'; valid keys: device, "
            "event_bits, valid",
            id="unknown-key-in-list-item",
        ),
        pytest.param(
            "name: t\nguest:\n  boot:\n    - mapx: {icid: 0}\n",
            "s.yaml:4:7: guest.boot.0.mapx: unknown step 'mapx' (did you mean 'mapd'?); valid "
            "steps: enable_lpis, disable_lpis, set_pending, mapc, mapd, mapti, map_events, movi, "
            "movall, discard, inv, invall, int, clear, sync, its_enable, lpi_config, map_devices, mask",
            id="unknown-step",
        ),
        pytest.param(
            "name: t\nvm:\n  vcpus: 2\n  memory_mib: lots\n",
            "s.yaml:4:15: vm.memory_mib: expected an integer, got 'lots'",
            id="wrong-type",
        ),
        pytest.param(
            "name: t\nvm:\n  vcpus: '2'\n",
            "s.yaml:3:10: vm.vcpus: expected an integer, got '2'",
            id="string-is-not-an-int",
        ),
        pytest.param(
            "name: t\nvm:\n  vcpus: 600\n",
            "s.yaml:3:10: vm.vcpus: must be <= 512, got 600",
            id="vcpus-out-of-range",
        ),
        pytest.param(
            "name: t\nguest:\n  boot:\n    - mapd: {device: 2, event_bits: 8}\n"
            "    - map_events: {device: 2, events: 9-3, lpis: 8192-8198, icid: 0}\n",
            "s.yaml:5:39: guest.boot.1.map_events.events: bad range '9-3': start 9 is greater "
            "than end 3",
            id="bad-range",
        ),
        pytest.param(
            "name: t\nguest:\n  boot:\n    - mapti: {device: 1, event: 0, lpi: 100, icid: 0}\n",
            "s.yaml:4:41: guest.boot.0.mapti.lpi: LPI 100 out of range 8192..65535",
            id="lpi-out-of-range",
        ),
        pytest.param(
            "name: t\nguest:\n  boot:\n    - mapti: {device: 1, event: 0, icid: 0}\n",
            "s.yaml:4:7: guest.boot.0.mapti.lpi: missing required key",
            id="missing-key",
        ),
        pytest.param(
            "name: t\nvm: {vcpus: 2}\nguest:\n  boot:\n    - mapc: {icid: 0, vcpu: 2}\n",
            "s.yaml:5:29: guest.boot.0.mapc.vcpu: vCPU 2 does not exist (vm.vcpus is 2)",
            id="vcpu-reference",
        ),
        pytest.param(
            "name: t\ndevices:\n  - {device: 1, events: [0, 1], at_us: [5, soon]}\n",
            "s.yaml:3:44: devices.0.at_us.1: expected a number, got 'soon'",
            id="wrong-type-list-item",
        ),
        pytest.param(
            "name: t\nmigration:\n  at_us: 10\n  destination:\n    steps: [memory, its_init, memory]\n",
            "s.yaml:5:31: migration.destination.steps.2: step 'memory' named twice (first at item 0)",
            id="duplicate-destination-step",
        ),
        pytest.param(
            "name: t\nmigration:\n  at_us: 10\n  source:\n    steps: [stop_vcpus, jump]\n",
            "s.yaml:5:25: migration.source.steps.1: unknown source step 'jump'; valid steps: "
            "stop_vcpus, quiesce_devices, save_pending_tables, save_its_tables, final_memory",
            id="unknown-source-step",
        ),
        pytest.param(
            "name: t\nmigration:\n  at_us: 10\n  source:\n    steps: [stop_vcpus, save_its_tables]\n"
            "    quiesce_devices: false\n",
            "s.yaml:6:5: migration.source.quiesce_devices: give quiesce_devices or steps, not both "
            "(steps says whether quiesce_devices runs)",
            id="quiesce-devices-with-steps",
        ),
        pytest.param(
            "name: t\nmigration:\n  - at_us: 10\n  - after: resume\n    delay_us: 5\n    sorce: {}\n",
            "s.yaml:6:5: migration.1.sorce: unknown key 'sorce' (did you mean 'source'?); valid "
            "keys: at_us, after, delay_us, precopy, source, destination",
            id="unknown-key-in-second-migration",
        ),
        pytest.param(
            "name: t\nmigration:\n  at_us: 10\n  source:\n    on_ebusy: retryy\n",
            "s.yaml:5:15: migration.source.on_ebusy: expected abort, continue or "
            "{retry: N, backoff_us: T}, got 'retryy'",
            id="bad-on-ebusy",
        ),
        pytest.param(
            "name: t\ntiming: {base: altra-6.12, overrides: {hvc_ns: 4}}\n",
            "s.yaml:2:40: timing.overrides.hvc_ns: unknown key 'hvc_ns' (did you mean 'hvc_us'?); "
            "valid keys: hvc_us, mmio_kernel_us, vipi_us, its_int_to_handler_us, its_cmd_us, "
            "lpi_delivery_us, wfi_wakeup_us, halt_poll_us, ack_us, eoi_us, handler_us, msi_inject_us, "
            "msi_cache_miss_us, vcpu_exit_us, vcpu_pause_per_vcpu_us, vcpu_resume_us, kvm_attr_us, "
            "its_save_per_entry_us, its_restore_per_mapping_us, its_restore_scan_per_entry_us, "
            "pending_save_per_lpi_us, dirty_sync_per_gib_us, precopy_bandwidth_mib_s, "
            "switchover_bandwidth_mib_s, downtime_limit_ms, dest_prefault_ms_per_gib",
            id="unknown-timing-override",
        ),
        pytest.param(
            "name: t\ntiming: altra\n",
            "s.yaml:2:9: timing: unknown timing profile 'altra' (did you mean 'altra-6.12'?); "
            "valid profiles: altra-6.12, xgene-2016",
            id="unknown-profile",
        ),
        pytest.param(
            "name: t\nexpect:\n  lost: '>= x'\n",
            "s.yaml:3:9: expect.lost: expected a count or a comparison such as '>=1', '<3', '==0', "
            "got '>= x'",
            id="bad-comparison",
        ),
        pytest.param(
            "name: t\nvm:\n  vcpus: [1, 2\n",
            "s.yaml:4:1: <yaml>: expected ',' or ']', but got '<stream end>' (while parsing a flow "
            "sequence started at 3:10)",
            id="yaml-syntax",
        ),
        pytest.param(
            "name: t\nvm:\n  vcpus: 2\n  vcpus: 4\n",
            "s.yaml:4:3: vm.vcpus: duplicate key 'vcpus' (first at line 3)",
            id="duplicate-yaml-key",
        ),
        pytest.param(
            "- 1\n- 2\n",
            "s.yaml:1:1: <root>: expected a mapping of scenario keys, got a list",
            id="top-level-not-a-mapping",
        ),
        pytest.param(
            "",
            "s.yaml:1:1: <root>: empty scenario (expected a mapping with keys such as name, vm, guest)",
            id="empty",
        ),
        pytest.param(
            "# nothing but a comment\n",
            "s.yaml:1:1: <root>: empty scenario (expected a mapping with keys such as name, vm, guest)",
            id="only-comments",
        ),
        pytest.param(
            "name: t\nseed: \x01\n",
            "s.yaml:2:7: <yaml>: special characters are not allowed (character 0x1)",
            id="control-character",
        ),
    ],
)
def test_problem_lines_are_exact(text, expected):
    assert problems_of(text) == [expected]


def test_all_problems_are_collected_in_line_order():
    text = (
        "name: t\n"  # 1
        "colour: blue\n"  # 2
        "vm:\n"  # 3
        "  vcpus: 2\n"  # 4
        "guest:\n"  # 5
        "  boot:\n"  # 6
        "    - mapc: {icid: 0, vcpu: 7}\n"  # 7
        "    - mapti: {device: 1, event: 0, lpi: 1, icid: 0}\n"  # 8
        "expect: {lost: -1}\n"  # 9
        "kernel: {restore_scan: head}\n"  # 10
    )
    got = problems_of(text)
    assert [tuple(int(x) for x in LINE_RE.match(p).group(2, 3)) for p in got] == [
        (2, 1),
        (7, 29),
        (8, 41),
        (9, 16),
        (10, 24),
    ]
    assert (
        got[4] == "s.yaml:10:24: kernel.restore_scan: expected 'full' or 'head_pointer', got 'head'"
    )


def test_all_duplicate_keys_reported():
    assert problems_of("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n") == [
        "s.yaml:4:3: b.c: duplicate key 'c' (first at line 3)",
        "s.yaml:5:1: a: duplicate key 'a' (first at line 1)",
    ]


def test_file_errors(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ScenarioError) as exc:
        load_scenario(missing)
    assert exc.value.problems == [f"{missing}: no such file"]

    with pytest.raises(ScenarioError) as exc:
        load_scenario(tmp_path)
    assert exc.value.problems == [f"{tmp_path}: is a directory, not a scenario file"]

    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    assert check_scenario(empty) == [
        f"{empty}:1:1: <root>: empty scenario (expected a mapping with keys such as name, vm, guest)"
    ]

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"name: t\ndescription: caf\xe9 au lait\n")
    assert check_scenario(latin1) == [f"{latin1}:2:17: <file>: not valid UTF-8 (byte 0xe9)"]

    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: t\n")
    assert check_scenario(bom) == []


def test_dict_api_reports_zero_positions():
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(
            {"vm": {"vcpus": 2}, "guest": {"boot": [{"mapc": {"icid": 0, "vcpu": 5}}]}}
        )
    assert exc.value.problems == [
        "<dict>:0:0: guest.boot.0.mapc.vcpu: vCPU 5 does not exist (vm.vcpus is 2)"
    ]
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict([1, 2], filename="api")
    assert exc.value.problems == [
        "api:0:0: <root>: expected a mapping of scenario keys, got a list"
    ]


@pytest.mark.parametrize(
    "d,expected",
    [
        (
            {"migration": [{"after": "resume"}]},
            "migration.0.after: a migration can only wait for an earlier one (the first one needs at_us)",
        ),
        (
            {"migration": {"at_us": 1}, "expect": {"migration": ["completed", "completed"]}},
            "expect.migration: 2 statuses for 1 migrations (give one status for all, or one per migration)",
        ),
        (
            {"guest": {"actions": [{"vcpu": 0, "after": "resume", "mask": True}]}},
            "guest.actions.0.after: waits for migration 1 but no migration is configured",
        ),
        (
            {"guest": {"actions": [{"vcpu": 0, "mask": True}]}},
            "guest.actions.0: an action needs a time: at_us, or after (with delay_us)",
        ),
        (
            {
                "devices": [
                    {"device": 1, "events": 0, "rate_per_s": 10, "start_us": 5, "stop_us": 1}
                ]
            },
            "devices.0.stop_us: stop_us (1) is before start_us (5)",
        ),
        (
            {"devices": [{"device": 1, "events": 0, "at_us": [1], "pattern": "poisson"}]},
            "devices.0.pattern: pattern goes with rate_per_s, not at_us",
        ),
        (
            {
                "guest": {
                    "boot": [
                        {
                            "map_events": {
                                "device": 1,
                                "events": "0-3",
                                "lpis": "8192-8194",
                                "icid": 0,
                            }
                        }
                    ]
                }
            },
            "guest.boot.0.map_events.lpis: events and lpis are paired in order: 4 events but 3 lpis",
        ),
        (
            {"guest": {"boot": [{"mapc": {"icid": 0, "vcpu": 0}, "sync": {"icid": 0}}]}},
            "guest.boot.0.sync: one step per item: 'mapc' is already given",
        ),
        (
            {"guest": {"boot": [{"mapd": {"device": 70000, "event_bits": 17}}]}},
            "guest.boot.0.mapd.device: must be <= 65535, got 70000",
        ),
        (
            {"vm": {"its": {"cmdq_kib": 6}}},
            "vm.its.cmdq_kib: the command queue is a whole number of 4 KiB pages, got 6",
        ),
        (
            {"guest": {"boot": [{"enable_lpis": [0, 3]}]}},
            "guest.boot.0.enable_lpis.1: vCPU 3 does not exist (vm.vcpus is 1)",
        ),
        (
            {"expect": {"errors": [{"step": "save_its_tables", "errno": "EBSY"}]}},
            "expect.errors.0.errno: expected an errno name such as EBUSY or EINVAL, got 'EBSY'",
        ),
        (
            {"name": "../escape"},
            "name: '../escape' is not usable as a directory name (letters, digits, '.', '_', '-')",
        ),
        (
            {"migration": {"at_us": 1, "source": {"on_ebusy": {"retry": 3}}}},
            "migration.source.on_ebusy.backoff_us: missing required key",
        ),
        ({"until_us": 0}, "until_us: must be > 0, got 0"),
        ({"seed": True}, "seed: expected an integer, got true"),
    ],
)
def test_cross_checks(d, expected):
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(d)
    assert f"<dict>:0:0: {expected}" in exc.value.problems, exc.value.problems


def test_mapd_event_bits_range_reported_with_device():
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict({"guest": {"boot": [{"mapd": {"device": 70000, "event_bits": 17}}]}})
    assert exc.value.problems == [
        "<dict>:0:0: guest.boot.0.mapd.device: must be <= 65535, got 70000",
        "<dict>:0:0: guest.boot.0.mapd.event_bits: must be <= 16, got 17",
    ]


# --------------------------------------------------------------------------- ranges


def test_parse_range_forms():
    assert parse_range(5) == (5,)
    assert parse_range([3, 1, 2]) == (3, 1, 2)  # order kept: map_events pairs in order
    assert parse_range("8192-8195") == (8192, 8193, 8194, 8195)
    assert parse_range(" 0x10 - 0x12 ") == (16, 17, 18)
    assert parse_range("7") == (7,)
    for bad in ["9-3", "a-b", "1-", "-1", True, None, 1.5, [1, 1], [1, "x"], [], {"a": 1}]:
        with pytest.raises(ValueError):
            parse_range(bad)
    with pytest.raises(ValueError, match="out of range"):
        parse_range("8000-8200", lo=8192, hi=65535, what="LPI")


@given(a=st.integers(0, 70000), n=st.integers(0, 3000), spaces=st.booleans(), hexa=st.booleans())
def test_dash_ranges_parse_to_the_right_set(a, n, spaces, hexa):
    b = a + n
    fmt = hex if hexa else str
    text = f"{fmt(a)} - {fmt(b)}" if spaces else f"{fmt(a)}-{fmt(b)}"
    got = parse_range(text)
    assert got == tuple(range(a, b + 1))
    assert set(got) == set(range(a, b + 1))
    assert parse_range(format_range(got)) == got


@given(a=st.integers(0, 70000), d=st.integers(1, 1000))
def test_reversed_ranges_are_errors(a, d):
    with pytest.raises(ValueError, match="greater than end"):
        parse_range(f"{a + d}-{a}")


@given(st.lists(st.integers(0, 65535), min_size=1, max_size=200, unique=True))
def test_lists_parse_to_the_same_ids(ids):
    got = parse_range(ids)
    assert got == tuple(ids)
    assert parse_range(format_range(got)) == got


@given(st.integers(0, 1 << 40))
def test_single_ints(v):
    assert parse_range(v) == (v,)


# --------------------------------------------------------------------------- robustness

KEYS = [
    "name",
    "seed",
    "until_us",
    "timing",
    "kernel",
    "vm",
    "vcpus",
    "guest",
    "boot",
    "actions",
    "devices",
    "device",
    "events",
    "migration",
    "source",
    "destination",
    "steps",
    "expect",
    "mapc",
    "icid",
    "vcpu",
    "at_us",
    "after",
    "lpis",
    "on_ebusy",
    "retry",
    "base",
    "overrides",
    "hvc_us",
    "stragglers",
    "delivered",
    "lpi",
    "quiesce_devices",
    "x",
]
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["all", "0-3", "9-3", "resume", "abort", ">=1", "memory", "altra-6.12", ""]),
    st.text(max_size=5),
)
data = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), data, max_size=6))
def test_random_dicts_never_leak_an_exception(d):
    try:
        s = scenario_from_dict(d)
    except ScenarioError as e:
        assert e.problems
        for p in e.problems:
            assert LINE_RE.match(p), p
    else:
        assert isinstance(s, Scenario)
        assert scenario_from_dict(resolved_dict(s)) == s


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_text_never_leaks_an_exception(text):
    try:
        load_scenario_text(text, "r.yaml")
    except ScenarioError as e:
        for p in e.problems:
            assert p.startswith("r.yaml:"), p


ALL_STEPS = """\
name: every-step
vm: {vcpus: 3, memory_mib: 1024, its: {device_table: two_level, cmdq_kib: 16}}
kernel: {pending_sync_on_ctlr: true, pending_sync_clears_ram: false, clear_on_unmap: false,
         restore_scan: head_pointer, translation_cache: stale}
guest:
  boot:
    - enable_lpis: [0, 2]
    - disable_lpis: "1-2"
    - set_pending: {vcpu: 2, lpis: [8200, 8195]}
    - mapc: {icid: 7, vcpu: 2, valid: false}
    - mapd: {device: 9, valid: false}
    - mapti: {device: 9, event: 3, lpi: 65535, icid: 7}
    - map_events: {device: 1, events: [4, 5, 6], lpis: 9000-9002, icid: [0, 1]}
    - movi: {device: 1, event: 4, icid: 1}
    - movall: {from_vcpu: 0, to_vcpu: 2}
    - discard: {device: 1, event: 5}
    - inv: {device: 1, event: 6}
    - invall: {icid: 1}
    - int: {device: 1, event: 6}
    - clear: {device: 1, event: 6}
    - sync: {icid: 0}
    - its_enable: false
    - lpi_config: {lpis: 9000-9002, priority: 0x40, enabled: false}
    - map_devices: {devices: 100-163, event_bits: 2, events: 0-3, first_lpi: 16384, icid: 0}
    - mask: all
  actions:
    - {at_us: 1.5, vcpu: 2, movi: {device: 1, event: 4, icid: 0}}
    - {at_us: 2, vcpu: 0, enable_lpis: all}
devices:
  - {device: 100-163, events: 0-3, rate_per_s: 1000.5}
expect:
  dropped: {its_disabled: ">=1", not_restored: 0}
  errors: [{step: save_its_tables, errno: EBUSY}, {step: gits_ctlr, errno: -EINVAL}]
"""


def test_every_step_kind_loads_and_round_trips():
    s = load_scenario_text(ALL_STEPS, "all.yaml")
    kinds = [b.kind for b in s.guest.boot]
    assert kinds == [
        "enable_lpis", "disable_lpis", "set_pending", "mapc", "mapd", "mapti", "map_events",
        "movi", "movall", "discard", "inv", "invall", "int", "clear", "sync", "its_enable",
        "lpi_config", "map_devices", "mask",
    ]  # fmt: skip
    b = {x.kind: x.args for x in s.guest.boot}
    assert b["disable_lpis"] == (1, 2)
    assert b["set_pending"].lpis == (8200, 8195)
    assert b["mapc"].valid is False and b["mapd"].event_bits is None
    assert b["map_events"].icid == (0, 1)
    assert b["its_enable"] is False
    assert (b["lpi_config"].priority, b["lpi_config"].enabled) == (0x40, False)
    assert len(b["map_devices"].devices) == 64 and b["map_devices"].events == (0, 1, 2, 3)
    assert b["mask"] == (0, 1, 2)
    assert s.guest.actions[0].at_ns == 1500 and s.guest.actions[1].args == (0, 1, 2)
    assert s.devices[0].pattern == "periodic" and s.devices[0].start_ns == 0
    assert s.devices[0].stop_ns is None
    assert s.kernel.restore_scan == "head_pointer" and s.kernel.translation_cache == "stale"
    assert s.vm.its.device_table == "two_level"
    assert s.expect.dropped.its_disabled == Compare(">=", 1)
    assert [(e.step, e.errno) for e in s.expect.errors] == [
        ("save_its_tables", "EBUSY"),
        ("gits_ctlr", "EINVAL"),
    ]
    assert scenario_from_dict(resolved_dict(s)) == s
