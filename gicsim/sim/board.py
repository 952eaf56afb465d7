"""What a co-simulation component is given at wiring: the *board* it is plugged into.

Components (vCPUs, VMs, devices, the guest driver, migration controllers) never import the
``Simulation`` that wires them (``gicsim.sim.simulation``); they receive a ``Board`` — the
shared SimPy environment, trace and timing profile, the scenario, and the few live services
they use (where the guest currently runs, the vCPUs, the device fabric, how to build a new
VM). ``Simulation`` is the one implementation; a test may pass any object with these
attributes. The members typed ``Any`` are components of this layer (typing them would make
this module import the components that import it).
"""

from __future__ import annotations

from typing import Any, Protocol

import simpy

from gicsim.judge.trace import Trace
from gicsim.kvm.releases import KernelProfile
from gicsim.scenario.timing import TimingProfile


class Board(Protocol):
    env: simpy.Environment
    trace: Trace
    timing: TimingProfile
    kernel: KernelProfile
    #: the validated ``gicsim.scenario.Scenario``
    scenario: Any
    #: every VM incarnation so far (``VirtualMachine``), vm0 = the first source
    vms: list[Any]
    #: the VM the guest runs on now (switches at resume)
    current_vm: Any
    #: the guest's vCPUs (``Vcpu``): they survive migration
    vcpus: list[Any]
    #: the devices (``Fabric``) and the guest's ITS driver (``GuestDriver``)
    fabric: Any
    driver: Any
    #: parent component of the guest's processes (vCPUs, driver)
    guest: Any
    #: the migration controllers, in scenario order
    migrations: list[Any]

    def kick_vcpu(self, vcpu: int) -> None: ...

    def new_vm(self) -> Any: ...

    def notify_step(self, mig: Any, step: str, vm: Any) -> None: ...
