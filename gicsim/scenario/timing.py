"""Timing profiles: every latency the simulator charges, as data, each with its source.

Times are integer nanoseconds (fields ending in ``_ns``) so simulated time never drifts through
float rounding; a few non-time quantities (bandwidths, the downtime target in ms, the prefault
rate) are plain numbers. ``SOURCES`` says where each default comes from, so a report can show
why a number is what it is (see ``docs/timing-anchors.md``; every source key is in
``docs/bibliography.md``; confidence
high = read in the primary source, medium = corroborated or derived, low = assumption).

Scenario overrides use microseconds (``<stem>_us`` for a field ``<stem>_ns``) like the rest of
the scenario format; non-time fields are overridden by their exact name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from gicsim.scenario.errors import _show
from gicsim.scenario.units import to_ns

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "PROFILE_SOURCES",
    "SOURCES",
    "TimingProfile",
    "TimingSpecError",
    "convert_override",
    "override_keys",
    "profile_table",
    "resolve_timing",
]


@attrs.frozen(slots=True)
class TimingProfile:
    """Latencies of one host. Defaults = ``altra-6.12`` (SPEC §5)."""

    # --- guest <-> vGIC/ITS paths (vCPU running) ---
    hvc_ns: int = 306
    mmio_kernel_ns: int = 451
    vipi_ns: int = 1926
    its_int_to_handler_ns: int = 2179
    its_cmd_ns: int = 250
    lpi_delivery_ns: int = 1478
    wfi_wakeup_ns: int = 5000
    halt_poll_ns: int = 500_000
    ack_ns: int = 14
    eoi_ns: int = 14
    handler_ns: int = 1000
    # --- MSI injection from devices (irqfd / KVM_SIGNAL_MSI) ---
    msi_inject_ns: int = 600
    msi_cache_miss_ns: int = 3000
    # --- migration controller: vCPUs and KVM device calls ---
    vcpu_exit_ns: int = 2000
    vcpu_pause_per_vcpu_ns: int = 16000
    vcpu_resume_ns: int = 16000
    kvm_attr_ns: int = 1000
    its_save_per_entry_ns: int = 700
    its_restore_per_mapping_ns: int = 730
    its_restore_scan_per_entry_ns: int = 90
    pending_save_per_lpi_ns: int = 500
    # --- memory transfer ---
    dirty_sync_per_gib_ns: int = 187_500
    precopy_bandwidth_mib_s: float = 128
    switchover_bandwidth_mib_s: float = 1946
    downtime_limit_ms: float = 300
    dest_prefault_ms_per_gib: float = 30.6

    def __attrs_post_init__(self) -> None:
        for f in attrs.fields(type(self)):
            v = getattr(self, f.name)
            if f.name.endswith("_ns"):
                if type(v) is not int or v < 0:
                    raise TimingSpecError(f"{f.name} must be a non-negative int (ns), got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise TimingSpecError(f"{f.name} must be a finite number, got {v!r}")
            elif v < 0 or (v == 0 and f.name in _POSITIVE):
                raise TimingSpecError(f"{f.name} must be {_bound(f.name)}, got {v!r}")

    @property
    def downtime_limit_ns(self) -> int:
        return to_ns(self.downtime_limit_ms, 1_000_000, positive=True)

    @property
    def dest_prefault_ns_per_mib(self) -> float:
        return self.dest_prefault_ms_per_gib * 1_000_000 / 1024


_POSITIVE = frozenset(
    {"precopy_bandwidth_mib_s", "switchover_bandwidth_mib_s", "downtime_limit_ms"}
)
# non-time fields that the scenario copies into a time field (``migration.precopy``)
_AS_NS = {"downtime_limit_ms": 1_000_000}
# non-time fields (rates, ms per GiB): finite and at most this, so products stay finite floats
MAX_NUMBER = 1e15


def _bound(name: str) -> str:
    return "> 0" if name in _POSITIVE else ">= 0"


class TimingSpecError(KeyError, ValueError):
    """Bad profile name, override key or value (both a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


FIELDS: tuple[str, ...] = tuple(f.name for f in attrs.fields(TimingProfile))

_UNITS = {
    "precopy_bandwidth_mib_s": "MiB/s",
    "switchover_bandwidth_mib_s": "MiB/s",
    "downtime_limit_ms": "ms",
    "dest_prefault_ms_per_gib": "ms/GiB",
    "dirty_sync_per_gib_ns": "ns/GiB",
}


def _unit(name: str) -> str:
    if name in _UNITS:
        return _UNITS[name]
    if "_per_" in name and name.endswith("_ns"):
        return "ns/" + name[name.index("_per_") + 5 : -3]
    return "ns"


SOURCES: dict[str, str] = {
    "hvc_ns": "[KUT-Altra] kvm-unit-tests micro-bench `hvc` on Ampere Altra, Linux 6.12-rc1 "
    "(timing-anchors row 1), high",
    "mmio_kernel_ns": "[KUT-Altra] micro-bench `mmio_read_vgic` (GICD_IIDR read handled in the "
    "kernel), used for any trapped vGIC/ITS register access such as a GITS_CWRITER write "
    "(row 2), high",
    "vipi_ns": "[KUT-Altra] micro-bench `ipi`: SGI from vCPU0 until vCPU1's handler runs "
    "(row 5), high",
    "its_int_to_handler_ns": "[KUT-Altra] micro-bench `lpi`: ITS INT command until the handler "
    "on vCPU1 runs (row 7); the target spins in the guest, so this is the running-vCPU path; "
    "a check value, the simulator charges mmio_kernel + its_cmd + lpi_delivery, high",
    "its_cmd_ns": "derived: micro-bench lpi - ipi = 2179 - 1926 = 253 ns, rounded to 250 "
    "(row 8; 250-470 ns across hosts), medium",
    "lpi_delivery_ns": "derived: its_int_to_handler - mmio_kernel - its_cmd = 2179 - 451 - 250 "
    "= 1478 (pending -> running vCPU kicked, list register loaded, guest takes the IRQ); "
    "cross-check vipi - mmio_kernel = 1475, medium",
    "wfi_wakeup_ns": "assumption: pending -> an LPI taken by a vCPU blocked in WFI (replaces "
    "lpi_delivery_ns): host thread wake-up incl. idle exit, vcpu_load, guest entry; no "
    "published measurement (timing-anchors §4), sweep 2-20 us, low",
    "halt_poll_ns": "Linux arch/arm64/include/asm/kvm_host.h KVM_HALT_POLL_NS_DEFAULT 500000: a "
    "vCPU idle in WFI for less than this is still halt-polling and takes an LPI with "
    "lpi_delivery_ns; after it, with wfi_wakeup_ns, high",
    "ack_ns": "assumption: ICC_IAR1_EL1 read is a GICv3 system register served by the "
    "hardware CPU interface without a trap, same class as EOI (row 4: 14 ns), low",
    "eoi_ns": "[KUT-Altra] micro-bench `eoi` (ICC_EOIR1 write, no trap) (row 4), high",
    "handler_ns": "assumption: guest LPI handler body (driver work between ack and EOI); "
    "workload-dependent, no source, low",
    "msi_inject_ns": "[LPI-xa]/[LPI-v2] vgic_lpi_stress, one stream: 1/rate = 485-734 ns "
    "(host B) to 797-1282 ns (host A), translation cache hit, to pending (row 9), medium",
    "msi_cache_miss_ns": "assumption: extra cost of a translation-cache miss on the irqfd path "
    "(injection deferred to a worker thread, one context switch per MSI, [ITS-cache], row 11), "
    "low",
    "vcpu_exit_ns": "derived: kick IPI + exit to userspace ~ micro-bench mmio_read_user "
    "1683 ns round trip (row 3), rounded to 2 us (docs/scenario-format.md example vcpu_exit_us: 2), "
    "low",
    "vcpu_pause_per_vcpu_ns": "[CH-7290] cloud-hypervisor pause of 254 vCPUs in ~4 ms after "
    "the fix = 16 us per vCPU (x86 host) (row 26), medium",
    "vcpu_resume_ns": "assumption: per-vCPU resume (unpark thread, re-enter KVM_RUN) symmetric "
    "with vcpu_pause_per_vcpu (row 26), low",
    "kvm_attr_ns": "assumption: one KVM_{SET,GET}_DEVICE_ATTR ioctl round trip (syscall, "
    "trylock of every vCPU mutex, register access); no published measurement, low",
    "its_save_per_entry_ns": "assumption anchored on [ITS-restore]: ITS_SAVE_TABLES per "
    "DTE/ITE/CTE written ~ restore per entry; no measurement (row 20), low",
    "its_restore_per_mapping_ns": "[ITS-restore] Jing Zhang 2024: RESTORE_TABLES of 8192 "
    "mappings in 6 ms = 0.73 us per DTE+ITE (row 19), medium",
    "its_restore_scan_per_entry_ns": "derived from [ITS-restore]: 6 s to walk 8192 devices x "
    "8192 ITT slots (64 KiB ITTs) = 6 s / 67.1 M = 89 ns per slot read, rounded to 90 (docs/02-save-restore-abi.md), "
    "medium",
    "pending_save_per_lpi_ns": "assumption from vgic_v3_save_pending_tables(): one guest byte "
    "read per pending-table byte, one write when the bit differs; 0.2-1 us per LPI (row 21), "
    "low",
    "dirty_sync_per_gib_ns": "[CH-8899] item 10: dirty bitmap -> ranges 12 ms per 64 GiB at "
    "10 % dirty = 187.5 us per GiB of guest RAM (row 28), medium",
    "precopy_bandwidth_mib_s": "QEMU MAX_THROTTLE 128 MiB/s since QEMU 5.2 ([QEMU-bw], row 24), "
    "high",
    "switchover_bandwidth_mib_s": "[QEMU-switchover]/[CH-7799]: throttle lifted at switchover, "
    "one TCP stream 1.8-2.0 GiB/s; 1.9 GiB/s = 1946 MiB/s (row 25), medium",
    "downtime_limit_ms": "QEMU DEFAULT_MIGRATE_SET_DOWNTIME 300 ms (migration/options.c, row 23), "
    "high",
    "dest_prefault_ms_per_gib": "[CH-8899] item 12: destination prefault 30.6 ms/GiB with THP "
    "(148 ms/GiB without), single-threaded (row 27), medium",
}

_GHZ_XGENE = 2.4


def _cyc(cycles: int, ghz: float = _GHZ_XGENE) -> int:
    return round(cycles / ghz)


# ISCA'16 Table II, ARM KVM on APM X-Gene (GICv2, non-VHE) at 2.4 GHz.
_XGENE_CYCLES = {
    "hvc_ns": 6500,  # Hypercall
    "mmio_kernel_ns": 7370,  # Interrupt Controller Trap
    "vipi_ns": 11557,  # Virtual IPI
    "eoi_ns": 71,  # Virtual IRQ Completion
}
_xg = {k: _cyc(c) for k, c in _XGENE_CYCLES.items()}
# GICv2 sends an SGI by a trapped GICD_SGIR write (an interrupt-controller trap), so the vIPI
# splits into that trap plus the delivery to the other vCPU; X-Gene has no ITS, so INT ->
# handler is built from the same parts as on Altra.
_xg["lpi_delivery_ns"] = _cyc(_XGENE_CYCLES["vipi_ns"] - _XGENE_CYCLES["mmio_kernel_ns"])
_xg["ack_ns"] = _cyc(_XGENE_CYCLES["eoi_ns"])
_xg["its_int_to_handler_ns"] = (
    _xg["mmio_kernel_ns"] + TimingProfile().its_cmd_ns + _xg["lpi_delivery_ns"]
)

PROFILES: dict[str, TimingProfile] = {
    "altra-6.12": TimingProfile(),
    "xgene-2016": TimingProfile(**_xg),
}
DEFAULT_PROFILE = "altra-6.12"

_XGENE_SOURCES = {
    "hvc_ns": "[ISCA16] Table II Hypercall 6500 cycles / 2.4 GHz (row 1), medium",
    "mmio_kernel_ns": "[ISCA16] Table II Interrupt Controller Trap 7370 cycles / 2.4 GHz "
    "(row 2), medium",
    "vipi_ns": "[ISCA16] Table II Virtual IPI 11557 cycles / 2.4 GHz (row 5), medium",
    "eoi_ns": "[ISCA16] Table II Virtual IRQ Completion 71 cycles / 2.4 GHz (row 4), medium",
    "ack_ns": "assumption: GICV_IAR read costs as much as the completion, 71 cycles / 2.4 GHz, low",
    "lpi_delivery_ns": "derived: [ISCA16] vIPI - trap = (11557 - 7370) cycles / 2.4 GHz "
    "(GICv2 SGIs are sent by a trapped GICD_SGIR write), medium",
    "its_int_to_handler_ns": "derived: mmio_kernel + its_cmd + lpi_delivery (X-Gene has no ITS; "
    "no measurement), low",
}
PROFILE_SOURCES: dict[str, dict[str, str]] = {
    "altra-6.12": SOURCES,
    "xgene-2016": {
        name: _XGENE_SOURCES.get(name, f"inherited from altra-6.12: {SOURCES[name]}")
        for name in FIELDS
    },
}


#: Fields kept as reference figures (their sources, the report's timing table, the profiles'
#: derivations) that nothing in the simulation charges. An override that changes one would
#: change nothing, so it is refused (the value the profile already has is accepted: resolved
#: scenarios spell every key out).
NOT_CHARGED: dict[str, str] = {
    "hvc_ns": "nothing in the model makes a hypercall",
    "vipi_ns": "the model sends no SGIs, the virtual IPIs",
    "its_int_to_handler_ns": "a calibration target: INT -> handler comes out of its_cmd_us, "
    "lpi_delivery_us and handler_us",
    "ack_ns": "the guest's acknowledge is inside handler_us",
    "eoi_ns": "the guest's EOI is inside handler_us",
    "msi_inject_ns": "an MSI reaches the ITS at the instant its device raises it",
    "msi_cache_miss_ns": "a translation-cache miss costs no extra time in the model",
    "dirty_sync_per_gib_ns": "pre-copy charges no dirty-bitmap sync",
    "dest_prefault_ms_per_gib": "the destination does not prefault guest memory, like QEMU by default",
}


def not_charged_problems(changes: Mapping[str, Any], base: str) -> list[str]:
    """One message per override (field -> value) that changes a :data:`NOT_CHARGED` field
    of profile ``base``."""
    keys = {f: k for k, f in override_keys().items()}
    ref = PROFILES[base]
    return [
        f"{keys[f]}: a reference figure the simulation does not charge ({NOT_CHARGED[f]}); "
        f"an override would change nothing (remove it, or keep the profile's "
        f"{getattr(ref, f) / 1000 if f.endswith('_ns') else getattr(ref, f)!r})"
        for f, v in changes.items()
        if f in NOT_CHARGED and v != getattr(ref, f)
    ]


def override_keys() -> dict[str, str]:
    """Scenario override key -> field name (``_us`` keys for ``_ns`` fields)."""
    return {(f[:-3] + "_us" if f.endswith("_ns") else f): f for f in FIELDS}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def convert_override(key: str, value: Any) -> tuple[str, int | float]:
    """Check one override; return (field name, value in field units)."""
    keys = override_keys()
    if key not in keys:
        hint = ""
        if isinstance(key, str) and key.endswith("_ns") and key in FIELDS:
            hint = f" (times are given in microseconds: use {key[:-3]}_us)"
        raise TimingSpecError(
            f"unknown timing override {key!r}{hint}; valid keys: {', '.join(keys)}"
        )
    field = keys[key]
    if not _is_number(value) or not math.isfinite(value):
        raise TimingSpecError(f"{key} must be a number, got {_show(value)}")
    if value < 0 or (value == 0 and field in _POSITIVE):
        raise TimingSpecError(f"{key} must be {_bound(field)}, got {_show(value)}")
    try:  # the scenario's one conversion: exact, int64 ns, loads back unchanged
        if field.endswith("_ns"):
            return field, to_ns(value, 1000)
        if field in _AS_NS:  # copied into a *_ms field of the resolved scenario
            to_ns(value, _AS_NS[field], positive=True)
        if value > MAX_NUMBER:
            raise ValueError(f"too large: {_show(value)} is beyond the cap of {MAX_NUMBER:g} "
                             "(timing.MAX_NUMBER)")
    except ValueError as e:
        raise TimingSpecError(f"{key} {e}") from None
    return field, value


def resolve_timing(spec: str | Mapping[str, Any] | TimingProfile | None = None) -> TimingProfile:
    """Profile for a name or ``{base: NAME, overrides: {key: value}}`` (None = default)."""
    if spec is None:
        spec = DEFAULT_PROFILE
    if isinstance(spec, TimingProfile):
        return spec
    overrides: Mapping[str, Any]
    if isinstance(spec, str):
        base, overrides = spec, {}
    elif isinstance(spec, Mapping):
        extra = set(spec) - {"base", "overrides"}
        if extra:
            raise TimingSpecError(
                f"unknown timing key(s) {', '.join(map(repr, sorted(map(str, extra))))}; "
                "valid keys: base, overrides"
            )
        base = spec.get("base", DEFAULT_PROFILE)
        overrides = spec.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise TimingSpecError(f"timing overrides must be a mapping, got {overrides!r}")
    else:
        raise TimingSpecError(f"timing must be a profile name or a mapping, got {spec!r}")
    if not isinstance(base, str) or base not in PROFILES:
        raise TimingSpecError(
            f"unknown timing profile {base!r}; valid profiles: {', '.join(PROFILES)}"
        )
    changes: dict[str, Any] = dict(convert_override(k, v) for k, v in overrides.items())
    problems = not_charged_problems(changes, base)
    if problems:
        raise TimingSpecError(problems[0])
    return attrs.evolve(PROFILES[base], **changes)


def _closest_base(profile: TimingProfile) -> str:
    def same(name: str) -> int:
        return sum(getattr(profile, f) == getattr(PROFILES[name], f) for f in FIELDS)

    return max(PROFILES, key=lambda n: (same(n), n == DEFAULT_PROFILE))


def profile_table(
    profile: TimingProfile, base: str | None = None
) -> list[tuple[str, int | float, str, str]]:
    """(field, value, unit, source) rows; values differing from the base are marked override,
    fields nothing charges (:data:`NOT_CHARGED`) are marked reference only."""
    if base is None:
        base = _closest_base(profile)
    ref, sources = PROFILES[base], PROFILE_SOURCES[base]
    rows = []
    for f in FIELDS:
        value = getattr(profile, f)
        if value == getattr(ref, f):
            src = sources[f]
        else:
            src = f"scenario override (base {base}: {getattr(ref, f)})"
        if f in NOT_CHARGED:
            src = f"reference only, not charged ({NOT_CHARGED[f]}); {src}"
        rows.append((f, value, _unit(f), src))
    return rows
