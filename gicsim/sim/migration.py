"""The migration controller: pre-copy, then the source's stop-and-copy steps and the
destination's restore steps in the order the scenario gives, every KVM call going through
the kernel model so ``-EBUSY``, ordering and pending-state hazards emerge by themselves.

What QEMU does at each step is in ``docs/vmm-peers.md``; the default orders are
QEMU's (``kvm_arm_its_pre_save``/``post_load``, ``kvm_arm_gicv3_put``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any

from gicsim.judge.state import architectural_state
from gicsim.kvm.errors import EBUSY, KernelOops, KvmError
from gicsim.kvm.memory import PAGE_SIZE
from gicsim.sim import vmm
from gicsim.sim.board import Board
from gicsim.sim.vm import VIRT_GIC_ITS, VirtualMachine

MAX_PRECOPY_ROUNDS = 30
#: GITS_* registers other than CTLR, in QEMU's post_load order
_GITS_ORDER = ["GITS_IIDR", "GITS_CBASER", "GITS_CREADR", "GITS_CWRITER"] + [
    f"GITS_BASER{n}" for n in range(8)
]
_STEP_REGS = {
    "gits_cbaser": ["GITS_CBASER"],
    "gits_iidr": ["GITS_IIDR"],
    "gits_creadr": ["GITS_CREADR"],
    "gits_cwriter": ["GITS_CWRITER"],
    "gits_baser": [f"GITS_BASER{n}" for n in range(8)],
}


class Stop(Exception):
    """The migration stops: ``aborted`` by the source or ``failed`` on the destination."""

    def __init__(self, status: str, errno: str, step: str) -> None:
        super().__init__(f"{status}: {errno} in {step}")
        self.status, self.errno, self.step = status, errno, step


class MigrationController:
    """One migration of the running VM to a fresh destination VM."""

    def __init__(self, sim: Board, index: int, cfg: Any) -> None:
        self.sim = sim
        self.env = sim.env
        self.trace = sim.trace
        self.index = index
        self.cfg = cfg
        self.scope = f"migration{index}" if index else "migration"
        self.started = sim.env.event()
        self.resumed = sim.env.event()
        self.status = "none"
        self.ebusy = 0
        self.errors: list[dict[str, Any]] = []
        self.phases: dict[str, dict[str, int]] = {}
        self.downtime_ns: int | None = None
        self.src: VirtualMachine | None = None
        self.dst: VirtualMachine | None = None
        self.stream_pages: dict[int, bytes] | None = None
        self.stream_regs: dict[str, Any] | None = None
        self.restored: set[str] = set()
        self.step = ""
        #: ``len(errors)`` when the guest resumed on the destination: errors after that come
        #: from destination steps listed after ``resume``, run on the running destination
        #: (the guest cannot go back), and make the status ``completed_with_errors``
        self.errors_at_resume: int | None = None
        t = sim.timing
        pc = cfg.precopy
        self.bw = (pc.bandwidth_mib_s or t.precopy_bandwidth_mib_s) * (1 << 20) / 1e9  # B/ns
        self.sw_bw = t.switchover_bandwidth_mib_s * (1 << 20) / 1e9
        self.limit_ns = pc.downtime_limit_ns if pc.downtime_limit_ns is not None else t.downtime_limit_ns
        self.dirty_rate = pc.dirty_pages_per_s / 1e9  # pages per ns
        self.synthetic = 0.0  # pages the guest workload dirtied that are not modelled content
        self.pending_pfns: set[int] = set()

    # ------------------------------------------------------------------ helpers ----
    def rec(self, kind: str, side: str, info: str, vcpu: int = -1) -> None:
        self.trace.rec.append((int(self.env.now), kind, side, vcpu, -1, -1, -1, self.index, info))

    def phase(self, name: str, start: int) -> None:
        self.phases[name] = {"start_ns": start, "end_ns": int(self.env.now)}

    def kvm(
        self,
        vm: VirtualMachine,
        name: str,
        fn: Callable[[], Any],
        cost: Callable[[], int] | None = None,
        lock: bool = False,
        failure: str = "aborted",
    ) -> Generator[Any, Any, Any]:
        """One KVM device call with the ``on_ebusy`` policy. ``cost`` (ns, computed after the
        call from what it touched) is charged with the ITS lock held when ``lock``."""
        t = self.sim.timing
        pol = self.cfg.source.on_ebusy
        attempt = 0
        while True:
            yield self.env.timeout(t.kvm_attr_ns)
            req = None
            if lock:
                req = vm.its_lock.request()
                yield req
            try:
                r = fn()
            except KvmError as e:
                if req is not None:
                    vm.its_lock.release(req)
                self.rec("kvm", vm.side, f"{name}:{e.errno}")
                self.errors.append({"step": self.step, "errno": e.errno, "t_ns": int(self.env.now), "call": name})
                if isinstance(e, KernelOops):
                    # the kernel oopsed inside the ioctl: no errno came back, the call never
                    # completed; whichever side it hit, the migration failed
                    raise Stop("failed", e.errno, self.step) from None
                if not isinstance(e, EBUSY):
                    raise Stop(failure, e.errno, self.step) from None
                self.ebusy += 1
                if pol.policy == "continue":
                    return None
                if pol.policy == "retry" and attempt < pol.retry:
                    attempt += 1
                    yield self.env.timeout(pol.backoff_ns)
                    continue
                raise Stop("aborted", "EBUSY", self.step) from None
            self.rec("kvm", vm.side, name)
            if cost is not None:
                c = cost()
                if c:
                    yield self.env.timeout(c)
            if req is not None:
                vm.its_lock.release(req)
            return r if r is not None else 0

    def drain(self, vm: VirtualMachine) -> Generator[Any, Any, None]:
        """Commands a userspace CWRITER/CTLR write made runnable execute now."""
        if vm.its.enabled and vm.its.creadr != vm.its.cwriter:
            req = vm.its_lock.request()
            yield req
            yield from vm.drain()
            vm.its_lock.release(req)

    # ---------------------------------------------------------------------- run ----
    def run(self) -> Generator[Any, Any, None]:
        sim = self.sim
        cfg = self.cfg
        if cfg.after is not None:
            prev = sim.migrations[cfg.after.migration]
            yield prev.started if cfg.after.event == "migration_start" else prev.resumed
            yield self.env.timeout(cfg.delay_ns or 0)
        elif cfg.at_ns is not None and cfg.at_ns > self.env.now:
            yield self.env.timeout(cfg.at_ns - self.env.now)
        src = self.src = sim.current_vm
        dst = self.dst = sim.new_vm()
        self.rec("migration", src.side, "start")
        self.status = "incomplete"  # until it completes, aborts or fails (or the run ends)
        self.started.succeed()
        t0 = int(self.env.now)
        yield from self.precopy(src, dst)
        self.phase("precopy", t0)
        stop_t = int(self.env.now)
        try:
            self.step = ""
            for step in cfg.source.steps:
                yield from self.source_step(src, dst, step)
            self.rec("state", src.side, "pause:" + json.dumps(architectural_state(src.vgic)))
            for step in cfg.destination.steps:
                try:
                    yield from self.dest_step(src, dst, step)
                except Stop as s:
                    if sim.current_vm is not dst:
                        raise
                    # the guest already runs on the destination: nothing to roll back to;
                    # the failed call stays in the errors list, the status becomes
                    # ``completed_with_errors`` and the next step runs
                    self.rec("step", dst.side, f"{s.step}:end")
                    self.phases.setdefault(s.step, {"start_ns": int(self.env.now), "end_ns": int(self.env.now)})
                    self.sim.notify_step(self, s.step, dst)
        except Stop as s:
            self.status = s.status
            self.rec("migration", src.side, f"{s.status}:{s.errno}:{s.step}")
            self.rec("step", src.side if s.status == "aborted" else dst.side, f"{s.step}:end")
            now = int(self.env.now)
            self.phases.setdefault(s.step, {"start_ns": now, "end_ns": now})
            self.phases[s.step]["end_ns"] = now
            yield from self.resume_on(src)
            self.downtime_ns = int(self.env.now) - stop_t
            self.phase("downtime", stop_t)
            return
        late = self.errors_at_resume is not None and len(self.errors) > self.errors_at_resume
        self.status = "completed_with_errors" if late else "completed"
        self.downtime_ns = int(self.env.now) - stop_t
        self.phase("downtime", stop_t)
        self.rec("migration", dst.side, self.status)

    # ------------------------------------------------------------------ precopy ----
    def precopy(self, src: VirtualMachine, dst: VirtualMachine) -> Generator[Any, Any, None]:
        """Iterative pre-copy of the pages the guest has written (zero pages cost nothing,
        as QEMU's zero-page detection), at the pre-copy bandwidth, until what is left fits
        the downtime limit at the switchover bandwidth."""
        pfns = set(src.mem.present_pfns())
        src.mem.take_dirty()
        self.synthetic = 0.0
        for _ in range(MAX_PRECOPY_ROUNDS):
            n = len(pfns) + self.synthetic
            dur = round(n * PAGE_SIZE / self.bw)
            if dur:
                yield self.env.timeout(dur)
            src.mem.copy_pages_to(dst.mem, pfns)
            # the workload cannot dirty more pages than the guest has
            self.synthetic = min(self.dirty_rate * dur, src.mem.size / PAGE_SIZE)
            pfns = src.mem.take_dirty()
            left = (len(pfns) + self.synthetic) * PAGE_SIZE / self.sw_bw
            if left <= self.limit_ns:
                break
        self.pending_pfns = pfns

    # ------------------------------------------------------------------- source ----
    def source_step(self, src: VirtualMachine, dst: VirtualMachine, step: str) -> Generator[Any, Any, None]:
        sim = self.sim
        t = sim.timing
        self.step = step
        start = int(self.env.now)
        self.rec("step", src.side, f"{step}:start")
        if step == "stop_vcpus":
            default = self.cfg.source.vcpu_exit_ns
            default = t.vcpu_exit_ns if default is None else default
            late = {s.vcpu: s.exit_ns for s in self.cfg.source.stragglers}
            # The VMM pauses its vCPUs one after another, ``vcpu_pause_per_vcpu_ns`` each
            # (signal the thread, wait for it to park): vCPU k gets its exit request k pauses
            # into the step and the loop takes n pauses, so a waiting VMM is done after
            # max(n pauses, the last exit). A VMM with ``stop_wait`` goes on after that wait
            # whatever the loop has reached (its kicks continue meanwhile).
            pause = t.vcpu_pause_per_vcpu_ns
            evs = [v.request_exit(k * pause + late.get(v.id, default)) for k, v in enumerate(sim.vcpus)]
            wait = self.cfg.source.stop_wait_ns
            if wait is None:
                yield self.env.all_of([*evs, self.env.timeout(len(sim.vcpus) * pause)])
            else:
                yield self.env.timeout(wait)
        elif step == "quiesce_devices":
            sim.fabric.quiesce()
        elif step == "save_pending_tables":
            yield from self.kvm(src, "SAVE_PENDING_TABLES", lambda: vmm.save_pending_tables(src.gic),
                                cost=lambda: src.gic.last_lpis_saved * t.pending_save_per_lpi_ns)  # fmt: skip
        elif step == "save_its_tables":
            yield from self.kvm(src, "ITS_SAVE_TABLES", lambda: vmm.its_save_tables(src.itsdev),
                                cost=lambda: src.itsdev.last_stats.entries_written * t.its_save_per_entry_ns,
                                lock=True)  # fmt: skip
        elif step == "final_memory":
            regs: dict[str, Any] = {}
            its_regs = yield from self.kvm(src, "ITS_REGS_GET", lambda: vmm.its_read_regs(src.itsdev),
                                           cost=lambda: len(vmm.ITS_REGS) * t.kvm_attr_ns)  # fmt: skip
            rd_regs = yield from self.kvm(src, "REDIST_REGS_GET",
                                          lambda: vmm.redist_read_regs(src.gic, src.vgic.nr_vcpus),
                                          cost=lambda: 5 * src.vgic.nr_vcpus * t.kvm_attr_ns)  # fmt: skip
            regs["its"] = its_regs or None
            regs["redist"] = rd_regs or None
            pfns = self.pending_pfns | src.mem.take_dirty()
            n = len(pfns) + self.synthetic
            yield self.env.timeout(round(n * PAGE_SIZE / self.sw_bw))
            self.stream_pages = {}
            tmp = src.mem
            for pfn in pfns:
                self.stream_pages[pfn] = tmp.read(pfn << 12, PAGE_SIZE) if tmp.is_visible(pfn << 12) else bytes(PAGE_SIZE)
            self.stream_regs = regs
        self.phase(step, start)
        self.rec("step", src.side, f"{step}:end")
        self.sim.notify_step(self, step, src)

    # -------------------------------------------------------------- destination ----
    def dest_step(self, src: VirtualMachine, dst: VirtualMachine, step: str) -> Generator[Any, Any, None]:
        sim = self.sim
        t = sim.timing
        self.step = step
        start = int(self.env.now)
        self.rec("step", dst.side, f"{step}:start")
        regs = self.stream_regs or {}
        its_regs = regs.get("its")
        fail = "failed"
        if step == "memory":
            for pfn, data in (self.stream_pages or {}).items():
                dst.mem.write(pfn << 12, data)
            sim.fabric.vm = dst  # device state loaded: unquiesced devices now signal here
        elif step == "redistributors":
            rd = regs.get("redist")
            if rd is not None:
                yield from self.kvm(dst, "REDIST_REGS_SET", lambda: vmm.redist_write_regs(dst.gic, rd),
                                    cost=lambda: 5 * dst.vgic.nr_vcpus * t.kvm_attr_ns, failure=fail)  # fmt: skip
        elif step == "its_init":
            yield from self.kvm(dst, "ITS_CTRL_INIT", lambda: vmm.its_init(dst.itsdev, VIRT_GIC_ITS), failure=fail)
        elif step in _STEP_REGS or step == "gits_regs":
            names = _STEP_REGS.get(step) or [r for r in _GITS_ORDER if r not in self.restored]
            if its_regs is not None:
                for name in names:
                    self.restored.add(name)
                    yield from self.kvm(dst, f"SET_{name}",
                                        lambda name=name: vmm.its_write_reg(dst.itsdev, name, its_regs[name]),  # type: ignore[misc]
                                        failure=fail)  # fmt: skip
                    if name == "GITS_CWRITER":
                        yield from self.drain(dst)
        elif step == "its_restore_tables":

            def cost() -> int:
                s = dst.itsdev.last_stats
                scanned = s.invalid_read + s.devices + s.collections
                return scanned * t.its_restore_scan_per_entry_ns + s.ites * t.its_restore_per_mapping_ns

            yield from self.kvm(dst, "ITS_RESTORE_TABLES", lambda: vmm.its_restore_tables(dst.itsdev),
                                cost=cost, lock=True, failure=fail)  # fmt: skip
        elif step == "gits_ctlr":
            if its_regs is not None:
                self.restored.add("GITS_CTLR")
                yield from self.kvm(dst, "SET_GITS_CTLR",
                                    lambda: vmm.its_write_reg(dst.itsdev, "GITS_CTLR", its_regs["GITS_CTLR"]),
                                    failure=fail)  # fmt: skip
                yield from self.drain(dst)
        elif step == "resume":
            self.rec("state", dst.side, "resume:" + json.dumps(architectural_state(dst.vgic)))
            yield from self.resume_on(dst)
            self.errors_at_resume = len(self.errors)
        self.phase(step, start)
        self.rec("step", dst.side, f"{step}:end")
        self.sim.notify_step(self, step, dst)

    def resume_on(self, vm: VirtualMachine) -> Generator[Any, Any, None]:
        """Run the VM on ``vm``: vCPUs re-enter KVM_RUN, held device MSIs are sent."""
        sim = self.sim
        sim.current_vm = vm
        sim.fabric.vm = vm
        sim.driver.rebind()
        # per-vCPU resume (unpark the thread, re-enter KVM_RUN), one vCPU after another
        resume = sim.timing.vcpu_resume_ns
        for v in sim.vcpus:
            yield self.env.timeout(resume)
            v.enter(vm)
        self.rec("migration", vm.side, "resume")
        if not self.resumed.triggered:
            self.resumed.succeed()
        if sim.fabric.quiesced:
            yield from sim.fabric.release()
