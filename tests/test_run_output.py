"""What ``gicsim run`` prints per scenario (the verdict apart from the outcome, labelled wall
time, where the results went, the paths ``--report``/``--perfetto`` wrote), what it refuses
(two scenarios with one name, a missing file), and the notebook views of a ``Result``."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main

ROOT = Path(__file__).parent.parent
SC = ROOT / "scenarios"
WALL = re.compile(r", wall \d+(\.\d+)?(e-\d+)? s$")


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def test_a_hazard_whose_expect_holds_says_met_and_what_happened(tmp_path):
    r = run(SC / "creadr-before-cbaser.yaml", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert (
        lines[0]
        == "creadr-before-cbaser: expect met — migration completed, 16 LPIs lost, state mismatch"
    )
    assert lines[1].startswith("  43 accepted, 27 delivered, 0 EBUSY; 253 events") and WALL.search(
        lines[1]
    ), lines[1]
    assert lines[2] == "  kernel: Python model of 6.12"
    assert lines[3] == f"  results: {tmp_path}/creadr-before-cbaser/"
    assert len(lines) == 4 and "PASS" not in r.output


def test_a_clean_run_says_nothing_lost(tmp_path):
    r = run(SC / "clean-migration.yaml", SC / "straggler-abort.yaml", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    heads = [ln for ln in r.output.splitlines() if not ln.startswith("  ")]
    assert heads == ["clean-migration: expect met — migration completed, nothing lost",
                     "straggler-abort: expect met — migration aborted (EBUSY in save_pending_tables), nothing lost"]  # fmt: skip


def test_without_expect_only_the_outcome(tmp_path):
    f = tmp_path / "x.yaml"
    text = (SC / "devices-not-quiesced.yaml").read_text()
    f.write_text(text[: text.index("\nexpect:")] + "\n")
    r = run(f, "-o", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == ("devices-not-quiesced: migration completed, 8 LPIs lost, "
                                        "8 MSIs dropped (not_restored 8), state mismatch")  # fmt: skip


def test_a_failed_expect_says_not_met_and_what_differed(tmp_path):
    f = tmp_path / "x.yaml"
    shutil.copy(SC / "clean-migration.yaml", f)
    text = f.read_text()
    assert "  lost: 0\n" in text
    f.write_text(text.replace("  lost: 0\n", "  lost: 3\n"))
    r = run(f, "-o", tmp_path / "o", "-q")
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0] == "clean-migration: expect NOT met — migration completed, nothing lost"
    assert lines[1] == "  expect.lost: wanted == 3, got 0"


def test_quiet_prints_nothing_when_every_expect_holds(tmp_path):
    r = run(SC / "clean-migration.yaml", "-o", tmp_path, "-q")
    assert r.exit_code == 0 and r.output == ""


def test_report_and_perfetto_print_the_paths_they_wrote(tmp_path):
    r = run(SC / "straggler-retry.yaml", "-o", tmp_path, "--report", "--perfetto")
    assert r.exit_code == 0, r.output
    d = tmp_path / "straggler-retry"
    rep = [ln for ln in r.output.splitlines() if ln.startswith("  report: ")]
    pf = [ln for ln in r.output.splitlines() if ln.startswith("  perfetto: ")]
    assert rep == [f"  report: {d / 'report.html'}"]
    assert len(pf) == 1 and Path(pf[0].split(": ", 1)[1]).is_file()
    assert Path(rep[0].split(": ", 1)[1]).is_file()
    assert run(SC / "straggler-retry.yaml", "-o", tmp_path).output.count("report: ") == 0


def test_two_scenarios_with_one_name_are_refused_and_nothing_is_written(tmp_path):
    f = tmp_path / "copy.yaml"
    shutil.copy(SC / "clean-migration.yaml", f)
    out = tmp_path / "o"
    r = run(SC / "clean-migration.yaml", f, "-o", out)
    assert r.exit_code == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert (
        "scenario name 'clean-migration' is also the name of" in line and "different names" in line
    )
    assert not out.exists()


def test_run_directories_have_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        r = run(SC / "clean-migration.yaml", "-o", tmp_path / "o")
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    for d in (tmp_path / "o", tmp_path / "o" / "clean-migration"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, oct(d.stat().st_mode)


def test_a_missing_file_is_file_colon_no_such_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    for cmd in ("run", "validate"):
        r = CliRunner().invoke(main, [cmd, str(missing)])
        assert r.exit_code == 2 and r.stderr == f"{missing}: no such file\n", r.stderr
    r = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert r.stderr == f"{tmp_path}: is a directory, not a scenario file\n"


def test_a_nested_typo_is_named_with_a_suggestion(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: x\nmigration: {at_us: 1, source: {on_ebusy: {retyr: 5, backoff_us: 1}}}\n")
    r = CliRunner().invoke(main, ["validate", str(f)])
    assert r.exit_code == 2
    assert r.stderr == (f"{f}:2:43: migration.source.on_ebusy.retyr: unknown key 'retyr' (did you mean "
                        "'retry'?); valid keys: retry, backoff_us\n")  # fmt: skip


# ------------------------------------------------------------------------- notebooks ----
def test_repr_of_a_result_is_short_and_html_is_a_small_table():
    res = gicsim.run(SC / "its-pending-migration.yaml")
    text = repr(res)
    assert len(text) < 2000 and len(res.records) > 1000
    assert text.startswith("<Result scenario=its-pending-migration, seed=") and "lost=0" in text
    assert "expect=met" in text and f"trace rows={len(res.records)}" in text
    html = res._repr_html_()
    assert html.startswith("<table") and html.endswith("</table>") and len(html) < 4000
    assert (
        "<th style='text-align:left'>delivered</th><td>256</td>"
        in html.replace(str(res.summary["lpis"]["delivered"]), "256", 1)
        or f"<td>{res.summary['lpis']['delivered']}</td>" in html
    )


def test_repr_stays_short_for_a_big_run():
    d = gicsim.sim.simulation.as_scenario(SC / "clean-migration.yaml")
    res = gicsim.run(d)
    # a big run's repr does not grow with the trace: pad the trace and look again
    res.records.extend(res.records * 200)
    assert len(res.records) > 100_000 and len(repr(res)) < 2000 and len(res._repr_html_()) < 4000


# ------------------------------------------------------------ non-editable install ----
@pytest.mark.skipif(shutil.which("pip") is None and shutil.which("pip3") is None, reason="no pip")
def test_examples_after_a_non_editable_install(tmp_path):
    """``pip install --target``: the package without the repository. ``python -m
    gicsim.examples`` from another directory says in one line why it cannot run (the
    scenarios are not installed), and runs with ``--scenarios``."""
    target = tmp_path / "site"
    build = None
    # offline first (needs setuptools >= 68 and wheel installed), then pip's usual isolated build
    for extra in (["--no-build-isolation", "--no-index"], []):
        build = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", *extra, "--target", str(target), str(ROOT)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        if build.returncode == 0:
            break
        shutil.rmtree(target, ignore_errors=True)
    if build.returncode != 0:
        pytest.skip(f"cannot build the package here: {build.stderr.strip().splitlines()[-1:]}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-m", "gicsim.examples"], capture_output=True, text=True,
                       cwd=elsewhere, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    (line,) = r.stderr.splitlines()
    assert "not installed with the package" in line and "--scenarios" in line, line
    assert not any(elsewhere.iterdir()) and not (target / "reports").exists()
    r = subprocess.run([sys.executable, "-c", "import gicsim, sys; print(gicsim.__file__)"],
                       capture_output=True, text=True, cwd=elsewhere, env=env)  # fmt: skip
    assert r.stdout.strip().startswith(str(target)), r.stdout
    bad = subprocess.run([sys.executable, "-m", "gicsim.examples", "--scenarios", str(elsewhere)],
                         capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "--scenarios" in bad.stderr


def test_examples_find_the_scenarios_of_a_clone(tmp_path, monkeypatch):
    from gicsim import examples

    monkeypatch.setattr(examples, "SCENARIOS", tmp_path / "nowhere")
    monkeypatch.chdir(ROOT)
    assert examples.find_scenarios(None) == Path("scenarios")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(examples.NoScenarios):
        examples.find_scenarios(None)
    assert examples.find_scenarios(str(SC)) == SC
    assert examples.main(["-o", str(tmp_path / "x")]) == 2 and not (tmp_path / "x").exists()
