"""The one conversion of YAML numbers: finite, in range, and times to int64 nanoseconds.

Every numeric scenario field and every timing override goes through ``number`` (a real,
finite number, not a bool) and times through ``to_ns`` (exact: no float overflow, no
``inf``). ``to_ns`` returns the value ``from_ns`` writes back for it, so a resolved scenario
(``resolved_dict``) loads back to the very same nanoseconds: ``to_ns(from_ns(n), f) == n``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from gicsim.scenario.constants import MAX_NS
from gicsim.scenario.errors import _show


def number(v: Any) -> int | float:
    """``v`` if it is a finite int or float (not a bool), else ValueError."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {_show(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return v


def _shown(v: int | float) -> str:
    return _show(v)


def from_ns(n: int, factor: int) -> int | float:
    """Nanoseconds -> the YAML unit (``factor`` ns each): an int when exact, else a float."""
    return n // factor if n % factor == 0 else n / factor


def _exact_ns(v: int | float, factor: int) -> int:
    return v * factor if isinstance(v, int) else round(Fraction(v) * factor)


def to_ns(v: Any, factor: int, positive: bool = False, what: str = "") -> int:
    """A number of units of ``factor`` ns -> int ns in 0..MAX_NS (> 0 when ``positive``).

    Exact arithmetic (``Fraction``), so 1e306 is "too large", never an OverflowError; a value
    that rounds to 0 ns is "> 0" violated when ``positive``. A float whose nanoseconds are not
    exactly representable (beyond 2**53 ns) is snapped to the nanoseconds its shortest
    write-back reads as, so the resolved scenario loads back unchanged."""
    v = number(v)
    if v < 0 or (positive and v == 0):
        raise ValueError(f"must be {'> 0' if positive else '>= 0'}, got {_shown(v)}")
    if v > MAX_NS // factor + 1:
        raise ValueError(f"too large: {_shown(v)} is beyond {MAX_NS // factor} (int64 nanoseconds)")
    ns = _exact_ns(v, factor)
    for _ in range(3):  # a fixed point after one step; bounded all the same
        back = _exact_ns(from_ns(ns, factor), factor)
        if back == ns:
            break
        ns = back
    if ns > MAX_NS:
        raise ValueError(f"too large: {_shown(v)} is beyond {MAX_NS // factor} (int64 nanoseconds)")
    if positive and ns == 0:
        unit = {1: "ns", 1000: "us", 1_000_000: "ms"}.get(factor, f"x{factor} ns")
        raise ValueError(f"must be > 0 (at least 1 ns = {1 / factor:g} {unit}), got {_shown(v)}")
    return ns
