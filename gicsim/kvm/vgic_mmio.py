"""Register helpers of ``arch/arm64/kvm/vgic/vgic-mmio.c`` (and the two BASER sanitisers of
``vgic-mmio-v3.c``): 64-bit register halves, byte extraction, cacheability sanitising.

Kernel files: ``vgic-mmio.c``, ``vgic-mmio-v3.c`` (Linux 6.12.117 (Debian linux-source-6.12), the default release).
"""

from __future__ import annotations

from collections.abc import Callable

from gicsim.kvm.abi import GENMASK
from gicsim.kvm.arm_gic_v3 import (
    _RBASER_INNER,
    _RBASER_OUTER,
    _SHARE,
    PENDBASER_RES0_MASK,
    PROPBASER_RES0_MASK,
    GIC_BASER_CACHE_nC,
    GIC_BASER_CACHE_nCnB,
    GIC_BASER_CACHE_RaWb,
    GIC_BASER_CACHE_SameAsInner,
    GIC_BASER_InnerShareable,
    GIC_BASER_OuterShareable,
)


def _sanitise_field(reg: int, field: tuple[int, int], fn: Callable[[int], int]) -> int:
    shift, mask = field
    return (reg & ~(mask << shift)) | (fn((reg >> shift) & mask) << shift)


def vgic_sanitise_shareability(f: int) -> int:
    return GIC_BASER_InnerShareable if f == GIC_BASER_OuterShareable else f


def vgic_sanitise_inner_cacheability(f: int) -> int:
    return GIC_BASER_CACHE_RaWb if f in (GIC_BASER_CACHE_nCnB, GIC_BASER_CACHE_nC) else f


def vgic_sanitise_outer_cacheability(f: int) -> int:
    return f if f in (GIC_BASER_CACHE_SameAsInner, GIC_BASER_CACHE_nC) else GIC_BASER_CACHE_SameAsInner


def _sanitise_rbaser(reg: int) -> int:
    reg = _sanitise_field(reg, _SHARE, vgic_sanitise_shareability)
    reg = _sanitise_field(reg, _RBASER_INNER, vgic_sanitise_inner_cacheability)
    return _sanitise_field(reg, _RBASER_OUTER, vgic_sanitise_outer_cacheability)


def vgic_sanitise_propbaser(reg: int) -> int:
    return _sanitise_rbaser(reg) & ~PROPBASER_RES0_MASK


def vgic_sanitise_pendbaser(reg: int) -> int:
    return _sanitise_rbaser(reg) & ~PENDBASER_RES0_MASK


def update_64bit_reg(reg: int, offset: int, length: int, val: int) -> int:
    """Merge a 32-bit half (offset 0 or 4) or a full 64-bit write into ``reg``."""
    if length == 8:
        return val & GENMASK(63, 0)
    lower = (offset & 4) * 8
    return (reg & ~(0xFFFF_FFFF << lower)) | ((val & 0xFFFF_FFFF) << lower)


def extract_bytes(reg: int, offset: int, length: int) -> int:
    return (reg >> ((offset & 7) * 8)) & ((1 << (length * 8)) - 1)

