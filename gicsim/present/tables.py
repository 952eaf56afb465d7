"""``gicsim tables``: the ITS tables and LPI pending tables in guest memory, at the end of a
migration step, as a hex dump with every entry decoded (ABI REV0, SPEC §2).

The scenario runs with an observer on ``Simulation.step_observers``; when the chosen step of
the chosen migration ends, the observer walks guest memory right away (later steps change
it): the device table from ``GITS_BASER0`` (flat, or level 1 then each valid level-2 page),
the ITT of every valid DTE, the collection table from ``GITS_BASER1``, and the bytes of every
vCPU's pending table (from ``GICR_PENDBASER``) that have a bit set for an LPI. Each entry is
shown as its 8 bytes in memory order (little-endian) and decoded.

On a destination whose ``GITS_BASER``/``GICR_PENDBASER`` are not restored yet, the register
values the source sent are used to find the tables, and the dump says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from gicsim.kvm import abi
from gicsim.kvm.abi import ESZ, GIC_LPI_OFFSET, L2_DTES, SZ_64K
from gicsim.kvm.arm_gic_v3 import (
    GICR_CTLR_ENABLE_LPIS,
    GICR_PENDBASER_ADDRESS,
    GICR_PROPBASER_ADDRESS,
)
from gicsim.kvm.errors import EFAULT
from gicsim.kvm.its import (
    GITS_BASER_INDIRECT,
    GITS_BASER_NR_PAGES,
    GITS_CBASER_ADDRESS,
    GITS_VALID,
    ITS_CMD_BUFFER_SIZE,
    GITS_BASER_ADDR_48_to_52,
)
from gicsim.present.explain import ids

if TYPE_CHECKING:
    from gicsim.kvm.memory import GuestMemory
    from gicsim.scenario import Scenario
    from gicsim.sim.vm import VirtualMachine

PEND_BYTES = (1 << abi.INTERRUPT_ID_BITS_ITS) // 8  # 16 ID bits: 8 KiB per pending table


class TablesError(Exception):
    """The step did not run (left out, or the migration stopped before it)."""


@attrs.define
class Entry:
    addr: int
    raw: bytes
    index: int
    text: str
    valid: bool


@attrs.define
class Table:
    title: str
    entries: list[Entry]
    notes: list[str] = attrs.Factory(list)


@attrs.define
class Snapshot:
    scenario: str
    step: str
    side: str  # vm name
    role: str  # source | destination
    migration: int  # 1-based
    t_ns: int
    registers: list[str]
    tables: list[Table]
    # decoded, for programs: DeviceID -> (itt, bits); (dev, ev) -> (lpi, icid); icid -> vcpu;
    # vcpu -> pending LPIs
    devices: dict[int, tuple[int, int]] = attrs.Factory(dict)
    ites: dict[tuple[int, int], tuple[int, int]] = attrs.Factory(dict)
    collections: dict[int, int] = attrs.Factory(dict)
    pending: dict[int, list[int]] = attrs.Factory(dict)


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02x}" for x in b)


def _walk_nonzero(mem: GuestMemory, base: int, size: int, limit_slots: int | None = None) -> list[int]:
    """Addresses of the non-zero 8-byte entries in [base, base+size) (skipping zeros in bulk)."""
    out = []
    end = base + size
    cur = base
    while cur < end:
        try:
            hit = mem.find_nonzero(cur, end, ESZ)
        except EFAULT:
            break
        if hit is None:
            break
        out.append(hit)
        if limit_slots is not None and len(out) >= limit_slots:
            break
        cur = hit + ESZ
    return out


def _u64(mem: GuestMemory, addr: int) -> tuple[int, bytes]:
    raw = mem.read(addr, ESZ)
    return int.from_bytes(raw, "little"), raw


def dte_text(devid: int, val: int) -> tuple[str, bool]:
    d = abi.decode_dte(val)
    nxt = "0 (last)" if d.next == 0 else f"{d.next} (→ DeviceID {devid + d.next})"
    if not d.valid:
        return f"DTE[{devid}]: V=0 (invalid) next={nxt}", False
    return (f"DTE[{devid}]: V=1 next={nxt} ITT=0x{d.itt_addr:x} Size={d.num_eventid_bits - 1} "
            f"({d.num_eventid_bits} EventID bits, {1 << d.num_eventid_bits} events)"), True  # fmt: skip


def ite_text(ev: int, val: int, prop: int | None) -> tuple[str, bool]:
    i = abi.decode_ite(val)
    nxt = "0 (last)" if i.next == 0 else f"{i.next} (→ EventID {ev + i.next})"
    if i.pintid == 0:
        return f"ITE[{ev}]: pINTID=0 (invalid) next={nxt} ICID={i.icid}", False
    p = ""
    if prop is not None:
        p = f"; property byte 0x{prop:02x} ({'enabled' if prop & 1 else 'disabled'}, priority 0x{prop & 0xFC:02x})"
    return f"ITE[{ev}]: pINTID={i.pintid} ICID={i.icid} next={nxt}{p}", True


def cte_text(n: int, val: int) -> tuple[str, bool]:
    c = abi.decode_cte(val)
    if not c.valid:
        return f"CTE #{n}: V=0 (ends the table)", False
    tgt = "not mapped (0xffffffff)" if c.target_addr == abi.COLLECTION_NOT_MAPPED else f"vCPU {c.target_addr}"
    return f"CTE #{n}: V=1 ICID={c.icid} RDBase={tgt}", True


def dump_vm(vm: VirtualMachine, other: VirtualMachine | None = None, limit: int = 64) -> tuple[list[str], list[Table], dict[str, Any]]:
    """Registers, tables and decoded maps of ``vm``'s guest memory now."""
    mem = vm.mem
    its = vm.its
    vgic = vm.vgic
    regs: list[str] = []
    tables: list[Table] = []
    dec: dict[str, Any] = {"devices": {}, "ites": {}, "collections": {}, "pending": {}}

    def reg(name: str, own: int, alt: int | None) -> tuple[int, str]:
        if own & GITS_VALID or alt is None or not alt & GITS_VALID:
            return own, ""
        return alt, f" (not restored on {vm.side} yet: using the value {other.side if other else 'the source'} sent)"

    o_its = other.its if other is not None else None
    b0, n0 = reg("GITS_BASER0", its.baser_device_table, o_its.baser_device_table if o_its else None)
    b1, n1 = reg("GITS_BASER1", its.baser_coll_table, o_its.baser_coll_table if o_its else None)
    regs.append(f"GITS_CTLR.Enable={int(its.enabled)}  GITS_CBASER=0x{its.cbaser:016x} (queue at "
                f"0x{GITS_CBASER_ADDRESS(its.cbaser):x}, {ITS_CMD_BUFFER_SIZE(its.cbaser) // 1024} KiB, "
                f"Valid={int(bool(its.cbaser & GITS_VALID))})  CREADR=0x{its.creadr:x}  CWRITER=0x{its.cwriter:x}")  # fmt: skip
    for name, val, note in (("GITS_BASER0", b0, n0), ("GITS_BASER1", b1, n1)):
        regs.append(f"{name}=0x{val:016x}: Valid={int(bool(val & GITS_VALID))}, "
                    f"{'two-level' if val & GITS_BASER_INDIRECT else 'flat'}, {GITS_BASER_NR_PAGES(val)} × 64 KiB at "
                    f"0x{GITS_BASER_ADDR_48_to_52(val):x}{note}")  # fmt: skip
    propbaser = vgic.propbaser
    if GICR_PROPBASER_ADDRESS(propbaser) == 0 and other is not None:
        propbaser = other.vgic.propbaser
        regs.append(f"GICR_PROPBASER=0x{propbaser:x} (not restored on {vm.side} yet: the source's value)")
    else:
        regs.append(f"GICR_PROPBASER=0x{propbaser:x} (property table at 0x{GICR_PROPBASER_ADDRESS(propbaser):x})")
    prop_base = GICR_PROPBASER_ADDRESS(propbaser)

    def prop(lpi: int) -> int | None:
        if not prop_base or lpi < GIC_LPI_OFFSET:
            return None
        try:
            return mem.read_u8(prop_base + lpi - GIC_LPI_OFFSET)
        except EFAULT:
            return None

    # -- device table -----------------------------------------------------------------
    valid_dtes: list[tuple[int, int, int]] = []
    if b0 & GITS_VALID:
        base, size = GITS_BASER_ADDR_48_to_52(b0), GITS_BASER_NR_PAGES(b0) * SZ_64K
        if b0 & GITS_BASER_INDIRECT:
            l1 = Table(f"Device table level 1 at 0x{base:x} ({size // 8} entries; each valid one points at a 64 KiB "
                       f"level-2 page of {L2_DTES} DTEs)", [])  # fmt: skip
            pages = []
            for a in _walk_nonzero(mem, base, size):
                val, raw = _u64(mem, a)
                v, l2 = abi.decode_l1e(val)
                idx = (a - base) // 8
                l1.entries.append(Entry(a, raw, idx, f"L1[{idx}]: V={int(v)} level-2 page at 0x{l2:x} "
                                    f"(DeviceIDs {idx * L2_DTES}-{(idx + 1) * L2_DTES - 1})", v))  # fmt: skip
                if v:
                    pages.append((idx, l2))
            tables.append(l1)
            for idx, l2 in pages:
                t = Table(f"Device table level-2 page {idx} at 0x{l2:x}", [])
                for a in _walk_nonzero(mem, l2, SZ_64K):
                    val, raw = _u64(mem, a)
                    devid = idx * L2_DTES + (a - l2) // 8
                    txt, ok = dte_text(devid, val)
                    t.entries.append(Entry(a, raw, devid, txt, ok))
                    if ok:
                        d = abi.decode_dte(val)
                        valid_dtes.append((devid, d.itt_addr, d.num_eventid_bits))
                tables.append(t)
        else:
            t = Table(f"Device table (flat) at 0x{base:x}, {size // 8} slots", [])
            for a in _walk_nonzero(mem, base, size):
                val, raw = _u64(mem, a)
                devid = (a - base) // 8
                txt, ok = dte_text(devid, val)
                t.entries.append(Entry(a, raw, devid, txt, ok))
                if ok:
                    d = abi.decode_dte(val)
                    valid_dtes.append((devid, d.itt_addr, d.num_eventid_bits))
            tables.append(t)
    else:
        tables.append(Table("Device table", [], ["GITS_BASER0 is not valid: there is no device table to walk."]))
    # -- ITTs ---------------------------------------------------------------------------
    for devid, itt, bits in valid_dtes:
        dec["devices"][devid] = (itt, bits)
        t = Table(f"ITT of device {devid} at 0x{itt:x} ({1 << bits} slots)", [])
        for a in _walk_nonzero(mem, itt, (1 << bits) * ESZ):
            val, raw = _u64(mem, a)
            ev = (a - itt) // 8
            it = abi.decode_ite(val)
            txt, ok = ite_text(ev, val, prop(it.pintid) if it.pintid else None)
            t.entries.append(Entry(a, raw, ev, txt, ok))
            if ok:
                dec["ites"][(devid, ev)] = (it.pintid, it.icid)
        if not t.entries:
            t.notes.append("every slot is zero: no ITE")
        tables.append(t)
    # -- collection table ---------------------------------------------------------------
    if b1 & GITS_VALID:
        base, size = GITS_BASER_ADDR_48_to_52(b1), GITS_BASER_NR_PAGES(b1) * SZ_64K
        t = Table(f"Collection table at 0x{base:x} (packed from the start, ended by the first invalid entry)", [])
        ended = False
        expected = 0
        for a in _walk_nonzero(mem, base, size):
            val, raw = _u64(mem, a)
            n = (a - base) // 8
            if not ended and n != expected:
                t.notes.append(f"slot #{expected} is zero: the restore walk stops there")
                ended = True
            txt, ok = cte_text(n, val)
            if ended:
                txt += " (after the end: never read by restore)"
            t.entries.append(Entry(a, raw, n, txt, ok and not ended))
            if ok and not ended:
                c = abi.decode_cte(val)
                dec["collections"][c.icid] = c.target_addr
            ended = ended or not ok
            expected = n + 1
        if not t.entries:
            t.notes.append("the first entry is zero: no collection")
        tables.append(t)
    else:
        tables.append(Table("Collection table", [], ["GITS_BASER1 is not valid: there is no collection table to walk."]))
    # -- pending tables -----------------------------------------------------------------
    for i, cpu in enumerate(vgic.cpus):
        pb = cpu.pendbaser
        note = ""
        if GICR_PENDBASER_ADDRESS(pb) == 0 and other is not None:
            pb = other.vgic.cpus[i].pendbaser
            note = f" (not restored on {vm.side} yet: the source's GICR_PENDBASER)"
        base = GICR_PENDBASER_ADDRESS(pb)
        title = (f"Pending table of vCPU {i} at 0x{base:x} (GICR_PENDBASER=0x{pb:x}{note}; "
                 f"EnableLPIs={int(cpu.ctlr == GICR_CTLR_ENABLE_LPIS)}): bytes with an LPI bit set")  # fmt: skip
        t = Table(title, [])
        lpis: list[int] = []
        if base == 0:
            t.notes.append("GICR_PENDBASER holds no address")
        else:
            lo = base + GIC_LPI_OFFSET // 8
            try:
                data = mem.read(lo, PEND_BYTES - GIC_LPI_OFFSET // 8)
            except EFAULT:
                data = b""
                t.notes.append("outside guest RAM")
            for row in range(0, len(data), 16):
                chunk = data[row : row + 16]
                if not any(chunk):
                    continue
                first = GIC_LPI_OFFSET + row * 8
                set_ = [first + 8 * j + b for j, x in enumerate(chunk) for b in range(8) if x >> b & 1]
                lpis += set_
                t.entries.append(Entry(lo + row, chunk, first, f"INTIDs {first}-{first + 127}: pending LPIs {ids(set_)}", True))
        dec["pending"][i] = lpis
        if not t.entries and not t.notes:
            t.notes.append("no LPI bit set")
        tables.append(t)
    for t in tables:
        if len(t.entries) > limit:
            t.notes.append(f"{len(t.entries) - limit} more entries not shown (--limit {limit})")
            t.entries = t.entries[:limit]
    return regs, tables, dec


def load_input(path: str | Path) -> Scenario:
    """The scenario to re-simulate: a scenario file, or a RUN_DIR's ``resolved.yaml``.

    Of a RUN_DIR only ``resolved.yaml`` is read, under the scenario loader's caps: the tables
    come from re-running the scenario, so the trace and the summary are never loaded.
    Raises ``ScenarioError`` (a scenario file) or ``RunInputError`` (a RUN_DIR)."""
    from gicsim.present.rundata import RunInputError, read_run_resolved
    from gicsim.scenario import ScenarioError, load_scenario, scenario_from_dict

    p = Path(path)
    if not p.is_dir():
        return load_scenario(p)
    try:
        return scenario_from_dict(read_run_resolved(p), filename=f"{p}/resolved.yaml")
    except ScenarioError as e:
        raise RunInputError(list(e.problems)) from None


def capture(sc: Scenario, step: str, side: str | None = None, migration: int = 1, limit: int = 64) -> Snapshot:
    """Run ``sc`` and dump guest memory when ``step`` of migration ``migration`` (1-based)
    ends. ``side``: ``source`` / ``destination`` (default: the side the step runs on)."""
    from gicsim.scenario import SOURCE_STEPS
    from gicsim.sim.simulation import Simulation

    sim = Simulation(sc)
    got: list[Snapshot] = []

    def observer(ctl: Any, name: str, vm: VirtualMachine) -> None:
        if got or name != step or ctl.index != migration - 1:
            return
        role = side or ("source" if name in SOURCE_STEPS else "destination")
        target = ctl.src if role == "source" else ctl.dst
        other = ctl.src if target is ctl.dst else None
        regs, tables, dec = dump_vm(target, other, limit)
        got.append(Snapshot(sc.name, name, target.side, role, migration, int(sim.env.now), regs, tables,
                            dec["devices"], dec["ites"], dec["collections"], dec["pending"]))  # fmt: skip

    sim.step_observers.append(observer)
    sim.run()
    if not got:
        if migration > len(sc.migrations):
            raise TablesError(f"{sc.name}: there is no migration {migration} (the scenario has {len(sc.migrations)})")
        m = sim.migrations[migration - 1]
        steps = list(sc.migrations[migration - 1].source.steps) + list(sc.migrations[migration - 1].destination.steps)
        if step not in steps:
            raise TablesError(f"{sc.name}: step {step!r} is not among the steps of migration {migration} ({', '.join(steps)})")
        raise TablesError(f"{sc.name}: step {step!r} never ended in migration {migration} (status {m.status})")
    return got[0]


def render(s: Snapshot) -> str:
    out = [f"# Guest memory of {s.side} ({s.role} of migration {s.migration}) at the end of step "
           f"`{s.step}` (t = {s.t_ns / 1000:,.3f} µs) — {s.scenario}", ""]  # fmt: skip
    out += ["## Registers", ""] + [f"  {r}" for r in s.registers] + [""]
    for t in s.tables:
        out += [f"## {t.title}", ""]
        if t.entries:
            w = 47 if any(len(e.raw) > 8 for e in t.entries) else 23
            out.append(f"  {'address':<14}  {'bytes in memory order':<{w}}  decoded")
            for e in t.entries:
                out.append(f"  0x{e.addr:012x}  {_hex(e.raw):<{w}}  {e.text}")
        for n in t.notes:
            out.append(f"  ({n})")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
