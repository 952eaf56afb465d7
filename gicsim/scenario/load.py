"""Loading scenarios: file -> text -> YAML -> validated, frozen ``Scenario``.

Every problem is reported, one line each, as ``FILE:LINE:COL: key.path: message`` (1-based;
``0:0`` when no position is known, e.g. a dict given from Python). Paths that are not a key
use ``<file>`` (cannot decode the file), ``<yaml>`` (YAML syntax) and ``<root>`` (the
document as a whole). A file that cannot be read at all (missing, a directory, not a regular
file, over the size cap) is ``FILE: message`` (``scenarios/x.yaml: no such file``)."""

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from gicsim.scenario.errors import ScenarioError, _show, _shown
from gicsim.scenario.fields import valid_name
from gicsim.scenario.messages import _format_path, _position, _problems
from gicsim.scenario.schema import Scenario, _context
from gicsim.scenario.yamlpos import MAX_FILE_BYTES, _Positions, parse_yaml

# ----------------------------------------------------------------------------------------------
# public API


def _validate(
    raw: Any, pos: _Positions, filename: str, extra: list[tuple] | None = None
) -> Scenario:
    located = []
    for path, msg, *at in extra or []:
        line, col = at if at else _position(tuple(path), True, False, pos)
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
    ctx["default_name"] = stem if valid_name(stem) else "scenario"
    try:
        scn = Scenario.model_validate(dict(raw), context=ctx)
    except RecursionError:  # plain data from Python (a YAML file is capped at MAX_DEPTH)
        line, col = pos.value.get((), (0, 0))
        located.append((line, col, f"{filename}:{line}:{col}: <root>: nested too deeply"))
    except ValidationError as e:
        located += _problems(e, raw, pos, filename, [tuple(p[0]) for p in extra or []])
    if located:
        raise ScenarioError(_shown(located, filename))
    return scn


def load_scenario_text(text: str, filename: str = "<string>") -> Scenario:
    """Parse and validate YAML text; ``filename`` only labels the problems."""
    doc = parse_yaml(text, filename)
    if doc.raw is None and not doc.problems:
        raise ScenarioError(
            [
                f"{filename}:1:1: <root>: empty scenario (expected a mapping with keys such as name, vm, guest)"
            ]
        )
    return _validate(doc.raw, doc.pos, filename, doc.problems)


class InputFileError(Exception):
    """An input file that is refused before it is read: not regular, too large, unreadable.
    ``reason`` is the message without the file name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_input_file(path: str | Path, cap: int, what: str, cap_name: str) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes, or InputFileError.

    Never blocks and never reads more than ``cap + 1`` bytes: a FIFO, a device (/dev/zero),
    a socket or a directory is refused from ``stat`` before opening; the file is opened
    non-blocking and checked again on the open descriptor (it may have been swapped)."""
    limit = f"{what}s are regular files of at most {_size(cap)} ({cap_name})"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError("no such file") from None
    except OSError as e:
        raise InputFileError(f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(f"is a directory, not a {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"is {_kind(st.st_mode)}, not a regular file; {limit}")
    if st.st_size > cap:
        raise InputFileError(f"larger than the cap of {_size(cap)} ({cap_name}) for a {what} file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputFileError(f"cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"is {_kind(st.st_mode)}, not a regular file; {limit}")
        chunks, n = [], 0
        while n <= cap:
            b = os.read(fd, min(1 << 20, cap + 1 - n))
            if not b:
                break
            chunks.append(b)
            n += len(b)
    except OSError as e:
        raise InputFileError(f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if n > cap:  # grew since stat
        raise InputFileError(f"larger than the cap of {_size(cap)} ({cap_name}) for a {what} file")
    return b"".join(chunks)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate a scenario file."""
    filename = str(path)
    try:
        data = read_input_file(path, MAX_FILE_BYTES, "scenario", "MAX_FILE_BYTES")
    except InputFileError as e:
        raise ScenarioError([f"{filename}: {e.reason}"]) from None  # no line: the file itself
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

