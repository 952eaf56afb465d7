"""``gicsim diff A B``: a clean step order against a hazard order names the first divergent
step, the outcome difference and the ITS at that point on each side."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.present import diff

SC = Path(__file__).resolve().parent.parent / "scenarios"
ITS_FIRST = ["memory", "its_init", "gits_cbaser", "gits_regs", "its_restore_tables", "redistributors",
             "gits_ctlr", "resume"]  # fmt: skip


def _its_first(tmp_path: Path) -> Path:
    """clean-migration with its_restore_tables before the redistributors: nothing else changed."""
    d = yaml.safe_load((SC / "clean-migration.yaml").read_text())
    d["name"] = "clean-its-first"
    d["migration"]["destination"] = {"steps": ITS_FIRST}
    d.pop("expect")
    p = tmp_path / "its-first.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def test_clean_vs_its_restore_before_redistributors(tmp_path):
    r = CliRunner().invoke(main, ["diff", str(SC / "clean-migration.yaml"), str(_its_first(tmp_path))])
    assert r.exit_code == 0, r.output
    out = r.output.splitlines()
    assert out[0] == "# diff: A = clean-migration, B = clean-its-first"
    assert out[4] == ("at 2,204.464 µs A ran redistributors, B ran its_init (record 602; A after step memory, "
                      "B after step memory).")  # fmt: skip
    assert out[6] == ("The migration steps part at step 7 (after memory): A ran redistributors at 2,204.464 µs, "
                      "B ran its_init at 2,204.464 µs.")  # fmt: skip
    assert out[8] == "  B: its_init → gits_cbaser → gits_regs → its_restore_tables"  # failed: no gits_ctlr, no resume
    i = out.index("## Outcome")
    assert [ln.split() for ln in out[i + 3 : i + 7]] == [
        ["migrations.1.downtime_ns", "261759", "221429"],
        ["migrations.1.errors", "none", "its_restore_tables:", "-EFAULT"],
        ["migrations.1.status", "completed", "failed"],
        ["state_match", "True", "—"],
    ]
    i = out.index("## State of B just before step its_init (t = 2,204.464 µs, re-run)")
    assert out[i + 2] == ("  vm0: ITS Enable=1 CREADR=0x3e0 CWRITER=0x3e0; 3 devices (1-3), 24 ITEs, "
                          "collections: 0→vCPU 0, 1→vCPU 1, 2→vCPU 2, 3→vCPU 3")  # fmt: skip
    assert out[i + 3] == "  vm1: ITS Enable=0 CREADR=0x0 CWRITER=0x0; 0 devices (none), 0 ITEs, collections: none"


def test_the_shipped_hazard_order_and_run_dirs(tmp_path):
    for f in ("clean-migration", "restore-its-before-redistributors"):
        r = CliRunner().invoke(main, ["run", str(SC / f"{f}.yaml"), "-o", str(tmp_path), "-q"])
        assert r.exit_code == 0, r.output
    text = diff.diff_command(tmp_path / "clean-migration", tmp_path / "restore-its-before-redistributors")
    assert "## First divergence" in text and "## Outcome" in text and "note:" not in text  # re-runs match
    assert ("The migration steps part at step 7 (after memory): A ran redistributors at 2,204.464 µs, "
            "B ran its_init at 1,169.264 µs.") in text.splitlines()  # fmt: skip
    assert [ln for ln in text.splitlines() if ln.startswith("  migrations.1.status")][0].split() == [
        "migrations.1.status", "completed", "failed"]


def test_bad_input_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["diff", str(tmp_path / "missing.yaml"), str(SC / "clean-migration.yaml")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "missing.yaml" in r.stderr


def test_identical_runs():
    text = diff.diff_command(SC / "clean-migration.yaml", SC / "clean-migration.yaml")
    assert text.splitlines()[2:5] == ["The two traces are identical: no divergence.", "", "## Outcome"]


def test_alignment_rules():
    a = [(0, "step", "vm0", -1, -1, -1, -1, 0, "x:start"), (5, "kvm", "vm0", -1, -1, -1, -1, 0, "CALL")]
    assert diff.first_divergence(a, a) is None
    assert diff.first_divergence(a, a[:1]) == 1
    assert diff.first_divergence(a, [a[0], (6,) + a[1][1:]]) == 1  # same row later: a divergence in time
    s = (0, "state", "vm0", -1, -1, -1, -1, 0, 'pause:{"a": 1}')
    assert diff.first_divergence([s], [s[:-1] + ('pause:{"a": 2}',)]) is None  # a state row by its label
    assert diff.outcome_diff({"lpis": {"lost": 0, "latency_ns": {"p50": 1}}}, {"lpis": {"lost": 3, "latency_ns": {"p50": 2}}}) == [
        ("lpis.lost", 0, 3)]
