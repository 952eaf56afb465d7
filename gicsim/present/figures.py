"""A report's figures: a small record (SVG text + PNG bytes) and the deterministic rendering
of a matplotlib figure into it. Shared by ``report`` (which lays figures out) and ``plots``
(which draws them), so neither imports the other."""

from __future__ import annotations

import io
from typing import Any

import attrs


@attrs.define
class Figure:
    name: str  # file stem
    caption: str
    svg: str = ""
    png: bytes = b""


def figure_bytes(fig: Any) -> tuple[str, bytes]:
    """(SVG text, PNG bytes) of a matplotlib Figure, deterministic across runs."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "gicsim", "svg.fonttype": "none"}):
        sbuf = io.StringIO()
        fig.savefig(sbuf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
        pbuf = io.BytesIO()
        fig.savefig(pbuf, format="png", dpi=110, metadata={"Software": None})
    return sbuf.getvalue(), pbuf.getvalue()


# ===================================================================== run directories ====
