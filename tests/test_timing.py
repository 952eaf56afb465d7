import attrs
import pytest

from gicsim.scenario.timing import (
    DEFAULT_PROFILE,
    NOT_CHARGED,
    PROFILE_SOURCES,
    PROFILES,
    SOURCES,
    TimingProfile,
    TimingSpecError,
    override_keys,
    profile_table,
    resolve_timing,
)

FIELDS = [f.name for f in attrs.fields(TimingProfile)]
ALTRA = PROFILES["altra-6.12"]
XGENE = PROFILES["xgene-2016"]


def test_default_profile_is_altra():
    assert DEFAULT_PROFILE == "altra-6.12"
    assert resolve_timing(None) == ALTRA
    assert resolve_timing("altra-6.12") == ALTRA
    assert resolve_timing("xgene-2016") == XGENE != ALTRA


@pytest.mark.parametrize(
    "field,value",
    [
        # SPEC §5 / timing-anchors §1
        ("mmio_kernel_ns", 451),
        ("hvc_ns", 306),
        ("vipi_ns", 1926),
        ("its_int_to_handler_ns", 2179),
        ("its_cmd_ns", 250),
        ("eoi_ns", 14),
        ("msi_inject_ns", 600),
        ("vcpu_exit_ns", 2000),
        ("vcpu_pause_per_vcpu_ns", 16000),
        ("its_save_per_entry_ns", 700),
        ("its_restore_per_mapping_ns", 730),
        ("its_restore_scan_per_entry_ns", 90),
        ("pending_save_per_lpi_ns", 500),
        ("precopy_bandwidth_mib_s", 128),
        ("switchover_bandwidth_mib_s", 1946),
        ("downtime_limit_ms", 300),
        ("dest_prefault_ms_per_gib", 30.6),
    ],
)
def test_altra_values_are_the_spec_figures(field, value):
    assert getattr(ALTRA, field) == value


def test_time_fields_are_ints_in_every_profile():
    for profile in PROFILES.values():
        for f in FIELDS:
            if f.endswith("_ns"):
                assert type(getattr(profile, f)) is int, f


@pytest.mark.parametrize("name", list(PROFILES))
def test_int_command_path_adds_up(name):
    p = PROFILES[name]
    assert p.mmio_kernel_ns + p.its_cmd_ns + p.lpi_delivery_ns == p.its_int_to_handler_ns


def test_altra_delivery_matches_the_ipi_path_too():
    # an SGI is a trapped write too: trap + delivery should give the measured vIPI
    assert abs(ALTRA.mmio_kernel_ns + ALTRA.lpi_delivery_ns - ALTRA.vipi_ns) <= 5


def test_restore_costs_reproduce_the_6s_vs_6ms_anchor():
    full_scan = 8192 * 8192 * ALTRA.its_restore_scan_per_entry_ns
    per_mapping = 8192 * ALTRA.its_restore_per_mapping_ns
    assert abs(full_scan - 6e9) / 6e9 < 0.02
    assert abs(per_mapping - 6e6) / 6e6 < 0.02


def test_downtime_limit_ns():
    assert ALTRA.downtime_limit_ns == 300_000_000


@pytest.mark.parametrize(
    "field,cycles,ns",
    [
        ("hvc_ns", 6500, 2708),
        ("mmio_kernel_ns", 7370, 3071),
        ("vipi_ns", 11557, 4815),
        ("eoi_ns", 71, 30),
    ],
)
def test_xgene_converts_isca16_cycles_at_2_4_ghz(field, cycles, ns):
    assert round(cycles / 2.4) == ns
    assert getattr(XGENE, field) == ns


def test_xgene_delivery_is_vipi_minus_trap():
    assert XGENE.lpi_delivery_ns == round((11557 - 7370) / 2.4) == 1745
    assert XGENE.its_int_to_handler_ns == 3071 + 250 + 1745


def test_xgene_keeps_non_table_ii_values():
    assert XGENE.its_restore_per_mapping_ns == ALTRA.its_restore_per_mapping_ns
    assert XGENE.precopy_bandwidth_mib_s == ALTRA.precopy_bandwidth_mib_s


def test_overrides_in_microseconds_become_int_ns():
    p = resolve_timing(
        {
            "base": "altra-6.12",
            "overrides": {
                "handler_us": 0.5,
                "vcpu_exit_us": 400,
                "its_restore_scan_per_entry_us": 0.09,
            },
        }
    )
    assert p.handler_ns == 500 and type(p.handler_ns) is int
    assert p.vcpu_exit_ns == 400_000 and type(p.vcpu_exit_ns) is int
    assert p.its_restore_scan_per_entry_ns == 90 and type(p.its_restore_scan_per_entry_ns) is int
    assert p.vipi_ns == ALTRA.vipi_ns  # untouched


def test_override_rounds_to_nearest_ns():
    assert resolve_timing({"overrides": {"its_cmd_us": 0.0126}}).its_cmd_ns == 13
    assert resolve_timing({"overrides": {"its_cmd_us": 0.0124}}).its_cmd_ns == 12


def test_non_time_fields_are_overridden_by_exact_name():
    p = resolve_timing(
        {
            "base": "xgene-2016",
            "overrides": {"precopy_bandwidth_mib_s": 32, "downtime_limit_ms": 50},
        }
    )
    assert p.precopy_bandwidth_mib_s == 32
    assert p.downtime_limit_ms == 50
    assert p.hvc_ns == 2708  # base kept


def test_override_keys_replace_ns_by_us():
    keys = override_keys()
    assert keys["hvc_us"] == "hvc_ns"
    assert keys["precopy_bandwidth_mib_s"] == "precopy_bandwidth_mib_s"
    assert "hvc_ns" not in keys
    assert sorted(keys.values()) == sorted(FIELDS)


def test_unknown_override_key_rejected_with_valid_keys():
    with pytest.raises(KeyError) as exc:
        resolve_timing({"overrides": {"hvc_latency_us": 1}})
    msg = str(exc.value)
    assert "hvc_latency_us" in msg and "hvc_us" in msg and "precopy_bandwidth_mib_s" in msg
    assert isinstance(exc.value, ValueError)


def test_ns_override_key_points_to_us():
    with pytest.raises(TimingSpecError, match="use hvc_us"):
        resolve_timing({"overrides": {"hvc_ns": 300}})


@pytest.mark.parametrize(
    "spec",
    [
        "altra",
        {"base": "nope"},
        {"base": []},
        {"base": "altra-6.12", "extra": 1},
        {"overrides": {"handler_us": -1}},
        {"overrides": {"handler_us": True}},
        {"overrides": {"handler_us": "fast"}},
        {"overrides": {"handler_us": float("nan")}},
        {"overrides": {"hvc_us": 1}},  # a reference figure nothing charges
        {"overrides": {"precopy_bandwidth_mib_s": 0}},
        {"overrides": [1]},
        42,
    ],
)
def test_bad_specs_raise(spec):
    with pytest.raises(ValueError):
        resolve_timing(spec)


def test_profile_is_frozen_and_validated():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ALTRA.hvc_ns = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        TimingProfile(hvc_ns=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TimingProfile(hvc_ns=-1)


def test_every_field_has_a_source_with_confidence():
    assert set(SOURCES) == set(FIELDS)
    for name, sources in PROFILE_SOURCES.items():
        assert name in PROFILES
        assert set(sources) == set(FIELDS)
        for f, src in sources.items():
            assert src.strip(), f
            assert src.rsplit(", ", 1)[-1] in ("high", "medium", "low"), (name, f, src)


def test_profile_table_rows():
    rows = profile_table(ALTRA)
    assert [r[0] for r in rows] == FIELDS
    by_field = {r[0]: r for r in rows}
    assert by_field["mmio_kernel_ns"] == ("mmio_kernel_ns", 451, "ns", SOURCES["mmio_kernel_ns"])
    assert by_field["precopy_bandwidth_mib_s"][2] == "MiB/s"
    assert by_field["its_save_per_entry_ns"][2] == "ns/entry"


def test_profile_table_marks_overrides_and_finds_base():
    p = resolve_timing({"base": "xgene-2016", "overrides": {"handler_us": 2}})
    rows = {r[0]: r for r in profile_table(p)}
    assert "override" in rows["handler_ns"][3] and "(base xgene-2016: " in rows["handler_ns"][3]
    assert "ISCA16" in rows["vipi_ns"][3]  # base detected as xgene-2016
    rows = {r[0]: r for r in profile_table(p, base="altra-6.12")}
    assert "override" in rows["vipi_ns"][3]


def test_overrides_of_figures_nothing_charges_are_refused():
    """hvc, vipi, ack, eoi, msi_inject, msi_cache_miss, its_int_to_handler, dirty_sync and
    dest_prefault are reference figures: changing one would change nothing, so it is refused;
    the profile's own value (what a resolved scenario spells out) is accepted."""
    for f in NOT_CHARGED:
        key = f[:-3] + "_us" if f.endswith("_ns") else f
        same = getattr(ALTRA, f) / 1000 if f.endswith("_ns") else getattr(ALTRA, f)
        with pytest.raises(TimingSpecError, match=f"^{key}: a reference figure the simulation does not charge") as e:
            resolve_timing({"overrides": {key: 12345}})
        assert str(e.value).endswith(f"(remove it, or keep the profile's {same!r})")  # in the key's unit
        assert resolve_timing({"overrides": {key: same}}) == ALTRA
    rows = {r[0]: r for r in profile_table(ALTRA)}
    assert rows["hvc_ns"][3].startswith("reference only, not charged (nothing in the model makes a hypercall); ")
    assert not rows["handler_ns"][3].startswith("reference only")


def test_not_charged_fields_are_read_by_no_simulation_code():
    """The list is true: no module outside the timing profile reads those fields (and every
    other field is read somewhere)."""
    import pathlib
    import re

    src = pathlib.Path(__file__).resolve().parent.parent / "gicsim"
    text = "\n".join(p.read_text() for p in src.rglob("*.py") if p.name != "timing.py")
    for f in FIELDS:
        used = re.search(rf"\b{f}\b", text) is not None
        assert used == (f not in NOT_CHARGED), f
