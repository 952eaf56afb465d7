"""The hazard report: a ``gicsim hazards`` result (docs/hazards-json.md) as Markdown and one
self-contained HTML page, written beside ``hazards.json``.

Built as the run report is (:class:`gicsim.present.document.Doc`, figures inlined as SVG):
first screen (``<section id="outcome">``) — the runs, how many were clean, the derived
precedence constraints each with the kernel mechanism behind it (``explain``'s cause line
for a run that breaks it) and the check of the set; then the precedence matrix
(:mod:`gicsim.hazards.plots`), the outcome classes, the steps left out, the other
dimensions, the comparison with the documented orders (:mod:`gicsim.hazards.compare`) and
the command that reproduces it. Only the result is read: no run is repeated here.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gicsim.hazards import compare as C
from gicsim.hazards import plots as P
from gicsim.present.document import Doc

#: the files :func:`write` writes (plots: ``precedence`` as PNG and SVG)
FILES = ("report.md", "report.html", "precedence.png", "precedence.svg")
#: every file ``gicsim hazards`` writes in OUT (beside its store ``runs/``)
HAZARD_FILES = ("hazards.json", *FILES)


def arrow(order: Sequence[str] | None) -> str:
    return "—" if not order else " → ".join(order)


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k:,} {one if k == 1 else (many or one + 's')}"


def _command(result: dict[str, Any]) -> str:
    args = ["gicsim", "hazards", str(result.get("source") or result.get("scenario") or "SCENARIO")]
    if result.get("space_file"):
        args += ["--space", str(result["space_file"])]
    return shlex.join(args)


def _kernel(result: dict[str, Any]) -> str:
    k = result.get("kernel") or {}
    words = [f"{key} {k[key]}" for key in ("backend", "release", "tree") if k.get(key) is not None]
    return ", ".join(words) or "the scenario's"


def counts(result: dict[str, Any]) -> dict[str, int]:
    """Runs, clean runs, hazardous runs, classes (hazardous ones) and clean orders."""
    cl = result.get("classes") or []
    clean = sum(c["count"] for c in cl if c.get("clean"))
    return {
        "runs": int(result.get("runs") or 0),
        "clean_runs": clean,
        "hazard_runs": sum(c["count"] for c in cl if not c.get("clean")),
        "hazard_classes": sum(1 for c in cl if not c.get("clean")),
        "clean_orders": len(result.get("clean_orders") or []),
    }


def headline(result: dict[str, Any]) -> str:
    k = counts(result)
    n = len(result["steps"])
    pct = f" ({100 * k['clean_runs'] / k['runs']:.1f} %)" if k["runs"] else ""
    return (f"**{_n(k['runs'], 'run')}**: **{k['clean_runs']:,} clean**{pct}, "
            f"{k['hazard_runs']:,} hazardous in {_n(k['hazard_classes'], 'class', 'classes')}; "
            f"{k['clean_orders']:,} of the {math.factorial(n):,} orders of the {n} destination steps are clean. "
            f"Derived: **{_n(len(result.get('constraints') or []), 'precedence constraint')}**.")  # fmt: skip


def partial(result: dict[str, Any]) -> str | None:
    """A warning when the space listed its orders: precedences between steps it never
    reordered are assumptions of the space, not findings."""
    explored = C.explored_orders(result)
    if explored is None:
        return None
    n = len(result["steps"])
    full = {o for o in explored if len(o) == n}
    fixed = [f"`{a}` before `{b}`" for a, b in result.get("constraints") or []
             if not C.reversed_explored(a, b, explored)]  # fmt: skip
    text = (f"Only {_n(len(full), 'order')} of the {math.factorial(n):,} were run (the space lists them): a "
            "constraint between steps the space never puts the other way round is its assumption, not a finding")
    return text + (" — " + ", ".join(fixed) + "." if fixed else ".")


def constraint_lines(result: dict[str, Any]) -> list[str]:
    """One line per derived constraint: the rule, what breaking it gives, and why."""
    lt = P.letters(result)
    mech = {(m["before"], m["after"]): m for m in result.get("mechanisms") or []}
    out = []
    for a, b in result.get("constraints") or []:
        m = mech.get((a, b)) or {}
        line = f"`{a}` before `{b}`"
        if m.get("class"):
            line += f" — otherwise **{lt.get(m['class'], '?')}**: {m['class']}"
        if m.get("example_order"):
            line += f" (e.g. {arrow(m['example_order'])})"
        line += ". " + (f"Why: {m['cause']}" if m.get("cause") else "Why: no explanation found for its run.")
        out.append(line)
    return out or ["No constraint: every order explored behaves the same."]


def check_line(result: dict[str, Any]) -> str:
    ch = result.get("constraint_check") or {}
    if ch.get("holds"):
        return ("Check: **holds** — every order that satisfies the set is clean, and every order that "
                "violates one of its members is not.")  # fmt: skip
    ex = "; ".join(arrow(o) for o in (ch.get("examples") or [])[:3])
    cv, hs = int(ch.get("clean_violating") or 0), int(ch.get("hazard_satisfying") or 0)
    return (f"Check: **does not hold** — {_n(cv, 'clean order')} {'violates' if cv == 1 else 'violate'} the set, "
            f"{_n(hs, 'hazardous order')} {'satisfies' if hs == 1 else 'satisfy'} it"
            + (f" (e.g. {ex})" if ex else "") + ": the clean orders are not the orders of one set of precedences.")  # fmt: skip


def first_screen(doc: Doc, result: dict[str, Any]) -> None:
    ok = bool((result.get("constraint_check") or {}).get("holds"))
    doc.open("section", f'id="outcome" class="{"ok" if ok else "bad"}"')
    doc.h(2, "Outcome")
    doc.p(headline(result))
    part = partial(result)
    if part:
        doc.p(part)
    at = result.get("rules_at") or {}
    if at:
        doc.p("The rules below are derived with the other dimensions at "
              + ", ".join(f"`{k}` = {v}" for k, v in at.items()) + " (the classes count every run).")  # fmt: skip
    doc.p("The derived ordering rules (the fewest precedences that separate the clean orders from the others):")
    doc.bullets(constraint_lines(result))
    doc.p(check_line(result))
    doc.close("section")


def class_table(result: dict[str, Any]) -> pd.DataFrame:
    lt = P.letters(result)
    rows = [{"": lt.get(c["label"], "✓" if c.get("clean") else ""), "class": c["label"],
             "clean": "yes" if c.get("clean") else "no", "runs": f"{c['count']:,}",
             "example order": arrow(c.get("example_order"))
             + (f" ({', '.join(f'{k}={v}' for k, v in c['example_overrides'].items())})" if c.get("example_overrides") else ""),
             "cause": c.get("cause") or "—"} for c in result.get("classes") or []]  # fmt: skip
    return pd.DataFrame(rows, columns=["", "class", "clean", "runs", "example order", "cause"])


def comparison(doc: Doc, result: dict[str, Any]) -> dict[str, Any]:
    cmp_ = C.compare(result)
    lt = P.letters(result)
    doc.h(2, "Against the documented orders")
    doc.p(f"The kernel document ({C.KERNEL.source}) states {_n(len(cmp_['documented']), 'precedence')} "
          f"among these steps: **{cmp_['necessary']} necessary** here (no clean order has them the other "
          f"way round), **{cmp_['not_needed']} not needed** by this kernel on this scenario "
          f"(a clean order breaks them; it is shown)"
          + (f", {cmp_['not_explored']} not explored (no order breaking them ran)" if cmp_["not_explored"] else "")
          + ".")  # fmt: skip
    rows = []
    for d in cmp_["documented"]:
        cls = d["class"]
        broken = f"{lt.get(cls, '?')}: {cls}" if cls else ("clean" if d["status"] == "not needed" else "—")
        rows.append({"documented": f"`{d['before']}` before `{d['after']}`", "here": d["status"],
                     "breaking it (one transposition)": broken,
                     "a clean order that breaks it": arrow(d["witness"])})  # fmt: skip
    doc.table(pd.DataFrame(rows, columns=["documented", "here", "breaking it (one transposition)",
                                          "a clean order that breaks it"]))  # fmt: skip
    und = cmp_["undocumented"]
    doc.p("Derived constraints the document does not state: "
          + (", ".join(f"`{a}` before `{b}`" for a, b in und) if und else "none") + ".")  # fmt: skip
    doc.p("The orders the document and two VMMs use, on this scenario's steps (`gits_regs` stands where "
          "the last register it covers is written):")  # fmt: skip
    rows = []
    for o in cmp_["orders"]:
        order = o["order"] or ["{" + ", ".join(g) + "}" if len(g) > 1 else g[0] for g in o["groups"]]
        sat = {True: "yes", False: "**no**", None: "—"}[o["satisfies"]]
        if o["violated"]:
            sat += " (breaks " + ", ".join(f"`{a}` before `{b}`" for a, b in o["violated"]) + ")"
        rows.append({"order": o["name"], "steps": arrow(order), "satisfies the derived set": sat,
                     "clean in these runs": {True: "yes", False: "**no**", None: "not run"}[o["clean"]]})  # fmt: skip
    doc.table(pd.DataFrame(rows, columns=["order", "steps", "satisfies the derived set", "clean in these runs"]))
    doc.bullets([f"{o['name']}: {o['source']}." + (" " + " ".join(n.rstrip(".") + "." for n in o["notes"]) if o["notes"] else "")
                 for o in cmp_["orders"]])  # fmt: skip
    return cmp_


def build(result: dict[str, Any], plots: bool = True) -> Doc:
    """The hazard report document (figure rendered when ``plots``)."""
    doc = Doc(f"{result.get('scenario', 'scenario')}: restore-order hazards")
    first_screen(doc, result)
    doc.h(2, "Precedence matrix")
    doc.p("Row before column? Each cell: what happened when the column's step ran before the row's step, "
          "all else as in a clean order (one transposition); a letter is the hazard class below. Framed: the "
          "derived constraints.")  # fmt: skip
    if plots:
        doc.fig(P.matrix(result, caption="Precedence matrix: cell (row, column) is the outcome of running the "
                                         "column's step before the row's; framed cells are the derived constraints."))  # fmt: skip
    doc.h(2, "Outcome classes")
    doc.p("A class is the tuple (migration status, KVM errors by step and errno, lost > 0, spurious > 0, "
          "misrouted > 0, dropped by reason > 0, state match) of a run's summary; the cause is `gicsim explain`'s "
          "cause line for the example run.")  # fmt: skip
    doc.table(class_table(result), right=("runs",))
    lo = result.get("left_out") or []
    doc.h(2, "Steps left out")
    if lo:
        doc.table(pd.DataFrame([{"step left out": f"`{x['step']}`", "class": x["class"],
                                 "clean": "yes" if x.get("clean") else "no", "cause": x.get("cause") or "—"}
                                for x in lo]))  # fmt: skip
    else:
        doc.p("Not explored (the space leaves no step out).")
    dims = result.get("dimensions") or []
    doc.h(2, "Other dimensions")
    if dims:
        doc.table(pd.DataFrame([{"dimension": d["name"], "value": str(d["value"]),
                                 "classes": "; ".join(f"{lab}: {n:,}" for lab, n in d["classes"].items())}
                                for d in dims]))  # fmt: skip
    else:
        doc.p("None: only the destination order varied.")
    comparison(doc, result)
    doc.h(2, "Reproduce")
    space = {k: (f"{len(v):,} listed" if k.endswith("_orders") and isinstance(v, list) else v)
             for k, v in (result.get("space") or {}).items()}  # fmt: skip
    doc.p(f"`{_command(result)}` (add `-j N` for N worker processes). Space: "
          + (", ".join(f"`{k}`: {v}" for k, v in space.items()) if space else "the default") + ". "
          f"Kernel: {_kernel(result)}. "
          f"{_n(int(result.get('runs') or 0), 'run')} in {float(result.get('wall_s') or 0):,.1f} s "
          f"({float(result.get('runs_per_s') or 0):,.0f} runs/s).")  # fmt: skip
    return doc


def files(result: dict[str, Any]) -> dict[str, bytes]:
    doc = build(result)
    out = {"report.md": doc.markdown().encode(), "report.html": doc.html().encode()}
    for f in doc.figures:
        out[f"{f.name}.png"] = f.png
        out[f"{f.name}.svg"] = f.svg.encode()
    return out


def write(result: dict[str, Any], outdir: Path) -> list[Path]:
    """Write report.md, report.html and the matrix plot (PNG, SVG) into ``outdir`` through the
    one writer of result directories (a hazard map's manifest; never over a user's file);
    return their paths."""
    from gicsim.present.output import write_report_dir

    out = files(result)
    write_report_dir(outdir, out, kind="hazards", fixed=HAZARD_FILES, stores=("runs",))
    return [Path(outdir) / name for name in out]
