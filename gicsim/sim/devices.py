"""MSI sources: devices that raise (DeviceID, EventID) at listed times, periodically or as a
Poisson process. Devices are not vCPUs: they keep firing while vCPUs are paused (vhost,
VFIO) unless the migration controller quiesces them; a quiesced device holds its MSIs and
sends them when its VM runs again."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from gicsim.sim.board import Board
from gicsim.sim.component import Component

if TYPE_CHECKING:
    from gicsim.sim.vm import VirtualMachine


class MsiSource(Component):
    base_name = "dev"

    def __init__(
        self,
        sim: Board,
        device: int,
        events: tuple[int, ...],
        times: tuple[int, ...] | None,
        rate_per_s: float | None,
        pattern: str,
        start_ns: int,
        stop_ns: int | None,
        rng: random.Random,
    ) -> None:
        super().__init__(sim.env, sim.trace, sim.fabric, index=device)
        self.sim = sim
        self.device = device
        self.events = events
        self.times = times
        self.rate = rate_per_s
        self.pattern = pattern
        self.start_ns = start_ns
        self.stop_ns = stop_ns
        self.rng = rng
        self.add_process(self.run)

    def run(self) -> Generator[Any, Any, None]:
        env = self.env
        send = self.sim.fabric.send
        dev = self.device
        if self.times is not None:
            for t in self.times:
                if t > env.now:
                    yield env.timeout(t - env.now)
                for ev in self.events:
                    r = send(dev, ev)
                    if r is not None:
                        yield r
            return
        assert self.rate is not None
        events = self.events
        n = len(events)
        stop = self.stop_ns
        if self.start_ns > env.now:
            yield env.timeout(self.start_ns - env.now)
        i = 0
        if self.pattern == "poisson":
            expo = self.rng.expovariate
            lam = self.rate / 1e9
            while True:
                dt = int(expo(lam)) or 1
                if stop is not None and env.now + dt > stop:
                    return
                yield env.timeout(dt)
                r = send(dev, events[i % n])
                if r is not None:
                    yield r
                i += 1
        else:
            period = max(1, round(1e9 / self.rate))
            while True:
                if stop is not None and env.now > stop:
                    return
                r = send(dev, events[i % n])
                if r is not None:
                    yield r
                i += 1
                if stop is not None and env.now + period > stop:
                    return
                yield env.timeout(period)


class Fabric(Component):
    """Where device MSIs go: the VM the devices currently belong to, or a hold queue while
    the migration controller has quiesced them."""

    base_name = "devices"

    def __init__(self, sim: Board) -> None:
        super().__init__(sim.env, sim.trace, None)
        self.sim = sim
        self.quiesced = False
        self.held: list[tuple[int, int]] = []
        self.rec = sim.trace.rec
        self.vm = sim.vms[0]

    @property
    def vm(self) -> VirtualMachine:
        """The VM the devices signal; switching it re-binds the fast path."""
        return self._vm

    @vm.setter
    def vm(self, vm: VirtualMachine) -> None:
        self._vm = vm
        self._side = vm.side
        self._fast = vm.its.vgic_its_inject_cached_translation

    def send(self, device: int, event: int) -> Any:
        """Raise an MSI; returns an event to wait on when the ITS lock must be taken."""
        now = self.env.now
        side = self._side
        append = self.rec.append
        append((now, "raise", side, -1, -1, device, event, -1, "msi"))
        if self.quiesced:
            self.held.append((device, event))
            return None
        irq = self._fast(device, event)
        if irq is not None:
            tgt = irq.target_vcpu
            append((now, "accept", side, -1 if tgt is None else tgt, irq.intid, device, event, -1, "msi"))
            return None
        vm = self._vm
        if not vm.its_lock.count:
            vm.inject_now(device, event)
            return None
        return self.env.process(vm.inject_msi(device, event))

    def quiesce(self) -> None:
        self.quiesced = True
        self.trace.rec.append((self.env.now, "quiesce", self.vm.side, -1, -1, -1, -1, -1, "1"))

    def release(self) -> Generator[Any, Any, None]:
        """Unquiesce: send every held MSI, in order, to the running VM."""
        self.quiesced = False
        self.trace.rec.append((self.env.now, "quiesce", self.vm.side, -1, -1, -1, -1, -1, "0"))
        held, self.held = self.held, []
        vm = self.vm
        for device, event in held:
            yield from vm.inject_msi(device, event)
