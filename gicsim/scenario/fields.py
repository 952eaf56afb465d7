"""Scalar field types of the scenario format: numbers and units, ID ranges, vCPU selectors, step lists, comparisons."""

import difflib
import re
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StrictInt,
    ValidationInfo,
)

from gicsim.scenario.constants import (
    _ERRNO_NAMES,
    DEST_STEPS,
    ID_MAX,
    LPI_MAX,
    LPI_MIN,
    MAX_BANDWIDTH_MIB_S,
    MAX_DIRTY_PAGES_PER_S,
    MAX_RANGE_LEN,
    MAX_RATE_PER_S,
    MIGRATION_STATUSES,
    MIN_BANDWIDTH_MIB_S,
    MIN_RATE_PER_S,
    SOURCE_STEPS,
)
from gicsim.scenario.errors import _fail, _show
from gicsim.scenario.units import from_ns, number, to_ns

# ----------------------------------------------------------------------------------------------
# scalar types


def _number(v: Any) -> int | float:
    return number(v)


def _scaled(factor: int, positive: bool = False) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        return to_ns(v, factor, positive)

    return conv


def _unscale(factor: int) -> Callable[[int], int | float]:
    def conv(n: int) -> int | float:
        return from_ns(n, factor)

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
        raise ValueError(f"must be >= 0, got {_show(v)}")
    return v


def _pos_number(v: Any) -> int | float:
    v = _number(v)
    if v <= 0:
        raise ValueError(f"must be > 0, got {_show(v)}")
    return v


NonNegNumber = Annotated[int | float, BeforeValidator(_nonneg_number)]
PosNumber = Annotated[int | float, BeforeValidator(_pos_number)]


def _within(lo: float | None, hi: float, what: str, lo_what: str = "") -> Callable[[Any], int | float]:
    """A number in [lo, hi] (lo None: > 0); the caps of the resource limits above."""

    def conv(v: Any) -> int | float:
        v = _pos_number(v) if lo is None else _nonneg_number(v)
        if lo is not None and v < lo:
            why = f" ({lo_what})" if lo_what else ""
            raise ValueError(f"must be >= {lo:g}{why}, got {_show(v)}")
        if v > hi:
            raise ValueError(f"too large: {_show(v)} is beyond the cap of {hi:g} ({what})")
        return v

    return conv


RatePerS = Annotated[
    int | float,
    BeforeValidator(_within(MIN_RATE_PER_S, MAX_RATE_PER_S, "MAX_RATE_PER_S", "MIN_RATE_PER_S")),
]
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


_NUM = r"(?:0[xX][0-9a-fA-F]+|0|[1-9][0-9]*)"  # ASCII digits only: '١-٣' is not a range
_RANGE_RE = re.compile(rf"^\s*({_NUM})\s*(?:-\s*({_NUM})\s*)?$", re.ASCII)
_MAX_DIGITS = 30  # a range end longer than this is out of every range (and int() has a cap)


def parse_range(
    value: Any,
    *,
    lo: int = 0,
    hi: int | None = None,
    what: str = "value",
    allow_empty: bool = False,
) -> tuple[int, ...]:
    """Ids from an int, a list of ints (order kept) or an inclusive ``"A-B"`` string."""

    span = f"{lo}..{hi}" if hi is not None else f">= {lo}"

    def bounded(v: int, index: int | None = None) -> int:
        if abs(v) >= 10**_MAX_DIGITS:
            raise RangeError(f"{what} of more than {_MAX_DIGITS} digits out of range {span}", index)
        if v < lo or (hi is not None and v > hi):
            raise RangeError(f"{what} {v} out of range {span}", index)
        return v

    def number(text: str) -> int:
        if len(text) > _MAX_DIGITS:
            raise RangeError(f"{what} of {len(text):,} digits out of range {span}")
        return int(text, 0)

    if isinstance(value, bool):
        raise RangeError(f"expected an integer, a list or 'A-B', got {_show(value)}")
    if isinstance(value, int):
        return (bounded(value),)
    if isinstance(value, str):
        m = _RANGE_RE.match(value)
        if not m:
            raise RangeError(f"bad range {_show(value)}: expected 'A-B' (inclusive) or an integer")
        a = number(m.group(1))
        b = number(m.group(2)) if m.group(2) is not None else a
        if a > b:
            raise RangeError(f"bad range {_show(value)}: start {a} is greater than end {b}")
        bounded(a)
        bounded(b)
        if b - a + 1 > MAX_RANGE_LEN:
            raise RangeError(f"range {_show(value)} too large (more than {MAX_RANGE_LEN} ids)")
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
# names and text

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # use with fullmatch (no "\n" after)
MAX_NAME_LEN = 100  # a name is a directory name: far below NAME_MAX (255 bytes) with suffixes


def valid_name(v: Any) -> bool:
    """The scenario name rule (also for sweep names): a safe single directory name."""
    return isinstance(v, str) and len(v) <= MAX_NAME_LEN and _NAME_RE.fullmatch(v) is not None


def _name(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {_show(v)}")
    if len(v) > MAX_NAME_LEN:
        raise ValueError(f"{len(v):,} characters, more than the cap of {MAX_NAME_LEN} "
                         "(MAX_NAME_LEN; the name is a directory name)")  # fmt: skip
    if not valid_name(v):
        raise ValueError(
            f"{_show(v)} is not usable as a directory name (letters, digits, '.', '_', '-')"
        )
    return v


def _utf8_text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {_show(v)}")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"not encodable as UTF-8: character {e.start + 1} is a lone surrogate "
                         f"(U+{ord(v[e.start]):04X}); results are written as UTF-8") from None  # fmt: skip
    return v
