"""pydantic errors -> ``FILE:LINE:COL: key.path: message`` lines."""

import types
import typing
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from gicsim.scenario.constants import GUEST_STEPS
from gicsim.scenario.errors import _show
from gicsim.scenario.fields import _suggest
from gicsim.scenario.schema import Action, BootStep, Scenario, TimingSpec
from gicsim.scenario.yamlpos import COMPLEX_KEY, _Positions

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


def type_message(err: Any, mapping: str = "a mapping") -> str:
    """The one-line text of a pydantic error about a value's type or bounds (shared by the
    scenario loader and the summary.json check, whose containers are called ``mapping``
    and ``object``)."""
    t, ctx, inp = err["type"], err.get("ctx") or {}, err.get("input")
    if t in ("value_error", "assertion_error"):
        return str(ctx.get("error") or err["msg"])
    if t == "missing":
        return "missing required key"
    if t in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_show(inp)}"
    if t in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_show(inp)}"
    if t == "string_type":
        return f"expected a string, got {_show(inp)}"
    if t in ("float_type", "float_parsing"):
        return f"expected a number, got {_show(inp)}"
    if t == "finite_number":
        return f"expected a finite number, got {_show(inp)}"
    if t in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected {mapping}, got {_show(inp)}"
    if t in ("tuple_type", "list_type"):
        return f"expected a list, got {_show(inp)}"
    if t == "literal_error":
        return f"expected {ctx.get('expected')}, got {_show(inp)}"
    if t in _BOUNDS:
        op = _BOUNDS[t]
        return f"must be {op} {ctx.get(_BOUND_CTX[op])}, got {_show(inp)}"
    return str(err["msg"])


def _message(err: Any) -> str:
    t, ctx, inp = err["type"], err.get("ctx") or {}, err.get("input")
    if t == "scenario":
        return str(ctx.get("message"))
    if t == "invalid_key":
        return f"keys must be strings, got {_show(inp)}"
    if t == "extra_forbidden":
        return _unknown_key(tuple(err["loc"]))
    return type_message(err)


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


_PART_MAX = 40  # characters of a key shown in a path (the message after it says the rest)


def _path_part(c: Any) -> str:
    if isinstance(c, str) and len(c) > _PART_MAX:
        return _path_part(c[:_PART_MAX]) + "…"
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
    path = tuple(c for c in path if c is not COMPLEX_KEY)  # a list or mapping as a key
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
        if err["type"] == "string_unicode" and skip:
            continue  # a lone surrogate: the YAML pass located it already (yamlpos._not_utf8)
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

