"""``ScenarioError`` and how validators raise located problems."""

import typing
from collections.abc import Mapping
from typing import Any

from pydantic import (
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

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


MAX_PROBLEMS = 20  # problem lines shown for one file; the rest are counted on one more line


def _shown(located: list[tuple[int, int, str]], filename: str) -> list[str]:
    """The problems in file order, each once: the first ``MAX_PROBLEMS``, then one line
    counting the rest, placed at the first one left out."""
    seen: set[str] = set()
    ordered = []
    for line, col, s in sorted(located, key=lambda x: (x[0], x[1])):
        if s not in seen:
            seen.add(s)
            ordered.append((line, col, s))
    if len(ordered) <= MAX_PROBLEMS:
        return [s for _, _, s in ordered]
    line, col, _ = ordered[MAX_PROBLEMS]
    rest = len(ordered) - MAX_PROBLEMS
    return [s for _, _, s in ordered[:MAX_PROBLEMS]] + [
        f"{filename}:{line}:{col}: <root>: … and {rest:,} more problem{'s' if rest > 1 else ''} "
        "(from here on, not shown)"
    ]


_SHOW_MAX = 40  # characters of a value echoed in a message (never a whole file's worth)


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        if len(v) > _SHOW_MAX:
            return f"{v[:_SHOW_MAX]!r}... ({len(v):,} characters)"
        return repr(v)
    if isinstance(v, int) and abs(v) >= 10**_SHOW_MAX:
        try:
            digits = f"{len(str(abs(v))):,}"
        except ValueError:  # str() refuses more than 4,300 digits
            digits = f"about {int(abs(v).bit_length() * 0.30103) + 1:,}"
        return f"{'-' if v < 0 else ''}an integer of {digits} digits"
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


