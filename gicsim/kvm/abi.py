"""ITS table ABI REV0 (Documentation/virt/kvm/devices/arm-vgic-its.rst, vgic.h KVM_ITS_*).

All entries are 8 bytes, little-endian. These are the exact bit layouts KVM writes into guest
RAM on ``KVM_DEV_ARM_ITS_SAVE_TABLES`` and parses on ``KVM_DEV_ARM_ITS_RESTORE_TABLES``.
"""

from __future__ import annotations

from typing import NamedTuple


def GENMASK(h: int, low: int) -> int:  # noqa: N802 - the kernel's name
    return ((1 << (h - low + 1)) - 1) << low


ABI_REV0 = 0
NR_ITS_ABIS = 1
ESZ = 8  # dte_esz == ite_esz == cte_esz in REV0

KVM_ITS_DTE_VALID_SHIFT = 63
KVM_ITS_DTE_NEXT_SHIFT = 49
KVM_ITS_DTE_NEXT_MASK = GENMASK(62, 49)
KVM_ITS_DTE_ITTADDR_SHIFT = 5
KVM_ITS_DTE_ITTADDR_MASK = GENMASK(48, 5)
KVM_ITS_DTE_SIZE_MASK = GENMASK(4, 0)
KVM_ITS_ITE_NEXT_SHIFT = 48
KVM_ITS_ITE_PINTID_SHIFT = 16
KVM_ITS_ITE_PINTID_MASK = GENMASK(47, 16)
KVM_ITS_ITE_ICID_MASK = GENMASK(15, 0)
KVM_ITS_CTE_VALID_SHIFT = 63
KVM_ITS_CTE_RDBASE_SHIFT = 16
KVM_ITS_CTE_ICID_MASK = GENMASK(15, 0)
KVM_ITS_L1E_VALID_MASK = 1 << 63
KVM_ITS_L1E_ADDR_MASK = GENMASK(51, 16)

VITS_DTE_MAX_DEVID_OFFSET = (1 << 14) - 1
VITS_ITE_MAX_EVENTID_OFFSET = (1 << 16) - 1
COLLECTION_NOT_MAPPED = 0xFFFF_FFFF
GIC_LPI_OFFSET = 8192
VGIC_MIN_LPI = 8192
INTERRUPT_ID_BITS_ITS = 16
VITS_TYPER_IDBITS = 16
VITS_TYPER_DEVBITS = 16
VITS_MAX_DEVID = (1 << VITS_TYPER_DEVBITS) - 1
VITS_MAX_EVENTID = (1 << VITS_TYPER_IDBITS) - 1
SZ_64K = 64 * 1024
L2_DTES = SZ_64K // ESZ  # 8192 DTEs per level-2 page


class Dte(NamedTuple):
    valid: bool
    next: int
    itt_addr: int
    num_eventid_bits: int


class Ite(NamedTuple):
    next: int
    pintid: int
    icid: int


class Cte(NamedTuple):
    valid: bool
    target_addr: int
    icid: int


def encode_dte(valid: bool, next_offset: int, itt_addr: int, num_eventid_bits: int) -> int:
    """``vgic_its_save_dte``: V | next | ITT_addr[51:8] | Size = bits - 1."""
    return (
        (int(valid) << KVM_ITS_DTE_VALID_SHIFT)
        | ((next_offset << KVM_ITS_DTE_NEXT_SHIFT) & KVM_ITS_DTE_NEXT_MASK)
        | (((itt_addr >> 8) << KVM_ITS_DTE_ITTADDR_SHIFT) & KVM_ITS_DTE_ITTADDR_MASK)
        | ((num_eventid_bits - 1) & KVM_ITS_DTE_SIZE_MASK)
    )


def decode_dte(val: int) -> Dte:
    return Dte(
        bool(val >> KVM_ITS_DTE_VALID_SHIFT),
        (val & KVM_ITS_DTE_NEXT_MASK) >> KVM_ITS_DTE_NEXT_SHIFT,
        ((val & KVM_ITS_DTE_ITTADDR_MASK) >> KVM_ITS_DTE_ITTADDR_SHIFT) << 8,
        (val & KVM_ITS_DTE_SIZE_MASK) + 1,
    )


def encode_ite(next_offset: int, pintid: int, icid: int) -> int:
    """``vgic_its_save_ite``: next | pINTID | ICID; pINTID 0 is the invalid entry."""
    return (
        (next_offset << KVM_ITS_ITE_NEXT_SHIFT)
        | ((pintid << KVM_ITS_ITE_PINTID_SHIFT) & KVM_ITS_ITE_PINTID_MASK)
        | (icid & KVM_ITS_ITE_ICID_MASK)
    ) & GENMASK(63, 0)


def decode_ite(val: int) -> Ite:
    return Ite(
        val >> KVM_ITS_ITE_NEXT_SHIFT,
        (val & KVM_ITS_ITE_PINTID_MASK) >> KVM_ITS_ITE_PINTID_SHIFT,
        val & KVM_ITS_ITE_ICID_MASK,
    )


def encode_cte(target_addr: int, icid: int) -> int:
    """``vgic_its_save_cte``: V | RDBase (vCPU id, 0xFFFFFFFF = not mapped) | ICID."""
    return (1 << KVM_ITS_CTE_VALID_SHIFT) | (target_addr << KVM_ITS_CTE_RDBASE_SHIFT) | icid


def decode_cte(val: int) -> Cte:
    # The kernel reads the target as (u32)(val >> 16), i.e. bits [47:16].
    return Cte(
        bool(val >> KVM_ITS_CTE_VALID_SHIFT),
        (val >> KVM_ITS_CTE_RDBASE_SHIFT) & 0xFFFF_FFFF,
        val & KVM_ITS_CTE_ICID_MASK,
    )


def encode_l1e(l2_addr: int, valid: bool = True) -> int:
    return (int(valid) << 63) | (l2_addr & KVM_ITS_L1E_ADDR_MASK)


def decode_l1e(val: int) -> tuple[bool, int]:
    return bool(val & KVM_ITS_L1E_VALID_MASK), val & KVM_ITS_L1E_ADDR_MASK
