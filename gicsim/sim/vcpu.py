"""A guest vCPU as a SimPy process: WFI, take an LPI, run the handler, EOI; leave and
re-enter ``KVM_RUN`` when the VMM asks.

The vCPU is the guest's execution context, so it survives migration: it runs on the
source VM's vGIC, pauses, and resumes on the destination's. ``vcpu->mutex`` (the lock the
``-EBUSY`` rule tries) is held exactly while the vCPU thread is inside ``KVM_RUN``.
Sleeping vCPUs are woken through a doorbell event, never ``Process.interrupt()``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from gicsim.sim.board import Board
from gicsim.sim.component import Component

if TYPE_CHECKING:
    from gicsim.sim.vm import VirtualMachine


class Vcpu(Component):
    base_name = "vcpu"

    def __init__(self, sim: Board, index: int) -> None:
        super().__init__(sim.env, sim.trace, sim.guest, index=index)
        self.sim = sim
        self.id = index
        self.vm: VirtualMachine = sim.vms[0]
        self.running = True  # inside KVM_RUN (the guest may execute)
        self.masked = False  # PSTATE.I: the guest takes no interrupts
        self.doorbell: simpy.Event | None = None
        self.resume_ev = sim.env.event()
        self.paused_at: int | None = None
        self.in_mmio = 0  # an MMIO exit is being handled in the kernel (cannot leave yet)
        self.mmio_done: simpy.Event | None = None
        self.gen = 0  # bumped on every KVM_RUN entry: a stale exit request is ignored
        self.work = simpy.Resource(sim.env, 1)  # guest driver work runs on this vCPU
        t = sim.timing
        self.wake_ns = t.wfi_wakeup_ns
        self.deliver_ns = t.lpi_delivery_ns
        self.handler_ns = t.handler_ns
        self.halt_poll_ns = t.halt_poll_ns
        self.add_process(self.run)

    # -- hooks --------------------------------------------------------------------------
    def kick(self) -> None:
        d = self.doorbell
        if d is not None and not d.triggered:
            d.succeed()

    # -- the guest ------------------------------------------------------------------------
    def run(self) -> Generator[Any, Any, None]:
        env = self.env
        append = self.trace.rec.append
        timeout = env.timeout
        event = env.event
        i = self.id
        deliver_ns, wake_ns, handler_ns = self.deliver_ns, self.wake_ns, self.handler_ns
        halt_poll_ns = self.halt_poll_ns
        idle_since = -1  # -1: busy (just ran a handler); else when WFI started
        while True:
            if not self.running:
                yield self.resume_ev
                idle_since = int(env.now)
                continue
            vm = self.vm
            vgic = vm.vgic
            if vgic.cpus[i].ap_list and not self.masked:
                # halt polling: a vCPU idle for less than halt_poll_ns has not slept yet
                t0 = env.now
                dt = wake_ns if idle_since >= 0 and t0 - idle_since >= halt_poll_ns else deliver_ns
                idle_since = -1
                yield timeout(dt)
                pa = self.paused_at
                if pa is not None and t0 <= pa < env.now:
                    yield from self.spend(dt - (pa - int(t0)))
                    vm = self.vm
                    vgic = vm.vgic
                if not self.running or self.masked:
                    continue
                irq = vgic.acknowledge(i)
                if irq is None:
                    continue
                t0 = env.now
                append((t0, "deliver", vm.side, i, irq.intid, -1, -1, -1, ""))
                yield timeout(handler_ns)
                pa = self.paused_at
                if pa is not None and t0 <= pa < env.now:
                    yield from self.spend(handler_ns - (pa - int(t0)))
                if self.vm is vm:
                    vgic.eoi(i, irq)
                append((env.now, "eoi", self.vm.side, i, irq.intid, -1, -1, -1, ""))
                continue
            if idle_since < 0:
                idle_since = int(env.now)
            self.doorbell = ev = event()
            yield ev
            self.doorbell = None

    def spend(self, dt: int) -> Generator[Any, Any, None]:
        """Run guest code for ``dt`` ns of guest time; time paused outside KVM_RUN
        does not count (the guest is frozen, not preempted)."""
        env = self.env
        while dt > 0:
            if not self.running:
                yield self.resume_ev
                continue
            start = int(env.now)
            yield env.timeout(dt)
            te = self.paused_at
            if te is not None and start <= te < env.now:
                dt -= te - start
            else:
                dt = 0

    def wait_running(self) -> Generator[Any, Any, None]:
        while not self.running:
            yield self.resume_ev

    # -- KVM_RUN ------------------------------------------------------------------------
    def request_exit(self, latency: int) -> simpy.Event:
        """The VMM kicks this vCPU out of KVM_RUN; it leaves ``latency`` ns later (after any
        MMIO exit in progress completes). Returns an event fired once it is out."""
        done = self.env.event()
        self.env.process(self._leave(latency, done, self.gen))
        return done

    def _leave(self, latency: int, done: simpy.Event, gen: int) -> Generator[Any, Any, None]:
        yield self.env.timeout(latency)
        while self.in_mmio:
            if self.mmio_done is None:
                self.mmio_done = self.env.event()
            yield self.mmio_done
        if self.running and gen == self.gen:
            self.running = False
            self.paused_at = int(self.env.now)
            self.resume_ev = self.env.event()
            self.vm.vgic.vcpu_mutex_held[self.id] = False
            self.trace.rec.append((self.env.now, "vcpu", self.vm.side, self.id, -1, -1, -1, -1, "exit"))
        done.succeed()

    def enter(self, vm: VirtualMachine) -> None:
        """(Re-)enter KVM_RUN on ``vm``."""
        self.vm = vm
        self.gen += 1
        vm.vgic.vcpu_mutex_held[self.id] = True
        self.running = True
        self.paused_at = None
        self.trace.rec.append((self.env.now, "vcpu", vm.side, self.id, -1, -1, -1, -1, "enter"))
        if not self.resume_ev.triggered:
            self.resume_ev.succeed()
        self.kick()

    def mmio_begin(self) -> None:
        self.in_mmio += 1

    def mmio_end(self) -> None:
        self.in_mmio -= 1
        if not self.in_mmio and self.mmio_done is not None:
            ev, self.mmio_done = self.mmio_done, None
            ev.succeed()

    def set_masked(self, masked: bool) -> None:
        self.masked = masked
        self.trace.rec.append((self.env.now, "mask", self.vm.side, self.id, -1, -1, -1, -1, "1" if masked else "0"))
        if not masked:
            self.kick()
