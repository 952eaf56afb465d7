"""Hazard spaces: which variations of a scenario ``gicsim hazards`` runs.

The default space is every permutation of the base scenario's destination steps
(``migration.destination.steps``; 8! = 40,320 for the default eight) plus each step left
out. A space file (``--space SPACE.yaml``) names dimensions, combined as a product::

    destination_orders: all            # or a list of orders
    leave_out: true                    # also each destination step left out
    source_orders: [[stop_vcpus, quiesce_devices, save_pending_tables, save_its_tables, final_memory]]
    quiesce_devices: [true, false]     # whether the source runs quiesce_devices
    straggler_exit_us: [50, 300]       # the first straggler's exit time
    on_ebusy: [abort, continue, {retry: 5}]
    kernel: [{release: "6.12"}, {release: "6.1"}]

A space file is read and placed like a sweep file (``gicsim.sweeps.spec``: YAML with
positions under size and node caps, ``FILE:LINE:COL: key: message`` lines), and every
combination of the non-order dimensions, and every explicit order, is validated by the
scenario validator with its problems placed at the space-file value that caused them.
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Annotated, Any

import attrs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from gicsim.scenario import ScenarioError, resolved_dict
from gicsim.scenario.errors import _fail, _show
from gicsim.scenario.fields import _suggest
from gicsim.scenario.load import InputFileError, _validate, read_input_file
from gicsim.scenario.messages import _position, _sorted_unique
from gicsim.scenario.yamlpos import MAX_FILE_BYTES, _Positions, parse_yaml
from gicsim.sweeps.spec import (
    SweepError,
    _at,
    _copy_positions,
    _model_problems,
    set_path,
)
from gicsim.sweeps.spec import _parse as _parse_sweep_yaml

MAX_HAZARD_RUNS = 200_000  # ~1 KiB of parent memory per run; the default space of 8 steps is 40,328
MAX_PERMUTED_STEPS = 9  # "all" orders of more steps than this (10! = 3.6 M) are refused

DIMENSIONS = ("destination_orders", "leave_out", "source_orders", "quiesce_devices",
              "straggler_exit_us", "on_ebusy", "kernel")  # fmt: skip
# the non-order dimensions, in product order, and the scenario key path each one sets
OTHER = ("source_orders", "quiesce_devices", "straggler_exit_us", "on_ebusy", "kernel")
SETS = {"source_orders": ("migration", 0, "source", "steps"), "quiesce_devices": ("migration", 0, "source", "steps"),
        "straggler_exit_us": ("migration", 0, "source", "stragglers", 0, "exit_us"),
        "on_ebusy": ("migration", 0, "source", "on_ebusy"), "kernel": ("kernel",)}  # fmt: skip


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Values = Annotated[list[Any], Field(min_length=1)]


def _orders(v: Any) -> Any:
    """``all`` or a non-empty list of step orders (lists of step names): one message each,
    not one per member of a type union."""
    if v == "all":
        return v
    if not isinstance(v, list):
        raise ValueError(f"expected 'all' or a list of step orders, got {_show(v)}")
    if not v:
        raise ValueError("expected 'all' or at least one step order, got an empty list")
    problems: list[tuple[tuple[int, ...], str, bool]] = [
        ((i,), f"expected a step order (a list of step names), got {_show(o)}", False)
                for i, o in enumerate(v) if not isinstance(o, list)]  # fmt: skip
    problems += [((i, j), f"expected a step name, got {_show(x)}", False) for i, o in enumerate(v)
                 if isinstance(o, list) for j, x in enumerate(o) if not isinstance(x, str)]  # fmt: skip
    if problems:
        _fail(*problems)
    return v


Orders = Annotated[Any, BeforeValidator(_orders)]  # "all" or list[list[str]]


class SpaceFile(_M):
    destination_orders: Orders = "all"
    leave_out: StrictBool = True
    source_orders: Orders | None = None
    quiesce_devices: Annotated[list[StrictBool], Field(min_length=1)] | None = None
    straggler_exit_us: Annotated[list[StrictInt | StrictFloat], Field(min_length=1)] | None = None
    on_ebusy: Values | None = None
    kernel: Annotated[list[dict[StrictStr, Any]], Field(min_length=1)] | None = None


@attrs.define
class Space:
    """The expanded space: the base scenario (resolved), its destination steps, the orders
    to run, and the combinations of the other dimensions (each a resolved, validated
    scenario dict with the overrides that made it)."""

    base: dict[str, Any]
    steps: tuple[str, ...]
    orders: list[tuple[str, ...]]  # full orders (permutations or the listed ones)
    left_out: list[tuple[tuple[str, ...], str]]  # (the base order without a step, that step)
    combos: list[tuple[dict[str, Any], dict[str, Any]]]  # (overrides, resolved scenario)
    dims: dict[str, Any]  # what was asked, for the report
    rules_combo: int  # the combination the rules are derived at (the base's values)

    @property
    def runs(self) -> int:
        return (len(self.orders) + len(self.left_out)) * len(self.combos)


def _dest_steps(d: dict[str, Any]) -> tuple[str, ...]:
    migs = d.get("migration") or []
    if isinstance(migs, dict):
        migs = [migs]
    if not migs:
        return ()
    return tuple(migs[0]["destination"]["steps"])


def _source(d: dict[str, Any]) -> dict[str, Any]:
    migs = d["migration"]
    return (migs if isinstance(migs, dict) else migs[0])["source"]


def base_value(base: dict[str, Any], dim: str) -> Any:
    """The base scenario's value of a non-order dimension (None: it has none)."""
    src = _source(base)
    if dim == "source_orders":
        return list(src["steps"])
    if dim == "quiesce_devices":
        return "quiesce_devices" in src["steps"]
    if dim == "straggler_exit_us":
        st = src.get("stragglers") or []
        return st[0]["exit_us"] if st else None
    if dim == "on_ebusy":
        return src.get("on_ebusy")
    if dim == "kernel":
        return base.get("kernel")
    raise KeyError(dim)


def _apply(d: dict[str, Any], dim: str, value: Any) -> None:
    """Set one non-order dimension in a resolved scenario dict (in place)."""
    if dim == "source_orders":
        set_path(d, "migration.source.steps", list(value))
    elif dim == "quiesce_devices":
        steps = list(_source(d)["steps"])
        if value and "quiesce_devices" not in steps:
            at = steps.index("save_pending_tables") if "save_pending_tables" in steps else len(steps)
            steps.insert(at, "quiesce_devices")  # where the default source order runs it
        elif not value:
            steps = [s for s in steps if s != "quiesce_devices"]
        set_path(d, "migration.source.steps", steps)
    elif dim == "straggler_exit_us":
        set_path(d, "migration.source.stragglers.0.exit_us", value)
    elif dim == "on_ebusy":
        set_path(d, "migration.source.on_ebusy", copy.deepcopy(value))
    elif dim == "kernel":
        d["kernel"] = copy.deepcopy(value)


def default_dims() -> dict[str, Any]:
    return {"destination_orders": "all", "leave_out": True}


def _parse(path: Path) -> tuple[Any, _Positions]:
    """A space file's YAML with positions, read as a sweep file is (the same caps)."""
    return _parse_sweep_yaml(path, "space", ", ".join(DIMENSIONS[:3]))


def _duplicates(dims: dict[str, Any], where: str, pos: _Positions) -> list[tuple[int, int, str]]:
    """A value listed twice in a dimension would only run the same combinations again."""
    out = []
    for dim, values in dims.items():
        if not isinstance(values, list):
            continue
        first: dict[str, int] = {}
        for i, v in enumerate(values):
            key = _key(v)
            if key in first:
                out.append(_at(where, pos, (dim, i), f"duplicate value (the same as item "
                                                     f"{first[key]}): it would run the same "
                                                     "combinations again"))  # fmt: skip
            else:
                first[key] = i
    return out


def load_space_file(path: str | Path) -> tuple[dict[str, Any], _Positions, str]:
    """Read and shape-check a space file; raises SweepError with located lines."""
    path = Path(path)
    where = str(path)
    raw, pos = _parse(path)
    if not isinstance(raw, dict):
        line, col = pos.value.get((), (1, 1))
        raise SweepError([f"{where}:{line}:{col}: <root>: a space file is a mapping (keys: "
                          f"{', '.join(SpaceFile.model_fields)}), got {_show(raw)}"])  # fmt: skip
    valid = list(SpaceFile.model_fields)
    unknown = [_at(where, pos, (k,), f"unknown key {_show(k)}{_suggest(k, valid)}; valid keys: {', '.join(valid)}",
                   at_key=True) for k in raw if k not in valid]  # fmt: skip
    if unknown:
        raise SweepError(_sorted_unique(unknown))
    try:
        spec = SpaceFile.model_validate(raw)
    except ValidationError as e:
        raise SweepError(_model_problems(e, raw, pos, where)) from None
    dims = {k: getattr(spec, k) for k in DIMENSIONS if k in spec.model_fields_set}
    dup = _duplicates(dims, where, pos)
    if dup:
        raise SweepError(_sorted_unique(dup))
    return dims, pos, where


def expand(base: dict[str, Any], dims: dict[str, Any], pos: _Positions | None = None,
           where: str = "<space>", scenario: str | Path | None = None) -> Space:  # fmt: skip
    """The space over ``base`` (a resolved scenario dict); raises SweepError, each problem
    placed at the space-file value that caused it (``scenario``: the file ``base`` was read
    from, for a problem of the scenario's own, such as too many steps for 'all')."""
    pos = pos or _Positions()
    steps = _dest_steps(base)
    if not steps:
        raise SweepError([f"{where}:1:1: <scenario>: the scenario has no migration: there are no "
                          "destination steps to order"])  # fmt: skip
    asked = {**default_dims(), **dims}
    located: list[tuple[int, int, str]] = []
    dest = asked["destination_orders"]
    if dest == "all":
        if len(steps) > MAX_PERMUTED_STEPS:
            msg = (f"{math.factorial(len(steps)):,} orders of {len(steps)} steps; 'all' is refused "
                   f"above {MAX_PERMUTED_STEPS} steps")  # fmt: skip
            if "destination_orders" not in dims:  # the default space: the scenario's steps
                raise SweepError([_steps_problem(scenario, f"{msg} (the default space, every "
                                                 "order): give --space with the orders listed")])  # fmt: skip
            located.append(_at(where, pos, ("destination_orders",), f"{msg}: list the orders"))
            orders: list[tuple[str, ...]] = []
        else:
            orders = list(itertools.permutations(steps))
    else:
        orders = [tuple(o) for o in dest]
        for i, o in enumerate(orders):
            d = copy.deepcopy(base)
            set_path(d, "migration.destination.steps", list(o))
            _check(d, where, pos, ("destination_orders", i), ("migration", 0, "destination", "steps"), located)
    left = [(tuple(s for s in steps if s != x), x) for x in steps] if asked["leave_out"] else []

    # the other dimensions: the values to try (the base's own when not asked)
    values: dict[str, list[Any]] = {}
    for dim in OTHER:
        v = asked.get(dim)
        if v is None:
            continue
        if dim == "source_orders" and v == "all":
            src_steps = base_value(base, "source_orders")
            v = [list(p) for p in itertools.permutations(src_steps)]
        if dim == "straggler_exit_us" and base_value(base, dim) is None:
            located.append(_at(where, pos, (dim,), "the scenario has no straggler "
                               "(migration.source.stragglers) whose exit time could vary", at_key=True))  # fmt: skip
            continue
        values[dim] = list(v)
    if located:
        raise SweepError(_sorted_unique(located))
    n = (len(orders) + len(left)) * math.prod(len(v) for v in values.values())
    if n > MAX_HAZARD_RUNS:
        line, col = pos.value.get((), (1, 1))
        raise SweepError([f"{where}:{line}:{col}: <root>: {n:,} runs (orders x other dimensions); the "
                          f"cap is {MAX_HAZARD_RUNS:,} (MAX_HAZARD_RUNS): narrow the space"])  # fmt: skip

    combos: list[tuple[dict[str, Any], dict[str, Any]]] = []
    names = list(values)
    for combo in itertools.product(*(range(len(values[k])) for k in names)):
        over = {k: values[k][j] for k, j in zip(names, combo, strict=True)}
        d = copy.deepcopy(base)
        problems_before = len(located)
        for k, j in zip(names, combo, strict=True):
            _apply(d, k, values[k][j])
        src = {k: (k, j) for k, j in zip(names, combo, strict=True)}
        resolved = _check(d, where, pos, None, None, located, src)
        if resolved is None:
            break  # one combination's problems are enough (the others repeat them)
        if len(located) == problems_before and resolved is not None:
            combos.append((over, resolved))
    if located:
        raise SweepError(_sorted_unique(located)[:20])
    rules = 0
    for i, (over, _) in enumerate(combos):  # the first combination at the base's values
        if all(_same(v, base_value(base, k)) for k, v in over.items()):
            rules = i
            break
    shown = {**asked}
    for k, v in values.items():
        shown[k] = v
    return Space(base, steps, orders, left, combos, shown, rules)


def _steps_problem(scenario: str | Path | None, msg: str) -> str:
    """``msg`` placed at the scenario file's ``migration.destination.steps`` (or as near as
    the file has: the migration, else the document)."""
    key = "migration.destination.steps"
    if scenario is None:
        return f"<scenario>:0:0: {key}: {msg}"
    line, col = 1, 1
    try:
        text = read_input_file(scenario, MAX_FILE_BYTES, "scenario", "MAX_FILE_BYTES").decode("utf-8-sig")
        doc = parse_yaml(text, str(scenario))
        m = doc.raw.get("migration") if isinstance(doc.raw, dict) else None
        at = ("migration", 0) if isinstance(m, list) else ("migration",)
        line, col = _position(at + ("destination", "steps"), True, False, doc.pos)
    except (InputFileError, ScenarioError, UnicodeDecodeError):
        pass  # it was read a moment ago; keep 1:1 if it is not readable now
    return f"{scenario}:{line}:{col}: {key}: {msg}"


def _key(v: Any) -> str:
    import json

    return json.dumps(v, sort_keys=True, default=str)


def _same(a: Any, b: Any) -> bool:
    return _key(a) == _key(b)


def _check(d: dict[str, Any], where: str, pos: _Positions, src: tuple[Any, ...] | None,
           at: tuple[Any, ...] | None, located: list[tuple[int, int, str]],
           srcs: dict[str, tuple[Any, ...]] | None = None) -> dict[str, Any] | None:  # fmt: skip
    """Validate one varied scenario; problems go to ``located`` at the space value."""
    run_pos = _Positions()
    spot = (1, 1)
    if src is not None:
        spot = pos.value.get(src) or pos.key.get(src) or spot
    elif srcs:
        first = next(iter(srcs.values()))
        spot = pos.value.get(first) or pos.key.get(first) or spot
    run_pos.value[()] = spot
    if src is not None and at is not None:
        _copy_positions(pos, src, run_pos, at)
    for dim, s in (srcs or {}).items():  # each dimension's value at the scenario path it sets
        _copy_positions(pos, s, run_pos, SETS[dim])
    try:
        return resolved_dict(_validate(d, run_pos, where))
    except ScenarioError as e:
        for msg in e.problems:
            located.append((spot[0], spot[1], msg))
        return None
