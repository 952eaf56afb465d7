from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gicsim.kvm.errors import EFAULT
from gicsim.kvm.memory import PAGE_SIZE, RAM_BASE, GuestMemory


def test_untouched_reads_zero_and_pages_materialise_on_write():
    m = GuestMemory(1 << 20)
    assert m.read_u64(RAM_BASE + 0x1000) == 0
    assert m.present_pages == 0
    m.write_u64(RAM_BASE + 0x1008, 0x0102030405060708)
    assert m.read(RAM_BASE + 0x1008, 8) == bytes([8, 7, 6, 5, 4, 3, 2, 1])  # little-endian
    assert m.read_u8(RAM_BASE + 0x100F) == 1
    assert m.present_pages == 1


def test_outside_ram_is_efault():
    m = GuestMemory(1 << 20)
    for bad in (0, RAM_BASE - 8, RAM_BASE + (1 << 20), RAM_BASE + (1 << 20) - 4):
        with pytest.raises(EFAULT):
            m.read_u64(bad)
        with pytest.raises(EFAULT):
            m.write_u64(bad, 1)
    with pytest.raises(EFAULT):
        m.read_u8(RAM_BASE - 1)


def test_dirty_tracking_and_copy():
    a, b = GuestMemory(1 << 20), GuestMemory(1 << 20)
    a.write_u8(RAM_BASE, 1)
    a.write(RAM_BASE + PAGE_SIZE - 2, b"\xaa\xbb\xcc\xdd")  # spans two pages
    d = a.take_dirty()
    assert d == {RAM_BASE >> 12, (RAM_BASE >> 12) + 1}
    assert a.take_dirty() == set()
    assert a.copy_pages_to(b, d) == 2 * PAGE_SIZE
    assert b.read(RAM_BASE + PAGE_SIZE - 2, 4) == b"\xaa\xbb\xcc\xdd"
    assert b.read_u8(RAM_BASE) == 1


def test_find_nonzero_skips_untouched_pages_and_faults_past_ram():
    m = GuestMemory(1 << 24)
    assert m.find_nonzero(RAM_BASE, RAM_BASE + (1 << 24)) is None
    m.write_u64(RAM_BASE + 0x7F_0008, 0)  # page present but zero
    m.write_u8(RAM_BASE + 0x80_0013, 5)  # byte 3 of the entry at +0x80_0010
    assert m.find_nonzero(RAM_BASE, RAM_BASE + (1 << 24)) == RAM_BASE + 0x80_0010
    assert m.find_nonzero(RAM_BASE + 0x80_0018, RAM_BASE + (1 << 24)) is None
    with pytest.raises(EFAULT):
        m.find_nonzero(RAM_BASE + 0x80_0018, RAM_BASE + (1 << 24) + 8)


@given(st.lists(st.integers(0, (1 << 16) - 1), max_size=20), st.integers(0, (1 << 16) - 1))
def test_find_nonzero_matches_a_linear_scan(slots, start):
    m = GuestMemory(1 << 20)
    for s in slots:
        m.write_u64(RAM_BASE + s * 8, 1 << (s % 64))
    want = next((RAM_BASE + s * 8 for s in sorted(slots) if s >= start), None)
    assert m.find_nonzero(RAM_BASE + start * 8, RAM_BASE + (1 << 19)) == want
