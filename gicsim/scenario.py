"""Scenario files (SCENARIO-FORMAT.md): YAML in, a validated, frozen ``Scenario`` out.

Every problem is reported, one line each, as ``FILE:LINE:COL: key.path: message`` (1-based;
``0:0`` when no position is known, e.g. a dict given from Python). Paths that are not a key
use ``<file>`` (cannot read or decode the file), ``<yaml>`` (YAML syntax) and ``<root>`` (the
document as a whole).

Inside the model every time is integer nanoseconds (``*_us`` key -> ``*_ns`` attribute,
``*_ms`` -> ``*_ns``), every range a tuple of ints, and defaults are filled in, so a simulator
reads plain attributes. ``resolved_dict`` writes it back in YAML units.
"""

import difflib
import errno as _errno
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import attrs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_serializer,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from gicsim import timing as _timing
from gicsim.timing import DEFAULT_PROFILE, PROFILES, TimingProfile

__all__ = [
    "DEFAULT_DEST_STEPS",
    "DEFAULT_SOURCE_STEPS",
    "DEST_STEPS",
    "DROP_REASONS",
    "GUEST_STEPS",
    "SOURCE_STEPS",
    "Action",
    "After",
    "BootStep",
    "Compare",
    "Scenario",
    "ScenarioError",
    "check_scenario",
    "format_range",
    "load_scenario",
    "load_scenario_text",
    "parse_range",
    "resolved_dict",
    "scenario_from_dict",
]

LPI_MIN, LPI_MAX = 8192, 0xFFFF
ID_MAX = 0xFFFF  # DeviceID, EventID and ICID: 16 bits each
MAX_VCPUS = 512
MAX_RANGE_LEN = 1 << 20
MAX_NS = (1 << 63) - 1  # traces store int64 nanoseconds

# Resource caps: a scenario asking for more is refused before it runs (one located line per
# cap exceeded) instead of exhausting the host. Measured: about 0.6 KiB of trace and state per
# MSI (4 trace rows: raise, accept, deliver, eoi), so MAX_MSIS is about 6 GiB and 2 minutes.
# The scale benchmark (scenarios/scale-512.yaml: 512 vCPUs, 3,584 devices x 16 events,
# ~1.0 M MSIs) stays well inside every cap.
MAX_MEMORY_MIB = 1 << 20  # guest RAM is sparse: only written pages cost host memory
MAX_MSIS = 10_000_000  # sum over sources of devices x rate_per_s x time, or x len(at_us) x events
MAX_MSI_SOURCES = 65_536  # devices across all `devices` entries (one SimPy process each)
MAX_DEVICE_EVENTS = 1 << 22  # sum over `devices` entries of devices x events
MAX_MAPPED_LPIS = 57_344 + 8_192  # MAPTIs in guest.boot + guest.actions (the LPI space + margin)
MAX_GUEST_OPS = 1_000_000  # ITS commands + property/pending-table writes of boot + actions
MAX_MIGRATIONS = 64  # each migration builds a whole destination VM
MAX_EXPECT_LPIS = 1_000_000  # (LPI, vCPU, side) checks of expect.delivered
MAX_SEED = (1 << 64) - 1
MAX_RETRY = 10_000  # on_ebusy retries
MAX_RATE_PER_S = 1e9  # one MSI per nanosecond per source
MAX_DIRTY_PAGES_PER_S = 1e9
MIN_BANDWIDTH_MIB_S = 1e-3  # lower bandwidths overflow the transfer-time arithmetic
MAX_BANDWIDTH_MIB_S = 1e9

SOURCE_STEPS = (
    "stop_vcpus",
    "quiesce_devices",
    "save_pending_tables",
    "save_its_tables",
    "final_memory",
)
DEFAULT_SOURCE_STEPS = SOURCE_STEPS
DEST_STEPS = (
    "memory",
    "redistributors",
    "its_init",
    "gits_cbaser",
    "gits_iidr",
    "gits_regs",
    "gits_creadr",
    "gits_cwriter",
    "gits_baser",
    "its_restore_tables",
    "gits_ctlr",
    "resume",
)
DEFAULT_DEST_STEPS = (
    "memory",
    "redistributors",
    "its_init",
    "gits_cbaser",
    "gits_regs",
    "its_restore_tables",
    "gits_ctlr",
    "resume",
)
GUEST_STEPS = (
    "enable_lpis",
    "disable_lpis",
    "set_pending",
    "mapc",
    "mapd",
    "mapti",
    "map_events",
    "movi",
    "movall",
    "discard",
    "inv",
    "invall",
    "int",
    "clear",
    "sync",
    "its_enable",
    "lpi_config",
    "map_devices",
    "mask",
)
DROP_REASONS = ("its_disabled", "unmapped", "lpis_disabled", "not_restored")
MIGRATION_STATUSES = ("completed", "aborted", "failed", "none")
_ERRNO_NAMES = frozenset(_errno.errorcode.values())


# ----------------------------------------------------------------------------------------------
# errors


class ScenarioError(Exception):
    """Invalid scenario input; ``problems`` holds one ``FILE:LINE:COL: path: message`` each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _fail(*problems: tuple[tuple[Any, ...], str, bool]) -> typing.NoReturn:
    """Raise several located problems from inside a validator (pydantic merges them)."""
    raise ValidationError.from_exception_data(
        "scenario",
        [
            InitErrorDetails(
                type=PydanticCustomError("scenario", "{message}", {"message": m, "at_key": k}),
                loc=tuple(sub),
                input=None,
            )
            for sub, m, k in problems
        ],
    )


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Mapping):
        return "a mapping"
    if isinstance(v, list | tuple):
        return "a list"
    if isinstance(v, set | frozenset):
        return "a set"
    if isinstance(v, bytes | bytearray):
        return "binary data"
    return f"a {type(v).__name__}"


# ----------------------------------------------------------------------------------------------
# scalar types


def _number(v: Any) -> int | float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {_show(v)}")
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return v


def _scaled(factor: int, positive: bool = False) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        v = _number(v)
        if v < 0 or (positive and v == 0):
            raise ValueError(f"must be {'> 0' if positive else '>= 0'}, got {v!r}")
        ns = round(v * factor)
        if ns > MAX_NS:
            raise ValueError(f"too large: {v!r} is beyond {MAX_NS // factor} (int64 nanoseconds)")
        return ns

    return conv


def _unscale(factor: int) -> Callable[[int], int | float]:
    def conv(n: int) -> int | float:
        return n // factor if n % factor == 0 else n / factor

    return conv


# times: YAML microseconds (or ms), held as int ns
Micros = Annotated[int, BeforeValidator(_scaled(1000)), PlainSerializer(_unscale(1000))]
PosMicros = Annotated[int, BeforeValidator(_scaled(1000, True)), PlainSerializer(_unscale(1000))]
Millis = Annotated[
    int, BeforeValidator(_scaled(1_000_000, True)), PlainSerializer(_unscale(1_000_000))
]


def _nonneg_number(v: Any) -> int | float:
    v = _number(v)
    if v < 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return v


def _pos_number(v: Any) -> int | float:
    v = _number(v)
    if v <= 0:
        raise ValueError(f"must be > 0, got {v!r}")
    return v


NonNegNumber = Annotated[int | float, BeforeValidator(_nonneg_number)]
PosNumber = Annotated[int | float, BeforeValidator(_pos_number)]


def _within(lo: float | None, hi: float, what: str) -> Callable[[Any], int | float]:
    """A number in [lo, hi] (lo None: > 0); the caps of the resource limits above."""

    def conv(v: Any) -> int | float:
        v = _pos_number(v) if lo is None else _nonneg_number(v)
        if lo is not None and v < lo:
            raise ValueError(f"must be >= {lo:g}, got {v!r}")
        if v > hi:
            raise ValueError(f"too large: {v!r} is beyond the cap of {hi:g} ({what})")
        return v

    return conv


RatePerS = Annotated[int | float, BeforeValidator(_within(None, MAX_RATE_PER_S, "MAX_RATE_PER_S"))]
DirtyRate = Annotated[
    int | float, BeforeValidator(_within(0, MAX_DIRTY_PAGES_PER_S, "MAX_DIRTY_PAGES_PER_S"))
]
Bandwidth = Annotated[
    int | float,
    BeforeValidator(_within(MIN_BANDWIDTH_MIB_S, MAX_BANDWIDTH_MIB_S, "MAX_BANDWIDTH_MIB_S")),
]
U16 = Annotated[StrictInt, Field(ge=0, le=ID_MAX)]


def _lpi(v: int) -> int:
    if not LPI_MIN <= v <= LPI_MAX:
        raise ValueError(f"LPI {v} out of range {LPI_MIN}..{LPI_MAX}")
    return v


Lpi = Annotated[StrictInt, AfterValidator(_lpi)]
EventBits = Annotated[StrictInt, Field(ge=1, le=16)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]


def _ctx(info: ValidationInfo | None, key: str) -> Any:
    ctx = info.context if info is not None else None
    return ctx.get(key) if isinstance(ctx, dict) else None


def _check_vcpu(v: int, info: ValidationInfo) -> int:
    n = _ctx(info, "vcpus")
    if n is not None and v >= n:
        raise ValueError(f"vCPU {v} does not exist (vm.vcpus is {n})")
    return v


Vcpu = Annotated[StrictInt, Field(ge=0), AfterValidator(_check_vcpu)]


# ----------------------------------------------------------------------------------------------
# ranges


class RangeError(ValueError):
    """A bad range; ``index`` is the offending list item, if any."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


_NUM = r"(?:0[xX][0-9a-fA-F]+|\d+)"
_RANGE_RE = re.compile(rf"^\s*({_NUM})\s*(?:-\s*({_NUM})\s*)?$")


def parse_range(
    value: Any,
    *,
    lo: int = 0,
    hi: int | None = None,
    what: str = "value",
    allow_empty: bool = False,
) -> tuple[int, ...]:
    """Ids from an int, a list of ints (order kept) or an inclusive ``"A-B"`` string."""

    def bounded(v: int, index: int | None = None) -> int:
        if v < lo or (hi is not None and v > hi):
            span = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise RangeError(f"{what} {v} out of range {span}", index)
        return v

    if isinstance(value, bool):
        raise RangeError(f"expected an integer, a list or 'A-B', got {_show(value)}")
    if isinstance(value, int):
        return (bounded(value),)
    if isinstance(value, str):
        m = _RANGE_RE.match(value)
        if not m:
            raise RangeError(f"bad range {value!r}: expected 'A-B' (inclusive) or an integer")
        a = int(m.group(1), 0)
        b = int(m.group(2), 0) if m.group(2) is not None else a
        if a > b:
            raise RangeError(f"bad range {value!r}: start {a} is greater than end {b}")
        bounded(a)
        bounded(b)
        if b - a + 1 > MAX_RANGE_LEN:
            raise RangeError(f"range {value!r} too large (more than {MAX_RANGE_LEN} ids)")
        return tuple(range(a, b + 1))
    if isinstance(value, list | tuple):
        if not value and not allow_empty:
            raise RangeError("empty list")
        if len(value) > MAX_RANGE_LEN:
            raise RangeError(f"list too long (more than {MAX_RANGE_LEN} ids)")
        seen: dict[int, int] = {}
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int):
                raise RangeError(f"expected an integer, got {_show(v)}", i)
            bounded(v, i)
            if v in seen:
                raise RangeError(f"{what} {v} listed twice (first at item {seen[v]})", i)
            seen[v] = i
        return tuple(int(v) for v in value)
    raise RangeError(f"expected an integer, a list or 'A-B', got {_show(value)}")


def format_range(ids: tuple[int, ...] | list[int]) -> int | str | list[int]:
    """Shortest form that ``parse_range`` reads back to the same tuple."""
    ids = list(ids)
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 2 and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}-{ids[-1]}"
    return ids


def _ranged(**kw: Any) -> Callable[[Any], tuple[int, ...]]:
    def conv(v: Any) -> tuple[int, ...]:
        try:
            return parse_range(v, **kw)
        except RangeError as e:
            if e.index is not None:
                _fail(((e.index,), str(e), False))
            raise ValueError(str(e)) from None

    return conv


DevRange = Annotated[
    tuple[int, ...],
    BeforeValidator(_ranged(hi=ID_MAX, what="device")),
    PlainSerializer(format_range),
]
EventRange = Annotated[
    tuple[int, ...],
    BeforeValidator(_ranged(hi=ID_MAX, what="event")),
    PlainSerializer(format_range),
]
LpiRange = Annotated[
    tuple[int, ...],
    BeforeValidator(_ranged(lo=LPI_MIN, hi=LPI_MAX, what="LPI")),
    PlainSerializer(format_range),
]


def _vcpu_sel(v: Any, info: ValidationInfo) -> tuple[int, ...]:
    n = _ctx(info, "vcpus")
    if v == "all":
        return tuple(range(n or 0))
    try:
        ids = parse_range(v, what="vCPU", allow_empty=True)
    except RangeError as e:
        msg = str(e).replace("expected an integer, a list", "expected 'all', a list")
        if e.index is not None:
            _fail(((e.index,), msg, False))
        raise ValueError(msg) from None
    if n is not None:
        bad = [(i, x) for i, x in enumerate(ids) if x >= n]
        if bad:
            if isinstance(v, list | tuple):
                _fail(
                    *[((i,), f"vCPU {x} does not exist (vm.vcpus is {n})", False) for i, x in bad]
                )
            raise ValueError(f"vCPU {bad[0][1]} does not exist (vm.vcpus is {n})")
    return ids


VcpuSel = Annotated[tuple[int, ...], BeforeValidator(_vcpu_sel), PlainSerializer(format_range)]


def _icids(v: Any) -> tuple[int, ...]:
    if isinstance(v, bool) or not isinstance(v, int | list | tuple):
        raise ValueError(f"expected an ICID or a list of ICIDs, got {_show(v)}")
    items = [v] if isinstance(v, int) else list(v)
    if not items:
        raise ValueError("empty list")
    for i, x in enumerate(items):
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= ID_MAX:
            msg = f"expected an ICID 0..{ID_MAX}, got {_show(x)}"
            if isinstance(v, int):
                raise ValueError(msg)
            _fail(((i,), msg, False))
    return tuple(items)


IcidSel = Annotated[
    tuple[int, ...],
    BeforeValidator(_icids),
    PlainSerializer(lambda t: t[0] if len(t) == 1 else list(t)),
]


def _step_list(valid: tuple[str, ...], side: str) -> Callable[[Any], tuple[str, ...]]:
    def conv(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list | tuple):
            raise ValueError(f"expected a list of {side} step names, got {_show(v)}")
        problems = []
        first: dict[str, int] = {}
        for i, s in enumerate(v):
            if s not in valid:
                problems.append(
                    (
                        (i,),
                        f"unknown {side} step {_show(s)}{_suggest(s, valid)}; "
                        f"valid steps: {', '.join(valid)}",
                        False,
                    )
                )
            elif s in first:
                problems.append(((i,), f"step {s!r} named twice (first at item {first[s]})", False))
            else:
                first[s] = i
        if problems:
            _fail(*problems)
        return tuple(v)

    return conv


SourceSteps = Annotated[tuple[str, ...], BeforeValidator(_step_list(SOURCE_STEPS, "source"))]
DestSteps = Annotated[tuple[str, ...], BeforeValidator(_step_list(DEST_STEPS, "destination"))]


def _suggest(word: Any, choices: Any) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class After(NamedTuple):
    """``after: EVENT[:N]``; ``migration`` is the 0-based index of the migration waited for."""

    event: str
    migration: int | None


_AFTER_RE = re.compile(r"^(migration_start|resume)(?::([1-9]\d*))?$")


def _after(v: Any) -> After:
    if isinstance(v, After):
        return v
    m = _AFTER_RE.match(v) if isinstance(v, str) else None
    if not m:
        raise ValueError(
            f"expected migration_start, resume, migration_start:N or resume:N, got {_show(v)}"
        )
    return After(m.group(1), int(m.group(2)) - 1 if m.group(2) else None)


AfterT = Annotated[
    After,
    BeforeValidator(_after),
    PlainSerializer(lambda a: a.event if a.migration is None else f"{a.event}:{a.migration + 1}"),
]


class Compare(NamedTuple):
    """An expected count: ``op`` one of == != >= <= > <."""

    op: str
    value: int

    def holds(self, got: int) -> bool:
        return {
            "==": got == self.value,
            "!=": got != self.value,
            ">=": got >= self.value,
            "<=": got <= self.value,
            ">": got > self.value,
            "<": got < self.value,
        }[self.op]


_CMP_RE = re.compile(r"^\s*(==|!=|>=|<=|>|<)?\s*(\d+)\s*$")


def _compare(v: Any) -> Compare:
    if isinstance(v, Compare):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            raise ValueError(f"must be >= 0, got {v}")
        return Compare("==", v)
    m = _CMP_RE.match(v) if isinstance(v, str) else None
    if not m:
        raise ValueError(
            f"expected a count or a comparison such as '>=1', '<3', '==0', got {_show(v)}"
        )
    return Compare(m.group(1) or "==", int(m.group(2)))


CompareT = Annotated[
    Compare,
    BeforeValidator(_compare),
    PlainSerializer(lambda c: c.value if c.op == "==" else f"{c.op}{c.value}"),
]


def _errno_name(v: Any) -> str:
    if not isinstance(v, str) or v.lstrip("-") not in _ERRNO_NAMES:
        raise ValueError(f"expected an errno name such as EBUSY or EINVAL, got {_show(v)}")
    return v.lstrip("-")


def _statuses(v: Any) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if isinstance(items, list | tuple) and not items:
        raise ValueError("empty list")
    if not isinstance(items, list | tuple):
        raise ValueError(
            f"expected {' | '.join(MIGRATION_STATUSES)} or a list of them, got {_show(v)}"
        )
    for i, s in enumerate(items):
        if s not in MIGRATION_STATUSES:
            msg = f"expected {' | '.join(MIGRATION_STATUSES)}, got {_show(s)}"
            if isinstance(v, str):
                raise ValueError(msg)
            _fail(((i,), msg, False))
    return tuple(items)


Statuses = Annotated[
    tuple[str, ...],
    BeforeValidator(_statuses),
    PlainSerializer(lambda t: t[0] if len(t) == 1 else list(t)),
]


# ----------------------------------------------------------------------------------------------
# models


class _Model(BaseModel):
    """Frozen, strict about keys; ``None`` values are left out of dumps (they are defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
        revalidate_instances="always",
    )
    _keep_none: ClassVar[frozenset[str]] = frozenset()
    _dump_first: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: Any) -> Any:
        d = handler(self)
        if isinstance(d, dict):
            d = {k: v for k, v in d.items() if v is not None or k in self._keep_none}
            if self._dump_first:
                first = {k: d.pop(k) for k in self._dump_first if k in d}
                d = {**first, **d}
        return d


def _put(model: BaseModel, **values: Any) -> None:
    """Fill defaults into a model being validated (models are frozen)."""
    for k, v in values.items():
        object.__setattr__(model, k, v)


class Kernel(_Model):
    """Kernel variant fields of SPEC §4; defaults are mainline."""

    pending_sync_on_ctlr: StrictBool = False
    pending_sync_clears_ram: StrictBool = True
    clear_on_unmap: StrictBool = True
    restore_scan: Literal["full", "head_pointer"] = "full"
    translation_cache: Literal["correct", "stale"] = "correct"


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
            if "policy" in v:
                _fail((("policy",), "unknown key 'policy'; valid keys: retry, backoff_us", True))
            missing = [k for k in ("retry", "backoff_us") if k not in v]
            if missing:
                _fail(*[((k,), "missing required key", False) for k in missing])
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

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _name(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {_show(v)}")
    if not _NAME_RE.match(v):
        raise ValueError(
            f"{v!r} is not usable as a directory name (letters, digits, '.', '_', '-')"
        )
    return v


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
    description: StrictStr | None = None
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


# ----------------------------------------------------------------------------------------------
# resource limits (checked once everything else is valid)

_RAM_BASE = 0x4000_0000  # guest RAM on the arm virt machine (gicsim.memory.RAM_BASE)
_SZ_64K = 1 << 16
_L2_DTES = _SZ_64K // 8
_PROP_TABLE = (1 << 16) - LPI_MIN  # one property byte per LPI (16 ID bits)
_PEND_TABLE = (1 << 16) // 8
_COMMAND_STEPS = {"mapc", "mapd", "mapti", "map_events", "map_devices", "movi", "movall",
                  "discard", "inv", "invall", "int", "clear", "sync"}  # fmt: skip


def _msis(sc: "Scenario") -> tuple[float, list[float]]:
    """Upper estimate of the MSIs the device sources send before ``until_us``, per entry."""
    until = sc.until_ns
    per: list[float] = []
    for d in sc.devices:
        n: float
        if d.at_ns is not None:
            n = float(sum(1 for t in d.at_ns if t <= until) * len(d.events))
        else:
            start = d.start_ns or 0
            stop = until if d.stop_ns is None else min(d.stop_ns, until)
            n = 0.0 if start > until else float(d.rate_per_s or 0) * max(0, stop - start) / 1e9 + 1
        per.append(n * len(d.device))
    return float(sum(per)), per


def _step_cost(kind: str, a: Any) -> tuple[int, int, int]:
    """(ITS commands, of which MAPTIs, other per-ID guest operations) of one guest step."""
    if kind == "map_events":
        return len(a.events), len(a.events), len(a.lpis)  # + property bytes
    if kind == "map_devices":
        n = len(a.devices) * len(a.events)
        return len(a.devices) + n, n, n
    if kind == "mapti":
        return 1, 1, 1
    if kind in _COMMAND_STEPS:
        return 1, 0, 0
    if kind in ("set_pending", "lpi_config"):
        return 0, 0, len(a.lpis)
    if kind in ("enable_lpis", "disable_lpis", "mask") and isinstance(a, tuple):
        return 0, 0, len(a)
    return 0, 0, 1


class _GuestRam:
    """The guest ITS driver's bump allocator (``gicsim.guest.GuestItsDriver``), replayed."""

    def __init__(self, sc: "Scenario") -> None:
        self.end = _RAM_BASE + (sc.vm.memory_mib << 20)
        self.brk = _RAM_BASE
        self.two_level = sc.vm.its.device_table == "two_level"
        self.pend: set[int] = set()
        self.l2: set[int] = set()
        self.itt_bits: dict[int, int] = {}
        self.alloc(sc.vm.its.cmdq_kib * 1024)  # probe: command queue, tables, properties
        self.alloc(_SZ_64K if self.two_level else (1 << 16) * 8)
        self.alloc(_SZ_64K)
        self.alloc(_PROP_TABLE, 4096)

    def alloc(self, size: int, align: int = _SZ_64K) -> None:
        self.brk = -(-self.brk // align) * align + size

    def vcpus(self, vcpus: Any) -> None:
        for v in vcpus:
            if v not in self.pend:
                self.pend.add(v)
                self.alloc(_PEND_TABLE)

    def mapd(self, dev: int, bits: int) -> None:
        if self.two_level and dev // _L2_DTES not in self.l2:
            self.l2.add(dev // _L2_DTES)
            self.alloc(_SZ_64K)
        if self.itt_bits.get(dev, 0) < bits:
            self.itt_bits[dev] = bits
            self.alloc(max((1 << bits) * 8, 256), 256)

    def step(self, kind: str, a: Any) -> None:
        if kind == "enable_lpis":
            self.vcpus(a)
        elif kind == "set_pending":
            self.vcpus((a.vcpu,))
        elif kind == "mapd" and a.valid:
            self.mapd(a.device, a.event_bits or 1)
        elif kind == "map_devices":
            for dev in a.devices:
                self.mapd(dev, a.event_bits)


def _resource_problems(sc: "Scenario") -> list[tuple[tuple[Any, ...], str, bool]]:
    out: list[tuple[tuple[Any, ...], str, bool]] = []
    if len(sc.migrations) > MAX_MIGRATIONS:
        out.append((("migration",), f"{len(sc.migrations)} migrations, more than the cap of "
                    f"{MAX_MIGRATIONS} (MAX_MIGRATIONS)", True))  # fmt: skip
    checks = sum(len(d.lpi) for d in sc.expect.delivered or ())
    if checks > MAX_EXPECT_LPIS:
        out.append((("expect", "delivered"), f"{checks:,} LPIs to check in total, more than the "
                    f"cap of {MAX_EXPECT_LPIS:,} (MAX_EXPECT_LPIS)", True))  # fmt: skip
    # --- device MSI sources
    nsrc = sum(len(d.device) for d in sc.devices)
    if nsrc > MAX_MSI_SOURCES:
        out.append((("devices",), f"{nsrc:,} device sources in total, more than the cap of "
                    f"{MAX_MSI_SOURCES:,} (MAX_MSI_SOURCES)", True))  # fmt: skip
    pairs = sum(len(d.device) * len(d.events) for d in sc.devices)
    if pairs > MAX_DEVICE_EVENTS:
        out.append((("devices",), f"{pairs:,} device x event pairs in total, more than the cap "
                    f"of {MAX_DEVICE_EVENTS:,} (MAX_DEVICE_EVENTS)", True))  # fmt: skip
    total, per = _msis(sc)
    if total > MAX_MSIS:
        big = max(range(len(per)), key=per.__getitem__)
        out.append((("devices",), f"about {total:,.0f} MSIs before until_us (devices x "
                    f"rate_per_s x (stop_us - start_us), or devices x len(at_us) x events, summed "
                    f"over sources; devices.{big} alone sends {per[big]:,.0f}), more than the cap "
                    f"of {MAX_MSIS:,} (MAX_MSIS): lower the rates, shorten the run or use fewer "
                    "devices", True))  # fmt: skip
    # --- guest work: boot, then actions
    ram = _GuestRam(sc)
    limit = sc.vm.memory_mib
    queue_slots = sc.vm.its.cmdq_kib * 1024 // 32 - 1
    queued, enabled = 0, False
    cmds = mapti = ops = 0
    flagged: set[str] = set()
    for where, items in (("boot", sc.guest.boot), ("actions", sc.guest.actions)):
        for i, st in enumerate(items):
            kind, a = st.kind, st.args
            loc = ("guest", where, i, kind)
            c, m, o = _step_cost(kind, a)
            cmds, mapti, ops = cmds + c, mapti + m, ops + c + o
            if mapti > MAX_MAPPED_LPIS and "mapti" not in flagged:
                flagged.add("mapti")
                out.append((loc, f"the guest maps {mapti:,} LPIs by here (MAPTI commands of "
                            f"guest.boot and guest.actions), more than the cap of "
                            f"{MAX_MAPPED_LPIS:,} (MAX_MAPPED_LPIS)", True))  # fmt: skip
            if ops > MAX_GUEST_OPS and "ops" not in flagged:
                flagged.add("ops")
                out.append((loc, f"{ops:,} guest operations by here (ITS commands and "
                            f"property/pending-table writes), more than the cap of "
                            f"{MAX_GUEST_OPS:,} (MAX_GUEST_OPS)", True))  # fmt: skip
            if where == "boot":
                if kind == "its_enable":
                    enabled = bool(a)
                    queued = 0 if enabled else queued  # enabling runs the queue
                elif not enabled and c:
                    queued += c
                    if queued > queue_slots and "queue" not in flagged:
                        flagged.add("queue")
                        out.append((loc, f"{queued:,} ITS commands are queued while the ITS "
                                    f"is still disabled, but the command queue (vm.its.cmdq_kib "
                                    f"{sc.vm.its.cmdq_kib}) holds {queue_slots:,}: put "
                                    "'its_enable: true' earlier or enlarge the queue", True))  # fmt: skip
            ram.step(kind, a)
            if ram.brk > ram.end and "ram" not in flagged:
                flagged.add("ram")
                need = -(-(ram.brk - _RAM_BASE) // (1 << 20))
                out.append((loc, f"guest RAM exhausted: the guest driver's queue, tables, "
                            f"pending tables and ITTs need {'at least' if where == 'boot' else 'up to'} "
                            f"{need:,} MiB by here, vm.memory_mib is {limit:,}", True))  # fmt: skip
    return out


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


# ----------------------------------------------------------------------------------------------
# YAML -> plain data + positions


class _Positions:
    def __init__(self) -> None:
        self.count = 0
        self.key: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.value: dict[tuple[Any, ...], tuple[int, int]] = {}


MAX_NODES = 500_000  # YAML values after alias expansion (ruamel: ~75 us and ~1.3 KiB each)
MAX_FILE_BYTES = 4 << 20  # 200x the largest shipped scenario; parsing it takes ~10 s


class _TooLarge(Exception):
    pass


def _plain(node: Any, path: tuple[Any, ...], pos: _Positions, problems: list[tuple]) -> Any:
    """ruamel round-trip objects -> dict/list/int/float/str/bool, recording 1-based positions."""
    pos.count += 1
    if pos.count > MAX_NODES:
        raise _TooLarge(f"more than {MAX_NODES} values (aliases expanding?)")
    if isinstance(node, CommentedMap):
        out = {}
        for k in node:
            p = path + (k,)
            lc = node.lc.data.get(k) if node.lc.data is not None else None
            if lc:
                pos.key[p] = (lc[0] + 1, lc[1] + 1)
                pos.value[p] = (lc[2] + 1, lc[3] + 1)
            out[_scalar(k)] = _plain(node[k], p, pos, problems)
        return out
    if isinstance(node, CommentedSeq):
        out_l = []
        for i, v in enumerate(node):
            lc = node.lc.data.get(i) if node.lc.data is not None else None
            if lc:
                pos.value[path + (i,)] = (lc[0] + 1, lc[1] + 1)
            out_l.append(_plain(v, path + (i,), pos, problems))
        return out_l
    if isinstance(node, TaggedScalar):
        tag = str(node.tag.value)
        if tag == "tag:yaml.org,2002:str":
            return str(node.value)
        problems.append((path, f"YAML tag {tag} is not supported"))
        return node.value
    return _scalar(node)


def _scalar(v: Any) -> Any:
    if isinstance(v, bool):
        return bool(v)
    if type(v).__name__ == "ScalarBoolean":
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    return v


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _duplicate_keys(text: str) -> list[tuple[int, int, str, str]]:
    """All duplicate mapping keys (ruamel stops at the first): (line, col, path, message)."""
    try:
        root = YAML(typ="rt").compose(text)
    except YAMLError:
        return []
    found: list[tuple[int, int, str, str]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for kn, vn in node.value:
                if isinstance(kn, ScalarNode) and kn.value != "<<":
                    ident = (str(getattr(kn.tag, "value", kn.tag)), kn.value)
                    if ident in first:
                        found.append(
                            (
                                kn.start_mark.line + 1,
                                kn.start_mark.column + 1,
                                ".".join(path + (kn.value,)),
                                f"duplicate key {kn.value!r} (first at line {first[ident]})",
                            )
                        )
                    else:
                        first[ident] = kn.start_mark.line + 1
                walk(vn, path + (str(getattr(kn, "value", "?")),))
        elif isinstance(node, SequenceNode):
            for i, vn in enumerate(node.value):
                walk(vn, path + (str(i),))

    walk(root, ())
    return found


def _yaml_problem(filename: str, text: str, e: YAMLError) -> list[str]:
    if isinstance(e, DuplicateKeyError):
        dups = _duplicate_keys(text)
        if dups:
            return [f"{filename}:{ln}:{col}: {p}: {msg}" for ln, col, p, msg in dups]
    if isinstance(e, MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        msg = e.problem or e.context or "invalid YAML"
        if e.problem and e.context:
            where = ""
            if e.context_mark is not None:
                where = f" started at {e.context_mark.line + 1}:{e.context_mark.column + 1}"
            msg = f"{e.problem} ({e.context}{where})"
        return [f"{filename}:{line}:{col}: <yaml>: {msg}"]
    if isinstance(e, ReaderError):
        line, col = _line_col(text, e.position)
        ch = e.character
        shown = f"0x{ch:x}" if isinstance(ch, int) else repr(ch)
        return [f"{filename}:{line}:{col}: <yaml>: {e.reason} (character {shown})"]
    return [
        f"{filename}:0:0: <yaml>: {str(e).strip().splitlines()[0] if str(e).strip() else 'invalid YAML'}"
    ]


# ----------------------------------------------------------------------------------------------
# pydantic errors -> FILE:LINE:COL: path: message


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: tuple[Any, ...]) -> Any:
    """The model class a (pydantic) location points into, for listing valid keys."""
    tp: Any = Scenario
    for comp in loc:
        tp = _unwrap(tp)
        if tp is Scenario and comp == "timing":
            tp = TimingSpec
            continue
        if isinstance(comp, int):
            if typing.get_origin(tp) in (tuple, list):
                tp = typing.get_args(tp)[0]
            continue
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return None
        for name, f in tp.model_fields.items():
            if comp in (name, f.alias, f.validation_alias):
                tp = f.annotation
                break
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _valid_keys(model: Any) -> list[str]:
    keys: list[str] = []
    for name, f in model.model_fields.items():
        if name == "timing_base":
            continue
        key = f.alias or name
        if isinstance(key, str) and key not in keys:
            keys.append(key)
    return keys


def _unknown_key(loc: tuple[Any, ...]) -> str:
    key = loc[-1]
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown key {_show(key)}"
    valid = _valid_keys(model)
    if model is BootStep:
        return f"unknown step {_show(key)}{_suggest(key, GUEST_STEPS)}; valid steps: {', '.join(GUEST_STEPS)}"
    if model is Action:
        head = [k for k in valid if k not in GUEST_STEPS]
        return (
            f"unknown key {_show(key)}{_suggest(key, valid)}; valid keys: {', '.join(head)}, "
            f"and one step: {', '.join(GUEST_STEPS)}"
        )
    return f"unknown key {_show(key)}{_suggest(key, valid)}; valid keys: {', '.join(valid)}"


_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}
_BOUND_CTX = {">=": "ge", ">": "gt", "<=": "le", "<": "lt"}


def _message(err: Any) -> str:
    t, ctx, inp = err["type"], err.get("ctx") or {}, err.get("input")
    if t == "scenario":
        return str(ctx.get("message"))
    if t in ("value_error", "assertion_error"):
        return str(ctx.get("error") or err["msg"])
    if t == "missing":
        return "missing required key"
    if t == "invalid_key":
        return f"keys must be strings, got {_show(inp)}"
    if t == "extra_forbidden":
        return _unknown_key(tuple(err["loc"]))
    if t in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_show(inp)}"
    if t in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_show(inp)}"
    if t == "string_type":
        return f"expected a string, got {_show(inp)}"
    if t in ("float_type", "float_parsing"):
        return f"expected a number, got {_show(inp)}"
    if t in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping, got {_show(inp)}"
    if t in ("tuple_type", "list_type"):
        return f"expected a list, got {_show(inp)}"
    if t == "literal_error":
        return f"expected {ctx.get('expected')}, got {_show(inp)}"
    if t in _BOUNDS:
        op = _BOUNDS[t]
        return f"must be {op} {ctx.get(_BOUND_CTX[op])}, got {_show(inp)}"
    return str(err["msg"])


def _locate(loc: tuple[Any, ...], raw: Any) -> tuple[tuple[Any, ...], bool]:
    """Pydantic location -> YAML path (dropping the index of a single mapping used as a list)."""
    path: list[Any] = []
    node, exists = raw, True
    for comp in loc:
        if exists and isinstance(node, dict):
            if comp in node:
                path.append(comp)
                node = node[comp]
                continue
            if isinstance(comp, int):
                continue
        elif exists and isinstance(node, list):
            if isinstance(comp, int) and 0 <= comp < len(node):
                path.append(comp)
                node = node[comp]
                continue
        path.append(comp)
        exists = False
    return tuple(path), exists


def _position(
    path: tuple[Any, ...], exists: bool, at_key: bool, pos: _Positions
) -> tuple[int, int]:
    if exists:
        first, second = (pos.key, pos.value) if at_key else (pos.value, pos.key)
        found = first.get(path) or second.get(path)
        if found:
            return found
        # no position of its own (a key brought in by a '<<' merge): the nearest parent's
    for n in range(len(path) - 1, -1, -1):
        p = path[:n]
        if p in pos.key or p in pos.value:
            return pos.key.get(p) or pos.value[p]
    return pos.value.get((), (0, 0))


def _path_part(c: Any) -> str:
    if isinstance(c, str) and (not c or c != c.strip() or ": " in c or "\n" in c):
        return repr(c)  # keep FILE:LINE:COL: path: message readable
    if isinstance(c, str | int) and not isinstance(c, bool):
        return str(c)
    if c is None or isinstance(c, bool):
        return _show(c)
    if isinstance(c, list | tuple):  # a YAML sequence used as a key: no spaces in a path
        return "[" + ",".join(_path_part(x) for x in c) + "]"
    return str(c).replace(" ", "")


def _format_path(path: tuple[Any, ...]) -> str:
    return ".".join(_path_part(c) for c in path) if path else "<root>"


def _problems(
    exc: ValidationError,
    raw: Any,
    pos: _Positions,
    filename: str,
    skip: list[tuple[Any, ...]] | None = None,
) -> list[tuple[int, int, str]]:
    located = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "invalid_key" and loc:
            loc = loc[:-1] + (err.get("input"),)  # pydantic's loc has str(key); find the key
        at_key = err["type"] in ("extra_forbidden", "invalid_key") or bool(
            (err.get("ctx") or {}).get("at_key")
        )
        if err["type"] != "scenario" and "input" in err and err["input"] is None:
            at_key = True  # `key:` with no value: YAML puts the null where the next token is
        path, exists = _locate(loc, raw)
        if any(path[: len(s)] == s for s in skip or ()):
            continue
        line, col = _position(path, exists, at_key, pos)
        located.append(
            (line, col, f"{filename}:{line}:{col}: {_format_path(path)}: {_message(err)}")
        )
    return located


def _sorted_unique(located: list[tuple[int, int, str]]) -> list[str]:
    out: list[str] = []
    for _, _, s in sorted(located, key=lambda x: (x[0], x[1])):
        if s not in out:
            out.append(s)
    return out


# ----------------------------------------------------------------------------------------------
# public API


def _validate(
    raw: Any, pos: _Positions, filename: str, extra: list[tuple] | None = None
) -> Scenario:
    located = []
    for path, msg in extra or []:
        line, col = _position(tuple(path), True, False, pos)
        located.append((line, col, f"{filename}:{line}:{col}: {_format_path(tuple(path))}: {msg}"))
    if not isinstance(raw, Mapping):
        line, col = pos.value.get((), (0, 0))
        raise ScenarioError(
            [
                f"{filename}:{line}:{col}: <root>: expected a mapping of scenario keys, got {_show(raw)}"
            ]
        )
    ctx = _context(raw)
    stem = "" if filename.startswith("<") else Path(filename).stem
    ctx["default_name"] = stem if _NAME_RE.match(stem) else "scenario"
    try:
        scn = Scenario.model_validate(dict(raw), context=ctx)
    except RecursionError:
        located.append((0, 0, f"{filename}:0:0: <root>: nested too deeply"))
    except ValidationError as e:
        located += _problems(e, raw, pos, filename, [tuple(p) for p, _ in extra or []])
    if located:
        raise ScenarioError(_sorted_unique(located))
    return scn


def load_scenario_text(text: str, filename: str = "<string>") -> Scenario:
    """Parse and validate YAML text; ``filename`` only labels the problems."""
    yaml = YAML(typ="rt")
    try:
        doc = yaml.load(text)
    except YAMLError as e:
        raise ScenarioError(_yaml_problem(filename, text, e)) from None
    except RecursionError:
        raise ScenarioError([f"{filename}:0:0: <yaml>: nested too deeply"]) from None
    except Exception as e:  # ruamel can raise plain errors on odd input; never leak a traceback
        raise ScenarioError([f"{filename}:0:0: <yaml>: cannot parse: {e}"]) from None
    if doc is None:
        raise ScenarioError(
            [
                f"{filename}:1:1: <root>: empty scenario (expected a mapping with keys such as name, vm, guest)"
            ]
        )
    pos = _Positions()
    if isinstance(doc, CommentedMap | CommentedSeq):
        pos.value[()] = (doc.lc.line + 1, doc.lc.col + 1)
    else:
        pos.value[()] = (1, 1)
    tag_problems: list[tuple] = []
    try:
        raw = _plain(doc, (), pos, tag_problems)
    except (RecursionError, _TooLarge) as e:
        msg = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ScenarioError([f"{filename}:0:0: <yaml>: {msg}"]) from None
    return _validate(raw, pos, filename, tag_problems)


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate a scenario file."""
    filename = str(path)
    p = Path(path)
    try:
        if p.is_dir():
            raise ScenarioError([f"{filename}:0:0: <file>: is a directory, not a scenario file"])
        with p.open("rb") as fh:  # bounded: /dev/zero or a huge file must not fill memory
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ScenarioError(
                [f"{filename}:0:0: <file>: larger than the cap of {MAX_FILE_BYTES >> 20} MiB "
                 "(MAX_FILE_BYTES) for a scenario file"]
            )  # fmt: skip
    except ScenarioError:
        raise
    except FileNotFoundError:
        raise ScenarioError([f"{filename}:0:0: <file>: no such file"]) from None
    except OSError as e:
        raise ScenarioError([f"{filename}:0:0: <file>: cannot read: {e.strerror or e}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        col = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
        raise ScenarioError(
            [f"{filename}:{line}:{col}: <file>: not valid UTF-8 (byte 0x{data[start]:02x})"]
        ) from None
    return load_scenario_text(text, filename)


def scenario_from_dict(d: Any, filename: str = "<dict>") -> Scenario:
    """Validate plain Python data in YAML units (problems carry line and column 0)."""
    return _validate(d, _Positions(), filename)


def check_scenario(path: str | Path) -> list[str]:
    """Problems of a scenario file, [] when valid (for ``gicsim validate``)."""
    try:
        load_scenario(path)
    except ScenarioError as e:
        return e.problems
    return []


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, in YAML units; loads back to an equal one."""
    return scenario.model_dump(mode="json", by_alias=True)
