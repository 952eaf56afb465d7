"""The layering is enforced, not just drawn (pyproject.toml [tool.importlinter]): each layer
imports only the ones below it, the kernel-side model imports no SimPy/pandas, no module
imports another in a cycle (TYPE_CHECKING imports count), and long modules are only those
that mirror one kernel file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parent.parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(LINT + ["--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_import_contracts_are_kept():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("gicsim/kvm/its.py", "from gicsim.sim import vm as _upward  # noqa", "gicsim layers"),
        ("gicsim/judge/oracles.py", "from gicsim.present import report as _up  # noqa", "gicsim layers"),
        ("gicsim/kvm/memory.py", "import simpy as _simpy  # noqa", "no SimPy"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path, module, line, contract):
    """The check can fail: a copy of the tree with one deliberately added bad import."""
    shutil.copytree(ROOT / "gicsim", tmp_path / "gicsim", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    p = tmp_path / module
    p.write_text(p.read_text() + "\n" + line + "\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and contract in r.stdout.split("BROKEN")[0].splitlines()[-1] + r.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    mods = sorted(m for m in graph.modules if m.startswith("gicsim"))
    out: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.find_modules_directly_imported_by(m)):
            if not n.startswith("gicsim"):
                continue
            if state.get(n) == 1:
                out.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in mods:
        if m not in state:
            visit(m)
    return out


def test_no_import_cycles_even_under_type_checking():
    graph = grimp.build_graph("gicsim", exclude_type_checking_imports=False)
    # a package's __init__ re-exporting its own submodules is not a cycle between modules
    cyc = [c for c in _cycles(graph) if not any(a.startswith(b + ".") or b.startswith(a + ".")
                                               for a, b in zip(c, c[1:], strict=False))]  # fmt: skip
    assert cyc == []


def test_long_modules_mirror_a_kernel_file():
    for p in sorted((ROOT / "gicsim").rglob("*.py")):
        n = len(p.read_text().splitlines())
        if n > 800:
            doc = p.read_text().split('"""')[1] if '"""' in p.read_text() else ""
            assert "arch/arm64/kvm/vgic/" in doc and "mirrors" in doc, f"{p}: {n} lines"
