"""``gicsim tables``: the dump decodes what is in guest memory at the end of a step, and
agrees with the ITS state the trace records and with the ABI encoders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.kvm import abi, commands
from gicsim.present import tables
from gicsim.scenario import load_scenario

SC = Path(__file__).resolve().parent.parent / "scenarios"


def _state(res, what):
    for r in res.records:
        if r[1] == "state" and r[8].startswith(what + ":"):
            return json.loads(r[8].split(":", 1)[1])
    raise AssertionError(what)


@pytest.fixture(scope="module")
def pending():
    sc = load_scenario(SC / "its-pending-migration.yaml")
    return sc, gicsim.run(sc)


def test_saved_tables_equal_the_source_state_at_pause(pending):
    sc, res = pending
    snap = tables.capture(sc, "save_its_tables", limit=10_000)
    its = _state(res, "pause")["its"][0]
    assert sorted((d, itt, bits) for d, (itt, bits) in snap.devices.items()) == [tuple(x) for x in its["devices"]]
    assert sorted((d, e, lpi, icid) for (d, e), (lpi, icid) in snap.ites.items()) == [tuple(x) for x in its["ites"]]
    assert sorted(snap.collections.items()) == [tuple(x) for x in its["collections"]]
    assert snap.side == "vm0" and snap.role == "source"


def test_pending_bits_written_then_consumed(pending):
    sc, res = pending
    after_save = tables.capture(sc, "save_pending_tables")
    assert after_save.pending[1] == list(range(8192, 8448))  # 256 LPIs pending on masked vCPU 1
    assert after_save.pending[1] == _state(res, "pause")["gic"]["pending"]
    restored = tables.capture(sc, "its_restore_tables")
    assert restored.role == "destination" and restored.side == "vm1"
    assert restored.pending[1] == []  # RESTORE_TABLES latched each bit and cleared it in RAM
    before = tables.capture(sc, "memory")  # the destination has the bits once memory is loaded
    assert before.pending[1] == list(range(8192, 8448))


def test_raw_bytes_are_the_abi_encoding(pending):
    sc, _ = pending
    snap = tables.capture(sc, "save_its_tables", limit=10_000)
    dt = next(t for t in snap.tables if t.title.startswith("Device table"))
    (e,) = dt.entries
    itt, bits = snap.devices[2]
    assert e.index == 2 and e.raw == abi.encode_dte(True, 0, itt, bits).to_bytes(8, "little")
    itt_t = next(t for t in snap.tables if t.title.startswith("ITT of device 2"))
    assert len(itt_t.entries) == 256
    for x in itt_t.entries:
        lpi, icid = snap.ites[(2, x.index)]
        nxt = 0 if x.index == 255 else 1
        assert x.raw == abi.encode_ite(nxt, lpi, icid).to_bytes(8, "little")
    text = tables.render(snap)
    assert "DTE[2]: V=1 next=0 (last)" in text and "ITE[255]: pINTID=8447 ICID=1 next=0 (last)" in text
    assert "CTE #1: V=1 ICID=1 RDBase=vCPU 1" in text


def test_two_level_device_table():
    sc = load_scenario(SC / "two-level-device-table.yaml")
    snap = tables.capture(sc, "save_its_tables")
    assert sorted(snap.devices) == [3, 9000, 40000]
    l1 = snap.tables[0]
    assert l1.title.startswith("Device table level 1")
    assert [e.index for e in l1.entries] == [0, 1, 4]  # 3 -> page 0, 9000 -> page 1, 40000 -> page 4
    text = tables.render(snap)
    assert "DTE[3]: V=1 next=8997 (→ DeviceID 9000)" in text
    assert "DTE[9000]: V=1 next=16383 (→ DeviceID 25383)" in text  # capped delta


def test_destination_before_its_registers_uses_the_source_values():
    sc = load_scenario(SC / "clean-migration.yaml")
    snap = tables.capture(sc, "its_init")
    text = tables.render(snap)
    assert "not restored on vm1 yet" in text
    assert sorted(snap.devices) == [1, 2, 3]  # memory is loaded: the tables are there


def test_cli_tables(tmp_path):
    r = CliRunner().invoke(main, ["tables", str(SC / "creadr-before-cbaser.yaml"), "--at", "save_pending_tables"])
    assert r.exit_code == 0, r.output
    assert re.search(r"pending LPIs 8193, 8195, 8197, .*8223", r.output)
    r = CliRunner().invoke(main, ["tables", str(SC / "creadr-before-cbaser.yaml"), "--at", "gits_iidr"])
    assert r.exit_code == 2 and "not among the steps" in r.stderr
    r = CliRunner().invoke(main, ["tables", str(SC / "straggler-abort.yaml"), "--at", "memory"])
    assert r.exit_code == 2 and "never ended" in r.stderr
    r = CliRunner().invoke(main, ["tables", str(SC / "creadr-before-cbaser.yaml"), "--at", "memory",
                                  "--side", "source", "--limit", "2"])  # fmt: skip
    assert r.exit_code == 0 and "of vm0 (source of migration 1)" in r.output and "more entries not shown" in r.output


def _lines(out: str) -> list[str]:
    return out.splitlines()


def test_default_step_is_the_last_save_step_that_ended():
    sc = load_scenario(SC / "creadr-before-cbaser.yaml")
    snap = tables.capture(sc, None)
    assert snap.step == "save_its_tables"
    assert _lines(tables.render(snap))[:2] == [
        "# Guest memory of vm0 (source of migration 1) at the end of step `save_its_tables` "
        "(t = 1,136.235 µs) — creadr-before-cbaser",
        "(default --at: save_its_tables, the last save step that ended in migration 1)",
    ]


def test_empty_tables_say_why_the_save_got_ebusy():
    r = CliRunner().invoke(main, ["tables", str(SC / "straggler-abort.yaml")])
    assert r.exit_code == 0, r.output
    out = _lines(r.output)
    assert out[1] == ("(default --at: save_pending_tables, the last save step that ended in migration 1 "
                      "(save_its_tables never ended: status aborted))")  # fmt: skip
    i = out.index("## Pending table of vCPU 1 at 0x400c0000 (GICR_PENDBASER=0x400c0180; EnableLPIs=1): "
                  "bytes with an LPI bit set")  # fmt: skip
    assert out[i + 2 : i + 5] == [
        "  (no LPI bit set)",
        "  (SAVE_PENDING_TABLES returned -EBUSY at 1,122.035 µs on vm0: it wrote nothing)",
        "  (KVM on vm0 holds 8 LPIs with pending_latch set for vCPU 1 now)",
    ]
    i = out.index("## Device table (flat) at 0x40010000, 65536 slots")
    assert out[i + 2] == "  (ITS_SAVE_TABLES has not run in this migration yet)"


def test_queue_shows_the_commands_a_cbaser_write_requeued():
    r = CliRunner().invoke(main, ["tables", str(SC / "creadr-before-cbaser.yaml"), "--at", "gits_regs",
                                  "--queue", "--limit", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = _lines(r.output)
    i = out.index("## Command queue at 0x40000000 (64 KiB; CREADR=0x0 CWRITER=0x480)")
    assert out[i + 3].endswith("  queued: MAPC ICID=0 RDbase=0 V=1")
    assert out[i + 4].endswith("  queued: MAPC ICID=1 RDbase=1 V=1")
    assert out[i + 3].startswith("  0x000040000000  09 00 00 00 00 00 00 00 ")
    assert out[i + 5 : i + 7] == ["  (36 queued between CREADR and CWRITER, 0 already read)",
                                  "  (34 more entries not shown (--limit 2))"]  # fmt: skip
    # on the source, after the save, the ITS had read every command
    r = CliRunner().invoke(main, ["tables", str(SC / "creadr-before-cbaser.yaml"), "--queue", "--limit", "1"])
    assert "  (0 queued between CREADR and CWRITER, 36 already read)" in _lines(r.output)
    assert tables.cmd_text(commands.mapti(2, 1, 8193, 1)) == "MAPTI DeviceID=2 EventID=1 pINTID=8193 ICID=1"
    assert tables.cmd_text(commands.movall(1, 3)) == "MOVALL RDbase=1 RDbase2=3"


def test_diff_between_two_steps():
    r = CliRunner().invoke(main, ["tables", str(SC / "its-pending-migration.yaml"), "--at", "save_its_tables",
                                  "--diff", "its_restore_tables"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = _lines(r.output)
    assert out[0] == ("# Guest memory: end of `save_its_tables` on vm0 (t = 1,882.070 µs) → end of "
                      "`its_restore_tables` on vm1 (t = 2,148.009 µs) — its-pending-migration")  # fmt: skip
    i = out.index("## Entries (2 changed)")
    assert out[i + 2 :] == [  # RESTORE_TABLES latched the 256 bits and cleared them in RAM (6.12)
        "  - Pending table of vCPU 1: INTIDs 8192-8319: pending LPIs 8192-8319",
        "  - Pending table of vCPU 1: INTIDs 8320-8447: pending LPIs 8320-8447",
    ]
    r = CliRunner().invoke(main, ["tables", str(SC / "its-pending-migration.yaml"), "--at", "save_pending_tables",
                                  "--diff", "save_its_tables", "--limit", "1"])  # fmt: skip
    out = _lines(r.output)
    assert "## Entries (259 changed)" in out  # 1 DTE, 256 ITEs, 2 CTEs written by ITS_SAVE_TABLES
    assert out[-2:] == ["  + Collection table: CTE #0: V=1 ICID=0 RDBase=vCPU 0", "  (258 more not shown (--limit 1))"]
    r = CliRunner().invoke(main, ["tables", str(SC / "its-pending-migration.yaml"), "--diff", "no_such_step"])
    assert r.exit_code == 2 and "--diff: unknown step 'no_such_step'" in r.stderr


def test_destination_before_its_memory_is_loaded_says_so():
    r = CliRunner().invoke(main, ["tables", str(SC / "clean-migration.yaml"), "--at", "save_its_tables",
                                  "--side", "destination"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = _lines(r.output)
    i = out.index("## Device table (flat) at 0x40010000, 65536 slots")
    assert out[i + 2] == "  (the migration has not loaded vm1's guest memory yet (step memory has not ended))"
