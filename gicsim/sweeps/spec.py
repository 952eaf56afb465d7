"""Sweep files: read, validate and expand into runs.

A sweep file is validated with the machinery scenarios use (``gicsim.scenario.yamlpos``
for YAML with positions under size and node caps, a pydantic model for its shape,
``gicsim.scenario.messages`` for the ``FILE:LINE:COL: key.path: message`` lines), and every
run it expands into is validated by the scenario validator, with each problem placed at
the line of the sweep value that caused it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import random
from pathlib import Path
from typing import Annotated, Any

import attrs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from gicsim.present.output import printable
from gicsim.scenario import ScenarioError, load_scenario, resolved_dict
from gicsim.scenario.constants import MAX_SEED
from gicsim.scenario.errors import _show
from gicsim.scenario.fields import RangeError, _suggest, parse_range
from gicsim.scenario.load import InputFileError, _validate, read_input_file
from gicsim.scenario.messages import (
    _format_path,
    _locate,
    _message,
    _model_at,
    _position,
    _sorted_unique,
    _valid_keys,
)
from gicsim.scenario.schema import _name, valid_name
from gicsim.scenario.yamlpos import _expanded_size, _Positions, parse_yaml

# Caps. Sweep files are small (the shipped ones are under 1 KiB and 40 values); the caps
# are far above any real sweep and keep a hostile one cheap to refuse.
# Parsing costs ~100-400 us per YAML value (ruamel), so the byte cap is what bounds the
# time a file can take before it is refused: 32 KiB holds at most ~16k values (measured:
# 2.9 s on a loaded 2-CPU machine, 11 MiB peak).
MAX_SWEEP_BYTES = 32 << 10
MAX_SWEEP_NODES = 10_000  # values after alias expansion; a 10**9-value alias bomb: 14 ms, 0.1 MiB
MAX_RUNS = 10_000  # runs after grid x sample x repeat; expanding and validating ~5 ms per run
MAX_REPEAT = MAX_RUNS
MAX_PROBLEMS = 20  # problems shown for the expanded runs

METRICS = ("status", "lost", "spurious", "misrouted", "ebusy", "accepted", "delivered",
           "downtime_ns", "latency_p50_ns", "latency_p99_ns", "state_match", "expect_passed",
           "events", "wall_s")  # fmt: skip


class SweepError(Exception):
    """Invalid sweep input; ``problems`` holds one ``FILE:LINE:COL: path: message`` each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class KeyPathError(ValueError):
    """An override key path that does not lead anywhere in the base scenario."""


@attrs.define
class Run:
    index: int
    overrides: dict[str, Any]
    scenario: dict[str, Any]  # resolved, in YAML units
    key: str


@attrs.define
class Sweep:
    name: str
    path: Path
    runs: list[Run]
    report: dict[str, str]


# --------------------------------------------------------------------- the model ----
def _sweep_name(v: Any) -> str:
    # the scenario rule, matched in full (a trailing newline does not pass either)
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {_show(v)}")
    if not valid_name(v):
        _name(v)  # its message (too long, ...)
        raise ValueError("not usable as a directory name (a letter or digit, then letters, "
                         "digits, '.', '_', '-')")  # fmt: skip
    return _name(v)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleParam(_M):
    """One of ``{uniform: [a, b]}``, ``{int_uniform: [a, b]}``, ``{choice: [...]}``."""

    uniform: tuple[StrictFloat, StrictFloat] | None = None
    int_uniform: tuple[StrictInt, StrictInt] | None = None
    choice: Annotated[list[Any], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> SampleParam:
        given = [k for k in ("uniform", "int_uniform", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a sample parameter is {uniform: [a, b]}, {int_uniform: [a, b]} "
                             "or {choice: [...]}")  # fmt: skip
        pair = self.uniform or self.int_uniform
        if pair is not None:
            if not all(math.isfinite(x) for x in pair):
                raise ValueError("the bounds must be finite numbers")
            if pair[0] > pair[1]:
                raise ValueError(f"the lower bound {pair[0]} is greater than the upper {pair[1]}")
        return self


class Sample(_M):
    n: Annotated[StrictInt, Field(ge=1, le=MAX_RUNS)] = 1
    params: dict[StrictStr, SampleParam] = {}


class ReportSpec(_M):
    x: StrictStr | None = None
    y: StrictStr = "lost"
    group: StrictStr | None = None


class SweepFile(_M):
    name: Annotated[str, BeforeValidator(_sweep_name)] | None = None
    description: StrictStr | None = None
    base: StrictStr
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] = 0
    repeat: Annotated[StrictInt, Field(ge=1, le=MAX_REPEAT)] = 1
    grid: dict[StrictStr, Any] = {}
    sample: Sample | None = None
    report: ReportSpec = ReportSpec()


_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): SweepFile, ("sample",): Sample, ("report",): ReportSpec,
}  # fmt: skip


def _sweep_message(err: Any) -> str:
    if err["type"] == "too_short":
        return "expected at least one value, got an empty list"
    if tuple(err["loc"])[-1:] == ("[key]",):
        return f"a key path is a string, got {_show(err.get('input'))}"
    if err["type"] == "extra_forbidden":
        loc = tuple(err["loc"])
        key = loc[-1]
        parent = tuple(c for c in loc[:-1] if isinstance(c, str))
        model = SampleParam if parent[:2] == ("sample", "params") else _MODELS.get(parent)
        if model is not None:
            valid = list(model.model_fields)
            return f"unknown key {_show(key)}{_suggest(key, valid)}; valid keys: {', '.join(valid)}"
    return _message(err)


# ----------------------------------------------------------------------- reading ----
def _expanded_too_large(text: str, cap: int) -> bool:
    """Whether the YAML has more than ``cap`` values after alias expansion, measured on the
    composed node graph (each node once: an alias bomb costs microseconds)."""
    from ruamel.yaml import YAML

    try:
        root = YAML(typ="rt").compose(text)
    except Exception:  # noqa: BLE001 - parse_yaml reports syntax errors with their position
        return False
    if root is None:
        return False
    size = _expanded_size(root, cap)
    return isinstance(size, int) and size > cap


def _parse(path: Path, what: str = "sweep", keys: str = "base, grid") -> tuple[Any, _Positions]:
    """A sweep file's YAML with positions under the sweep caps; ``what``/``keys`` name the kind
    of file in messages (a hazard space file is read the same way: gicsim.hazards.space)."""
    where = str(path)
    try:
        data = read_input_file(path, MAX_SWEEP_BYTES, what, "MAX_SWEEP_BYTES")
    except InputFileError as e:
        raise SweepError([f"{where}: {e.reason}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SweepError([f"{where}:{line}:{col}: <file>: not valid UTF-8 "
                          f"(byte 0x{data[e.start]:02x})"]) from None  # fmt: skip
    if _expanded_too_large(text, MAX_SWEEP_NODES):  # before anything expands
        raise SweepError([f"{where}:1:1: <yaml>: more than {MAX_SWEEP_NODES:,} values after alias "
                          "expansion (MAX_SWEEP_NODES; aliases expanding?)"])  # fmt: skip
    try:
        doc = parse_yaml(text, where)
    except ScenarioError as e:
        raise SweepError(e.problems) from None
    if doc.problems:
        located = []
        for path_, msg, *at in doc.problems:
            if at:
                line, col = at
                located.append((line, col, f"{where}:{line}:{col}: {_format_path(tuple(path_))}: {msg}"))
            else:
                located.append(_at(where, doc.pos, tuple(path_), msg))
        raise SweepError(_sorted_unique(located))
    if doc.raw is None:
        raise SweepError([f"{where}:1:1: <root>: empty {what} file (expected a mapping with keys "
                          f"such as {keys})"])  # fmt: skip
    return doc.raw, doc.pos


def _at(where: str, pos: _Positions, path: tuple[Any, ...], msg: str, at_key: bool = False,
        shown: tuple[Any, ...] | None = None) -> tuple[int, int, str]:  # fmt: skip
    line, col = _position(tuple(path), True, at_key, pos)
    return line, col, f"{where}:{line}:{col}: {_format_path(shown if shown is not None else path)}: {msg}"


# ------------------------------------------------------------------ key paths -------
def set_path(d: dict[str, Any], path: str, value: Any) -> tuple[Any, ...]:
    """Set ``a.b.0.c`` in a resolved scenario dict; ``migration.x`` means the first
    migration when ``migration`` is a list. Returns the path as set (list indices filled
    in); raises KeyPathError when the path does not lead anywhere in the scenario schema
    or the base scenario."""
    if not isinstance(path, str) or not path or any(p == "" for p in path.split(".")):
        raise KeyPathError("a key path is KEY[.KEY|.INDEX]... (e.g. migration.source.on_ebusy)")
    parts = path.split(".")
    if parts[0] == "name":
        raise KeyPathError("the run names are set by the sweep (<base name>-NNNN)")
    node: Any = d
    loc: list[Any] = []
    i = 0
    while True:
        p = parts[i]
        last = i == len(parts) - 1
        here = _format_path(tuple(loc))
        if isinstance(node, list):
            if p.isascii() and p.isdigit():
                idx = int(p)
                if idx >= len(node):
                    raise KeyPathError(f"index {idx} out of range: {here} has {len(node)} "
                                       "entries in the base scenario")  # fmt: skip
                loc.append(idx)
                if last:
                    node[idx] = value
                    return tuple(loc)
                node = node[idx]
                i += 1
                continue
            if not node:
                raise KeyPathError(f"{here} is empty in the base scenario")
            loc.append(0)  # migration.source... = the first migration
            node = node[0]
            continue
        if isinstance(node, dict):
            if p not in node:
                model = _model_at(tuple(loc))
                if model is not None:
                    valid = _valid_keys(model)
                    if p not in valid:
                        raise KeyPathError(f"unknown key {p!r} in {here}{_suggest(p, valid)}; "
                                           f"valid keys: {', '.join(valid)}")  # fmt: skip
                if not last:
                    if _model_at(tuple(loc) + (p,)) is None:
                        raise KeyPathError(f"{_format_path(tuple(loc) + (p,))} is not set in the "
                                           "base scenario; override it as a whole")  # fmt: skip
                    node[p] = {}
            loc.append(p)
            if last:
                node[p] = value
                return tuple(loc)
            node = node[p]
            i += 1
            continue
        raise KeyPathError(f"{here} is {_show(node)} in the base scenario; it has no key {p!r}")


def scenario_key(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _sample_value(spec: SampleParam, rng: random.Random) -> Any:
    if spec.uniform is not None:
        return round(rng.uniform(float(spec.uniform[0]), float(spec.uniform[1])), 3)
    if spec.int_uniform is not None:
        return rng.randint(int(spec.int_uniform[0]), int(spec.int_uniform[1]))
    return rng.choice(list(spec.choice or ()))


# ----------------------------------------------------------------------- loading ----
def load_sweep(path: str | Path) -> Sweep:
    """Read, validate and expand a sweep file; raises SweepError (or, for the base
    scenario file, its problems) with one located line per problem."""
    path = Path(path)
    where = str(path)
    raw, pos = _parse(path)
    if not isinstance(raw, dict):
        line, col = pos.value.get((), (1, 1))
        raise SweepError([f"{where}:{line}:{col}: <root>: a sweep file is a mapping "
                          f"(keys: {', '.join(SweepFile.model_fields)}), got {_show(raw)}"])  # fmt: skip
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as e:
        raise SweepError(_model_problems(e, raw, pos, where)) from None

    base = _load_base(path, spec, pos)
    located: list[tuple[int, int, str]] = []

    # overrides: key paths first (against the base scenario and the schema)
    grid_vals: list[tuple[str, list[Any], list[tuple[Any, ...]]]] = []
    for k, v in spec.grid.items():
        kp = ("grid", k)
        if not _check_path(base, k, where, pos, kp, located):
            continue
        if k == "seed" and not isinstance(v, list):
            try:
                seeds = parse_range(v, lo=0, hi=MAX_SEED, what="seed")
            except RangeError as e:
                located.append(_at(where, pos, kp, str(e)))
                continue
            grid_vals.append((k, list(seeds), [kp] * len(seeds)))
        elif not isinstance(v, list) or not v:
            located.append(_at(where, pos, kp, "a non-empty list of values to try" + (
                " (or 'A-B' for seeds)" if k == "seed" else "") + f", got {'an empty list' if v == [] else _show(v)}"))  # fmt: skip
        else:
            grid_vals.append((k, v, [kp + (j,) for j in range(len(v))]))
    params = spec.sample.params if spec.sample else {}
    for k in params:
        _check_path(base, k, where, pos, ("sample", "params", k), located)
    if located:
        raise SweepError(_sorted_unique(located))

    n_runs = math.prod(len(v) for _, v, _ in grid_vals) * (spec.sample.n if spec.sample else 1) * spec.repeat
    if n_runs > MAX_RUNS:
        line, col = pos.value.get((), (1, 1))
        raise SweepError([f"{where}:{line}:{col}: <root>: {n_runs} runs (grid x sample.n x repeat); "
                          f"the cap is {MAX_RUNS} (MAX_RUNS): split the sweep"])  # fmt: skip

    # points: (overrides, where each value came from in the sweep file)
    points: list[tuple[dict[str, Any], dict[str, tuple[Any, ...]]]] = []
    keys = [k for k, _, _ in grid_vals]
    index_lists = [range(len(v)) for _, v, _ in grid_vals]
    for combo in itertools.product(*index_lists) if keys else [()]:
        points.append((
            {k: grid_vals[n][1][j] for n, (k, j) in enumerate(zip(keys, combo, strict=True))},
            {k: grid_vals[n][2][j] for n, (k, j) in enumerate(zip(keys, combo, strict=True))},
        ))  # fmt: skip
    if spec.sample:
        rng = random.Random(spec.seed)
        out = []
        for p, src in points:
            for _ in range(spec.sample.n):
                q, qs = dict(p), dict(src)
                for k, ps in params.items():
                    q[k] = _sample_value(ps, rng)
                    qs[k] = ("sample", "params", k)
                out.append((q, qs))
        points = out
    points = [(dict(p), src) for p, src in points for _ in range(spec.repeat)]

    import numpy as np

    children = np.random.SeedSequence(spec.seed).spawn(len(points))
    runs: list[Run] = []
    seen: dict[str, list[int]] = {}  # problem line -> the runs it is found in
    combos: dict[str, dict[str, Any]] = {}  # problem line -> the overrides of its first run
    for i, (p, src) in enumerate(points):
        d = copy.deepcopy(base)
        if "seed" not in p:
            d["seed"] = int(children[i].generate_state(1)[0] % (2**31))
        run_pos = _Positions()
        run_pos.value[()] = _UNPLACED  # a problem no single override caused: see below
        try:
            for k, v in p.items():
                at = set_path(d, k, copy.deepcopy(v))
                _copy_positions(pos, src[k], run_pos, at)
        except KeyPathError as e:  # a path made invalid by another override
            line, col, s = _at(where, pos, src[k], f"{k}: {e}")
            seen.setdefault(s, []).append(i)
            continue
        d["name"] = f"{base['name'][:90]}-{i:04d}"  # within the name cap (MAX_NAME_LEN, 100)
        unplaced = f"{where}:{_UNPLACED[0]}:{_UNPLACED[1]}: "
        line, col = _root_position(pos, src)
        try:
            sc = _validate(d, run_pos, where)
            d = resolved_dict(sc)
        except ScenarioError as e:
            for s in e.problems:
                if s.startswith(unplaced):  # caused by the overrides together: name them
                    s = f"{where}:{line}:{col}: " + s[len(unplaced):]
                    combos.setdefault(s, p)
                seen.setdefault(s, []).append(i)
            continue
        except (ValueError, OverflowError, TypeError) as e:
            s = f"{where}:{line}:{col}: <run>: cannot resolve the scenario: {printable(str(e), 200)}"
            combos.setdefault(s, p)
            seen.setdefault(s, []).append(i)
            continue
        key_src = {k: v for k, v in d.items() if k != "name"}
        runs.append(Run(i, p, d, scenario_key(key_src)))
    if seen:
        lines = []
        for s, r in seen.items():
            with_ = f" with {_shown_overrides(combos[s])}" if s in combos else ""
            more = f"; and {len(r) - 1} more run{'s' if len(r) > 2 else ''}" if len(r) > 1 else ""
            lines.append(f"{s} (in run {r[0]}{with_}{more})")
        if len(lines) > MAX_PROBLEMS:
            lines = lines[:MAX_PROBLEMS] + [f"{where}:0:0: <runs>: and {len(lines) - MAX_PROBLEMS} more problems"]
        raise SweepError(lines)

    report = spec.report.model_dump(exclude_none=True)
    _check_report(report, keys + list(params), where, pos)
    name = spec.name or (path.stem if valid_name(path.stem) else "sweep")
    return Sweep(name, path, runs, report)


def _model_problems(e: ValidationError, raw: Any, pos: _Positions, where: str) -> list[str]:
    located = []
    for err in e.errors():
        loc = tuple(err["loc"])
        bad_key = loc[-1:] == ("[key]",)
        if bad_key:  # a mapping key of the wrong type: placed at the key
            loc = loc[:-2] + (err.get("input"),)
        path, exists = _locate(loc, raw)
        at_key = bad_key or err["type"] == "extra_forbidden" or (
            err.get("input") is None and err["type"] != "missing")  # fmt: skip
        if err["type"] == "missing":
            path, exists, at_key = path[:-1], True, True
            line, col = _position(path, exists, at_key, pos)
            located.append((line, col, f"{where}:{line}:{col}: {_format_path(tuple(loc))}: "
                                       "missing required key" + (" (the base scenario file)"
                                                                 if loc == ("base",) else "")))  # fmt: skip
            continue
        line, col = _position(path, exists, at_key, pos)
        located.append((line, col, f"{where}:{line}:{col}: {_format_path(path)}: {_sweep_message(err)}"))
    return _sorted_unique(located)


def _load_base(path: Path, spec: SweepFile, pos: _Positions) -> dict[str, Any]:
    base_path = path.parent / spec.base
    try:
        return resolved_dict(load_scenario(base_path))
    except ScenarioError as e:
        line, col = pos.value.get(("base",), (0, 0))
        raise SweepError([f"{path}:{line}:{col}: base: the base scenario {printable(str(base_path))} "
                          f"is invalid ({len(e.problems)} problem{'s' if len(e.problems) > 1 else ''} below)",
                          *e.problems]) from None  # fmt: skip


def _check_path(base: dict[str, Any], key: str, where: str, pos: _Positions,
                at: tuple[Any, ...], located: list[tuple[int, int, str]]) -> bool:  # fmt: skip
    try:
        set_path(copy.deepcopy(base), key, None)
    except KeyPathError as e:
        located.append(_at(where, pos, at, str(e), at_key=True))
        return False
    return True


_UNPLACED = (999_999_999, 0)


def _shown_overrides(p: dict[str, Any]) -> str:
    s = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in p.items())
    return printable(s, 200) if s else "no overrides"


def _root_position(pos: _Positions, src: dict[str, tuple[Any, ...]]) -> tuple[int, int]:
    for top in ("grid", "sample"):
        if any(s[0] == top for s in src.values()):
            return pos.key.get((top,)) or pos.value.get((top,), (1, 1))
    return pos.key.get(("base",)) or pos.value.get((), (1, 1))


def _copy_positions(pos: _Positions, src: tuple[Any, ...], out: _Positions, at: tuple[Any, ...]) -> None:
    """Positions of a sweep value (and everything inside it) -> the run's scenario path."""
    n = len(src)
    spot = pos.value.get(src) or pos.key.get(src)
    if spot:
        out.key[at] = out.value[at] = spot
    for table, dest in ((pos.key, out.key), (pos.value, out.value)):
        for p, lc in table.items():
            if len(p) > n and p[:n] == src:
                dest[at + p[n:]] = lc


def _check_report(report: dict[str, str], override_keys: list[str], where: str, pos: _Positions) -> None:
    columns = list(dict.fromkeys(["run", "seed", *override_keys, *METRICS]))
    problems = []
    for k, v in report.items():
        valid = METRICS if k == "y" else columns
        if v not in valid:
            problems.append(_at(where, pos, ("report", k),
                                f"{v!r} is not a column{_suggest(v, valid)}; "
                                f"valid: {', '.join(valid)}"))  # fmt: skip
    if problems:
        raise SweepError(_sorted_unique(problems))
