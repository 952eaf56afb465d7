"""The contracts in docs/ match the code: every key of a real summary.json is documented in
docs/summary-json.md and every documented key occurs in a real summary; the page's example
is a real run's summary; every citation key the code and docs use resolves to an entry of
docs/bibliography.md, and every in-repo link target of the bibliography exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

import gicsim

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SC = ROOT / "scenarios"


# ------------------------------------------------------------------ summary.json ----
def _paths(obj: Any, prefix: str = "") -> set[str]:
    """Key paths of a summary in the page's notation (``a.b``, ``a[]``, ``<step>``)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = "<step>" if prefix.endswith(".phases") else k
            p = f"{prefix}.{key}" if prefix else key
            out |= {p} | _paths(v, p)
    elif isinstance(obj, list):
        for v in obj:
            out |= _paths(v, prefix + "[]")
    return out


def _documented() -> list[str]:
    text = (DOCS / "summary-json.md").read_text()
    keys = text.split("## Keys", 1)[1].split("## Example", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", keys, re.M)


def _example() -> dict[str, Any]:
    text = (DOCS / "summary-json.md").read_text().split("## Example", 1)[1]
    return json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])


@pytest.fixture(scope="module")
def summaries() -> list[dict[str, Any]]:
    """Real summaries: a migration with -EBUSY errors, an aborted one, and an expect that
    fails (so ``expect.failures[]`` has elements)."""
    d = YAML(typ="safe").load((SC / "devices-not-quiesced.yaml").read_text())
    d["expect"] = {"lost": 0, "migration": "aborted"}
    failing = gicsim.run(d).summary
    assert not failing["expect"]["passed"]
    return [gicsim.run(SC / "movi-race.yaml").summary, gicsim.run(SC / "straggler-abort.yaml").summary, failing]


def test_every_summary_key_is_documented_and_every_documented_key_occurs(summaries):
    doc = _documented()
    assert len(doc) == len(set(doc)), "a key is listed twice"
    real = set().union(*(_paths(s) for s in summaries))
    assert real - set(doc) == set(), "keys in summary.json missing from docs/summary-json.md"
    assert set(doc) - real == set(), "keys documented in docs/summary-json.md that no run writes"


def test_the_example_is_a_real_summary():
    """Regenerate with: python -c "import gicsim, json; print(json.dumps(gicsim.run(
    'scenarios/movi-race.yaml').summary, indent=2))" (paste it under docs/summary-json.md's
    Example)."""
    got = gicsim.run(SC / "movi-race.yaml").summary
    want = _example()
    got.pop("wall_s"), want.pop("wall_s")
    assert want == got


# ------------------------------------------------------------------ bibliography ----
#: a source key: [KUT-Altra], [CH-8899], [KUT-Kp/Ph], [ISCA16], [ISCA16 T.II], [NEVE17 §5]
KEY = re.compile(r"\[([A-Z][A-Za-z]+(?:\d+|(?:-[A-Za-z0-9/.]+)+))(?: T\.[IVX\d]+| §\d+)?\](?!\()")
SPEC = re.compile(r"SPEC §(\d)(?:[–-]§?(\d))?(?:/§(\d))?")
ROW = re.compile(r"(?:timing-anchors |\()row (\d+)\b")
SECTION = re.compile(r"timing-anchors §(\d+)")


def _sources() -> dict[str, str]:
    files = sorted((ROOT / "gicsim").rglob("*.py")) + sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
    return {str(f.relative_to(ROOT)): f.read_text() for f in files}


def _bib() -> str:
    return (DOCS / "bibliography.md").read_text()


def test_every_source_key_resolves_to_a_bibliography_entry():
    entries = set(re.findall(r"\*\*\[([^\]]+)\]\*\*", _bib()))
    used: dict[str, set[str]] = {}
    for name, text in _sources().items():
        if name == "docs/bibliography.md":
            continue
        for k in KEY.findall(text):
            used.setdefault(k, set()).add(name)
    assert {"KUT-Altra", "CH-8899", "ISCA16", "LPI-xa"} <= set(used)  # the pattern finds the cited keys
    missing = {k: sorted(v) for k, v in used.items() if k not in entries}
    assert not missing, f"source keys without an entry in docs/bibliography.md: {missing}"


def test_every_spec_section_cited_resolves_in_the_repository():
    bib = _bib()
    cited: set[int] = set()
    for text in _sources().values():
        for a, b, c in SPEC.findall(text):
            lo, hi = int(a), int(b or a)
            cited |= set(range(lo, hi + 1)) | ({int(c)} if c else set())
    assert cited and all(f'id="spec-{n}"' in bib for n in cited), sorted(cited)


def test_timing_rows_and_sections_cited_exist_in_docs_timing_anchors():
    anchors = (DOCS / "timing-anchors.md").read_text()
    rows = set(re.findall(r"^\| (\d+) \|", anchors.split("## 2.", 1)[0], re.M))
    sections = set(re.findall(r"^## (\d+)\.", anchors, re.M))
    timing = (ROOT / "gicsim" / "scenario" / "timing.py").read_text()
    cited_rows = set(ROW.findall(timing))
    assert cited_rows and cited_rows <= rows, sorted(cited_rows - rows)
    for name, text in _sources().items():
        assert set(ROW.findall(text)) <= rows, name
        assert set(SECTION.findall(text)) <= sections, name


def test_bibliography_links_inside_the_repository_exist():
    bib = _bib()
    ids = set(re.findall(r'id="([^"]+)"', bib))
    for target in re.findall(r"\]\(([^)]+)\)", bib):
        if target.startswith(("http://", "https://")):
            continue
        path, _, frag = target.partition("#")
        if path:
            assert (DOCS / path).resolve().exists(), target
        else:
            assert frag in ids, target
    # the research note's own key list is covered
    note_keys = re.findall(r"^- \[([^\]]+)\]", (DOCS / "timing-anchors.md").read_text().split("## 5.", 1)[1], re.M)
    entries = set(re.findall(r"\*\*\[([^\]]+)\]\*\*", bib))
    assert note_keys and set(note_keys) <= entries
