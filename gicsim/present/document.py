"""A report as a list of blocks (headings, paragraphs, bullets, tables, figures, HTML
sections), rendered to Markdown or to one self-contained HTML page (plots inlined as SVG)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd

from gicsim.present.figures import Figure
from gicsim.present.output import terminal_safe


@attrs.define
class Doc:
    """A report as blocks, rendered to Markdown or HTML."""

    title: str
    blocks: list[tuple[str, Any]] = attrs.Factory(list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, df: pd.DataFrame, right: Sequence[str] = ()) -> None:
        self.blocks.append(("table", (df, tuple(right))))

    def fig(self, f: Figure) -> None:
        self.blocks.append(("fig", f))

    def open(self, tag: str, attrs: str = "", summary: str | None = None) -> None:
        """Start an HTML element around the next blocks; Markdown shows only ``summary`` (as a
        level-2 heading; HTML as the ``<summary>`` of a ``details``)."""
        self.blocks.append(("open", (tag, attrs, summary)))

    def close(self, tag: str) -> None:
        self.blocks.append(("close", tag))

    @property
    def figures(self) -> list[Figure]:
        return [b for k, b in self.blocks if k == "fig"]

    # -- Markdown -------------------------------------------------------------------------
    def markdown(self, figures: bool = True) -> str:
        out = [f"# {self.title}", ""]
        for kind, b in self.blocks:
            if kind == "h":
                out += ["#" * b[0] + " " + b[1], ""]
            elif kind == "p":
                out += [b, ""]
            elif kind == "ul":
                out += [f"- {x}" for x in b] + [""]
            elif kind == "table":
                out += _md_table(*b) + [""]
            elif kind == "open" and b[2]:
                out += [f"## {b[2]}", ""]
            elif kind == "fig" and figures:
                alt = b.caption.split(". ")[0].split(": ")[0].rstrip(".")
                out += [f"![{alt}]({b.name}.png)", "", f"*{b.caption}* ([SVG]({b.name}.svg))", ""]
        return _safe("\n".join(out).rstrip() + "\n")

    # -- HTML -----------------------------------------------------------------------------
    def html(self) -> str:
        body = []
        for kind, b in self.blocks:
            if kind == "h":
                body.append(f"<h{b[0] + 1}>{_inline(b[1])}</h{b[0] + 1}>")
            elif kind == "p":
                body.append(f"<p>{_inline(b)}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b) + "</ul>")
            elif kind == "table":
                body.append(_html_table(*b))
            elif kind == "open":
                tag, at, summary = b
                body.append(f"<{tag}{' ' + at if at else ''}>" + (f"<summary>{_inline(summary)}</summary>" if summary else ""))
            elif kind == "close":
                body.append(f"</{b}>")
            elif kind == "fig":
                body.append(f'<figure id="fig-{html.escape(b.name)}">{_svg_inline(b.svg)}'
                            f"<figcaption>{_inline(b.caption)}</figcaption></figure>")  # fmt: skip
        return _safe(HTML_PAGE.format(title=html.escape(self.title), body="\n".join(body)))


def _safe(text: str) -> str:
    """Text a terminal can show as it is (``cat report.md``): control characters from inputs
    such as a scenario's ``description`` escaped (``\\x1b``), never interpreted. Lines that
    are printable already (nearly all) are kept without a per-character pass."""
    return "\n".join(ln if ln.isprintable() else terminal_safe(ln) for ln in text.split("\n"))


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
  margin: 2em auto; padding: 0 1em; color: #1d2330; line-height: 1.45; }}
h1 {{ border-bottom: 2px solid #3465a4; padding-bottom: .2em; }}
h2 {{ margin-top: 1.8em; border-bottom: 1px solid #ccd; }}
table {{ border-collapse: collapse; margin: .8em 0; font-size: 90%; }}
th, td {{ border: 1px solid #ccd; padding: .25em .6em; vertical-align: top; }}
th {{ background: #eef1f8; }}
td.r {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr:nth-child(even) td {{ background: #f8f9fc; }}
code {{ background: #f0f0f4; padding: 0 .25em; border-radius: 3px; }}
figure {{ margin: 1em 0; }} figure svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: 90%; color: #444; }}
#outcome {{ border-left: 6px solid #4e9a06; background: #f3f8ef; padding: .1em 1em .4em; margin: 1em 0; }}
#outcome.bad {{ border-left-color: #cc0000; background: #fdf1f1; }}
#outcome h2 {{ margin-top: .4em; border: 0; }}
details {{ margin: 1.8em 0; }} details > summary {{ font-size: 1.3em; font-weight: bold; cursor: pointer; }}
</style></head>
<body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _inline(text: str) -> str:
    """Markdown inline subset (``code``, **bold**, *em*) to HTML, escaping everything else."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            s = html.escape(part)
            s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
            s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
            out.append(s)
    return "".join(out)


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return str(v)


def _md_table(df: pd.DataFrame, right: tuple[str, ...]) -> list[str]:
    cols = [str(c) for c in df.columns]
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---:" if c in right else "---" for c in cols) + "|"
    rows = ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in r) + " |" for r in df.itertuples(index=False)]
    return [head, sep, *rows]


def _html_table(df: pd.DataFrame, right: tuple[str, ...]) -> str:
    cols = [str(c) for c in df.columns]
    th = "".join(f"<th>{_inline(c)}</th>" for c in cols)
    rows = []
    for r in df.itertuples(index=False):
        tds = "".join(
            f'<td class="r">{_inline(_cell(v))}</td>' if c in right else f"<td>{_inline(_cell(v))}</td>"
            for c, v in zip(cols, r, strict=True)
        )
        rows.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _svg_inline(svg: str) -> str:
    """The <svg> element alone (no XML prolog or DOCTYPE, no RDF metadata block)."""
    i = svg.find("<svg")
    svg = svg[i:] if i >= 0 else svg
    return re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
