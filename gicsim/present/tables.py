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

from collections import Counter
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
    vcpu: int = -1  # a pending table: whose


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
    why: str = ""  # how the step was chosen, when --at was not given


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


def dump_vm(vm: VirtualMachine, other: VirtualMachine | None = None, limit: int = 64,
            calls: list[tuple[int, str, str, str]] | None = None, queue: bool = False,
            not_loaded: bool = False) -> tuple[list[str], list[Table], dict[str, Any]]:  # fmt: skip
    """Registers, tables and decoded maps of ``vm``'s guest memory now. ``calls``: the KVM
    calls of this migration so far, (t, side, call, errno), to say why a table is empty;
    ``queue``: also decode the command queue; ``not_loaded``: ``vm`` is a destination whose
    guest memory the migration has not loaded yet."""
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
        t = Table(title, [], vcpu=i)
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
    if queue:
        tables.insert(0, queue_table(vm, other))
    _why_empty(vm, tables, calls, not_loaded)
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
    from gicsim.present.rundata import read_run_scenario
    from gicsim.scenario import load_scenario

    p = Path(path)
    if not p.is_dir():
        return load_scenario(p)
    return read_run_scenario(p)[1]  # RunInputError, placed at resolved.yaml's own lines


def _kvm_calls(rec: list[Any], migration: int) -> list[tuple[int, str, str, str]]:
    """(t, side, call, errno) of every KVM call of migration ``migration`` (0-based) so far."""
    out = []
    for r in rec:
        if r[1] == "kvm" and r[7] == migration:
            call, _, err = str(r[8]).partition(":")
            out.append((int(r[0]), str(r[2]), call, err))
    return out


def capture_steps(sc: Scenario, steps: list[str] | None, side: str | None = None, migration: int = 1,
                  limit: int = 64, queue: bool = False) -> list[Snapshot]:  # fmt: skip
    """Run ``sc`` once and dump guest memory when each of ``steps`` of migration
    ``migration`` (1-based) ends (None: every ``save_*`` step; the ones that ended are
    returned). ``side``: ``source`` / ``destination`` (default: the side the step runs on)."""
    from gicsim.present.probe import run_probed
    from gicsim.scenario import SOURCE_STEPS

    got: dict[str, Snapshot] = {}
    sim: Any = None

    def wanted(name: str) -> bool:
        return name.startswith("save_") if steps is None else name in steps

    def observer(ctl: Any, name: str, vm: VirtualMachine) -> None:
        if name in got or not wanted(name) or ctl.index != migration - 1:
            return
        role = side or ("source" if name in SOURCE_STEPS else "destination")
        target = ctl.src if role == "source" else ctl.dst
        other = ctl.src if target is ctl.dst else None
        rec = ctl.sim.trace.rec
        calls = _kvm_calls(rec, migration - 1)
        not_loaded = target is ctl.dst and not any(
            r[1] == "step" and r[7] == migration - 1 and r[8] == "memory:end" and r[2] == target.side for r in rec
        )
        regs, tables, dec = dump_vm(target, other, limit, calls, queue, not_loaded)
        got[name] = Snapshot(sc.name, name, target.side, role, migration, int(ctl.env.now), regs, tables,
                             dec["devices"], dec["ites"], dec["collections"], dec["pending"])  # fmt: skip

    def after(sim_: Any, rec: list[Any], first: int) -> None:
        # a step that ended without the observer hearing of it (the migration stopped in it:
        # aborted or failed): dump right after the SimPy event that recorded its end
        for r in rec[first:]:
            if r[1] == "step" and r[7] == migration - 1 and str(r[8]).endswith(":end"):
                name = str(r[8])[: -len(":end")]
                ctl = sim_.migrations[migration - 1]
                observer(ctl, name, ctl.src if str(r[2]) == ctl.src.side else ctl.dst)

    sim = run_probed(sc, after=after, setup=lambda sim_: sim_.step_observers.append(observer))
    if migration > len(sc.migrations):
        raise TablesError(f"{sc.name}: there is no migration {migration} (the scenario has {len(sc.migrations)})")
    m = sim.migrations[migration - 1]
    mig = sc.migrations[migration - 1]
    all_steps = list(mig.source.steps) + list(mig.destination.steps)
    if steps is None:
        saves = [x for x in mig.source.steps if x.startswith("save_")]
        done = [x for x in saves if x in got]
        if not done:
            raise TablesError(f"{sc.name}: no save step ended in migration {migration} (status {m.status}); "
                              "choose a step with --at")  # fmt: skip
        last = done[-1]
        why = f"default --at: {last}, the last save step that ended in migration {migration}"
        if done[-1] != saves[-1]:
            why += f" ({', '.join(x for x in saves if x not in got)} never ended: status {m.status})"
        got[last].why = why
        return [got[last]]
    for step in steps:
        if step not in got:
            if step not in all_steps:
                raise TablesError(f"{sc.name}: step {step!r} is not among the steps of migration {migration} "
                                  f"({', '.join(all_steps)})")  # fmt: skip
            raise TablesError(f"{sc.name}: step {step!r} never ended in migration {migration} (status {m.status})")
    return [got[x] for x in steps]


def capture(sc: Scenario, step: str | None, side: str | None = None, migration: int = 1, limit: int = 64,
            queue: bool = False) -> Snapshot:  # fmt: skip
    """Run ``sc`` and dump guest memory when ``step`` of migration ``migration`` (1-based)
    ends (None: the last save step that ended). ``side``: ``source`` / ``destination``
    (default: the side the step runs on)."""
    return capture_steps(sc, None if step is None else [step], side, migration, limit, queue)[0]


# -- the command queue (GITS_CBASER), decoded -------------------------------------------------
def cmd_text(raw: bytes) -> str:
    """One ITS command as ``vgic_its_handle_command`` decodes it (``its_cmd_get_*``)."""
    from gicsim.kvm.commands import decode_cmd

    c = decode_cmd(raw)
    n = c.name
    de = f"DeviceID={c.devid} EventID={c.eventid}"
    return {
        "MAPD": f"MAPD DeviceID={c.devid} ITT=0x{c.ittaddr:x} Size={c.size} V={int(c.valid)}",
        "MAPC": f"MAPC ICID={c.icid} RDbase={c.target_addr} V={int(c.valid)}",
        "MAPTI": f"MAPTI {de} pINTID={c.pintid} ICID={c.icid}",
        "MAPI": f"MAPI {de} ICID={c.icid}", "MOVI": f"MOVI {de} ICID={c.icid}",
        "DISCARD": f"DISCARD {de}", "CLEAR": f"CLEAR {de}", "INV": f"INV {de}", "INT": f"INT {de}",
        "INVALL": f"INVALL ICID={c.icid}", "SYNC": f"SYNC RDbase={c.target_addr}",
        "MOVALL": f"MOVALL RDbase={c.target_addr} RDbase2={c.target_addr2}",
    }.get(n, n)  # fmt: skip


def queue_table(vm: VirtualMachine, other: VirtualMachine | None) -> Table:
    """The command queue in guest memory: every non-zero 32-byte slot, marked queued (between
    GITS_CREADR and GITS_CWRITER: the ITS runs it once enabled) or already read."""
    from gicsim.kvm.commands import ITS_CMD_SIZE

    its = vm.its
    cbaser, creadr, cwriter, note = its.cbaser, its.creadr, its.cwriter, ""
    if not cbaser & GITS_VALID and other is not None and other.its.cbaser & GITS_VALID:
        o = other.its
        cbaser, creadr, cwriter = o.cbaser, o.creadr, o.cwriter
        note = f" (GITS_CBASER not restored on {vm.side} yet: the values {other.side} sent)"
    base, size = GITS_CBASER_ADDRESS(cbaser), ITS_CMD_BUFFER_SIZE(cbaser)
    t = Table(f"Command queue at 0x{base:x} ({size // 1024} KiB; CREADR=0x{creadr:x} CWRITER=0x{cwriter:x}{note})", [])
    if not cbaser & GITS_VALID:
        t.notes.append("GITS_CBASER is not valid: there is no command queue")
        return t

    def queued(off: int) -> bool:
        if creadr <= cwriter:
            return creadr <= off < cwriter
        return off >= creadr or off < cwriter

    n_q = 0
    for a in _walk_nonzero(vm.mem, base, size):
        off = (a - base) // ITS_CMD_SIZE * ITS_CMD_SIZE
        if t.entries and t.entries[-1].index == off:
            continue
        raw = vm.mem.read(base + off, ITS_CMD_SIZE)
        q = queued(off)
        n_q += q
        t.entries.append(Entry(base + off, raw, off, f"{'queued' if q else 'read'}: {cmd_text(raw)}", q))
    if not t.entries:
        t.notes.append("every slot is zero: the guest never wrote a command here")
    t.notes.append(f"{n_q} queued between CREADR and CWRITER, {len(t.entries) - n_q} already read")
    return t


# -- why a table is empty -------------------------------------------------------------------------
SAVE_CALLS = {"Device table": "ITS_SAVE_TABLES", "Collection table": "ITS_SAVE_TABLES",
              "ITT of device": "ITS_SAVE_TABLES", "Pending table": "SAVE_PENDING_TABLES"}  # fmt: skip


def _why_empty(vm: VirtualMachine, tables: list[Table], calls: list[tuple[int, str, str, str]] | None,
               not_loaded: bool = False) -> None:  # fmt: skip
    """Add to each empty table what the KVM calls of the migration say about it: the save
    that writes it failed (its errno), or has not run yet; and, for the pending tables, how
    many LPIs KVM holds pending right now (written only by SAVE_PENDING_TABLES)."""
    from gicsim.present.explain.words import T

    if calls is None:
        return
    latched = Counter(irq.target_vcpu for irq in vm.vgic.lpi_xa.values() if irq.pending_latch)
    for t in tables:
        if t.entries or any("not valid" in n or "outside" in n or "no address" in n for n in t.notes):
            continue
        call = next((c for k, c in SAVE_CALLS.items() if t.title.startswith(k)), None)
        if call is None:
            continue
        if not_loaded:
            t.notes.append(f"the migration has not loaded {vm.side}'s guest memory yet (step memory has not ended)")
        made = [c for c in calls if c[2] == call]
        if not made:
            t.notes.append(f"{call} has not run in this migration yet")
        else:
            ts, side, _, err = made[-1]
            if err:
                t.notes.append(f"{call} returned -{err} at {T(ts)} on {side}: it wrote nothing"
                               + (f" (all {len(made)} tries failed)" if len(made) > 1 and all(c[3] for c in made) else ""))
            else:
                t.notes.append(f"{call} returned 0 at {T(ts)} on {side}")
        if t.vcpu >= 0:
            t.notes.append(f"KVM on {vm.side} holds {latched[t.vcpu]} LPIs with pending_latch set for vCPU {t.vcpu} now")


def render(s: Snapshot) -> str:
    out = [f"# Guest memory of {s.side} ({s.role} of migration {s.migration}) at the end of step "
           f"`{s.step}` (t = {s.t_ns / 1000:,.3f} µs) — {s.scenario}", ""]  # fmt: skip
    if s.why:
        out[1:1] = [f"({s.why})"]
    out += ["## Registers", ""] + [f"  {r}" for r in s.registers] + [""]
    for t in s.tables:
        out += [f"## {t.title}", ""]
        if t.entries:
            w = max(23, *(len(_hex(e.raw)) for e in t.entries))
            out.append(f"  {'address':<14}  {'bytes in memory order':<{w}}  decoded")
            for e in t.entries:
                out.append(f"  0x{e.addr:012x}  {_hex(e.raw):<{w}}  {e.text}")
        for n in t.notes:
            out.append(f"  ({n})")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _table_key(title: str) -> str:
    """A table's identity across two snapshots (its title without the address)."""
    return title.split(" at 0x", 1)[0]


def render_diff(a: Snapshot, b: Snapshot, limit: int = 64) -> str:
    """The entries added (+), removed (-) and changed (~) between snapshot ``a`` and ``b``."""
    def index(s: Snapshot) -> dict[tuple[str, int], Entry]:
        return {(_table_key(t.title), e.index): e for t in s.tables for e in t.entries}

    ea, eb = index(a), index(b)
    out = [f"# Guest memory: end of `{a.step}` on {a.side} (t = {a.t_ns / 1000:,.3f} µs) → end of `{b.step}` "
           f"on {b.side} (t = {b.t_ns / 1000:,.3f} µs) — {a.scenario}", ""]  # fmt: skip
    if a.why:
        out[1:1] = [f"({a.why})"]
    lines = []
    for k in sorted(set(ea) | set(eb)):
        x, y = ea.get(k), eb.get(k)
        if x is not None and y is not None:
            if x.raw != y.raw or x.text != y.text:
                lines.append(f"  ~ {k[0]}: {x.text}  →  {y.text}")
        elif y is not None:
            lines.append(f"  + {k[0]}: {y.text}")
        elif x is not None:
            lines.append(f"  - {k[0]}: {x.text}")
    ra, rb = dict(enumerate(a.registers)), dict(enumerate(b.registers))
    regs = [f"  ~ {ra[i]}  →  {rb[i]}" for i in sorted(set(ra) & set(rb)) if ra[i] != rb[i]]
    out += ["## Registers", ""] + (regs or ["  (no change)"]) + [""]
    out += [f"## Entries ({len(lines)} changed)", ""] + (lines[:limit] or ["  (no change)"])
    if len(lines) > limit:
        out.append(f"  ({len(lines) - limit} more not shown (--limit {limit}))")
    return "\n".join(out).rstrip() + "\n"
