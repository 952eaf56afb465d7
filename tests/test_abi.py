"""Byte-exact ABI REV0 entries (arm-vgic-its.rst), hand-computed."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from gicsim.kvm import abi
from gicsim.kvm import commands as C


def le(v: int) -> bytes:
    return struct.pack("<Q", v)


def test_dte_byte_exact():
    # V=1, next=5, ITT at 0x4001_2300 (bits [51:8] = 0x400123 -> [48:5]), 8 EventID bits -> Size 7
    v = abi.encode_dte(True, 5, 0x4001_2300, 8)
    assert v == 0x800A_0000_0800_2467
    assert le(v) == bytes.fromhex("6724000800000a80")
    assert abi.decode_dte(v) == abi.Dte(True, 5, 0x4001_2300, 8)


def test_dte_itt_addr_uses_bits_51_to_8():
    top = (1 << 52) - 256  # highest 256-byte aligned 52-bit address
    v = abi.encode_dte(True, 0, top, 16)
    assert v == (1 << 63) | (((1 << 44) - 1) << 5) | 15
    assert abi.decode_dte(v).itt_addr == top


def test_dte_next_is_14_bits_and_invalid_has_no_v():
    v = abi.encode_dte(False, 16383, 0, 1)
    assert v >> 63 == 0
    assert (v >> 49) == 16383
    assert not abi.decode_dte(v).valid


def test_ite_byte_exact():
    # next=3, pINTID 8195, ICID 2
    v = abi.encode_ite(3, 8195, 2)
    assert v == 0x0003_0000_2003_0002
    assert le(v) == bytes.fromhex("0200032000000300")
    assert abi.decode_ite(v) == abi.Ite(3, 8195, 2)
    assert abi.decode_ite(abi.encode_ite(65535, 0xFFFF_FFFF, 0xFFFF)) == abi.Ite(65535, 0xFFFF_FFFF, 0xFFFF)


def test_cte_byte_exact_mapped_and_unmapped():
    assert abi.encode_cte(3, 3) == 0x8000_0000_0003_0003
    assert le(abi.encode_cte(3, 3)) == bytes.fromhex("0300030000000080")
    unmapped = abi.encode_cte(abi.COLLECTION_NOT_MAPPED, 0)
    assert unmapped == 0x8000_FFFF_FFFF_0000
    assert abi.decode_cte(unmapped) == abi.Cte(True, 0xFFFF_FFFF, 0)


def test_l1_entry():
    v = abi.encode_l1e(0x4123_0000)
    assert v == 0x8000_0000_4123_0000
    assert abi.decode_l1e(v) == (True, 0x4123_0000)
    assert abi.decode_l1e(0x4123_0000) == (False, 0x4123_0000)


@given(
    st.booleans(),
    st.integers(0, 16383),
    st.integers(0, (1 << 44) - 1).map(lambda a: a << 8),
    st.integers(1, 32),
)
def test_dte_roundtrip(valid, nxt, itt, bits):
    assert abi.decode_dte(abi.encode_dte(valid, nxt, itt, bits)) == (valid, nxt, itt, bits)


@given(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(0, 65535))
def test_ite_roundtrip(nxt, pintid, icid):
    assert abi.decode_ite(abi.encode_ite(nxt, pintid, icid)) == (nxt, pintid, icid)


def test_command_encodings_byte_exact():
    # MAPTI dev 2, event 20, pINTID 8195, ICID 3 (kvm-unit-tests its_setup1)
    raw = C.mapti(2, 20, 8195, 3)
    assert raw == struct.pack("<4Q", 0x0000_0002_0000_000A, 0x0000_2003_0000_0014, 3, 0)
    # MAPD dev 7, ITT 0x4005_0000, 8 bits, V=1
    raw = C.mapd(7, 0x4005_0000, 8)
    assert raw == struct.pack("<4Q", 0x0000_0007_0000_0008, 7, (1 << 63) | 0x4005_0000, 0)
    # MAPC ICID 2 -> RDbase (vCPU) 2
    assert C.mapc(2, 2) == struct.pack("<4Q", 0x09, 0, (1 << 63) | (2 << 16) | 2, 0)
    # MOVALL vCPU 1 -> vCPU 3
    assert C.movall(1, 3) == struct.pack("<4Q", 0x0E, 0, 1 << 16, 3 << 16)


@given(
    st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(8192, 65535), st.integers(0, 0xFFFF)
)
def test_command_decode_roundtrip(dev, ev, lpi, icid):
    c = C.decode_cmd(C.mapti(dev, ev, lpi, icid))
    assert (c.name, c.devid, c.eventid, c.pintid, c.icid) == ("MAPTI", dev, ev, lpi, icid)
    c = C.decode_cmd(C.mapd(dev, 0x4000_0000 + (ev << 8), 5, True))
    assert (c.name, c.devid, c.ittaddr, c.size + 1, c.valid) == ("MAPD", dev, 0x4000_0000 + (ev << 8), 5, True)
    c = C.decode_cmd(C.mapc(icid, ev))
    assert (c.icid, c.target_addr, c.valid) == (icid, ev, True)
