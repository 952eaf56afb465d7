"""A bare SimPy skeleton with gicsim's process structure and no modelling.

vCPU processes sleep on a doorbell event, spend a delivery latency and a handler time per
interrupt; device sources fire periodic/Poisson MSIs at a target vCPU; an ITS dispatch
process runs the boot command batch one command at a time; a migration process stops the
vCPUs and holds the devices for the downtime, then resumes them. Same seeds, same rates,
same latencies as the gicsim run it is compared with, so events/s are comparable.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

import simpy


class Vcpu:
    __slots__ = ("env", "pending", "doorbell", "running", "resume", "deliver_ns", "handler_ns")

    def __init__(self, env: simpy.Environment, deliver_ns: int, handler_ns: int) -> None:
        self.env = env
        self.pending = 0
        self.doorbell: simpy.Event | None = None
        self.running = True
        self.resume = env.event()
        self.deliver_ns = deliver_ns
        self.handler_ns = handler_ns

    def kick(self) -> None:
        d = self.doorbell
        if d is not None and not d.triggered:
            d.succeed()

    def run(self) -> Generator[Any, Any, None]:
        env = self.env
        while True:
            if not self.running:
                yield self.resume
                continue
            if self.pending:
                yield env.timeout(self.deliver_ns)
                self.pending -= 1
                yield env.timeout(self.handler_ns)
                continue
            self.doorbell = ev = env.event()
            yield ev
            self.doorbell = None


class Skeleton:
    def __init__(self, w: dict[str, Any]) -> None:
        self.env = env = simpy.Environment()
        self.w = w
        self.vcpus = [Vcpu(env, w["deliver_ns"], w["handler_ns"]) for _ in range(w["vcpus"])]
        self.held: list[int] = []
        self.quiesced = False
        for v in self.vcpus:
            env.process(v.run())
        rng = random.Random(w["seed"])
        for d in range(w["devices"]):
            env.process(self.device(d, random.Random(rng.random())))
        env.process(self.its_dispatch())
        env.process(self.migration())

    def send(self, target: int) -> None:
        if self.quiesced:
            self.held.append(target)
            return
        v = self.vcpus[target]
        v.pending += 1
        v.kick()

    def device(self, d: int, rng: random.Random) -> Generator[Any, Any, None]:
        env, w = self.env, self.w
        ev = w["events"]
        lam = w["rate_per_s"] / 1e9
        yield env.timeout(w["start_ns"])
        i = 0
        while True:
            dt = int(rng.expovariate(lam)) or 1
            if env.now + dt > w["stop_ns"]:
                return
            yield env.timeout(dt)
            self.send((d * ev + i % ev) % w["vcpus"])
            i += 1

    def its_dispatch(self) -> Generator[Any, Any, None]:
        for _ in range(self.w["boot_commands"]):
            yield self.env.timeout(self.w["cmd_ns"])

    def migration(self) -> Generator[Any, Any, None]:
        env, w = self.env, self.w
        yield env.timeout(w["migration_at_ns"])
        self.quiesced = True
        for v in self.vcpus:
            v.running = False
            v.resume = env.event()
        yield env.timeout(w["downtime_ns"])
        for v in self.vcpus:
            v.running = True
            v.resume.succeed()
            v.kick()
        self.quiesced = False
        held, self.held = self.held, []
        for t in held:
            self.send(t)

    def run(self) -> int:
        self.env.run(until=self.w["until_ns"])
        return next(self.env._eid)
