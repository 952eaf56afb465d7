"""``gicsim explain`` names the cause of each hazard (the step order, the straggler, the
kernel variant) and the affected LPIs, from trace facts; it never contradicts the oracles."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.present import explain
from gicsim.present.rundata import from_result, read_run_dir

SC = Path(__file__).resolve().parent.parent / "scenarios"

#: scenario -> phrases that name the cause
CAUSES = {
    "devices-not-quiesced": ["`quiesce_devices` is not among the source steps",
                             "after SAVE_PENDING_TABLES had written the pending tables", "dropped as `not_restored`"],
    "restore-its-before-redistributors": ["`redistributors` ran after", "returned -EFAULT",
                                          "The redistributors of vm1 were not restored yet", "GICR_PENDBASER"],
    "tables-before-memory": ["`memory` ran after", "read the device, ITT and collection tables in guest memory before the `memory` step wrote it",
                             "had no LPI record for it", "dropped as `unmapped`"],
    "creadr-before-cbaser": ["`gits_cbaser` ran after `gits_creadr`", "a CBASER write resets CREADR to 0",
                             "re-executed commands from the queue"],
    "ctlr-before-restore": ["`gits_ctlr` ran before", "(an enable is ignored while they are invalid)",
                            "dropped as `its_disabled`"],
    "v5-double-sync": ["Kernel variant `pending_sync_on_ctlr: true`", "overwrote pending_latch"],
    "stale-translation-cache": ["Kernel variant `translation_cache: stale`", "as LPI 8192, although the guest's own commands map"],
    "straggler-abort": ["vCPU 3 was still inside KVM_RUN", "configured straggler", "on_ebusy abort",
                        "aborted (EBUSY in `save_pending_tables`)"],
    "straggler-continue": ["vCPU 3 was still inside KVM_RUN", "configured straggler", "on_ebusy continue",
                           "SAVE_PENDING_TABLES never succeeded"],
    "straggler-retry": ["vCPU 3 was still inside KVM_RUN", "configured straggler", "on_ebusy retry: attempt 3 of 6",
                        "returned 0 (attempt 4)"],
}  # fmt: skip


def expand(text: str) -> set[int]:
    out: set[int] = set()
    for part in re.split(r",\s*", text):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if m:
            a, b = int(m[1]), int(m[2] or m[1])
            out |= set(range(a, b + 1))
    return out


def section(text: str, head: str) -> str:
    m = re.search(rf"^### {head}.*?(?=^### |^## |\Z)", text, flags=re.S | re.M)
    return m[0] if m else ""


@pytest.fixture(scope="module")
def runs():
    return {}


def _run(runs, name):
    if name not in runs:
        res = gicsim.run(SC / f"{name}.yaml")
        runs[name] = (res, explain.explain(from_result(res)))
    return runs[name]


@pytest.mark.parametrize("name", sorted(CAUSES))
def test_explain_names_cause_and_affected_lpis(runs, name):
    res, text = _run(runs, name)
    flat = " ".join(text.split())
    for phrase in CAUSES[name]:
        assert phrase in flat, f"{name}: missing {phrase!r}\n{text}"
    v = res.verdict
    # every lost / spurious / misrouted LPI is named in its section heading and in a group
    for head, lpis in (("Lost", {lpi for _, lpi in v.lost_lpis}), ("Spurious", {x[1] for x in v.spurious_lpis}),
                       ("Misrouted", {x[1] for x in v.misrouted_lpis})):  # fmt: skip
        sec = section(text, head)
        if not lpis:
            assert not sec
            continue
        heading = re.search(r"of LPIs (.*)$", sec.splitlines()[0])[1]
        assert expand(heading) == lpis
        named: set[int] = set()
        for block in re.split(r"\n(?=\d+\. )", sec)[1:]:  # one block per group of LPIs
            named |= expand(re.match(r"\d+\. LPIs? ([\d, -]+?) \(", " ".join(block.split()))[1])
        assert named == lpis, (head, named, lpis)
    # dropped raises: the LPIs the guest meant them for are named
    if any(v.dropped.values()):
        sec = " ".join(section(text, "Dropped").split())
        for reason, n in v.dropped.items():
            if n:
                assert f"dropped as `{reason}`" in sec
    # the oracle figures are quoted as they are
    assert f"{v.lost:,} lost, {v.spurious:,} spurious, {v.misrouted:,} misrouted" in flat


def test_straggler_pending_lpis_named(runs):
    _, text = _run(runs, "straggler-abort")
    flat = " ".join(text.split())
    assert "LPIs pending when the VM stopped (1,061.035 µs): 8192-8199." in flat
    assert "were delivered on vm0 (vCPU 1)" in flat


def test_ebusy_lines_name_who_held_the_lock(runs):
    _, text = _run(runs, "straggler-retry")
    flat = " ".join(text.split())
    assert flat.count("returned -EBUSY: vCPU 3 was still inside KVM_RUN (vCPU 3 left it at") == 3
    res, text = _run(runs, "movi-race")
    flat = " ".join(text.split())
    assert "vCPU 2 was still inside KVM_RUN" in flat and "stays in its MMIO exit" in flat


def test_timeline_is_time_ordered(runs):
    _, text = _run(runs, "creadr-before-cbaser")
    ts = [float(m.replace(",", "")) for m in re.findall(r"^\s*\[\s*([\d,]+\.\d+) µs\]", text, flags=re.M)]
    assert ts == sorted(ts) and len(ts) > 20


def test_clean_run_and_run_dir_equivalence(tmp_path, runs):
    _, text = _run(runs, "clean-migration")
    assert "Every accepted raise was delivered, once" in text
    r = CliRunner().invoke(main, ["run", str(SC / "v5-double-sync.yaml"), "-o", str(tmp_path)])
    assert r.exit_code == 0
    from_dir = explain.explain(read_run_dir(tmp_path / "v5-double-sync"))
    assert from_dir == _run(runs, "v5-double-sync")[1]
    r = CliRunner().invoke(main, ["explain", str(tmp_path / "v5-double-sync")])
    assert r.exit_code == 0 and r.output == from_dir


def test_explain_does_not_decide_outcomes():
    """The chains come after the verdict: a clean scenario with the order flipped back has
    no lost section, whatever the text machinery could say about orders."""
    from gicsim.scenario import DEFAULT_DEST_STEPS, load_scenario, resolved_dict

    d = resolved_dict(load_scenario(SC / "creadr-before-cbaser.yaml"))
    d["migration"][0]["destination"]["steps"] = list(DEFAULT_DEST_STEPS)
    d["expect"] = {}
    res = gicsim.run(d)
    text = explain.explain(from_result(res))
    assert res.verdict.lost == 0 and "### Lost" not in text


# ============================================================ the verdict block ====
SHIPPED = sorted(p.stem for p in SC.glob("*.yaml") if p.stem != "scale-512")


def verdict_block(text: str) -> list[str]:
    """The ``- `` items of ``## Verdict``, unwrapped."""
    m = re.search(r"^## Verdict\n\n(.*?)\n\n## ", text, flags=re.S | re.M)
    assert m, text[:2000]
    return [" ".join(x.split()) for x in re.split(r"\n(?=- )", m[1])]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_outcome_has_a_cause(runs, name):
    """The verdict block leads (before the setup), one item per outcome class present, each
    with its count and a cause found by a rule; no shipped scenario is left unexplained."""
    res, text = _run(runs, name)
    assert text.index("## Verdict") < text.index("## Setup")
    items = verdict_block(text)
    v, s = res.verdict, res.summary
    want = [f"Lost: {v.lost} raise" for _ in [0] if v.lost] + [f"Spurious: {v.spurious} deliver" for _ in [0] if v.spurious]
    want += [f"Misrouted: {v.misrouted} deliver" for _ in [0] if v.misrouted]
    want += [f"Dropped as `{r}`: {n} raise" for r, n in v.dropped.items() if n]
    errs = sum(len(m.get("errors", [])) for m in s["migrations"])
    want += [f"KVM errors: {errs} failed call" for _ in [0] if errs]
    want += ["State mismatch (destination at resume vs source at pause) — " for _ in [0] if s.get("state_match") is False]
    want += [f"{st.capitalize()}: " for st in ("aborted", "failed") if any(m["status"] == st for m in s["migrations"])]
    if not want:
        assert len(items) == 1 and items[0].startswith("- Healthy: ")
        return
    assert len(items) == len(want), items
    for item, w in zip(items, want, strict=True):
        assert item.startswith("- " + w), (item, w)
        assert "no explanation found" not in item
    assert "no explanation found" not in text
    # the timeline is in time order (calls stamped when they return, guest writes before
    # the commands the ITS ran for them)
    ts = [float(m.replace(",", "")) for m in re.findall(r"^\s*\[\s*([\d,]+\.\d+) µs\]", text, flags=re.M)]
    assert ts == sorted(ts)


def test_verdict_block_uses_the_rules_causes(runs):
    _, text = _run(runs, "creadr-before-cbaser")
    items = verdict_block(text)
    assert items[0] == ("- Lost: 16 raises — The ITS of vm1 re-ran 17 commands the guest wrote once (MAPD, MAPTI ×16); "
                        "a GITS_CBASER write after GITS_CREADR had reset the read pointer. (1 more cause below.)")
    detail = " ".join(section(text, "Causes").split())
    assert ("The ITS of vm1 ran 17 commands the guest wrote once a second time (MAPD, MAPTI ×16, from 1,219.914 µs): "
            "GITS_CBASER was written at 1,183.264 µs, after GITS_CREADR at 1,182.264 µs, and a CBASER write resets "
            "CREADR to 0, so the read pointer went back under commands already run; the write at 1,219.164 µs made "
            "them runnable.") in detail  # fmt: skip
    assert "[rule `replayed_commands`]" in detail and "[rule `pending_bit_reread`]" in detail
    assert "#247 1,183.264 µs vm1 kvm SET_GITS_CBASER" in detail


def test_no_rule_applies_says_so(tmp_path):
    """A lost raise no rule explains is said to be unexplained, not guessed at."""
    from gicsim.judge.oracles import judge
    from gicsim.judge.trace import records_to_frame
    from gicsim.present.explain.block import cause_detail
    from gicsim.present.explain.block import verdict_block as vb
    from gicsim.present.explain.context import context

    res = gicsim.run(SC / "clean-migration.yaml")
    cx = context(from_result(res))
    rec = [(1000, "raise", "vm0", -1, -1, 2, 0, -1, "msi"), (1000, "accept", "vm0", 0, 8192, 2, 0, -1, "")]
    gc = [(500, "gcmd", "vm0", 0, -1, -1, -1, 0, "MAPC"), (600, "gcmd", "vm0", -1, 8192, 2, 0, 0, "MAPTI")]
    cx.df = records_to_frame(gc + rec)
    cx.verdict = judge(gc + rec, 10**9)
    cx.run.summary["state_match"] = True
    assert vb(cx) == ["## Verdict", "", "- Lost: 1 raise — no explanation found.", ""]
    assert "    - no explanation found: no rule over the trace's mechanisms applies." in cause_detail(cx)


# ===================================================== three scenarios of the tests ====
STALE_BIT = """
name: stale-bit-remap
seed: 5
until_us: 4000
vm: {vcpus: 2, memory_mib: 256}
guest:
  boot:
    - enable_lpis: all
    - mapc: {icid: 0, vcpu: 0}
    - mapc: {icid: 1, vcpu: 1}
    - mapd: {device: 2, event_bits: 3}
    - map_events: {device: 2, events: 0-3, lpis: 8192-8195, icid: 1}
    - its_enable: true
    - mask: [1]
  actions:
    - {after: resume, delay_us: 50, vcpu: 1, mask: false}
    - {after: resume, delay_us: 400, vcpu: 0, discard: {device: 2, event: 0}}
    - {after: resume, delay_us: 410, vcpu: 0, mapti: {device: 2, event: 0, lpi: 8192, icid: 1}}
devices:
  - {device: 2, events: 0-3, at_us: [500]}
migration:
  at_us: 1000
  destination:
    steps: [memory, its_init, gits_cbaser, gits_regs, its_restore_tables, redistributors, gits_ctlr, resume]
"""
MOVALL = """
name: movall-misroute
seed: 5
until_us: 4000
vm: {vcpus: 2, memory_mib: 256}
guest:
  boot:
    - enable_lpis: all
    - mapc: {icid: 0, vcpu: 0}
    - mapd: {device: 2, event_bits: 3}
    - map_events: {device: 2, events: 0-3, lpis: 8192-8195, icid: 0}
    - its_enable: true
    - movall: {from_vcpu: 0, to_vcpu: 1}
devices:
  - {device: 2, events: 0-3, rate_per_s: 5000, pattern: periodic, start_us: 100, stop_us: 3500}
migration:
  at_us: 1000
"""
QUIET_MISMATCH = """
name: quiet-mismatch
seed: 5
until_us: 8000
vm: {vcpus: 2, memory_mib: 256}
guest:
  boot:
    - enable_lpis: all
    - mapc: {icid: 0, vcpu: 0}
    - mapd: {device: 2, event_bits: 3}
    - map_events: {device: 2, events: 0-3, lpis: 8192-8195, icid: 0}
    - its_enable: true
devices:
  - {device: 2, events: 0-3, at_us: [300]}
migration:
  at_us: 1000
  destination:
    steps: [its_init, redistributors, gits_cbaser, gits_iidr, gits_regs, gits_creadr, gits_cwriter, gits_baser,
            its_restore_tables, memory, gits_ctlr, resume]
"""


def _explain_yaml(tmp_path, text):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    r = CliRunner().invoke(main, ["explain", str(f)])
    assert r.exit_code == 0, r.output
    return r.output


def test_spurious_from_a_stale_pending_bit_after_a_failed_migration(tmp_path):
    text = _explain_yaml(tmp_path, STALE_BIT)
    items = verdict_block(text)
    assert items[0] == ("- Spurious: 1 delivery — LPI 8192's pending bit, saved to RAM and then consumed by a delivery, "
                        "was latched again (MAPTI at 1,592.365 µs): a stale bit.")
    assert (
        "SAVE_PENDING_TABLES at 1,094.035 µs wrote LPI 8192's pending bit into guest RAM while "
        "it was pending; vCPU 1 then took the LPI at 1,236.664 µs, which consumes the LPI record's latch but leaves the "
        "bit in RAM set (KVM clears a bit only when it latches it); at 1,592.365 µs MAPTI re-created it and latched "
        "that stale bit, so the LPI was delivered again at 1,593.843 µs with no raise.") in " ".join(section(text, "Causes").split())
    assert items[1] == ("- KVM errors: 1 failed call — ITS_RESTORE_TABLES on vm1 (-EFAULT) read the redistributors' "
                        "GICR_PROPBASER/PENDBASER before anything on vm1 had set that state.")
    assert items[2].startswith("- Failed: 1 migration — ITS_RESTORE_TABLES")
    # the guest's re-MAPTI is narrated before the ITS ran it, not after
    flat = " ".join(text.split())
    w = flat.index("The guest wrote 1 command: MAPTI (device 2 event 0 → LPI 8192, collection 1) into the command "
                   "queue; the ITS of vm0 ran 1 command (MAPTI) from 1,592.365 µs and the write returned at 1,592.365 µs.")
    assert w > flat.index("The guest wrote 1 command: DISCARD")


def test_movall_misroute(tmp_path):
    text = _explain_yaml(tmp_path, MOVALL)
    items = verdict_block(text)
    want = ("MOVALL at 8.064 µs moved the LPIs of vCPU 0 to vCPU 1 in their LPI records only (MOVALL changes neither "
            "the ITEs nor the collection table); RESTORE_TABLES at 1,157.957 µs re-created LPI 8193 from the tables, "
            "whose collection still targets vCPU 0, so it was delivered on vCPU 0 (13 misrouted deliveries).")  # fmt: skip
    head = ("MOVALL's new target (vCPU 1) lived only in the LPI records; RESTORE_TABLES re-derived vCPU 0 from the "
            "collection table.")
    assert items == [f"- Misrouted: 13 deliveries — {head}",
                     f"- State mismatch (destination at resume vs source at pause) — {head}"]
    assert want in " ".join(section(text, "Causes").split())


def test_state_mismatch_with_nothing_lost(tmp_path):
    text = _explain_yaml(tmp_path, QUIET_MISMATCH)
    assert "0 lost, 0 spurious, 0 misrouted" in " ".join(text.split())
    assert verdict_block(text) == [
        "- State mismatch (destination at resume vs source at pause) — ITS_RESTORE_TABLES on vm1 ran before the "
        "`memory` step, which writes the device, ITT and collection tables in guest memory that it reads."]
    assert ("ITS_RESTORE_TABLES on vm1 at 1,167.957 µs read the device, ITT and collection tables in guest memory before "
            "the `memory` step wrote it at 7,066.287 µs: it could only walk what pre-copy had sent, not the entries "
            "saved at the stop.") in " ".join(section(text, "Causes").split())


def test_calls_are_stamped_when_they_return(runs):
    """SAVE_PENDING_TABLES's row is written before its cost is charged: the line says it
    returned by the end of its step, at the step's end time."""
    _, text = _run(runs, "straggler-retry")
    flat = " ".join(text.split())
    assert "[ 1,433.035 µs] KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES returned 0 (attempt 4) by the end of the step." in flat
    assert "Source step `save_its_tables` on vm0" in text


@pytest.mark.skipif(os.environ.get("GICSIM_SCALE") != "1", reason="scale-512 takes ~90 s to run and ~20 s to explain: GICSIM_SCALE=1")
def test_scale_512_explain_is_short():
    text = explain.explain(from_result(gicsim.run(SC / "scale-512.yaml")))
    assert len(text.splitlines()) < 150
    assert "MAPC ×512 (collections 0-511 → vCPUs 0-511)" in text
