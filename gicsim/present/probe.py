"""Re-run a scenario with a probe that looks at the model between SimPy events.

``gicsim explain --lpi`` and ``gicsim diff`` need state the trace does not record (an LPI's
``pending_latch`` in ``vgic_irq``, its bit in the pending table in guest RAM — what
``vgic_v3_save_pending_tables`` writes and ``vgic_v3_lpi_sync_pending_status`` /
``its_sync_lpi_pending_table`` of ``arch/arm64/kvm/vgic/vgic-v3.c`` / ``vgic-its.c`` read).
The probe wraps the instance's ``env.step`` (SimPy's ``Environment.run`` calls
``self.step()``): after every event it hands the records that event appended to a callback,
which reads the model through its public attributes (``vgic.lpi_xa``, ``vgic.cpus``,
``vm.mem``, :func:`gicsim.judge.state.its_state`). Nothing is scheduled and nothing written:
the run's trace is the one ``gicsim run`` gives (same scenario, same seed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gicsim.kvm.arm_gic_v3 import GICR_PENDBASER_ADDRESS
from gicsim.kvm.errors import EFAULT

if TYPE_CHECKING:
    from gicsim.scenario import Scenario
    from gicsim.sim.simulation import Simulation
    from gicsim.sim.vm import VirtualMachine

#: called after each SimPy event with (simulation, records, index of the first new one)
Callback = Callable[["Simulation", list[Any], int], None]
#: called before each SimPy event with (simulation, records, time of the next event)
Before = Callable[["Simulation", list[Any], int], None]


def run_probed(sc: Scenario, after: Callback | None = None, before: Before | None = None,
               setup: Callable[[Simulation], None] | None = None) -> Simulation:  # fmt: skip
    """Run ``sc`` to its end with ``after``/``before`` called around every SimPy event
    (``setup``: called with the simulation before it runs, e.g. to add a step observer)."""
    from gicsim.sim.simulation import Simulation

    sim = Simulation(sc)
    if setup is not None:
        setup(sim)
    rec = sim.trace.rec
    env = sim.env
    inner = env.step
    seen = [0]

    def step() -> None:
        if before is not None:
            before(sim, rec, int(env.peek()))
        inner()
        if after is not None:
            after(sim, rec, seen[0])
        seen[0] = len(rec)

    env.step = step  # type: ignore[method-assign]
    sim.run()
    return sim


def _pendbase(vm: VirtualMachine, others: list[VirtualMachine], cpu: int) -> int:
    """The address of ``cpu``'s pending table: its GICR_PENDBASER, or (not restored yet on
    this host) the one another host of the run holds — guest memory has the same layout."""
    base = GICR_PENDBASER_ADDRESS(vm.vgic.cpus[cpu].pendbaser)
    if base:
        return int(base)
    for o in others:
        if o is not vm and cpu < len(o.vgic.cpus):
            b = GICR_PENDBASER_ADDRESS(o.vgic.cpus[cpu].pendbaser)
            if b:
                return int(b)
    return 0


def ram_bits(vm: VirtualMachine, others: list[VirtualMachine], lpi: int) -> tuple[int, ...]:
    """The vCPUs whose pending table in ``vm``'s guest memory has ``lpi``'s bit set."""
    out = []
    for cpu in range(len(vm.vgic.cpus)):
        base = _pendbase(vm, others, cpu)
        if not base:
            continue
        try:
            byte = vm.mem.read_u8(base + lpi // 8)
        except EFAULT:
            continue
        if byte >> (lpi % 8) & 1:
            out.append(cpu)
    return tuple(out)


def kernel_record(vm: VirtualMachine, lpi: int) -> tuple[bool, bool, int, bool] | None:
    """``lpi``'s ``vgic_irq`` on ``vm`` (pending_latch, active, target vCPU, enabled), or None."""
    irq = vm.vgic.lpi_xa.get(lpi)
    if irq is None:
        return None
    tgt = -1 if irq.target_vcpu is None else int(irq.target_vcpu)
    return bool(irq.pending_latch), bool(irq.active), tgt, bool(irq.enabled)
