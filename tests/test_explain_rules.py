"""Each cause rule of ``gicsim.present.explain.rules`` on a small hand-built trace (records as
``gicsim.judge.trace`` defines them, judged by the oracles), including a trace no rule explains."""

from __future__ import annotations

from gicsim.judge.oracles import judge
from gicsim.present.explain import rules as R
from gicsim.present.explain.evidence import evidence

UNTIL = 10_000_000


def rec(t, kind, side="vm0", vcpu=-1, lpi=-1, device=-1, event=-1, icid=-1, info=""):
    return (t, kind, side, vcpu, lpi, device, event, icid, info)


def ev_of(records, variants=None, state_match=None):
    records = list(records)
    return evidence(records, judge(records, UNTIL), variants, state_match)


def boot(side="vm0", vcpu=0):
    """MAPC icid 0 -> vcpu, MAPD 2, MAPTI (2, 0) -> 8192: written by the guest, run by the ITS."""
    return [rec(1000, "gcmd", side, vcpu=vcpu, icid=0, info="MAPC"), rec(1000, "cmd", side, vcpu=vcpu, icid=0, info="MAPC"),
            rec(2000, "gcmd", side, device=2, info="MAPD"), rec(2000, "cmd", side, device=2, info="MAPD"),
            rec(3000, "gcmd", side, lpi=8192, device=2, event=0, icid=0, info="MAPTI"),
            rec(3000, "cmd", side, lpi=8192, device=2, event=0, icid=0, info="MAPTI")]  # fmt: skip


def msi(t, side="vm0", lpi=8192, vcpu=0, dev=2, evn=0):
    return [rec(t, "raise", side, device=dev, event=evn, info="msi"), rec(t, "accept", side, vcpu=vcpu, lpi=lpi, device=dev, event=evn)]


def only(ev, outcome, rule):
    c = rule(ev, outcome)
    assert c is not None, (outcome, rule.__name__)
    assert c.outcome == outcome and c.rule == rule.__name__
    assert len(c.rows) == len(c.cited) and all(s.startswith(f"#{r} ") for r, s in zip(c.rows, c.cited, strict=True))
    return c


def test_replayed_command_range_after_creadr_reset():
    tr = boot() + msi(10_000) + [
        rec(20_000, "kvm", "vm0", icid=0, info="SAVE_PENDING_TABLES"),
        rec(30_000, "kvm", "vm1", icid=0, info="SET_GITS_CREADR"),
        rec(31_000, "kvm", "vm1", icid=0, info="SET_GITS_CBASER"),
        rec(32_000, "kvm", "vm1", icid=0, info="ITS_RESTORE_TABLES"),
        rec(33_000, "kvm", "vm1", icid=0, info="SET_GITS_CTLR"),
        rec(34_000, "cmd", "vm1", device=2, info="MAPD"),
        rec(35_000, "cmd", "vm1", lpi=8192, device=2, event=0, icid=0, info="MAPTI"),
    ]  # fmt: skip
    ev = ev_of(tr)
    assert ev.verdict.lost == 1
    c = only(ev, "lost", R.replayed_commands)
    assert "ran 2 commands the guest wrote once a second time (MAPD, MAPTI" in c.text
    assert "a CBASER write resets CREADR to 0" in c.text and "A re-run MAPD frees the device's LPIs" in c.text
    assert c.rows == (9, 10, 12, 13, 14)
    assert c.cited[1] == "#10 31.000 µs vm1 kvm SET_GITS_CBASER"
    # the same bit was consumed by RESTORE_TABLES and read again by the re-run MAPTI
    c = only(ev, "lost", R.pending_bit_reread)
    assert "RESTORE_TABLES re-created it at 32.000 µs, latching the bit and clearing it in RAM" in c.text
    assert "at 35.000 µs MAPTI re-created it from the cleared bit" in c.text
    # a guest that writes a command again is no replay
    assert R.replayed_commands(ev_of(boot() + [rec(5000, "cmd", device=2, info="MAPD"), rec(5000, "gcmd", device=2, info="MAPD")]),
                               "state_mismatch") is None  # fmt: skip


def test_consumed_pending_bit_reread_gives_a_spurious_delivery():
    tr = [rec(500, "mask", vcpu=0, info="1")] + boot() + msi(10_000) + [
        rec(20_000, "kvm", icid=0, info="SAVE_PENDING_TABLES"),
        rec(30_000, "migration", icid=0, info="failed:EFAULT:its_restore_tables"),
        rec(40_000, "mask", vcpu=0, info="0"),
        rec(41_000, "deliver", vcpu=0, lpi=8192), rec(42_000, "eoi", vcpu=0, lpi=8192),
        rec(50_000, "gcmd", device=2, event=0, info="DISCARD"), rec(50_000, "cmd", device=2, event=0, info="DISCARD"),
        rec(51_000, "cmd", lpi=8192, device=2, event=0, icid=0, info="MAPTI"),
        rec(51_000, "gcmd", lpi=8192, device=2, event=0, icid=0, info="MAPTI"),
        rec(52_000, "deliver", vcpu=0, lpi=8192),
    ]  # fmt: skip
    ev = ev_of(tr)
    assert ev.verdict.spurious == 1
    c = only(ev, "spurious", R.pending_bit_reread)
    assert c.text.startswith("SAVE_PENDING_TABLES at 20.000 µs wrote LPI 8192's pending bit into guest RAM while it was pending;")
    assert "vCPU 0 then took the LPI at 41.000 µs" in c.text and "at 51.000 µs MAPTI re-created it and latched that stale bit" in c.text
    assert c.rows == (9, 12, 16, 18)
    # the guest's re-MAPTI (recorded after the ITS ran it, at the same time) is no replay
    assert R.replayed_commands(ev, "spurious") is None


def test_stale_translation_hit():
    tr = boot() + msi(10_000) + [rec(11_000, "deliver", vcpu=0, lpi=8192),
                                 rec(20_000, "gcmd", device=2, event=0, info="DISCARD"), rec(20_000, "cmd", device=2, event=0, info="DISCARD"),
                                 rec(21_000, "gcmd", lpi=8200, device=2, event=0, icid=0, info="MAPTI"),
                                 rec(21_000, "cmd", lpi=8200, device=2, event=0, icid=0, info="MAPTI")]  # fmt: skip
    tr += msi(30_000, lpi=8192) + [rec(31_000, "deliver", vcpu=0, lpi=8192)]
    ev = ev_of(tr, {"translation_cache": "stale"})
    assert (ev.verdict.lost, ev.verdict.spurious) == (1, 1)
    for oc in ("lost", "spurious"):
        c = only(ev, oc, R.stale_translation)
        assert "translated device 2 event 0 to LPI 8192 at 30.000 µs although the guest's commands map it to LPI 8200" in c.text
        assert "(its last command for the pair: MAPTI at 21.000 µs)" in c.text and "translation_cache: stale" in c.text
        assert c.rows == (11, 14)


def test_target_changed_by_movall_and_restored_from_the_tables():
    tr = boot() + [rec(4000, "gcmd", vcpu=1, icid=0, info="MOVALL"), rec(4000, "cmd", vcpu=0, icid=1, info="MOVALL"),
                   rec(20_000, "kvm", "vm1", icid=0, info="ITS_RESTORE_TABLES")]  # fmt: skip
    tr += msi(30_000, "vm1") + [rec(31_000, "deliver", "vm1", vcpu=0, lpi=8192)]
    ev = ev_of(tr)
    assert ev.verdict.misrouted == 1
    c = only(ev, "misrouted", R.target_changed)
    assert "MOVALL at 4.000 µs moved the LPIs of vCPU 0 to vCPU 1 in their LPI records only" in c.text
    assert "RESTORE_TABLES at 20.000 µs re-created LPI 8192 from the tables, whose collection still targets vCPU 0" in c.text
    assert c.rows == (6, 8, 11)
    # without a restore, a MOVI written while the LPI was pending: still queued on the old vCPU
    tr = boot() + msi(10_000) + [rec(12_000, "gcmd", vcpu=1, icid=1, info="MAPC"), rec(12_000, "cmd", vcpu=1, icid=1, info="MAPC"),
                                 rec(13_000, "gcmd", device=2, event=0, icid=1, info="MOVI"),
                                 rec(13_000, "cmd", device=2, event=0, icid=1, info="MOVI"),
                                 rec(14_000, "deliver", vcpu=0, lpi=8192)]  # fmt: skip
    # a MOVI the guest wrote but the ITS ran only after the delivery
    late = boot() + [rec(12_000, "gcmd", vcpu=1, icid=1, info="MAPC"), rec(12_000, "cmd", vcpu=1, icid=1, info="MAPC"),
                     rec(13_000, "gcmd", device=2, event=0, icid=1, info="MOVI")] + msi(13_500) + [
                     rec(14_000, "deliver", vcpu=0, lpi=8192), rec(15_000, "cmd", device=2, event=0, icid=1, info="MOVI")]  # fmt: skip
    c = only(ev_of(late), "misrouted", R.target_changed)
    assert c.text == ("The guest wrote MOVI at 13.000 µs to move LPI 8192 to vCPU 1, but the ITS ran it only at "
                      "15.000 µs, after the delivery on vCPU 0 at 14.000 µs.")  # fmt: skip
    assert c.rows == (8, 11, 12)
    c = only(ev_of(tr), "misrouted", R.target_changed)
    assert c.text == ("MOVI at 13.000 µs changed LPI 8192's target to vCPU 1 while it was pending: the pending LPI was "
                      "still queued on vCPU 0, which took it at 14.000 µs.")  # fmt: skip


def test_step_ran_before_the_state_it_reads():
    tr = [rec(1000, "kvm", "vm1", icid=0, info="REDIST_REGS_SET"), rec(2000, "kvm", "vm1", icid=0, info="ITS_RESTORE_TABLES"),
          rec(3000, "step", "vm1", icid=0, info="memory:start"), rec(9000, "step", "vm1", icid=0, info="memory:end")]  # fmt: skip
    c = only(ev_of(tr, state_match=False), "state_mismatch", R.ran_before_state)
    assert c.text.startswith("ITS_RESTORE_TABLES on vm1 at 2.000 µs read the device, ITT and collection tables in guest "
                             "memory before the `memory` step wrote it at 9.000 µs")  # fmt: skip
    assert c.rows == (1, 3)
    tr = [rec(500, "step", "vm1", icid=0, info="memory:end"), rec(1000, "kvm", "vm1", icid=0, info="SET_GITS_BASER0"),
          rec(2000, "kvm", "vm1", icid=0, info="ITS_RESTORE_TABLES:EFAULT")]  # fmt: skip
    c = only(ev_of(tr), "failed", R.ran_before_state)
    assert "read the redistributors' GICR_PROPBASER/PENDBASER before anything wrote it on vm1" in c.text


def test_ebusy_and_what_the_policy_did():
    base = [rec(100, "vcpu", vcpu=0, info="exit"), rec(100, "vcpu", vcpu=1, info="enter"),
            rec(200, "kvm", icid=0, info="SAVE_PENDING_TABLES:EBUSY")]  # fmt: skip
    c = only(ev_of(base + [rec(200, "migration", icid=0, info="aborted:EBUSY:save_pending_tables")]), "aborted", R.ebusy_policy)
    assert c.text == ("SAVE_PENDING_TABLES on vm0 returned -EBUSY at 0.200 µs: vCPU 1 still inside KVM_RUN, so KVM could "
                      "not take every vCPU's lock; on_ebusy abort: the migration was aborted at 0.200 µs and the source resumed.")
    c = only(ev_of(base + [rec(300, "kvm", icid=0, info="SAVE_PENDING_TABLES")]), "errors", R.ebusy_policy)
    assert "on_ebusy retry: the VMM tried again and the call returned 0 at 0.300 µs (attempt 2)" in c.text
    c = only(ev_of(base + [rec(300, "kvm", icid=0, info="ITS_SAVE_TABLES")]), "errors", R.ebusy_policy)
    assert "on_ebusy continue" in c.text and "no LPI's pending state reached guest RAM" in c.text


def test_msis_refused_by_a_disabled_its():
    tr = boot("vm1") + [rec(5000, "raise", "vm1", device=2, event=0, info="msi"), rec(5000, "drop", "vm1", device=2, event=0, info="its_disabled"),
                        rec(8000, "kvm", "vm1", icid=0, info="SET_GITS_CTLR")]  # fmt: skip
    ev = ev_of(tr)
    assert {k: n for k, n in ev.verdict.dropped.items() if n} == {"its_disabled": 1}
    c = only(ev, "dropped:its_disabled", R.msi_refused)
    assert c.text == "1 MSI reached the ITS of vm1 (5.000 µs) while it was disabled; GITS_CTLR was written at 8.000 µs."
    assert c.rows == (7, 8)


def test_no_rule_applies():
    """A raise accepted and never delivered, with nothing in the trace to say why."""
    ev = ev_of(boot() + msi(10_000))
    assert ev.verdict.lost == 1
    assert R.causes(ev) == [("lost", 1, [])]
    assert R.NO_EXPLANATION == "no explanation found"


def test_outcome_classes_and_order():
    tr = boot() + [rec(2000, "kvm", icid=0, info="SAVE_PENDING_TABLES:EBUSY"),
                   rec(2000, "migration", icid=0, info="aborted:EBUSY:save_pending_tables")]  # fmt: skip
    assert R.outcome_classes(ev_of(tr, state_match=False)) == [("errors", 1), ("state_mismatch", 1), ("aborted", 1)]
