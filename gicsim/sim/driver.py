"""The guest's ITS driver as SimPy processes: boot programming on vCPU 0 at t=0, then timed
actions, each run on its vCPU through the command queue (so commands only run while that
vCPU runs, and a CWRITER write keeps the vCPU inside an MMIO exit until KVM is done)."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from gicsim.kvm import commands as C
from gicsim.kvm.arm_gic_v3 import GICR_CTLR, GICR_PENDBASER
from gicsim.kvm.its import GITS_CTLR, GITS_CWRITER
from gicsim.sim.board import Board
from gicsim.sim.component import Component
from gicsim.sim.guest import LPI_PROP_DEFAULT_PRIO, GuestItsDriver, QueueFull

if TYPE_CHECKING:
    from gicsim.sim.vcpu import Vcpu

# (raw command, gcmd row fields: vcpu, lpi, device, event, icid, info)
Cmd = tuple[bytes, tuple[int, int, int, int, int, str]]


#: irq-gic-v3-its.c its_allocate_entry: 1,000,000 us of polling before giving up
QUEUE_TIMEOUT_NS = 1_000_000_000


class GuestDriver(Component):
    base_name = "its_driver"

    def __init__(self, sim: Board) -> None:
        super().__init__(sim.env, sim.trace, sim.guest)
        self.sim = sim
        sc = sim.scenario
        vm0 = sim.vms[0]
        self.drv = GuestItsDriver(
            vm0.vgic, vm0.its, cmdq_kib=sc.vm.its.cmdq_kib, device_table=sc.vm.its.device_table
        )
        t = sim.timing
        self.mmio_ns = t.mmio_kernel_ns
        self.booted = sim.env.event()
        self.add_process(self.boot)

    def rebind(self) -> None:
        """The guest now runs on ``sim.current_vm``. Its driver state (allocations, queue
        position) is guest memory content, so the same object moves over, in place: a boot
        step interrupted by a migration continues on the destination."""
        vm = self.sim.current_vm
        d = self.drv
        d.vgic, d.its, d.mem = vm.vgic, vm.its, vm.vgic.mem

    # -- processes ------------------------------------------------------------------------
    def boot(self) -> Generator[Any, Any, None]:
        vcpu = self.sim.vcpus[0]
        with vcpu.work.request() as req:
            yield req
            yield from self.mmio(vcpu, self.drv.probe, n=5)  # CBASER, BASER0/1, PROPBASER..
            for step in self.sim.scenario.guest.boot:
                yield from self.do_step(vcpu, step.kind, step.args)
        self.booted.succeed()

    def action(self, vcpu: Vcpu, kind: str, args: Any) -> Generator[Any, Any, None]:
        with vcpu.work.request() as req:
            yield req
            yield from vcpu.wait_running()
            yield from self.do_step(vcpu, kind, args)

    # -- primitives -------------------------------------------------------------------------
    def mmio(self, vcpu: Vcpu, fn: Any, n: int = 1) -> Generator[Any, Any, None]:
        """``n`` trapped register writes from ``vcpu`` (in-kernel emulation, 451 ns each)."""
        yield from vcpu.wait_running()
        vcpu.mmio_begin()
        try:
            yield self.env.timeout(self.mmio_ns * n)
            fn()
        finally:
            vcpu.mmio_end()

    def kick_cwriter(self, vcpu: Vcpu) -> Generator[Any, Any, None]:
        """Write GITS_CWRITER: trap, then KVM runs the queue under the ITS lock."""
        yield from vcpu.wait_running()
        vm = self.sim.current_vm
        vcpu.mmio_begin()
        try:
            yield self.env.timeout(self.mmio_ns)
            req = vm.its_lock.request()
            yield req
            try:
                vm.its.its_write(GITS_CWRITER, 8, self.drv.cwriter)
                yield from vm.drain()
            finally:
                vm.its_lock.release(req)
        finally:
            vcpu.mmio_end()

    def post(self, vcpu: Vcpu, cmds: Iterable[Cmd]) -> Generator[Any, Any, None]:
        """Write commands into the queue (waiting for room like Linux), then CWRITER.

        The guest's intent (``gcmd`` rows) is recorded when its CWRITER write returns, i.e.
        when KVM has run the commands: until then the old mapping legitimately applies.
        An INT is a raise from the moment it is written.
        """
        drv = self.drv
        rec = self.trace.rec
        intents: list[tuple[int, int, int, int, int, str]] = []
        for raw, g in cmds:
            while True:
                try:
                    drv.write_cmd(raw)
                    break
                except QueueFull:
                    if not self.sim.current_vm.its.enabled:
                        # Linux polls CREADR for 1 s ("ITS queue not draining"), then drops
                        # the command; nothing drains a disabled ITS.
                        yield self.env.timeout(QUEUE_TIMEOUT_NS)
                        if not self.sim.current_vm.its.enabled and drv.queue_space() < 32:
                            self.trace.rec.append((self.env.now, "gcmd_dropped", self.sim.current_vm.side,
                                                   g[0], g[1], g[2], g[3], g[4], g[5]))  # fmt: skip
                            raw = b""
                            break
                        continue
                    yield from self.kick_cwriter(vcpu)
                    self._intents(intents)
            if not raw:
                continue
            if g[5] == "INT":
                rec.append((self.env.now, "raise", self.sim.current_vm.side, vcpu.id, -1, g[2], g[3], -1, "int"))
            intents.append(g)
        if intents:
            yield from self.kick_cwriter(vcpu)
            self._intents(intents)

    def _intents(self, intents: list[tuple[int, int, int, int, int, str]]) -> None:
        now, side = self.env.now, self.sim.current_vm.side
        self.trace.rec.extend((now, "gcmd", side) + g for g in intents)
        intents.clear()

    def config_lpis(self, lpis: Iterable[int], priority: int = LPI_PROP_DEFAULT_PRIO, enabled: bool = True) -> None:
        rec = self.trace.rec
        side = self.sim.current_vm.side
        info = "enabled" if enabled else "disabled"
        now = self.env.now
        for lpi in lpis:
            self.drv.lpi_config(lpi, priority, enabled)
            rec.append((now, "lpi_config", side, -1, lpi, -1, -1, -1, info))

    # -- steps ----------------------------------------------------------------------------
    def do_step(self, vcpu: Vcpu, kind: str, a: Any) -> Generator[Any, Any, None]:
        drv = self.drv
        sim = self.sim
        nv = sim.scenario.vm.vcpus
        if kind in ("enable_lpis", "disable_lpis"):
            vcpus = range(nv) if a == "all" or a is None else a
            for v in vcpus:
                if kind == "enable_lpis":
                    yield from self.mmio(vcpu, lambda v=v: drv.enable_lpis(v), n=2)
                else:
                    yield from self.mmio(vcpu, lambda v=v: drv.disable_lpis(v))
        elif kind == "set_pending":
            rec = self.trace.rec
            side = sim.current_vm.side
            for lpi in a.lpis:
                drv.set_pending(a.vcpu, lpi)
                rec.append((self.env.now, "raise", side, a.vcpu, lpi, -1, -1, -1, "set_pending"))
        elif kind == "mask":
            targets = (vcpu.id,) if isinstance(a, bool) else a
            for v in targets:
                sim.vcpus[v].set_masked(a if isinstance(a, bool) else True)
        elif kind == "its_enable":
            vm = sim.current_vm
            yield from vcpu.wait_running()
            vcpu.mmio_begin()
            try:
                yield self.env.timeout(self.mmio_ns)
                req = vm.its_lock.request()
                yield req
                vm.its.its_write(GITS_CTLR, 4, int(a))
                yield from vm.drain()
                vm.its_lock.release(req)
            finally:
                vcpu.mmio_end()
        elif kind == "lpi_config":
            self.config_lpis(a.lpis, a.priority, a.enabled)
        else:
            yield from self.post(vcpu, self.commands(kind, a))

    def commands(self, kind: str, a: Any) -> Iterable[Cmd]:
        """Encode a command step, writing property bytes first for LPIs it maps."""
        drv = self.drv
        if kind == "mapc":
            yield C.mapc(a.icid, a.vcpu, a.valid), (a.vcpu, -1, -1, -1, a.icid, "MAPC" if a.valid else "MAPC-")
        elif kind == "mapd":
            bits = a.event_bits or 1
            raw = drv.mapd_cmd(a.device, bits, a.valid)
            yield raw, (-1, -1, a.device, -1, -1, "MAPD" if a.valid else "MAPD-")
        elif kind == "mapti":
            self.config_lpis((a.lpi,))
            yield C.mapti(a.device, a.event, a.lpi, a.icid), (-1, a.lpi, a.device, a.event, a.icid, "MAPTI")
        elif kind == "map_events":
            icids = a.icid
            self.config_lpis(a.lpis)
            for i, (ev, lpi) in enumerate(zip(a.events, a.lpis, strict=True)):
                icid = icids[i % len(icids)]
                yield C.mapti(a.device, ev, lpi, icid), (-1, lpi, a.device, ev, icid, "MAPTI")
        elif kind == "map_devices":
            icids = a.icid
            lpi = a.first_lpi
            n = 0
            for dev in a.devices:
                yield drv.mapd_cmd(dev, a.event_bits, True), (-1, -1, dev, -1, -1, "MAPD")
                for ev in a.events:
                    icid = icids[n % len(icids)]
                    self.config_lpis((lpi,))
                    yield C.mapti(dev, ev, lpi, icid), (-1, lpi, dev, ev, icid, "MAPTI")
                    lpi += 1
                    n += 1
        elif kind == "movi":
            yield C.movi(a.device, a.event, a.icid), (-1, -1, a.device, a.event, a.icid, "MOVI")
        elif kind == "movall":
            yield C.movall(a.from_vcpu, a.to_vcpu), (a.to_vcpu, -1, -1, -1, a.from_vcpu, "MOVALL")
        elif kind in ("discard", "inv", "int", "clear"):
            enc = {"discard": C.discard, "inv": C.inv, "int": C.int_, "clear": C.clear}[kind]
            yield enc(a.device, a.event), (-1, -1, a.device, a.event, -1, kind.upper())
        elif kind == "invall":
            yield C.invall(a.icid), (-1, -1, -1, -1, a.icid, "INVALL")
        elif kind == "sync":
            yield C.sync(0), (-1, -1, -1, -1, a.icid, "SYNC")
        else:  # pragma: no cover - the scenario model rejects unknown steps
            raise ValueError(f"unknown guest step {kind!r}")


__all__ = ["GuestDriver", "GICR_CTLR", "GICR_PENDBASER"]
