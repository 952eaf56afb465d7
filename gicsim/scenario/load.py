"""Loading scenarios: file -> text -> YAML -> validated, frozen ``Scenario``.

Every problem is reported, one line each, as ``FILE:LINE:COL: key.path: message`` (1-based;
``0:0`` when no position is known, e.g. a dict given from Python). Paths that are not a key
use ``<file>`` (cannot read or decode the file), ``<yaml>`` (YAML syntax) and ``<root>`` (the
document as a whole)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from gicsim.scenario.errors import ScenarioError, _show
from gicsim.scenario.messages import _format_path, _position, _problems, _sorted_unique
from gicsim.scenario.schema import _NAME_RE, Scenario, _context
from gicsim.scenario.yamlpos import MAX_FILE_BYTES, _plain, _Positions, _TooLarge, _yaml_problem

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

