"""Wiring: build the components of a scenario, run SimPy, judge the trace, summarise.

``gicsim.run(path_or_dict)`` is the Python API (notebooks); the CLI calls the same thing.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import simpy

from gicsim.judge import oracles
from gicsim.judge.trace import Record, Trace, public_frame, records_to_frame
from gicsim.kvm.releases import KernelProfile
from gicsim.scenario import Scenario, load_scenario, scenario_from_dict
from gicsim.sim.component import Component
from gicsim.sim.devices import Fabric, MsiSource
from gicsim.sim.driver import GuestDriver
from gicsim.sim.migration import MigrationController
from gicsim.sim.progress import Progress, watch
from gicsim.sim.vcpu import Vcpu
from gicsim.sim.vm import VIRT_GIC_ITS, VirtualMachine, kernel_info, kernel_library
from gicsim.sim.vmm import its_init


class Simulation:
    """One run of one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.env = simpy.Environment()
        self.trace = Trace()
        self.timing = scenario.timing
        k = scenario.kernel
        self.kernel = KernelProfile(
            release=k.release,
            pending_sync_on_ctlr=k.pending_sync_on_ctlr,
            pending_sync_clears_ram=k.pending_sync_clears_ram,
            clear_on_unmap=k.clear_on_unmap,
            restore_scan=k.restore_scan,
            translation_cache=k.translation_cache,
            mapc_checks_rdbase_first=k.mapc_checks_rdbase_first,
            save_ite_no_collection=k.save_ite_no_collection,
            baser_write_frees_on_change=k.baser_write_frees_on_change,
        )
        self.kernel_lib = kernel_library(scenario)  # None: the Python model (gicsim.kvm)
        self.step_observers: list[Any] = []
        self.vms: list[VirtualMachine] = []
        self.vcpus: list[Vcpu] = []
        vm0 = self.new_vm()
        its_init(vm0.itsdev, VIRT_GIC_ITS)  # QEMU realize on the source
        self.current_vm = vm0
        self.guest = Component(self.env, self.trace, None, "guest")
        self.vcpus = [Vcpu(self, i) for i in range(scenario.vm.vcpus)]
        for v in self.vcpus:
            vm0.vgic.vcpu_mutex_held[v.id] = True  # every vCPU thread starts inside KVM_RUN
        self.fabric: Fabric = Fabric(self)
        seeds = np.random.SeedSequence(scenario.seed).spawn(max(1, len(scenario.devices)))
        self.sources: list[MsiSource] = []
        for i, d in enumerate(scenario.devices):
            rng = random.Random(int(seeds[i].generate_state(1)[0]))
            for dev in d.device:
                self.sources.append(
                    MsiSource(self, dev, d.events, d.at_ns, d.rate_per_s, d.pattern or "periodic",
                              d.start_ns or 0, d.stop_ns, rng)  # fmt: skip
                )
        self.driver = GuestDriver(self)
        self.migrations = [MigrationController(self, i, m) for i, m in enumerate(scenario.migrations)]

    def kick_vcpu(self, vcpu: int) -> None:
        """The vGIC queued an LPI for ``vcpu``: ring its doorbell (no ``interrupt()``)."""
        d = self.vcpus[vcpu].doorbell
        if d is not None and not d.triggered:
            d.succeed()

    def notify_step(self, mig: MigrationController, step: str, vm: VirtualMachine) -> None:
        """Call every ``step_observers`` hook after a migration step ends (e.g. to dump
        the tables in guest memory at that moment)."""
        for fn in self.step_observers:
            fn(mig, step, vm)

    def new_vm(self) -> VirtualMachine:
        vm = VirtualMachine(self, len(self.vms))
        self.vms.append(vm)
        return vm

    def _action(self, a: Any) -> Any:
        env = self.env
        if a.after is not None:
            m = self.migrations[a.after.migration]
            yield m.started if a.after.event == "migration_start" else m.resumed
            yield env.timeout(a.delay_ns or 0)
        elif a.at_ns is not None and a.at_ns > env.now:
            yield env.timeout(a.at_ns - env.now)
        yield self.driver.booted
        yield from self.driver.action(self.vcpus[a.vcpu], a.kind, a.args)

    def run(self, progress: Progress | None = None) -> None:
        """Run to ``until``; ``progress`` (optional) hears of each tenth of the simulated time
        (it schedules nothing: same events, same trace)."""
        if progress is not None:
            watch(self.env, self.scenario.until_ns, progress)
        for c in (self.guest, self.fabric):
            c.elaborate()
        for a in self.scenario.guest.actions:
            self.env.process(self._action(a))
        for m in self.migrations:
            self.env.process(m.run())
        self.env.run(until=self.scenario.until_ns)

    @property
    def events(self) -> int:
        return next(self.env._eid)


@attrs.define
class Result:
    scenario: Scenario
    summary: dict[str, Any]
    records: list[Record]
    verdict: oracles.Verdict

    @property
    def trace(self) -> pd.DataFrame:
        """The trace table (docs/trace-schema.md): one meaning per column, ``<NA>`` where a
        field does not apply."""
        return public_frame(records_to_frame(self.records))

    @property
    def frame(self) -> pd.DataFrame:
        """The records as a frame in record layout (``-1`` sentinels), for the analysis."""
        return records_to_frame(self.records)

    def _facts(self) -> list[tuple[str, str]]:
        """The summary's headline facts as (label, value): what ``repr`` and the notebook's
        HTML table show (never the trace itself)."""
        s = self.summary
        lp = s["lpis"]
        migs = ", ".join(m["status"] for m in s["migrations"]) or "none"
        dropped = ", ".join(f"{k} {v}" for k, v in lp["dropped"].items() if v) or "0"
        ex = s.get("expect", {})
        verdict = "met" if ex.get("passed", True) else "NOT met: " + ", ".join(f["key"] for f in ex["failures"])
        return [
            ("scenario", str(s["scenario"])), ("seed", str(s["seed"])), ("migration", migs),
            ("accepted", str(lp["accepted"])), ("delivered", str(lp["delivered"])),
            ("lost", str(lp["lost"])), ("spurious", str(lp["spurious"])),
            ("misrouted", str(lp["misrouted"])), ("dropped", dropped),
            ("state_match", str(s["state_match"])), ("expect", verdict),
            ("trace rows", str(len(self.records))), ("wall", f"{s['wall_s']} s"),
        ]  # fmt: skip

    def __repr__(self) -> str:
        """One short line (not the trace: ``result.trace`` is the table)."""
        inner = ", ".join(f"{k}={v[:200]}" for k, v in self._facts())
        return f"<Result {inner}>"

    def _repr_html_(self) -> str:
        """Jupyter: the summary's headline facts as a small HTML table."""
        import html

        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v[:200])}</td></tr>"
                       for k, v in self._facts())  # fmt: skip
        return f"<table class='gicsim-result'>{rows}</table>"


def as_scenario(src: str | Path | dict[str, Any] | Scenario) -> Scenario:
    if isinstance(src, Scenario):
        return src
    if isinstance(src, dict):
        return scenario_from_dict(src)
    return load_scenario(src)


def run(src: str | Path | dict[str, Any] | Scenario, progress: Progress | None = None) -> Result:
    """Run a scenario (a path, a dict in the YAML's shape, or a loaded Scenario);
    ``progress`` (gicsim.sim.progress) prints how far a long run has got."""
    sc = as_scenario(src)
    t0 = time.perf_counter()
    sim = Simulation(sc)
    sim.run(progress)
    wall = time.perf_counter() - t0
    rec = sim.trace.rec
    if progress is not None:
        progress.line("simulated; judging the trace")
    verdict = oracles.judge(rec, sc.until_ns)
    summary = summarise(sim, verdict, wall)
    summary["expect"] = check_expect(sc, summary)
    return Result(sc, summary, rec, verdict)


def summarise(sim: Simulation, v: oracles.Verdict, wall_s: float) -> dict[str, Any]:
    rec = sim.trace.rec
    delivered = oracles.delivered_counts(rec)
    return {
        "scenario": sim.scenario.name,
        "seed": sim.scenario.seed,
        "sim_ns": sim.env.now,
        "events": sim.events,
        "wall_s": round(wall_s, 3),
        "migrations": [
            {
                "status": m.status,
                "ebusy": m.ebusy,
                "downtime_ns": m.downtime_ns,
                "errors": [{k: e[k] for k in ("step", "errno", "t_ns")} for e in m.errors],
                "phases": m.phases,
            }
            for m in sim.migrations
        ],
        "lpis": {
            "accepted": v.accepted,
            "delivered": v.delivered,
            "lost": v.lost,
            "spurious": v.spurious,
            "misrouted": v.misrouted,
            "withdrawn": v.withdrawn,
            "in_flight": v.in_flight,
            "dropped": dict(v.dropped),
            "latency_ns": dict(v.latency_ns),
        },
        "delivered": [
            {"lpi": lpi, "vcpu": vcpu, "side": side, "count": n}
            for (lpi, vcpu, side), n in sorted(delivered.items())
        ],
        "state_match": oracles.state_match(rec),
        "kernel": kernel_info(sim.scenario, sim.kernel_lib),
    }


def _cmp(c: Any, got: int) -> bool:
    return bool(c.holds(got)) if hasattr(c, "holds") else got == c


def check_expect(sc: Scenario, s: dict[str, Any]) -> dict[str, Any]:
    """Compare the summary with the scenario's ``expect``; each failure says wanted vs got."""
    e = sc.expect
    fails: list[dict[str, Any]] = []

    def check(key: str, want: Any, got: Any, ok: bool) -> None:
        if not ok:
            fails.append({"key": key, "wanted": want, "got": got})

    migs = s["migrations"]
    if e.migration is not None:
        want = list(e.migration)
        got = [m["status"] for m in migs] or ["none"]
        if len(want) == 1:
            check("migration", want[0], got, all(g == want[0] for g in got))
        else:
            check("migration", want, got, want == got)
    for key in ("lost", "spurious", "misrouted"):
        c = getattr(e, key)
        if c is not None:
            got = s["lpis"][key]
            check(key, _show(c), got, _cmp(c, got))
    if e.ebusy is not None:
        got = sum(m["ebusy"] for m in migs)
        check("ebusy", _show(e.ebusy), got, _cmp(e.ebusy, got))
    if e.state_match is not None:
        check("state_match", e.state_match, s["state_match"], s["state_match"] == e.state_match)
    if e.dropped is not None:
        for reason in oracles.DROP_REASONS:
            c = getattr(e.dropped, reason)
            if c is not None:
                got = s["lpis"]["dropped"].get(reason, 0)
                check(f"dropped.{reason}", _show(c), got, _cmp(c, got))
    if e.errors is not None:
        want_e = [{"step": x.step, "errno": x.errno} for x in e.errors]
        got_e = [{"step": x["step"], "errno": x["errno"]} for m in migs for x in m["errors"]]
        check("errors", want_e, got_e, want_e == got_e)
    if e.delivered is not None:
        counts: dict[tuple[int, int, str], int] = {}
        for d in s["delivered"]:
            counts[(d["lpi"], d["vcpu"], d["side"])] = d["count"]
        for i, d in enumerate(e.delivered):
            bad = []
            for lpi in d.lpi:
                if d.side == "any":
                    n = counts.get((lpi, d.vcpu, "source"), 0) + counts.get((lpi, d.vcpu, "destination"), 0)
                else:
                    n = counts.get((lpi, d.vcpu, d.side), 0)
                if n != d.count:
                    bad.append((lpi, n))
            if bad:
                shown = ", ".join(f"{lpi}: {n}" for lpi, n in bad[:5]) + (" ..." if len(bad) > 5 else "")
                check(f"delivered.{i}", f"{d.count} on vCPU {d.vcpu} ({d.side}) for each LPI",
                      f"{len(bad)} LPIs differ ({shown})", False)  # fmt: skip
    return {"passed": not fails, "failures": fails}


def _show(c: Any) -> str:
    return f"{c.op} {c.value}" if hasattr(c, "op") else str(c)
