"""``gicsim explain FILE --lpi N``: one LPI's life across both hosts, row by row.

Each row is a trace record about the LPI (an MSI or INT for the (DeviceID, EventID) a
``MAPTI``/``MAPI`` mapped to it, its ``accept`` or ``drop`` with the reason, a command naming
it, its delivery and EOI, a property-byte change), a migration or KVM-call row of the run,
or any row after which the LPI's state changed. Beside each: on every host, the kernel's
record (``struct vgic_irq``: ``pending_latch``, active, target vCPU) and the LPI's bit in the
pending tables in that host's guest memory — what ``vgic_v3_save_pending_tables`` writes
and what LPI creation (``vgic_add_lpi`` → ``vgic_v3_lpi_sync_pending_status``, 6.12
``arch/arm64/kvm/vgic/vgic-v3.c``/``vgic-its.c``) and ``its_sync_lpi_pending_table`` read.

The trace does not record pending-table bits, so the scenario (a scenario file, or a run
directory's ``resolved.yaml``) is re-run with :mod:`gicsim.present.probe` sampling both after
every event; for a run directory the re-run's trace is checked against the stored one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from gicsim.judge.trace import DEVICE, EVENT, INFO, KIND, LPI, SIDE, VCPU, T
from gicsim.present.probe import kernel_record, ram_bits, run_probed

#: KVM calls always shown: they write (save) or read (restore, LPI creation, the pending sync
#: of GITS_CTLR/EnableLPIs) pending tables or ITS tables. Any other call is shown when it
#: returned an errno or the LPI's state changed across it.
TABLE_CALLS = frozenset(("SAVE_PENDING_TABLES", "ITS_SAVE_TABLES", "ITS_RESTORE_TABLES", "SET_GITS_CTLR",
                         "REDIST_REGS_SET"))  # fmt: skip
#: kinds after which guest memory may change (KVM calls, migration steps, guest writes)
RAM_KINDS = frozenset(("kvm", "step", "migration", "state"))
#: commands that act on many LPIs at once (a command naming another (DeviceID, EventID) does
#: not touch this LPI's pending bit, so its event is not sampled: scale-512 maps 57,344 LPIs)
MANY_LPI_CMDS = frozenset(("MAPD", "MAPC", "MOVALL", "INVALL", "SYNC"))


class LpiLifeError(Exception):
    """The LPI never existed in the run (exit 2, one line)."""

    gicsim_input_error = True


@attrs.define
class Row:
    t: int
    side: str
    what: str
    state: tuple[Any, ...]  # per host: (kernel record, RAM bits)
    index: int = -1  # the record's index in the trace


@attrs.define
class Life:
    scenario: str
    lpi: int
    hosts: list[str]
    rows: list[Row]
    note: str = ""


def _culprit(new: list[tuple[Any, ...]]) -> int:
    """The row (its index in ``new``) to show for an event that changed the LPI's state
    without a row about it: the last step that ended in it, else its last command or KVM
    call, else its last row."""
    for kinds in (("step",), ("cmd", "kvm", "migration")):
        for j in range(len(new) - 1, -1, -1):
            r = new[j]
            if r[KIND] in kinds and (kinds != ("step",) or str(r[INFO]).endswith(":end")):
                return j
    return len(new) - 1


def _describe(r: tuple[Any, ...]) -> str:
    k, info = r[KIND], str(r[INFO])
    dev_ev = f"device {r[DEVICE]} event {r[EVENT]}"
    if k == "raise":
        return {"msi": f"{dev_ev} sends an MSI", "int": f"guest INT command ({dev_ev})",
                "set_pending": "the guest sets its pending bit"}.get(info, f"raise ({info})")  # fmt: skip
    if k == "accept":
        return f"ITS accepts it ({info}) → pending for vCPU {r[VCPU]}"
    if k == "drop":
        return f"{dev_ev}: dropped ({info})"
    if k == "deliver":
        return f"vCPU {r[VCPU]} acknowledges it: delivered"
    if k == "eoi":
        return f"vCPU {r[VCPU]} EOIs it"
    if k == "cmd":
        if r[DEVICE] >= 0:
            return f"ITS runs {info} ({dev_ev if r[EVENT] >= 0 else f'device {r[DEVICE]}'})"
        return f"ITS runs {info}"
    if k == "gcmd":
        return f"guest queues {info}"
    if k == "lpi_config":
        return f"property byte rewritten: {info}"
    if k == "kvm":
        call, _, err = info.partition(":")
        return f"KVM {call} returns" + (f" -{err}" if err else " 0")
    if k == "step":
        name, _, edge = info.rpartition(":")
        return f"step {name} {'begins' if edge == 'start' else 'ends'}"
    if k == "migration":
        return f"migration: {info}"
    if k == "quiesce":
        return "devices held" if info == "1" else "devices released"
    if k == "state":
        return f"state snapshot ({info.partition(':')[0]})"
    if k in ("mask", "vcpu"):
        return f"vCPU {r[VCPU]} {k} {info}"
    return f"{k} {info}"[:60]


def life(sc: Any, lpi: int, stored: list[tuple[Any, ...]] | None = None) -> Life:
    """Re-run ``sc`` and collect ``lpi``'s rows (``stored``: a run directory's records, which
    the re-run must reproduce)."""
    mapping: dict[tuple[int, int], int] = {}  # (DeviceID, EventID) -> LPI, from executed commands
    rows: list[Row] = []
    last: dict[str, Any] = {"state": None, "ram": {}}
    existed = [False]

    def about(r: tuple[Any, ...]) -> bool:
        k = r[KIND]
        if k == "cmd":
            name = str(r[INFO]).partition(":")[0]
            key = (int(r[DEVICE]), int(r[EVENT]))
            hit = r[LPI] == lpi or mapping.get(key) == lpi
            if name == "MAPTI" and r[LPI] >= 0:
                mapping[key] = int(r[LPI])
            elif name == "MAPI":
                mapping[key] = int(r[EVENT])
                hit = hit or r[EVENT] == lpi
            elif name == "DISCARD":
                mapping.pop(key, None)
            return hit
        if k in ("accept", "deliver", "eoi", "lpi_config") or (k == "raise" and r[INFO] == "set_pending"):
            return r[LPI] == lpi
        if k in ("raise", "drop"):
            return mapping.get((int(r[DEVICE]), int(r[EVENT]))) == lpi
        return False

    def context(r: tuple[Any, ...]) -> bool:
        if r[KIND] == "migration":
            return True
        if r[KIND] == "kvm":
            call, _, err = str(r[INFO]).partition(":")
            return bool(err) or call in TABLE_CALLS
        return False

    def after(sim: Any, rec: list[Any], first: int) -> None:
        new = rec[first:]
        vms = sim.vms
        hits = [about(r) for r in new]  # in order: it follows the MAPTI/DISCARD mapping
        ram_check = any(
            h or r[KIND] in RAM_KINDS or (r[KIND] == "raise" and r[INFO] == "set_pending")
            or (r[KIND] == "cmd" and str(r[INFO]).partition(":")[0] in MANY_LPI_CMDS)
            for r, h in zip(new, hits, strict=True)
        )
        st = []
        for vm in vms:
            kr = kernel_record(vm, lpi)
            if ram_check or vm.side not in last["ram"]:
                last["ram"][vm.side] = ram_bits(vm, vms, lpi)
            st.append((vm.side, kr, last["ram"][vm.side]))
        state = tuple(st)
        prev = last["state"]
        changed = state != prev
        last["state"] = state
        if any(kr is not None or bits for _, kr, bits in state):
            existed[0] = True
        shown = [j for j, (r, h) in enumerate(zip(new, hits, strict=True)) if h or context(r)]
        if not shown and changed and prev is not None:
            if not new:
                rows.append(Row(int(sim.env.now), "", "(no trace row: the LPI's state changed)", state))
                return
            shown = [_culprit(new)]
        for j in shown:
            rows.append(Row(int(new[j][T]), str(new[j][SIDE]), "", state, first + j))

    sim = run_probed(sc, after=after)
    from gicsim.judge import oracles

    oracles.judge(sim.trace.rec, sc.until_ns)  # as `gicsim run` does: drops counted as not_restored
    for row in rows:
        if row.index >= 0:
            row.what = _describe(sim.trace.rec[row.index])
    hosts = [vm.side for vm in sim.vms]
    if not existed[0] and lpi not in mapping.values():
        raise LpiLifeError(f"{sc.name}: LPI {lpi} never existed in this run (no MAPTI/MAPI mapped it, "
                           "no host had an LPI record or a pending bit for it)")  # fmt: skip
    note = ""
    if stored is not None:
        from gicsim.judge.trace import digest

        if digest(stored) != digest(sim.trace.rec):
            note = "note: the re-run's trace differs from the run directory's; the rows are the re-run's"
    return Life(sc.name, lpi, hosts, rows, note)


def _cell(kr: tuple[bool, bool, int, bool] | None) -> str:
    if kr is None:
        return "—"
    pending, active, tgt, enabled = kr
    return f"{'P' if pending else '·'}{'A' if active else ''}@{tgt if tgt >= 0 else '?'}{'' if enabled else ',dis'}"


def _ram(bits: tuple[int, ...]) -> str:
    return "0" if not bits else "1@" + ",".join(str(b) for b in bits)


def render(lf: Life) -> str:
    from gicsim.present.explain.words import T as fmt_t

    head = [f"# LPI {lf.lpi} — {lf.scenario}: its life across {', '.join(lf.hosts)}", "",
            "latch: the LPI's record in KVM on that host (— none; P pending_latch set, · clear; A active; "
            "@ its target vCPU; ,dis disabled in its property byte).",
            "RAM: its bit in the pending tables in that host's guest memory (0 clear; 1@v set in vCPU v's table).",
            "Each row shows the state after the simulation event that recorded it.",
            ""]  # fmt: skip
    cols = "".join(f"  {h + ' latch':<10} {h + ' RAM':<8}" for h in lf.hosts)
    lines = [f"  {'t':>16}  {'host':<4}  {'what happened':<50}{cols}".rstrip()]
    for r in lf.rows:
        cells = "".join(f"  {_cell(kr):<10} {_ram(bits):<8}" for _, kr, bits in r.state)
        lines.append(f"  {fmt_t(r.t):>16}  {r.side:<4}  {r.what:<50}{cells}".rstrip())
    tail = [""] + ([lf.note] if lf.note else [])
    return "\n".join(head + lines + tail).rstrip() + "\n"


def lpi_life_command(path: str | Path, lpi: int) -> str:
    """The text of ``gicsim explain PATH --lpi LPI``."""
    from gicsim.present.tables import load_input

    sc = load_input(path)
    stored = None
    if Path(path).is_dir():
        from gicsim.present import rundata

        stored = rundata.read_run_dir(path).records()
    return render(life(sc, lpi, stored))
