"""The tutorial's code blocks are tests: every ```python block of docs/*.md runs, in order,
one namespace per page, from the repository root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m[1]) for m in BLOCK.finditer(text)]


def test_the_tutorial_has_pages_with_code():
    names = [p.name for p in PAGES]
    assert len(names) >= 6 and "README.md" in names
    assert sum(len(blocks(p)) for p in PAGES) >= 20


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_page_code_runs(page, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    ns: dict[str, object] = {"__name__": f"docs.{page.stem}", "TMP": tmp_path}
    for line, code in blocks(page):
        try:
            exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), ns)  # noqa: S102
        except Exception as e:
            raise AssertionError(f"{page.name}, block at line {line} failed: {type(e).__name__}: {e}") from e
