"""The shape of a run directory's ``summary.json``, checked once when the directory is read.

A run directory is input (it may be damaged or hostile), and everything downstream —
``report``, ``explain``, ``tables``, ``diff`` — indexes the summary as ``gicsim run`` writes it.
These models are the contract of ``docs/summary-json.md``: every key it lists, with its JSON
type; counts and times are integers ≥ 0 (never a float, ``NaN`` or a boolean); a key it does
not list is refused (``gicsim run`` writes no other). :func:`check_summary` turns every
violation into one ``FILE: key.path: message`` line (the first ``MAX_PROBLEMS``, then one line
counting the rest); a list stops at its first bad element, so a hostile file costs no
more than a real one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    FailFast,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from gicsim.scenario.errors import MAX_PROBLEMS, _show
from gicsim.scenario.messages import type_message

Count = Annotated[StrictInt, Field(ge=0)]  # a count or a time in ns
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
MAX_PHASES = 256  # steps of one migration (a real one has at most ~20)
STATUSES = ("completed", "completed_with_errors", "aborted", "failed", "incomplete", "none")


def _few(v: Any) -> Any:
    """A mapping of at most MAX_PHASES entries, refused before its entries are validated."""
    if isinstance(v, dict) and len(v) > MAX_PHASES:
        raise ValueError(f"{len(v):,} steps, more than {MAX_PHASES} (MAX_PHASES)")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Span(_Model):
    start_ns: Count
    end_ns: Count


class CallError(_Model):
    step: StrictStr
    errno: StrictStr
    t_ns: Count


class Migration(_Model):
    status: Literal[STATUSES]  # type: ignore[valid-type]
    ebusy: Count
    downtime_ns: Count | None
    errors: Annotated[list[CallError], FailFast()]
    phases: Annotated[dict[StrictStr, Span], BeforeValidator(_few)]


class Dropped(_Model):
    its_disabled: Count
    no_its: Count
    unmapped: Count
    lpis_disabled: Count
    not_restored: Count


class Latency(_Model):
    p50: Count | None
    p99: Count | None
    max: Count | None


class Lpis(_Model):
    accepted: Count
    delivered: Count
    lost: Count
    spurious: Count
    misrouted: Count
    withdrawn: Count
    in_flight: Count
    dropped: Dropped
    latency_ns: Latency


class Delivered(_Model):
    lpi: Count
    vcpu: Count
    side: Literal["source", "destination"]
    count: Count


class Kernel(_Model):
    backend: Literal["python", "linux"]
    release: StrictStr
    source: StrictStr


class Failure(_Model):
    key: StrictStr
    wanted: Any
    got: Any


class Expect(_Model):
    passed: StrictBool
    failures: Annotated[list[Failure], FailFast()]


class Summary(_Model):
    scenario: StrictStr
    seed: StrictInt
    sim_ns: Count
    events: Count
    wall_s: Seconds
    migrations: Annotated[list[Migration], FailFast()]
    lpis: Lpis
    delivered: Annotated[list[Delivered], FailFast()]
    state_match: StrictBool | None
    kernel: Kernel
    expect: Expect


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(c) for c in loc) if loc else "<root>"


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (summary.json holds only the keys of docs/summary-json.md)"
    return type_message(err, mapping="an object")


def check_summary(raw: Any, filename: str) -> list[str]:
    """The problems of a parsed ``summary.json`` (``[]`` when it has the shape of the contract)."""
    if not isinstance(raw, dict):
        return [f"{filename}: <root>: expected a JSON object (the run's summary), got {_show(raw)}"]
    try:
        Summary.model_validate(raw)
    except RecursionError:
        return [f"{filename}: <root>: nested too deeply"]
    except ValidationError as e:
        errs = e.errors(include_url=False)
        lines = [f"{filename}: {_path(tuple(x['loc']))}: {_message(x)}" for x in errs[:MAX_PROBLEMS]]
        if len(errs) > MAX_PROBLEMS:
            rest = len(errs) - MAX_PROBLEMS
            lines.append(f"{filename}: <root>: … and {rest:,} more problem{'s' if rest > 1 else ''} (not shown)")
        return lines
    return []
