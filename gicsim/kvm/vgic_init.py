"""The VM's vGICv3 as ``kvm_vgic_create`` / ``vgic_init`` of ``arch/arm64/kvm/vgic/vgic-init.c``
build it: ``struct vgic_dist`` with its redistributors, LPI records and vCPU mutexes.

Kernel file: ``vgic-init.c`` (Linux 6.12.117 (Debian linux-source-6.12), the default release). ``Vgic`` is the class to instantiate; its methods come
from the files they mirror (see ``gicsim/kvm/vgic.py``).
"""

from __future__ import annotations

from gicsim.kvm.vgic_mmio_v3 import VgicMmioV3


class Vgic(VgicMmioV3):
    """``struct vgic_dist`` plus the per-vCPU state and the vCPU mutexes of one VM."""
