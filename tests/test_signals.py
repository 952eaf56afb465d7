"""A run interrupted by SIGINT or SIGTERM stops with one clear line on stderr, a non-zero
exit (128 + signal number), no traceback, and no half-written output: the output directory
holds nothing, or only complete results of scenarios that had finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim import cli
from gicsim.cli import main

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "clean-migration.yaml"
COMPLETE = {"resolved.yaml", "summary.json", "trace.parquet", "report.md"}

# Long enough to be interrupted in the middle of the simulation (~40 s uninterrupted), and
# under the loader's MSI cap.
BIG = """\
name: big
description: A long run to interrupt.
seed: 1
until_us: 5000000
vm: {vcpus: 4, memory_mib: 64}
guest:
  boot:
    - enable_lpis: all
    - mapc: {icid: 0, vcpu: 0}
    - mapc: {icid: 1, vcpu: 1}
    - its_enable: true
    - map_devices: {devices: 0-63, event_bits: 4, events: 0-15, first_lpi: 8192, icid: [0, 1]}
devices:
  - {device: 0-63, events: 0-15, rate_per_s: 4000, pattern: poisson, start_us: 0}
migration:
  at_us: 4000000
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def leftovers(outdir: Path) -> list[str]:
    """Everything in OUTDIR that is not a complete result directory."""
    if not outdir.exists():
        return []
    bad = []
    for p in outdir.iterdir():
        if not p.is_dir() or p.name.startswith(".") or {q.name for q in p.iterdir()} != COMPLETE:
            bad.append(p.name)
    return bad


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the run start")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_run(tmp_path, sig):
    big = tmp_path / "big.yaml"
    big.write_text(BIG)
    out = tmp_path / "out"
    p = subprocess.Popen(
        [sys.executable, "-m", "gicsim.cli", "run", str(big), "-o", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # started: imports and loading take well under 2 s of CPU; then it simulates
        deadline = time.monotonic() + 60
        while cpu_seconds(p.pid) < 3.0:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.05)
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 128 + sig, (p.returncode, stderr)
    lines = stderr.splitlines()
    assert lines == [f"gicsim: interrupted by {sig.name}; stopped, no partial results were written"]
    assert "Traceback" not in stdout + stderr
    assert stdout == ""
    assert not out.exists() or list(out.iterdir()) == []


def _interrupt_at(monkeypatch, target: str, attr: str, sig: int = signal.SIGTERM) -> None:
    """Make ``target.attr`` deliver ``sig`` to this process the first time it is called."""
    import importlib

    mod = importlib.import_module(target)
    real = getattr(mod, attr)
    fired = []

    def wrapper(*a, **kw):
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), sig)
        return real(*a, **kw)

    monkeypatch.setattr(mod, attr, wrapper)


@pytest.mark.parametrize(
    "where",
    [
        ("gicsim.sim.simulation", "summarise"),  # end of the simulation, nothing written yet
        ("gicsim.present.report", "write_markdown"),  # in the middle of writing the result files
        ("os", "replace"),  # while the result directory is being committed
        ("shutil", "rmtree"),  # while an old result is being cleaned away
    ],
    ids=lambda w: w[1],
)
def test_signal_at_any_point_of_writing_leaves_no_half_written_output(tmp_path, monkeypatch, where):
    out = tmp_path / "out"
    r0 = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])  # an older result
    assert r0.exit_code == 0, r0.output
    before = {p.name for p in out.iterdir()}
    _interrupt_at(monkeypatch, *where)
    old_int, old_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(out)])
    assert r.exit_code == 128 + signal.SIGTERM, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit)
    assert r.stderr.splitlines() == [
        "gicsim: interrupted by SIGTERM; stopped, no partial results were written"
    ]
    assert "Traceback" not in r.output
    assert leftovers(out) == []  # the old result or the new one, complete; no temp dirs
    assert {p.name for p in out.iterdir()} == before
    # the CLI put the handlers back
    assert signal.getsignal(signal.SIGINT) is old_int and signal.getsignal(signal.SIGTERM) is old_term


def test_sigint_while_loading(tmp_path, monkeypatch):
    _interrupt_at(monkeypatch, "gicsim.cli", "load_scenario", signal.SIGINT)
    r = CliRunner().invoke(main, ["run", str(SMALL), "-o", str(tmp_path / "out")])
    assert r.exit_code == 130 and isinstance(r.exception, SystemExit)
    assert r.stderr.splitlines() == ["gicsim: interrupted by SIGINT; stopped, no partial results were written"]
    assert not (tmp_path / "out").exists()


def test_interrupted_carries_the_signal():
    assert cli.Interrupted("SIGTERM").signum == signal.SIGTERM
    assert cli.Interrupted().signum == signal.SIGINT
