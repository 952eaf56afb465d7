"""Resource limits of a valid scenario (checked once everything else is valid): MSIs, guest RAM, commands.

The schema calls ``_resource_problems`` on a fully validated ``Scenario``; this module sits
below the schema and reads the scenario's attributes only."""

import math
from typing import Any

from gicsim.scenario.constants import (
    BYTES_PER_TRACE_ROW,
    LPI_MIN,
    MAX_DEVICE_EVENTS,
    MAX_EXPECT_LPIS,
    MAX_GUEST_OPS,
    MAX_MAPPED_LPIS,
    MAX_MIGRATIONS,
    MAX_MSI_SOURCES,
    MAX_MSIS,
    MAX_TRACE_ROWS,
    ROWS_PER_COMMAND,
    ROWS_PER_MIGRATED_VCPU,
    ROWS_PER_MIGRATION,
    ROWS_PER_MSI,
    ROWS_PER_RETRY,
)

# ----------------------------------------------------------------------------------------------
# resource limits (checked once everything else is valid)

_RAM_BASE = 0x4000_0000  # guest RAM on the arm virt machine (gicsim.kvm.memory.RAM_BASE)
_SZ_64K = 1 << 16
_L2_DTES = _SZ_64K // 8
_PROP_TABLE = (1 << 16) - LPI_MIN  # one property byte per LPI (16 ID bits)
_PEND_TABLE = (1 << 16) // 8
_COMMAND_STEPS = {"mapc", "mapd", "mapti", "map_events", "map_devices", "movi", "movall",
                  "discard", "inv", "invall", "int", "clear", "sync"}  # fmt: skip


def _msis(sc: Any) -> tuple[float, list[float]]:
    """Upper estimate of the MSIs the device sources send before ``until_us``, per entry.

    Exact for ``at_us`` and periodic sources (``gicsim.sim.devices``: one MSI every
    ``round(1e9 / rate)`` ns from ``start_us``); poisson sources count their mean, and the
    total adds six standard deviations (and 6) of their sum (a Poisson count too), which a
    run exceeds with a probability below 1e-9."""
    until = sc.until_ns
    per: list[float] = []
    poisson = 0.0
    for d in sc.devices:
        n: float
        if d.at_ns is not None:
            n = float(sum(1 for t in d.at_ns if t <= until) * len(d.events))
        else:
            start = d.start_ns or 0
            stop = until if d.stop_ns is None else min(d.stop_ns, until)
            rate = float(d.rate_per_s or 0)
            if start > until or rate <= 0:
                n = 0.0
            elif d.pattern == "poisson":
                n = rate * max(0, stop - start) / 1e9
                poisson += n * len(d.device)
            else:
                n = float(max(0, stop - start) // max(1, round(1e9 / rate)) + 1)
        per.append(n * len(d.device))
    margin = 6 * math.sqrt(poisson) + 6 if poisson else 0.0
    return float(sum(per)) + margin, per


def _step_rows(kind: str, a: Any, cmds: int, ops: int) -> int:
    """Upper estimate of the trace rows of one guest step (``_step_cost`` gave cmds, ops)."""
    rows = ROWS_PER_COMMAND * cmds + ops
    if kind == "int":
        rows += ROWS_PER_MSI  # the interrupt it raises
    elif kind == "set_pending":
        rows += ROWS_PER_MSI * len(a.lpis)
    return rows


def _migration_rows(sc: Any, cmds: int) -> int:
    """Upper estimate of the trace rows of the migrations (without the MSIs they replay).

    A destination may run the guest's command queue again (a CBASER write after CREADR
    resets it to 0: the queue from offset 0 to CWRITER), up to a queue's worth of ``cmds``;
    each replayed command is counted with the interrupt it may deliver again."""
    slots = sc.vm.its.cmdq_kib * 1024 // 32 - 1
    rows = 0
    for m in sc.migrations:
        pol = m.source.on_ebusy
        retries = pol.retry if pol.policy == "retry" else 0
        rows += (ROWS_PER_MIGRATION + ROWS_PER_MIGRATED_VCPU * sc.vm.vcpus
                 + ROWS_PER_RETRY * retries + ROWS_PER_MSI * min(cmds, slots))  # fmt: skip
    return rows


def trace_rows(sc: Any) -> int:
    """Upper estimate of the rows of a valid scenario's trace (the MAX_TRACE_ROWS cap)."""
    rows = ROWS_PER_MSI * round(_msis(sc)[0])
    cmds = 0
    for st in (*sc.guest.boot, *sc.guest.actions):
        c, _, o = _step_cost(st.kind, st.args)
        cmds += c
        rows += _step_rows(st.kind, st.args, c, o)
    return rows + _migration_rows(sc, cmds)


def _step_cost(kind: str, a: Any) -> tuple[int, int, int]:
    """(ITS commands, of which MAPTIs, other per-ID guest operations) of one guest step."""
    if kind == "map_events":
        return len(a.events), len(a.events), len(a.lpis)  # + property bytes
    if kind == "map_devices":
        n = len(a.devices) * len(a.events)
        return len(a.devices) + n, n, n
    if kind == "mapti":
        return 1, 1, 1
    if kind in _COMMAND_STEPS:
        return 1, 0, 0
    if kind in ("set_pending", "lpi_config"):
        return 0, 0, len(a.lpis)
    if kind in ("enable_lpis", "disable_lpis", "mask") and isinstance(a, tuple):
        return 0, 0, len(a)
    return 0, 0, 1


class _GuestRam:
    """The guest ITS driver's bump allocator (``gicsim.sim.guest.GuestItsDriver``), replayed."""

    def __init__(self, sc: Any) -> None:
        self.end = _RAM_BASE + (sc.vm.memory_mib << 20)
        self.brk = _RAM_BASE
        self.two_level = sc.vm.its.device_table == "two_level"
        self.pend: set[int] = set()
        self.l2: set[int] = set()
        self.itt_bits: dict[int, int] = {}
        self.alloc(sc.vm.its.cmdq_kib * 1024)  # probe: command queue, tables, properties
        self.alloc(_SZ_64K if self.two_level else (1 << 16) * 8)
        self.alloc(_SZ_64K)
        self.alloc(_PROP_TABLE, 4096)

    def alloc(self, size: int, align: int = _SZ_64K) -> None:
        self.brk = -(-self.brk // align) * align + size

    def vcpus(self, vcpus: Any) -> None:
        for v in vcpus:
            if v not in self.pend:
                self.pend.add(v)
                self.alloc(_PEND_TABLE)

    def mapd(self, dev: int, bits: int) -> None:
        if self.two_level and dev // _L2_DTES not in self.l2:
            self.l2.add(dev // _L2_DTES)
            self.alloc(_SZ_64K)
        if self.itt_bits.get(dev, 0) < bits:
            self.itt_bits[dev] = bits
            self.alloc(max((1 << bits) * 8, 256), 256)

    def step(self, kind: str, a: Any) -> None:
        if kind == "enable_lpis":
            self.vcpus(a)
        elif kind == "set_pending":
            self.vcpus((a.vcpu,))
        elif kind == "mapd" and a.valid:
            self.mapd(a.device, a.event_bits or 1)
        elif kind == "map_devices":
            for dev in a.devices:
                self.mapd(dev, a.event_bits)


def _resource_problems(sc: Any) -> list[tuple[tuple[Any, ...], str, bool]]:
    out: list[tuple[tuple[Any, ...], str, bool]] = []
    if len(sc.migrations) > MAX_MIGRATIONS:
        out.append((("migration",), f"{len(sc.migrations)} migrations, more than the cap of "
                    f"{MAX_MIGRATIONS} (MAX_MIGRATIONS)", True))  # fmt: skip
    checks = sum(len(d.lpi) for d in sc.expect.delivered or ())
    if checks > MAX_EXPECT_LPIS:
        out.append((("expect", "delivered"), f"{checks:,} LPIs to check in total, more than the "
                    f"cap of {MAX_EXPECT_LPIS:,} (MAX_EXPECT_LPIS)", True))  # fmt: skip
    # --- device MSI sources
    nsrc = sum(len(d.device) for d in sc.devices)
    if nsrc > MAX_MSI_SOURCES:
        out.append((("devices",), f"{nsrc:,} device sources in total, more than the cap of "
                    f"{MAX_MSI_SOURCES:,} (MAX_MSI_SOURCES)", True))  # fmt: skip
    pairs = sum(len(d.device) * len(d.events) for d in sc.devices)
    if pairs > MAX_DEVICE_EVENTS:
        out.append((("devices",), f"{pairs:,} device x event pairs in total, more than the cap "
                    f"of {MAX_DEVICE_EVENTS:,} (MAX_DEVICE_EVENTS)", True))  # fmt: skip
    total, per = _msis(sc)
    if total > MAX_MSIS:
        big = max(range(len(per)), key=per.__getitem__)
        out.append((("devices",), f"about {total:,.0f} MSIs before until_us (devices x "
                    f"rate_per_s x (stop_us - start_us), or devices x len(at_us) x events, summed "
                    f"over sources; devices.{big} alone sends {per[big]:,.0f}), more than the cap "
                    f"of {MAX_MSIS:,} (MAX_MSIS = MAX_TRACE_ROWS / {ROWS_PER_MSI} trace rows an MSI): lower "
                    "the rates, shorten the run or use fewer devices", True))  # fmt: skip
    # --- guest work: boot, then actions
    ram = _GuestRam(sc)
    limit = sc.vm.memory_mib
    queue_slots = sc.vm.its.cmdq_kib * 1024 // 32 - 1
    queued, enabled = 0, False
    cmds = mapti = ops = 0
    guest_rows = 0
    flagged: set[str] = set()
    for where, items in (("boot", sc.guest.boot), ("actions", sc.guest.actions)):
        for i, st in enumerate(items):
            kind, a = st.kind, st.args
            loc = ("guest", where, i, kind)
            c, m, o = _step_cost(kind, a)
            cmds, mapti, ops = cmds + c, mapti + m, ops + c + o
            guest_rows += _step_rows(kind, a, c, o)
            if mapti > MAX_MAPPED_LPIS and "mapti" not in flagged:
                flagged.add("mapti")
                out.append((loc, f"the guest maps {mapti:,} LPIs by here (MAPTI commands of "
                            f"guest.boot and guest.actions), more than the cap of "
                            f"{MAX_MAPPED_LPIS:,} (MAX_MAPPED_LPIS)", True))  # fmt: skip
            if ops > MAX_GUEST_OPS and "ops" not in flagged:
                flagged.add("ops")
                out.append((loc, f"{ops:,} guest operations by here (ITS commands and "
                            f"property/pending-table writes), more than the cap of "
                            f"{MAX_GUEST_OPS:,} (MAX_GUEST_OPS)", True))  # fmt: skip
            if where == "boot":
                if kind == "its_enable":
                    enabled = bool(a)
                    queued = 0 if enabled else queued  # enabling runs the queue
                elif not enabled and c:
                    queued += c
                    if queued > queue_slots and "queue" not in flagged:
                        flagged.add("queue")
                        out.append((loc, f"{queued:,} ITS commands are queued while the ITS "
                                    f"is still disabled, but the command queue (vm.its.cmdq_kib "
                                    f"{sc.vm.its.cmdq_kib}) holds {queue_slots:,}: put "
                                    "'its_enable: true' earlier or enlarge the queue", True))  # fmt: skip
            ram.step(kind, a)
            if ram.brk > ram.end and "ram" not in flagged:
                flagged.add("ram")
                need = -(-(ram.brk - _RAM_BASE) // (1 << 20))
                out.append((loc, f"guest RAM exhausted: the guest driver's queue, tables, "
                            f"pending tables and ITTs need {'at least' if where == 'boot' else 'up to'} "
                            f"{need:,} MiB by here, vm.memory_mib is {limit:,}", True))  # fmt: skip
    # --- the trace (memory): only when no cap above already says why it is too big
    if total <= MAX_MSIS and not flagged & {"ops", "mapti"}:
        parts = {"devices": ROWS_PER_MSI * round(total), "guest": guest_rows,
                 "migration": _migration_rows(sc, cmds)}  # fmt: skip
        rows = sum(parts.values())
        if rows > MAX_TRACE_ROWS:
            heavy = max(parts, key=parts.__getitem__)
            gib = rows * BYTES_PER_TRACE_ROW / (1 << 30)
            out.append(((heavy,), f"about {rows:,} trace rows (devices {parts['devices']:,}, guest "
                        f"{parts['guest']:,}, migrations {parts['migration']:,}; ~{gib:,.1f} GiB "
                        f"at {BYTES_PER_TRACE_ROW} B a row), more than the cap of "
                        f"{MAX_TRACE_ROWS:,} (MAX_TRACE_ROWS)", True))  # fmt: skip
    return out


