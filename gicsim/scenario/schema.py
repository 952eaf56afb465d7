"""The scenario schema: pydantic models, one per mapping of SCENARIO-FORMAT (docs/scenario-format.md).

Inside the model every time is integer nanoseconds (``*_us`` key -> ``*_ns`` attribute,
``*_ms`` -> ``*_ns``), every range a tuple of ints, and defaults are filled in, so a simulator
reads plain attributes. ``resolved_dict`` writes it back in YAML units."""

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import attrs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    create_model,
    field_serializer,
    model_serializer,
    model_validator,
)

from gicsim.scenario import timing as _timing
from gicsim.scenario.constants import (
    DEFAULT_DEST_STEPS,
    DEFAULT_SOURCE_STEPS,
    DEST_STEPS,
    GUEST_STEPS,
    LPI_MAX,
    MAX_BANDWIDTH_MIB_S,
    MAX_MEMORY_MIB,
    MAX_RETRY,
    MAX_SEED,
    MAX_VCPUS,
    MIN_BANDWIDTH_MIB_S,
    SOURCE_STEPS,
)
from gicsim.scenario.errors import _fail, _show
from gicsim.scenario.fields import (
    U16,
    After,
    AfterT,
    Bandwidth,
    CompareT,
    DestSteps,
    DevRange,
    DirtyRate,
    EventBits,
    EventRange,
    IcidSel,
    Lpi,
    LpiRange,
    Micros,
    Millis,
    NonNegInt,
    PosMicros,
    RatePerS,
    SourceSteps,
    Statuses,
    Vcpu,
    VcpuSel,
    _ctx,
    _errno_name,
    _name,
    _suggest,
    _unscale,
    _utf8_text,
    _within,
    valid_name,  # noqa: F401 - the name rule, imported from here by gicsim.sweeps
)
from gicsim.scenario.kernel_backend import Kernel
from gicsim.scenario.limits import _resource_problems
from gicsim.scenario.model import _Model, _put
from gicsim.scenario.timing import DEFAULT_PROFILE, PROFILES, TimingProfile

# ----------------------------------------------------------------------------------------------
# models


def _multiple_of_4(v: int) -> int:
    if v % 4:
        raise ValueError(f"the command queue is a whole number of 4 KiB pages, got {v}")
    return v


class ItsConfig(_Model):
    device_table: Literal["flat", "two_level"] = "flat"
    cmdq_kib: Annotated[StrictInt, Field(ge=4, le=1024), AfterValidator(_multiple_of_4)] = 64


class Vm(_Model):
    vcpus: Annotated[StrictInt, Field(ge=1, le=MAX_VCPUS)] = 1
    memory_mib: Annotated[StrictInt, Field(ge=16, le=MAX_MEMORY_MIB)] = 512
    its: ItsConfig = ItsConfig()


# --- guest step arguments ---


class SetPending(_Model):
    vcpu: Vcpu
    lpis: LpiRange


class Mapc(_Model):
    icid: U16
    vcpu: Vcpu
    valid: StrictBool = True


class Mapd(_Model):
    device: U16
    event_bits: EventBits | None = None
    valid: StrictBool = True

    @model_validator(mode="after")
    def _bits(self) -> "Mapd":
        if self.valid and self.event_bits is None:
            _fail((("event_bits",), "missing required key (needed when valid is true)", False))
        return self


class Mapti(_Model):
    device: U16
    event: U16
    lpi: Lpi
    icid: U16


class MapEvents(_Model):
    device: U16
    events: EventRange
    lpis: LpiRange
    icid: IcidSel

    @model_validator(mode="after")
    def _pairs(self) -> "MapEvents":
        if len(self.events) != len(self.lpis):
            _fail(
                (
                    ("lpis",),
                    f"events and lpis are paired in order: {len(self.events)} events but "
                    f"{len(self.lpis)} lpis",
                    False,
                )
            )
        return self


class Movi(_Model):
    device: U16
    event: U16
    icid: U16


class Movall(_Model):
    from_vcpu: Vcpu
    to_vcpu: Vcpu


class DevEvent(_Model):
    device: U16
    event: U16


class Icid(_Model):
    icid: U16


def _priority(v: int) -> int:
    if v % 4:
        raise ValueError(f"priority is bits [7:2] of the property byte: a multiple of 4, got {v}")
    return v


class LpiConfig(_Model):
    lpis: LpiRange
    priority: Annotated[StrictInt, Field(ge=0, le=252), AfterValidator(_priority)] = 0xA0
    enabled: StrictBool = True


class MapDevices(_Model):
    devices: DevRange
    event_bits: EventBits
    events: EventRange
    first_lpi: Lpi
    icid: IcidSel

    @model_validator(mode="after")
    def _fits(self) -> "MapDevices":
        last = self.first_lpi + len(self.devices) * len(self.events) - 1
        if last > LPI_MAX:
            _fail(
                (
                    ("first_lpi",),
                    f"{len(self.devices)} devices x {len(self.events)} events from LPI "
                    f"{self.first_lpi} end at {last}, beyond {LPI_MAX}",
                    False,
                )
            )
        return self


_STEP_ATTR = {s: ("int_" if s == "int" else s) for s in GUEST_STEPS}


class _StepFields(_Model):
    """The guest operations shared by ``guest.boot`` and ``guest.actions``."""

    enable_lpis: VcpuSel | None = None
    disable_lpis: VcpuSel | None = None
    set_pending: SetPending | None = None
    mapc: Mapc | None = None
    mapd: Mapd | None = None
    mapti: Mapti | None = None
    map_events: MapEvents | None = None
    movi: Movi | None = None
    movall: Movall | None = None
    discard: DevEvent | None = None
    inv: DevEvent | None = None
    invall: Icid | None = None
    int_: DevEvent | None = Field(None, alias="int")
    clear: DevEvent | None = None
    sync: Icid | None = None
    its_enable: StrictBool | None = None
    lpi_config: LpiConfig | None = None
    map_devices: MapDevices | None = None

    _kind: str = ""

    @property
    def kind(self) -> str:
        """The step name as written in YAML (``int`` for the INT command)."""
        return self._kind

    @property
    def args(self) -> Any:
        """The step's arguments: a model, a tuple of vCPUs or a bool."""
        return getattr(self, _STEP_ATTR[self._kind])

    @classmethod
    def _check_one(cls, d: Any, what: str) -> Any:
        if isinstance(d, str) and d in GUEST_STEPS:
            example = "true" if d == "its_enable" else "{...}"
            _fail(((), f"step {d!r} needs arguments, e.g. '{d}: {example}'", False))
        if not isinstance(d, dict):
            return d
        steps = [k for k in d if k in GUEST_STEPS]
        if not steps and all(k in cls._non_step_keys() for k in d):
            _fail(((), f"{what} needs one step key: {', '.join(GUEST_STEPS)}", False))
        problems = [
            ((k,), f"one step per item: {steps[0]!r} is already given", True) for k in steps[1:]
        ]
        problems += [
            ((k,), f"step {k!r} needs arguments, got null", False) for k in steps if d[k] is None
        ]
        if problems:
            _fail(*problems)
        return d

    @classmethod
    def _non_step_keys(cls) -> set[str]:
        return set()

    def model_post_init(self, context: Any) -> None:
        for s in GUEST_STEPS:
            if getattr(self, _STEP_ATTR[s]) is not None:
                self._kind = s
                break


class BootStep(_StepFields):
    """One ``guest.boot`` item: exactly one step key."""

    mask: VcpuSel | None = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, d: Any) -> Any:
        return cls._check_one(d, "a boot step")


class Action(_StepFields):
    """One ``guest.actions`` item: a step (or ``mask: bool``) on ``vcpu`` at a time."""

    vcpu: Vcpu
    at_ns: Micros | None = Field(None, alias="at_us")
    after: AfterT | None = None
    delay_ns: Micros | None = Field(None, alias="delay_us")
    mask: StrictBool | None = None

    _dump_first: ClassVar[tuple[str, ...]] = (
        "vcpu",
        "at_us",
        "at_ns",
        "after",
        "delay_us",
        "delay_ns",
    )

    @classmethod
    def _non_step_keys(cls) -> set[str]:
        return {"vcpu", "at_us", "after", "delay_us"}

    @model_validator(mode="before")
    @classmethod
    def _one(cls, d: Any) -> Any:
        return cls._check_one(d, "an action")

    @model_validator(mode="after")
    def _when(self, info: ValidationInfo) -> "Action":
        _check_when(self, "an action")
        if self.after is not None:
            n = _ctx(info, "migrations")
            idx = 0 if self.after.migration is None else self.after.migration
            if n is not None and idx >= n:
                have = "no migration is configured" if n == 0 else f"there are {n} migrations"
                _fail((("after",), f"waits for migration {idx + 1} but {have}", False))
            _put(self, after=After(self.after.event, idx))
        return self


def _check_when(m: Any, what: str) -> None:
    if m.at_ns is not None and m.after is not None:
        _fail((("after",), "give at_us or after, not both", True))
    if m.at_ns is None and m.after is None:
        _fail(((), f"{what} needs a time: at_us, or after (with delay_us)", False))
    if m.after is None and m.delay_ns is not None:
        _fail((("delay_us",), "delay_us counts from after; use at_us alone", True))
    if m.after is not None and m.delay_ns is None:
        _put(m, delay_ns=0)


class Guest(_Model):
    boot: tuple[BootStep, ...] = ()
    actions: tuple[Action, ...] = ()


class DeviceSource(_Model):
    """MSI sources: every device of ``device`` sends ``events``, at listed times or at a rate."""

    device: DevRange
    events: EventRange
    at_ns: tuple[Micros, ...] | None = Field(None, alias="at_us")
    rate_per_s: RatePerS | None = None
    pattern: Literal["periodic", "poisson"] | None = None
    start_ns: Micros | None = Field(None, alias="start_us")
    stop_ns: Micros | None = Field(None, alias="stop_us")

    @model_validator(mode="after")
    def _mode(self) -> "DeviceSource":
        if self.at_ns is not None and self.rate_per_s is not None:
            _fail((("rate_per_s",), "give at_us or rate_per_s, not both", True))
        if self.at_ns is None and self.rate_per_s is None:
            _fail(((), "a device needs at_us (a list of times) or rate_per_s", False))
        if self.at_ns is not None:
            if not self.at_ns:
                _fail((("at_us",), "empty list", False))
            extra = [
                k
                for k in ("pattern", "start_us", "stop_us")
                if getattr(self, _alias_attr(self, k)) is not None
            ]
            if extra:
                _fail(*[((k,), f"{k} goes with rate_per_s, not at_us", True) for k in extra])
            return self
        start = self.start_ns if self.start_ns is not None else 0
        if self.stop_ns is not None and self.stop_ns < start:
            _fail(
                (
                    ("stop_us",),
                    f"stop_us ({self.stop_ns / 1000:g}) is before start_us ({start / 1000:g})",
                    False,
                )
            )
        _put(self, pattern=self.pattern or "periodic", start_ns=start)
        return self


def _alias_attr(model: BaseModel, key: str) -> str:
    for name, f in type(model).model_fields.items():
        if f.alias == key or name == key:
            return name
    raise KeyError(key)


class Precopy(_Model):
    """``bandwidth_mib_s`` and ``downtime_limit_ms`` default to the timing profile."""

    dirty_pages_per_s: DirtyRate = 0
    bandwidth_mib_s: Bandwidth | None = None
    downtime_limit_ns: Millis | None = Field(None, alias="downtime_limit_ms")


class Straggler(_Model):
    vcpu: Vcpu
    exit_ns: Micros = Field(alias="exit_us")


class OnEbusy(_Model):
    """What the source does with ``-EBUSY``.

    Default ``abort``: QEMU passes ``&error_abort`` to every GIC/ITS register get/set and aborts
    on a failed ``SAVE_PENDING_TABLES``; only a failed ITS ``SAVE_TABLES`` is reported and
    ignored (that is ``continue``); cloud-hypervisor fails the migration. Abort is what most
    KVM calls of a real migration get.
    """

    policy: Literal["abort", "continue", "retry"]
    retry: Annotated[StrictInt, Field(ge=0, le=MAX_RETRY)] = 0
    backoff_ns: Micros = Field(0, alias="backoff_us")

    @model_validator(mode="before")
    @classmethod
    def _form(cls, v: Any) -> Any:
        if isinstance(v, OnEbusy):
            return v
        if v in ("abort", "continue"):
            return {"policy": v}
        if isinstance(v, dict):
            valid = ("retry", "backoff_us")
            problems = []
            meant: set[str] = set()
            for k in v:
                if k not in valid:
                    hint = _suggest(k, valid)
                    meant.update(x for x in valid if hint and repr(x) in hint)
                    problems.append(((k,), f"unknown key {_show(k)}{hint}; valid keys: "
                                     "retry, backoff_us", True))  # fmt: skip
            problems += [((k,), "missing required key", False) for k in valid
                         if k not in v and k not in meant]  # fmt: skip
            if problems:
                _fail(*problems)
            return {"policy": "retry", **v}
        raise ValueError(f"expected abort, continue or {{retry: N, backoff_us: T}}, got {_show(v)}")

    @model_serializer
    def _out(self) -> Any:
        if self.policy != "retry":
            return self.policy
        return {"retry": self.retry, "backoff_us": _unscale(1000)(self.backoff_ns)}


class Source(_Model):
    """``quiesce_devices`` is an input shorthand only (always None once loaded): read ``steps``.

    ``stop_wait_ns`` None = wait until every vCPU has left KVM_RUN. ``on_ebusy`` retry: N
    retries ``backoff_ns`` apart, then abort.
    """

    vcpu_exit_ns: Micros | None = Field(None, alias="vcpu_exit_us")
    stragglers: tuple[Straggler, ...] = ()
    stop_wait_ns: Micros | None = Field(None, alias="stop_wait_us")
    steps: SourceSteps = DEFAULT_SOURCE_STEPS
    on_ebusy: OnEbusy = OnEbusy.model_validate("abort")
    quiesce_devices: StrictBool | None = Field(None, exclude=True)

    _keep_none: ClassVar[frozenset[str]] = frozenset({"stop_wait_us", "stop_wait_ns"})

    @model_validator(mode="after")
    def _shorthand(self) -> "Source":
        if self.quiesce_devices is not None:
            if "steps" in self.model_fields_set:
                _fail(
                    (
                        ("quiesce_devices",),
                        "give quiesce_devices or steps, not both (steps says whether "
                        "quiesce_devices runs)",
                        True,
                    )
                )
            if not self.quiesce_devices:
                _put(self, steps=tuple(s for s in DEFAULT_SOURCE_STEPS if s != "quiesce_devices"))
            _put(self, quiesce_devices=None)
        seen: dict[int, int] = {}
        for i, s in enumerate(self.stragglers):
            if s.vcpu in seen:
                _fail(
                    (
                        ("stragglers", i, "vcpu"),
                        f"vCPU {s.vcpu} listed twice (first at item {seen[s.vcpu]})",
                        False,
                    )
                )
            seen[s.vcpu] = i
        return self


class Destination(_Model):
    steps: DestSteps = DEFAULT_DEST_STEPS


class Migration(_Model):
    at_ns: Micros | None = Field(None, alias="at_us")
    after: AfterT | None = None
    delay_ns: Micros | None = Field(None, alias="delay_us")
    precopy: Precopy = Precopy.model_validate({})
    source: Source = Source.model_validate({})
    destination: Destination = Destination()

    @model_validator(mode="after")
    def _when(self, info: ValidationInfo) -> "Migration":
        _check_when(self, "a migration")
        if self.after is not None and self.after.event != "resume":
            _fail(
                (
                    ("after",),
                    "a migration starts after resume (or resume:N) of an earlier one",
                    False,
                )
            )
        return self


class ExpectedError(_Model):
    step: Literal[SOURCE_STEPS + tuple(s for s in DEST_STEPS if s not in SOURCE_STEPS)]  # type: ignore[valid-type]
    errno: Annotated[str, BeforeValidator(_errno_name)]


class Delivered(_Model):
    lpi: LpiRange
    vcpu: Vcpu
    side: Literal["source", "destination", "any"] = "any"
    count: NonNegInt = 1


class Dropped(_Model):
    its_disabled: CompareT | None = None
    no_its: CompareT | None = None
    unmapped: CompareT | None = None
    lpis_disabled: CompareT | None = None
    not_restored: CompareT | None = None


class Expect(_Model):
    """A key left out (None) is not checked. ``migration``: one status for all, or one each."""

    migration: Statuses | None = None
    lost: CompareT | None = None
    spurious: CompareT | None = None
    misrouted: CompareT | None = None
    ebusy: CompareT | None = None
    state_match: StrictBool | None = None
    dropped: Dropped | None = None
    errors: tuple[ExpectedError, ...] | None = None
    delivered: tuple[Delivered, ...] | None = None


# --- timing ---


_BANDWIDTH_OVERRIDES = ("precopy_bandwidth_mib_s", "switchover_bandwidth_mib_s")


def _override_field(key: str) -> Any:
    def conv(v: Any) -> Any:
        out = _timing.convert_override(key, v)[1]
        if key in _BANDWIDTH_OVERRIDES:
            _within(MIN_BANDWIDTH_MIB_S, MAX_BANDWIDTH_MIB_S, "MAX_BANDWIDTH_MIB_S")(v)
        return out

    return Annotated[Any, BeforeValidator(conv)]


TimingOverrides = create_model(  # type: ignore[call-overload]
    "TimingOverrides",
    __base__=_Model,
    **{f: (_override_field(k), Field(None, alias=k)) for k, f in _timing.override_keys().items()},
)


def _profile_name(v: Any) -> str:
    if not isinstance(v, str) or v not in PROFILES:
        raise ValueError(
            f"unknown timing profile {_show(v)}{_suggest(v, PROFILES)}; valid profiles: "
            f"{', '.join(PROFILES)}"
        )
    return v


class TimingSpec(_Model):
    base: Annotated[str, BeforeValidator(_profile_name)] = DEFAULT_PROFILE
    overrides: TimingOverrides = TimingOverrides()  # type: ignore[valid-type]


def _timing_profile(v: Any) -> TimingProfile:
    if isinstance(v, TimingProfile):
        return v
    if isinstance(v, str):
        return PROFILES[_profile_name(v)]
    if not isinstance(v, dict):
        raise ValueError(f"expected a profile name or {{base, overrides}}, got {_show(v)}")
    spec = TimingSpec.model_validate(v)
    overrides: BaseModel = spec.overrides
    changes = overrides.model_dump(exclude_none=True, by_alias=False)
    problems = _timing.not_charged_problems(changes, spec.base)
    if problems:
        raise ValueError(f"overrides.{problems[0]}")
    return attrs.evolve(PROFILES[spec.base], **changes)


def _timing_base(v: Any) -> str:
    if isinstance(v, TimingProfile):
        return _timing._closest_base(v)
    if isinstance(v, dict):
        v = v.get("base", DEFAULT_PROFILE)
    return v if isinstance(v, str) and v in PROFILES else DEFAULT_PROFILE


def _timing_out(p: TimingProfile) -> dict[str, Any]:
    out = {}
    for key, field in _timing.override_keys().items():
        v = getattr(p, field)
        out[key] = _unscale(1000)(v) if field.endswith("_ns") else v
    return out


# --- the scenario ---

def _migrations(v: Any) -> Any:
    if v is None:
        return ()
    if isinstance(v, dict):
        return [v]
    if not isinstance(v, list | tuple):
        raise ValueError(f"expected a mapping or a list of them, got {_show(v)}")
    return v


class Scenario(_Model):
    """A validated scenario. Times in ns, ranges as tuples, defaults filled in.

    Build it with ``load_scenario``/``load_scenario_text``/``scenario_from_dict`` (they pass
    the validation context: vCPU count, number of migrations).
    """

    name: Annotated[str, BeforeValidator(_name)]
    description: Annotated[str, BeforeValidator(_utf8_text)] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] = 0
    until_ns: PosMicros = Field(100_000_000, alias="until_us")
    timing: Annotated[TimingProfile, BeforeValidator(_timing_profile)] = Field(
        default_factory=lambda: PROFILES[DEFAULT_PROFILE], alias="timing"
    )
    timing_base: Annotated[str, BeforeValidator(_timing_base)] = Field(
        DEFAULT_PROFILE, validation_alias="timing", exclude=True
    )
    kernel: Kernel = Kernel()
    vm: Vm = Vm()
    guest: Guest = Guest()
    devices: tuple[DeviceSource, ...] = ()
    migrations: Annotated[tuple[Migration, ...], BeforeValidator(_migrations)] = Field(
        (), alias="migration"
    )
    expect: Expect = Expect()

    @classmethod
    def model_validate(cls, obj: Any, **kw: Any) -> "Scenario":
        if kw.get("context") is None:
            kw["context"] = _context(obj)
        return super().model_validate(obj, **kw)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, d: Any, info: ValidationInfo) -> Any:
        if isinstance(d, dict) and "name" not in d:
            d = {**d, "name": _ctx(info, "default_name") or "scenario"}
        return d

    @field_serializer("timing")
    def _ser_timing(self, p: TimingProfile) -> dict[str, Any]:
        return {"base": self.timing_base, "overrides": _timing_out(p)}

    @model_validator(mode="after")
    def _resolve(self) -> "Scenario":
        problems: list[tuple[tuple[Any, ...], str, bool]] = []
        migrations = []
        for i, m in enumerate(self.migrations):
            upd: dict[str, Any] = {}
            if m.source.vcpu_exit_ns is None:
                upd["source"] = m.source.model_copy(
                    update={"vcpu_exit_ns": self.timing.vcpu_exit_ns}
                )
            pre = {}
            if m.precopy.bandwidth_mib_s is None:
                pre["bandwidth_mib_s"] = self.timing.precopy_bandwidth_mib_s
            if m.precopy.downtime_limit_ns is None:
                pre["downtime_limit_ns"] = self.timing.downtime_limit_ns
            if pre:
                upd["precopy"] = m.precopy.model_copy(update=pre)
            if m.after is not None:
                idx = i - 1 if m.after.migration is None else m.after.migration
                if not 0 <= idx < i:
                    problems.append(
                        (
                            ("migration", i, "after"),
                            "a migration can only wait for an earlier one"
                            + (" (the first one needs at_us)" if i == 0 else ""),
                            False,
                        )
                    )
                upd["after"] = After(m.after.event, idx)
            migrations.append(m.model_copy(update=upd) if upd else m)
        st = self.expect.migration
        if st is not None and len(st) > 1 and len(st) != len(migrations):
            problems.append(
                (
                    ("expect", "migration"),
                    f"{len(st)} statuses for {len(migrations)} migrations (give one status for "
                    "all, or one per migration)",
                    False,
                )
            )
        problems += _resource_problems(self)
        if problems:
            _fail(*problems)
        _put(self, migrations=tuple(migrations))
        return self



def _context(raw: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"vcpus": None, "migrations": None}
    if not isinstance(raw, Mapping):
        return ctx
    vm = raw.get("vm", {})
    if vm is None or isinstance(vm, Mapping):
        n = (vm or {}).get("vcpus", 1)
        if type(n) is int and 1 <= n <= MAX_VCPUS:
            ctx["vcpus"] = n
    m = raw.get("migration")
    ctx["migrations"] = (
        0 if m is None else 1 if isinstance(m, Mapping) else len(m) if isinstance(m, list) else None
    )
    return ctx


