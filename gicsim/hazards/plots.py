"""The hazard report's figure: the precedence matrix of a ``gicsim hazards`` result.

Rows are the step that should come first (``before``), columns the one after it; a cell says
what happened when the column's step ran before the row's step, all else as in a clean order
(the result's ``pairs``): the letter of the hazard class (the report's class table), clean (a
clean order has the column's step first), or blank (no such order was tested: a space that
lists its orders). A hazard cell is red when no clean order has the column's step first (a
necessary precedence) and amber when some clean order does (it depends on the other steps).
The derived constraints are framed. Drawn as the run report's figures are
(:mod:`gicsim.present.plots`: matplotlib without pyplot, deterministic SVG/PNG through
:func:`gicsim.present.figures.figure_bytes`). Every hazard cell's SVG element has the id
``hazard-<before>-<after>``, every constraint frame ``constraint-<before>-<after>``.
"""

from __future__ import annotations

import string
from typing import Any

import attrs
from matplotlib.figure import Figure as MplFigure

from gicsim.present.figures import Figure, figure_bytes

CLEAN_C = "#d9ead3"  # light green
HAZARD_C = "#f4b6b6"  # light red
MIXED_C = "#fbe3a6"  # light amber
SELF_C = "#eeeeec"
UNKNOWN_C = "#ffffff"  # drawn with a grey edge
FRAME_C = "#1d2330"


def letters(result: dict[str, Any]) -> dict[str, str]:
    """Class label -> its letter (A, B, …) in the order of the result's classes, hazardous
    classes only (a clean class has none)."""
    out: dict[str, str] = {}
    for c in result.get("classes") or []:
        if not c.get("clean") and c["label"] not in out:
            out[c["label"]] = _letter(len(out))
    return out


def _letter(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> AB, … (spreadsheet columns)."""
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = string.ascii_uppercase[r] + s
    return s


@attrs.frozen
class Cell:
    before: str
    after: str
    #: "self"; "hazard" (a transposition is hazardous, no clean order has ``after`` first);
    #: "mixed" (a transposition is hazardous, yet some clean order has ``after`` first);
    #: "clean"; "unknown" (no such order was tested)
    state: str
    letter: str  # the hazard class's letter ("" when none)
    constraint: bool


def cells(result: dict[str, Any]) -> list[list[Cell]]:
    """The matrix as data (rows = ``before``, columns = ``after``, the result's step order)."""
    steps = list(result["steps"])
    pairs = {(p["before"], p["after"]): p for p in result.get("pairs") or []}
    cons = {tuple(c) for c in result.get("constraints") or []}
    lt = letters(result)
    clean = [list(o) for o in result.get("clean_orders") or []]
    grid = []
    for a in steps:
        row = []
        for b in steps:
            p = pairs.get((a, b))
            if a == b:
                state, letter = "self", ""
            elif p is not None and p.get("hazard"):
                # never clean with b first, or clean in some orders (then it is not a rule)
                witness = any(o.index(b) < o.index(a) for o in clean if a in o and b in o)
                state, letter = "mixed" if witness else "hazard", lt.get(p.get("class") or "", "?")
            elif any(o.index(b) < o.index(a) for o in clean if a in o and b in o):
                state, letter = "clean", ""  # a clean order has b before a
            else:
                state, letter = "unknown", ""  # no order with b before a ran clean or was tested
            row.append(Cell(a, b, state, letter, (a, b) in cons))
        grid.append(row)
    return grid


def matrix(result: dict[str, Any], caption: str) -> Figure:
    """The precedence matrix figure (``precedence.svg`` / ``.png``)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    grid = cells(result)
    steps = list(result["steps"])
    n = max(1, len(steps))
    side = 0.62 * n + 2.4
    fig = MplFigure(figsize=(side + 1.2, side))
    ax = fig.subplots()
    colour = {"self": SELF_C, "clean": CLEAN_C, "hazard": HAZARD_C, "mixed": MIXED_C, "unknown": UNKNOWN_C}
    for i, row in enumerate(grid):
        for j, c in enumerate(row):
            edge = "#888a85" if c.state == "unknown" else "white"
            r = Rectangle((j, i), 1, 1, facecolor=colour[c.state], edgecolor=edge, lw=1.5 if edge == "white" else 0.6)
            if c.state in ("hazard", "mixed"):
                r.set_gid(f"hazard-{c.before}-{c.after}")
            ax.add_patch(r)
            if c.letter:
                ax.text(j + 0.5, i + 0.5, c.letter, ha="center", va="center", fontsize=9, fontweight="bold")
    for i, row in enumerate(grid):
        for j, c in enumerate(row):
            if c.constraint:
                f = Rectangle((j + 0.06, i + 0.06), 0.88, 0.88, fill=False, edgecolor=FRAME_C, lw=2.2)
                f.set_gid(f"constraint-{c.before}-{c.after}")
                ax.add_patch(f)
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)
    ax.set_aspect("equal")
    ax.set_xticks([k + 0.5 for k in range(len(steps))], steps, rotation=40, ha="right", fontsize=8)
    ax.set_yticks([k + 0.5 for k in range(len(steps))], steps, fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_xlabel("… runs before this step (column)")
    ax.set_ylabel("this step (row) …")
    handles = [
        Patch(facecolor=CLEAN_C, label="still clean"),
        Patch(facecolor=HAZARD_C, label="hazard, never clean (letter: class)"),
        Line2D([], [], ls="", marker="s", markerfacecolor="none", markeredgecolor=FRAME_C, markersize=10,
               markeredgewidth=2, label="derived constraint: row before column"),
    ]  # fmt: skip
    if any(c.state == "mixed" for row in grid for c in row):
        handles.insert(2, Patch(facecolor=MIXED_C, label="hazard here, clean in other orders"))
    if any(c.state == "unknown" for row in grid for c in row):
        handles.insert(2, Patch(facecolor=UNKNOWN_C, edgecolor="#888a85", label="not tested"))
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.5 if len(handles) <= 3 else 0.8) / side))
    fig.legend(handles=handles, loc="upper center", fontsize=8, ncols=min(3, len(handles)))
    svg, png = figure_bytes(fig)
    return Figure("precedence", caption, svg, png)
