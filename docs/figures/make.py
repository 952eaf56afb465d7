"""The tutorial's figures, drawn from runs of the shipped scenarios (never by hand).

    python docs/figures/make.py            # rewrite docs/figures/*.svg
    python docs/figures/make.py --check    # exit 1 if a committed SVG differs from a fresh one

Each figure runs a scenario through the public API (``gicsim.run``, ``tables.capture``,
``report.analyse``, and one ``Simulation.step_observers`` hook, the same hook ``gicsim tables``
uses) and draws what the model did with matplotlib (no pyplot). The SVG is deterministic
(``gicsim.present.figures.figure_bytes``: fixed hash salt, no date, text kept as text), so
``tests/test_docs.py`` regenerates every figure and compares it byte for byte with the
committed file: a change in the model that changes a figure fails the docs tests until the
figure is regenerated.

- ``translation.svg``: the ITS translation path of one MSI of ``clean-migration``
  (DeviceID 2, EventID 1) through the tables ``KVM_DEV_ARM_ITS_SAVE_TABLES`` wrote in guest
  memory, with their real addresses and the 8 bytes of each entry;
- ``timeline.svg``: the migration of ``straggler-retry`` on both hosts — source and
  destination lanes with their steps, the downtime, the ``-EBUSY`` returns and the MSIs
  each host's ITS accepted or refused;
- ``lpi-life.svg``: the life of LPI 8447 in ``its-pending-migration``: its two raises (an MSI
  on the source, an ``INT`` on the destination), the kernel record's ``pending_latch`` and
  the pending-table bit in guest RAM at the end of every migration step on both hosts, and
  its single delivery (the second raise coalesced with the first).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as MplFigure

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCE_C, DEST_C, ERR_C, DROP_C, INK = "#3465a4", "#f57900", "#cc0000", "#c17d11", "#2e3436"


def _svg(fig: MplFigure) -> str:
    from gicsim.present.figures import figure_bytes

    return figure_bytes(fig)[0]


def _entry(snap: Any, title_start: str, index: int) -> tuple[str, Any]:
    """(table title, entry) of the entry ``index`` in the first table whose title starts so."""
    for t in snap.tables:
        if t.title.startswith(title_start):
            for e in t.entries:
                if e.index == index:
                    return t.title, e
    raise LookupError(f"{title_start!r}[{index}] not in the snapshot")


def _hex(raw: bytes) -> str:
    return raw.hex(" ")


# ======================================================================== translation ====

TRANSLATION_SCENARIO, TRANSLATION_STEP = "scenarios/clean-migration.yaml", "save_its_tables"
DEVICE, EVENT = 2, 1


def translation_data() -> dict[str, Any]:
    """The entries the ITS reads to translate (DEVICE, EVENT), as saved in guest memory."""
    from gicsim.kvm import abi
    from gicsim.present import tables
    from gicsim.scenario import load_scenario

    snap = tables.capture(load_scenario(ROOT / TRANSLATION_SCENARIO), TRANSLATION_STEP)
    dt_title, dte = _entry(snap, "Device table", DEVICE)
    itt_title, ite = _entry(snap, f"ITT of device {DEVICE} ", EVENT)
    lpi, icid = snap.ites[(DEVICE, EVENT)]
    ct_title, cte = _entry(snap, "Collection table", icid)
    vcpu = snap.collections[icid]
    pend_title = next(t.title for t in snap.tables if t.title.startswith(f"Pending table of vCPU {vcpu} "))
    d = abi.decode_dte(int.from_bytes(dte.raw, "little"))
    return dict(snap=snap, dte=dte, ite=ite, cte=cte, lpi=lpi, icid=icid, vcpu=vcpu, itt=d.itt_addr,
                dt_title=dt_title, itt_title=itt_title, ct_title=ct_title, pend_title=pend_title)  # fmt: skip


def translation() -> str:
    x = translation_data()
    snap = x["snap"]
    pend_base = int(x["pend_title"].split(" at ")[1].split()[0], 16)
    dt_base = x["dt_title"].split(" at ")[1].split(",")[0]
    ct_base = x["ct_title"].split(" at ")[1].split()[0]
    boxes = [
        ("MSI", f"DeviceID {DEVICE}\nEventID {EVENT}\n\nKVM_SIGNAL_MSI\nor an irqfd route"),
        ("DTE", f"device table\n{dt_base} (GITS_BASER0)\nDTE[{DEVICE}] @ 0x{x['dte'].addr:x}\n"
                f"{_hex(x['dte'].raw)}\nV=1 ITT=0x{x['itt']:x}"),
        ("ITE", f"ITT of device {DEVICE}\n@ 0x{x['itt']:x}\nITE[{EVENT}] @ 0x{x['ite'].addr:x}\n"
                f"{_hex(x['ite'].raw)}\npINTID={x['lpi']} ICID={x['icid']}"),
        ("CTE", f"collection table\n{ct_base} (GITS_BASER1)\nCTE #{x['icid']} @ 0x{x['cte'].addr:x}\n"
                f"{_hex(x['cte'].raw)}\nRDBase = vCPU {x['vcpu']}"),
        ("redistributor", f"vCPU {x['vcpu']}'s pending table\n@ 0x{pend_base:x} (GICR_PENDBASER)\n"
                          f"LPI {x['lpi']}:\nbyte 0x{pend_base + x['lpi'] // 8:x}, bit {x['lpi'] % 8}"),
    ]  # fmt: skip
    fig = MplFigure(figsize=(13, 3.3))
    ax = fig.add_axes((0, 0, 1, 0.88))
    ax.set_xlim(0, len(boxes))
    ax.set_ylim(0, 1)
    ax.axis("off")
    for i, (head, body) in enumerate(boxes):
        c = SOURCE_C if i else INK
        ax.text(i + 0.5, 0.88, head, ha="center", va="center", fontsize=11, weight="bold", color=c)
        ax.text(i + 0.5, 0.45, body, ha="center", va="center", fontsize=7.6, family="monospace", linespacing=1.5,
                bbox=dict(boxstyle="round,pad=0.6", fc="#eef2f8" if i else "#f3f3f3", ec=c, lw=1.2))  # fmt: skip
        if i:
            ax.annotate("", xy=(i + 0.08, 0.45), xytext=(i - 0.08, 0.45),
                        arrowprops=dict(arrowstyle="-|>", color=INK, lw=1.4))  # fmt: skip
    fig.suptitle(f"Translating (DeviceID {DEVICE}, EventID {EVENT}) → LPI {x['lpi']} → vCPU {x['vcpu']}: the entries "
                 f"in guest memory of {snap.scenario} at the end of `{snap.step}` ({snap.side})", fontsize=10)  # fmt: skip
    return _svg(fig)


# =========================================================================== timeline ====

TIMELINE_SCENARIO = "scenarios/straggler-retry.yaml"


def timeline_data() -> dict[str, Any]:
    import gicsim
    from gicsim.present import report
    from gicsim.present.rundata import from_result

    res = gicsim.run(ROOT / TIMELINE_SCENARIO)
    an = report.analyse(from_result(res))
    m = res.summary["migrations"][0]
    df = res.trace
    kinds = df["kind"].astype(str)
    msis = df[kinds.isin(["accept", "drop"])]
    return dict(res=res, steps=an.steps, mig=m, msis=msis, kinds=kinds[msis.index])


def timeline() -> str:
    x = timeline_data()
    steps, m, msis = x["steps"], x["mig"], x["msis"]
    down = m["phases"]["downtime"]
    pre = m["phases"].get("precopy", down)
    lo, hi = (pre["start_ns"] - 150_000) / 1000, (down["end_ns"] + 250_000) / 1000
    fig = MplFigure(figsize=(12.5, 4.6))
    ax = fig.add_axes((0.15, 0.13, 0.83, 0.78))
    lanes = {"source": 3.0, "source MSIs": 2.2, "destination": 1.0, "destination MSIs": 0.2}
    ax.axvspan(down["start_ns"] / 1000, down["end_ns"] / 1000, color="#fce94f", alpha=0.35, lw=0)
    ax.text(down["start_ns"] / 1000, 4.15, f" downtime {m['downtime_ns'] / 1000:,.1f} µs", fontsize=8, va="center")
    ax.axvspan(pre["start_ns"] / 1000, pre["end_ns"] / 1000, color="#8ae234", alpha=0.25, lw=0)
    ax.text(pre["start_ns"] / 1000, 4.15, " pre-copy", fontsize=8, va="center", ha="right")
    for r in steps.itertuples():
        y = lanes[r.role]
        c = SOURCE_C if r.role == "source" else DEST_C
        w = max((r.end_ns - r.start_ns) / 1000, 0.6)
        ax.barh(y, w, left=r.start_ns / 1000, height=0.5, color=c, alpha=0.85, ec="white", lw=0.5)
        ax.text(r.start_ns / 1000 + w / 2, y + 0.3, r.step, fontsize=6.5, ha="left", va="bottom",
                rotation=35 if r.role == "source" else 75,
                color=c, rotation_mode="anchor")  # fmt: skip
    for e in m["errors"]:
        ax.plot([e["t_ns"] / 1000], [lanes["source"]], "x", color=ERR_C, ms=8, mew=2)
    if m["errors"]:
        ax.text(m["errors"][0]["t_ns"] / 1000, lanes["source"] - 0.45,
                f"{len(m['errors'])}× -{m['errors'][0]['errno']}", color=ERR_C, fontsize=8, ha="left")  # fmt: skip
    for role, side in (("source", m.get("source_side", "vm0")), ("destination", m.get("dest_side", "vm1"))):
        sel = msis[msis["side"].astype(str) == side]
        k = x["kinds"][sel.index]
        y = lanes[f"{role} MSIs"]
        acc, drp = sel[k == "accept"]["t"] / 1000, sel[k == "drop"]["t"] / 1000
        ax.plot(acc, [y] * len(acc), "|", color=SOURCE_C if role == "source" else DEST_C, ms=12,
                label=None)  # fmt: skip
        ax.plot(drp, [y - 0.18] * len(drp), "v", color=DROP_C, ms=4)
        ax.text(hi, y, f" whole run: {len(acc)} accepted, {len(drp)} refused", fontsize=7, va="center", ha="right",
                bbox=dict(fc="white", ec="none", alpha=0.8, pad=1))  # fmt: skip
    ax.set_yticks(list(lanes.values()), [f"{k} (vm0)" if k.startswith("source") else f"{k} (vm1)" for k in lanes])
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.2, 4.6)
    ax.set_xlabel("simulated time (µs)")
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    fig.suptitle(f"{x['res'].scenario.name}: migration {m['status']}; steps on each host, -EBUSY returns (×), "
                 "MSIs accepted (|) and refused (▾)", fontsize=10)  # fmt: skip
    return _svg(fig)


# =========================================================================== LPI life ====

LIFE_SCENARIO, LIFE_LPI = "scenarios/its-pending-migration.yaml", 8447


def lpi_life_data() -> dict[str, Any]:
    """One run of the scenario; at the end of every migration step, the LPI's kernel record
    (``pending_latch``, or no record) and its bit in the pending table, on both hosts."""
    import gicsim
    from gicsim.kvm.arm_gic_v3 import GICR_PENDBASER_ADDRESS
    from gicsim.scenario import load_scenario
    from gicsim.sim.simulation import Simulation

    sc = load_scenario(ROOT / LIFE_SCENARIO)
    sim = Simulation(sc)
    samples: list[dict[str, Any]] = []
    pend: dict[str, int] = {}

    def look(vm: Any, step: str, role: str) -> None:
        irq = vm.vgic.lpi_xa.get(LIFE_LPI)
        vcpu = irq.target_vcpu if irq is not None and irq.target_vcpu is not None else pend.get("vcpu", 0)
        base = GICR_PENDBASER_ADDRESS(vm.vgic.cpus[vcpu].pendbaser) or pend.get("base", 0)
        if role == "source" and base:
            pend.update(base=base, vcpu=vcpu)
        bit = bool(vm.mem.read_u8(base + LIFE_LPI // 8) & (1 << LIFE_LPI % 8)) if base else None
        latch = None if irq is None else bool(irq.pending_latch)
        samples.append(dict(t=int(sim.env.now), step=step, role=role, latch=latch, ram=bit))

    def observer(ctl: Any, name: str, vm: Any) -> None:
        look(ctl.src, name, "source")
        if ctl.dst is not None and ctl.dst is not ctl.src:
            look(ctl.dst, name, "destination")

    sim.step_observers.append(observer)
    sim.run()
    res = gicsim.run(sc)  # the same run (same scenario and seed: the same trace), judged
    df = res.trace
    rows = df[(df["lpi"] == LIFE_LPI) & df["kind"].astype(str).isin(["accept", "drop", "deliver", "eoi"])]
    return dict(res=res, samples=samples, rows=rows)


def lpi_life() -> str:
    x = lpi_life_data()
    res, samples, rows = x["res"], x["samples"], x["rows"]
    # one column per moment, in time order: the LPI's trace rows and the end of every step
    cols: list[dict[str, Any]] = [dict(t=int(r.t), kind=str(r.kind), side=str(r.side), info=str(r.info),
                                       vcpu=r.vcpu) for r in rows.itertuples()]  # fmt: skip
    cols += [dict(t=s["t"], kind="step", step=s["step"], sample=s) for s in samples if s["role"] == "source"]
    by_t = {(s["t"], s["step"]): s for s in samples if s["role"] == "destination"}
    cols.sort(key=lambda c: (c["t"], c["kind"] == "step"))
    lanes = {"raise → ITS": 5, "source: pending_latch": 4, "source: RAM bit": 3.3,
             "destination: pending_latch": 2.3, "destination: RAM bit": 1.6, "delivery / EOI": 0.6}  # fmt: skip
    fig = MplFigure(figsize=(12.5, 5.6))
    ax = fig.add_axes((0.16, 0.36, 0.82, 0.5))
    labels = []
    m = res.summary["migrations"][0]
    down = m["phases"]["downtime"]
    inside = [i for i, c in enumerate(cols) if down["start_ns"] <= c["t"] <= down["end_ns"]]
    if inside:
        ax.axvspan(inside[0] - 0.5, inside[-1] + 0.5, color="#fce94f", alpha=0.35, lw=0)
        ax.text(inside[0] - 0.45, 5.55, f"downtime ({m['downtime_ns'] / 1000:,.0f} µs)", fontsize=8)
    for i, c in enumerate(cols):
        t = f"{c['t'] / 1000:,.1f} µs"
        if c["kind"] == "step":
            labels.append(f"end of {c['step']}  {t}")
            for role, smp in (("source", c["sample"]), ("destination", by_t.get((c["t"], c["step"])))):
                if smp is None:
                    continue
                col = SOURCE_C if role == "source" else DEST_C
                for what, lane in (("latch", f"{role}: pending_latch"), ("ram", f"{role}: RAM bit")):
                    v = smp[what]
                    if v is None:
                        ax.plot([i], [lanes[lane]], "x", color="#888a85", ms=6, mew=1.5)
                    else:
                        ax.plot([i], [lanes[lane]], "o", ms=8, mec=col, mfc=col if v else "white", mew=1.5)
            continue
        col = SOURCE_C if c["side"] == "vm0" else DEST_C
        ax.axvline(i, color=col, lw=0.8, alpha=0.4)
        if c["kind"] in ("accept", "drop"):
            labels.append(f"{c['kind']} ({c['info']}) on {c['side']}  {t}")
            ax.plot([i], [lanes["raise → ITS"]], "o" if c["kind"] == "accept" else "v", color=col, ms=9)
        else:
            labels.append(f"{c['kind']} on {c['side']}, vCPU {c['vcpu']}  {t}")
            ax.plot([i], [lanes["delivery / EOI"]], "^" if c["kind"] == "deliver" else "s", color=col, ms=9)
    ax.set_xticks(range(len(cols)), labels, rotation=55, ha="right", fontsize=7)
    ax.set_yticks(list(lanes.values()), list(lanes), fontsize=8)
    ax.set_xlim(-0.6, len(cols) - 0.4)
    ax.set_ylim(0.1, 5.9)
    for sp in ("top", "right"):
        ax.spines[sp].set_visible(False)
    fig.text(0.5, 0.905, "● set   ○ clear   × no LPI record  (pending_latch: the kernel's vgic_irq record; RAM bit: "
             "the LPI's bit in its vCPU's pending table; both sampled when each migration step ends) — "
             "blue: source (vm0), orange: destination (vm1)", fontsize=7.5, ha="center")  # fmt: skip
    fig.suptitle(f"LPI {LIFE_LPI} in {res.scenario.name}: {len(rows[rows['kind'].astype(str) == 'accept'])} raises "
                 f"accepted, one pending state carried through guest RAM, "
                 f"{len(rows[rows['kind'].astype(str) == 'deliver'])} delivery", fontsize=10)  # fmt: skip
    return _svg(fig)


FIGURES: dict[str, Callable[[], str]] = {
    "translation.svg": translation,
    "timeline.svg": timeline,
    "lpi-life.svg": lpi_life,
}


def main(argv: list[str]) -> int:
    from gicsim.present.output import write_text_atomic

    check = "--check" in argv
    bad = []
    for name, make in FIGURES.items():
        svg = make()
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != svg:
                bad.append(name)
        else:
            write_text_atomic(path, svg)
    if bad:
        print("figures differ from a fresh run: " + ", ".join(bad) + " (python docs/figures/make.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
