"""The tutorial is tested:

- every ```python block of docs/*.md runs, in order, one namespace per page, from the
  repository root;
- every ```text block that follows a ``<!-- output of: gicsim ... -->`` marker is what that
  command prints now (whole output), and every one after ``<!-- excerpt of: gicsim ... -->``
  appears in what it prints now as consecutive lines; only the wall time is masked, and a
  ``-o DIR`` is redirected into a temporary directory (the page shows DIR);
- every figure the pages embed from docs/figures/ is byte-identical to what
  ``docs/figures/make.py`` draws from a fresh run (so figures never drift from the model);
- docs/glossary.md defines every term the brief lists, each entry pointing at a page.

The exercises (one per page) are checked in tests/test_docs_exercises.py.

``python tests/test_docs.py --update`` rewrites every ``output of:`` block with what its
command prints now (excerpts are left alone: pick their lines by hand)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
OUTPUT = re.compile(r"^<!-- (output|excerpt) of: (gicsim [^\n]*?) -->\n```text\n(.*?)^```$", re.S | re.M)
FIGURE = re.compile(r"!\[[^\]]*\]\(figures/([\w.-]+\.svg)\)")
WALL = re.compile(r"wall [0-9][0-9.,]* s")
TUTORIAL = [p for p in PAGES if re.match(r"0[1-6]-", p.name)]


def blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m[1]) for m in BLOCK.finditer(text)]


def outputs(page: Path) -> list[tuple[int, str, str, str]]:
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m[1], m[2], m[3]) for m in OUTPUT.finditer(text)]


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


# ===================================================================== captured outputs ====


def run_command(cmd: str, tmp: Path) -> str:
    """What ``cmd`` (a ``gicsim ...`` line) prints now, the wall time masked."""
    return mask(command_output(cmd, tmp))


def command_output(cmd: str, tmp: Path) -> str:
    """What ``cmd`` prints now, run in-process from the repository root; ``-o DIR`` is
    redirected under ``tmp`` and shown back as DIR."""
    from click.testing import CliRunner

    from gicsim.cli import main

    args = shlex.split(cmd)[1:]
    shown = None
    for i, a in enumerate(args[:-1]):
        if a in ("-o", "--output"):
            shown = args[i + 1]
            args[i + 1] = str(tmp / shown)
    r = CliRunner().invoke(main, args)
    # 0: ran (and met expect), 1: an expect failed; anything else is an error, never an output to show
    assert r.exit_code in (0, 1), f"{cmd}: exit {r.exit_code}: {r.output}"
    out = r.output
    if shown is not None:
        out = out.replace(str(tmp / shown), shown)
    return out


def mask(text: str) -> str:
    return WALL.sub("wall N s", text)


CAPTURED = [(p, line, kind, cmd, want) for p in PAGES for line, kind, cmd, want in outputs(p)]


def test_the_tutorial_shows_outputs():
    assert len(CAPTURED) >= 4
    assert {p.name for p, *_ in CAPTURED} >= {"01-its-and-lpis.md", "02-save-restore-abi.md"}
    assert not any(" explain" in cmd for *_, cmd, _ in CAPTURED), "explain's text is being reworked; do not capture it"


@pytest.mark.parametrize("page,line,kind,cmd,want", CAPTURED, ids=lambda v: v.name if isinstance(v, Path) else None)
def test_captured_output_is_current(page, line, kind, cmd, want, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    got = run_command(cmd, tmp_path)
    want = mask(want)
    where = f"{page.name}:{line} ({cmd})"
    if kind == "output":
        assert got == want, f"{where}: the page shows an output the command no longer prints:\n{got}"
    else:
        lines, wl = got.splitlines(), want.splitlines()
        assert wl, f"{where}: empty excerpt"
        starts = [i for i, s in enumerate(lines) if s == wl[0]]
        assert any(lines[i : i + len(wl)] == wl for i in starts), (
            f"{where}: the excerpt is not (any more) consecutive lines of the output:\n{got}"
        )


def test_output_check_can_fail(tmp_path, monkeypatch):
    """The comparison is exact apart from the wall time: one changed digit is caught."""
    monkeypatch.chdir(ROOT)
    got = run_command("gicsim run scenarios/straggler-retry.yaml -o reports", tmp_path)
    assert "results: reports/straggler-retry/" in got and "wall N s" in got
    assert got.replace("3 EBUSY", "4 EBUSY") != got


# ============================================================================== figures ====


def load_make():
    spec = importlib.util.spec_from_file_location("docs_figures_make", ROOT / "docs" / "figures" / "make.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MAKE = load_make()


def test_the_pages_embed_the_figures():
    embedded = {name for p in TUTORIAL for name in FIGURE.findall(p.read_text())}
    assert embedded == set(MAKE.FIGURES), "every figure make.py draws is on a page, and only those"
    for name in embedded:
        assert (ROOT / "docs" / "figures" / name).is_file(), f"docs/figures/{name} is not committed"


@pytest.mark.parametrize("name", sorted(MAKE.FIGURES))
def test_figure_matches_a_fresh_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    fresh = MAKE.FIGURES[name]()
    assert fresh == MAKE.FIGURES[name](), f"{name} is not deterministic"
    committed = (ROOT / "docs" / "figures" / name).read_text()
    assert fresh == committed, f"docs/figures/{name} differs from a fresh run: python docs/figures/make.py"


def test_translation_figure_holds_the_run_tables():
    """The translation path is drawn from the saved tables: its addresses and bytes are the run's."""
    x = MAKE.translation_data()
    svg = (ROOT / "docs" / "figures" / "translation.svg").read_text()
    for e in (x["dte"], x["ite"], x["cte"]):
        assert f"0x{e.addr:x}" in svg and e.raw.hex(" ") in svg
    assert (x["lpi"], x["icid"], x["vcpu"]) == (8201, 1, 1)


# ============================================================================= glossary ====

TERMS = ["LPI", "ITS", "DTE", "ITT", "ITE", "CTE", "collection", "redistributor", "ap_list",
         "pending latch", "pending table", "PROPBASER", "PENDBASER", "CREADR", "CWRITER",
         "EnableLPIs", "-EBUSY rule", "pre-copy", "stop-and-copy", "downtime", "MSI coalescing",
         "property table", "DeviceID", "EventID", "translation cache", "clear-on-consume"]  # fmt: skip
ENTRY = re.compile(r"^- \*\*(.+?)\*\*(.*?)(?=^- \*\*|^#|\Z)", re.M | re.S)


def glossary() -> dict[str, str]:
    return {m[1]: m[2] for m in ENTRY.finditer((ROOT / "docs" / "glossary.md").read_text())}


def test_glossary_defines_every_term_with_a_page():
    g = glossary()
    names = {k.split(" (")[0].lower(): v for k, v in g.items()}
    for term in TERMS:
        hits = [v for k, v in names.items() if term.lower() in k.split(" / ")]
        assert hits, f"glossary: no entry for {term!r}"
        assert re.search(r"\]\(0[1-6]-[\w-]+\.md", hits[0]), f"glossary: {term!r} points at no tutorial page"
    for v in g.values():
        for target in re.findall(r"\]\(([\w-]+\.md)", v):
            assert (ROOT / "docs" / target).is_file(), f"glossary links to a missing page {target}"


def test_every_page_says_its_release_and_links_the_glossary():
    for p in TUTORIAL:
        text = p.read_text()
        assert "6.12.117" in text, f"{p.name}: does not say which release it describes"
        assert "glossary.md" in text, f"{p.name}: no link to the glossary"


def update_outputs() -> list[str]:
    """Rewrite each page's ``output of:`` blocks with the command's current output."""
    import os
    import tempfile

    from gicsim.present.output import write_text_atomic

    os.chdir(ROOT)
    changed = []
    for page in PAGES:
        text = page.read_text()

        def fresh(m: re.Match[str]) -> str:
            if m[1] != "output":
                return m[0]
            with tempfile.TemporaryDirectory() as tmp:
                out = command_output(m[2], Path(tmp))
            if mask(out) == mask(m[3]):
                return m[0]  # only the wall time differs: keep the page as it is
            return f"<!-- {m[1]} of: {m[2]} -->\n```text\n{out}```"

        new = OUTPUT.sub(fresh, text)  # a command that fails raises: nothing is written
        if new != text:
            write_text_atomic(page, new)
            changed.append(page.name)
    return changed


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_docs.py --update")
    print("updated: " + (", ".join(update_outputs()) or "nothing"))
