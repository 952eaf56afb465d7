"""The co-simulation (layer 4, above ``gicsim.judge``): SimPy components for the guest's
vCPUs (``vcpu``), the VMs (``vm``), the devices (``devices``), the guest's ITS driver
(``guest`` = its logic, ``driver`` = its process), the VMM's KVM calls (``vmm``) and the
migration controller (``migration``), wired by ``simulation`` (the elaboration step, then
the run). Components get a ``Board`` (``board``) at wiring and never import the
``Simulation``; timing comes from the scenario's resolved timing profile."""
