"""Every tutorial page (docs/01-…06-) ends with an exercise: a ```python block under
``## Exercise`` with a line ``CHANGE = False``; setting it True applies the change the page
describes. The block leaves its result in ``answer``; the page's answer (the ```text block after
``<!-- exercise answer -->``, a JSON object) is what the changed run must give — and what the
unchanged run must not give, so the exercise has something to predict. tests/test_docs.py
runs the block as written (CHANGE = False) with the rest of the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(p for p in (ROOT / "docs").glob("0[1-6]-*.md"))
EXERCISE = re.compile(r"^## Exercise\n(.*?)^```python\n(.*?)^```$", re.S | re.M)
ANSWER = re.compile(r"^<!-- exercise answer -->\n```text\n(.*?)^```$", re.S | re.M)
SWITCH = re.compile(r"^CHANGE = False$", re.M)


def exercise(page: Path) -> tuple[str, dict]:
    text = page.read_text()
    m, a = EXERCISE.search(text), ANSWER.search(text)
    assert m, f"{page.name}: no ## Exercise with a python block"
    assert a, f"{page.name}: the exercise has no <!-- exercise answer --> block"
    assert len(SWITCH.findall(m[2])) == 1, f"{page.name}: the exercise needs exactly one `CHANGE = False` line"
    return m[2], json.loads(a[1])


def run(page: Path, code: str, change: bool, tmp: Path) -> dict:
    ns: dict[str, object] = {"__name__": f"docs.{page.stem}.exercise", "TMP": tmp}
    src = SWITCH.sub(f"CHANGE = {change}", code)
    exec(compile(src, f"{page.relative_to(ROOT)}:exercise", "exec"), ns)  # noqa: S102
    ans = ns.get("answer")
    assert isinstance(ans, dict), f"{page.name}: the exercise leaves no `answer` dict"
    return json.loads(json.dumps(ans))  # the page's answer is JSON: compare like with like


def test_every_tutorial_page_has_an_exercise():
    assert [p.name[:2] for p in PAGES] == ["01", "02", "03", "04", "05", "06"]
    for p in PAGES:
        exercise(p)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_exercise_answer_holds(page, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    code, want = exercise(page)
    changed = run(page, code, True, tmp_path / "changed")
    assert changed == want, f"{page.name}: with the change the run gives {changed}, the page says {want}"
    unchanged = run(page, code, False, tmp_path / "unchanged")
    assert unchanged != want, f"{page.name}: the change makes no difference to the answer ({unchanged})"
