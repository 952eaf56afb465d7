"""``gicsim explain FILE --lpi N``: one LPI's life across both hosts, with its kernel record
and its pending-table bit in guest RAM side by side (sampled by re-running the scenario)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gicsim.cli import main
from gicsim.judge.trace import digest
from gicsim.present import lpi_life
from gicsim.present.probe import run_probed
from gicsim.scenario import load_scenario
from gicsim.sim.simulation import Simulation

SC = Path(__file__).resolve().parent.parent / "scenarios"
COLS = "  {:>16}  {:<4}  {:<50}  {:<10} {:<8}  {:<10} {:<8}"


def _row(t, host, what, a, b, c, d):
    return COLS.format(t, host, what, a, b, c, d).rstrip()


def test_replayed_queue_consumes_the_pending_bit_then_reads_ram_again():
    """creadr-before-cbaser: RESTORE_TABLES latches LPI 8193's bit and clears it in RAM (6.12);
    the replayed MAPD destroys the LPI and the replayed MAPTI re-creates it reading the RAM
    bit again — now 0, so the pending state is lost."""
    r = CliRunner().invoke(main, ["explain", str(SC / "creadr-before-cbaser.yaml"), "--lpi", "8193"])
    assert r.exit_code == 0, r.output
    out = r.output.splitlines()
    assert out[0] == "# LPI 8193 — creadr-before-cbaser: its life across vm0, vm1"
    want = [
        _row("500.000 µs", "vm0", "device 2 event 1 sends an MSI", "P@1,dis", "0", "", ""),
        _row("500.000 µs", "vm0", "ITS accepts it (msi) → pending for vCPU 1", "P@1,dis", "0", "", ""),
        _row("1,000.000 µs", "vm0", "migration: start", "P@1,dis", "0", "—", "0"),
        _row("1,094.035 µs", "vm0", "KVM SAVE_PENDING_TABLES returns 0", "P@1,dis", "1@1", "—", "0"),
        _row("1,111.035 µs", "vm0", "KVM ITS_SAVE_TABLES returns 0", "P@1,dis", "1@1", "—", "0"),
        _row("1,169.264 µs", "vm1", "step memory ends", "P@1,dis", "1@1", "—", "1@1"),
        _row("1,170.264 µs", "vm1", "KVM REDIST_REGS_SET returns 0", "P@1,dis", "1@1", "—", "1@1"),
        _row("1,194.264 µs", "vm1", "KVM ITS_RESTORE_TABLES returns 0", "P@1,dis", "1@1", "P@1,dis", "0"),
        _row("1,219.164 µs", "vm1", "KVM SET_GITS_CTLR returns 0", "P@1,dis", "1@1", "P@1,dis", "0"),
        _row("1,219.914 µs", "vm1", "ITS runs MAPD (device 2)", "P@1,dis", "1@1", "—", "0"),
        _row("1,220.414 µs", "vm1", "ITS runs MAPTI (device 2 event 1)", "P@1,dis", "1@1", "·@1,dis", "0"),
    ]
    i = out.index(want[0])
    assert out[i : i + len(want)] == want


def test_v5_second_sync_reads_the_consumed_bit():
    """v5-double-sync: RESTORE_TABLES latched the bit and cleared it in RAM; the second sync on
    GITS_CTLR reads the cleared bit and overwrites pending_latch with 0."""
    out = lpi_life.lpi_life_command(SC / "v5-double-sync.yaml", 8193).splitlines()
    want = [
        _row("1,194.264 µs", "vm1", "KVM ITS_RESTORE_TABLES returns 0", "P@1", "1@1", "P@1", "0"),
        _row("1,219.164 µs", "vm1", "KVM SET_GITS_CTLR returns 0", "P@1", "1@1", "·@1", "0"),
    ]
    i = out.index(want[0])
    assert out[i : i + 2] == want


def test_a_drop_shows_its_counted_reason_and_run_dirs_give_the_same_rows(tmp_path):
    f = SC / "devices-not-quiesced.yaml"
    got = lpi_life.lpi_life_command(f, 8200)
    assert _row("1,165.000 µs", "vm1", "device 7 event 8: dropped (not_restored)", "·@0", "0", "—", "0") in got.splitlines()
    r = CliRunner().invoke(main, ["run", str(f), "-o", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
    assert lpi_life.lpi_life_command(tmp_path / "devices-not-quiesced", 8200) == got  # no "re-run differs" note


def test_an_lpi_that_never_existed_is_one_line_exit_2():
    r = CliRunner().invoke(main, ["explain", str(SC / "creadr-before-cbaser.yaml"), "--lpi", "9999"])
    assert r.exit_code == 2
    assert r.stderr == ("creadr-before-cbaser: LPI 9999 never existed in this run (no MAPTI/MAPI mapped it, "
                        "no host had an LPI record or a pending bit for it)\n")  # fmt: skip


def test_the_probe_changes_nothing():
    sc = load_scenario(SC / "its-pending-migration.yaml")
    probed = run_probed(sc, after=lambda sim, rec, first: None).trace.rec
    plain = Simulation(sc)
    plain.run()
    assert digest(probed) == digest(plain.trace.rec)
