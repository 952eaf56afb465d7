"""``gicsim explain`` names the cause of each hazard (the step order, the straggler, the
kernel variant) and the affected LPIs, from trace facts; it never contradicts the oracles."""

from __future__ import annotations

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
    "tables-before-memory": ["`memory` ran after", "walked the tables before the `memory` step",
                             "had no LPI record for it", "dropped as `unmapped`"],
    "creadr-before-cbaser": ["`gits_cbaser` ran after `gits_creadr`", "the CBASER write reset CREADR to 0",
                             "re-executed commands from the queue"],
    "ctlr-before-restore": ["`gits_ctlr` ran before", "KVM ignores an enable while CBASER, BASER0 or BASER1 is not valid",
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
