"""The kernel backend's pieces (gicsim/linux/backend*.py) against the 6.12 library: one
guest memory, the command queue one command per slot, MSI fates, kicks, the LR path, and
the one-line errors for backend choices that cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from linux_helpers import kernel

from gicsim.kvm import commands as C
from gicsim.kvm.errors import EFAULT, KvmError
from gicsim.kvm.its import (
    MSI_ACCEPTED,
    MSI_ITS_DISABLED,
    MSI_LPIS_DISABLED,
    MSI_NO_ITS,
    MSI_UNMAPPED,
)
from gicsim.linux.backend import KernelBackend
from gicsim.sim.guest import GuestItsDriver
from gicsim.sim.vmm import its_init, its_save_tables

ROOT = Path(__file__).parent.parent
ITS = 0x0808_0000


@pytest.fixture
def b():
    be = KernelBackend(kernel("6.12"), 2, 32 << 20)
    be.kicked = []
    be.kick = be.kicked.append
    be.ran = []
    be.its.on_command = lambda its, cmd, err: be.ran.append((cmd.name, err))
    yield be
    be.close()


def booted(b, enable=True):
    its_init(b.itsdev, ITS)
    drv = GuestItsDriver(b.vgic, b.its)
    drv.probe()
    for v in range(2):
        drv.enable_lpis(v)
    if enable:
        drv.its_enable()
    return drv


def drain(b):
    n = 0
    while b.its.enabled and b.its.cwriter != b.its.creadr:
        assert b.its.process_one() is not None
        n += 1
    return n


def test_one_guest_memory_shared_with_the_kernel(b):
    mem, vm = b.mem, b.vm
    mem.write(mem.base + 0x1234, b"\xaa\xbb")
    assert bytes(vm.ram[0x1234:0x1236]) == b"\xaa\xbb"  # the library's own RAM, no copy
    assert vm.kvm_read(mem.base + 0x1234, 2) == (0, b"\xaa\xbb")
    assert vm.kvm_write(mem.base + 0x5000, b"\x01") == 0  # KVM writes: seen, and dirty
    assert mem.read_u8(mem.base + 0x5000) == 1
    assert mem.take_dirty() == {(mem.base >> 12) + 1, (mem.base >> 12) + 5}
    assert mem.take_dirty() == set()
    assert mem.present_pfns() == [(mem.base >> 12) + 1, (mem.base >> 12) + 5]
    with pytest.raises(EFAULT):
        mem.read(mem.end - 4, 8)
    assert mem.find_nonzero(mem.base, mem.base + 0x10000) == mem.base + 0x1230


def test_kernel_table_writes_are_dirty_pages_for_precopy(b):
    drv = booted(b)
    drv.post(C.mapc(0, 0), drv.mapd_cmd(3, 2), C.mapti(3, 1, 8192, 0))
    drain(b)
    b.mem.take_dirty()
    b.vgic.vcpu_mutex_held[0] = True
    with pytest.raises(KvmError) as e:
        its_save_tables(b.itsdev)  # vcpu->mutex held: the kernel's trylock
    assert e.value.errno == "EBUSY"
    b.vgic.vcpu_mutex_held[0] = False
    its_save_tables(b.itsdev)
    dirty = b.mem.take_dirty()
    dte_page = (b.its.baser_device_table & ((1 << 48) - 1) & ~0xFFFF) + 3 * 8 >> 12
    assert dte_page in dirty and drv.itt[3] >> 12 in dirty
    assert b.itsdev.last_stats.entries_written == 1 + 1 + 1 + 1  # DTE, ITE, CTE, end CTE


def test_commands_run_one_per_slot_with_the_kernels_errors(b):
    drv = booted(b)
    drv.write_cmd(C.mapc(0, 1))
    drv.write_cmd(C.mapti(9, 0, 8192, 0))  # no device 9
    drv.write_cmd(drv.mapd_cmd(2, 3))
    drv.kick()
    assert (b.its.creadr, b.its.cwriter) == (0, 96)  # nothing ran inside the CWRITER store
    assert b.vm.its_read(0x88) == 0  # the kernel's CWRITER waits on its CREADR
    b.its.process_one()
    assert b.ran == [("MAPC", None)] and b.its.creadr == 32
    assert drain(b) == 2
    assert b.ran[1:] == [("MAPTI", "E_ITS_MAPTI_UNMAPPED_DEVICE"), ("MAPD", None)]
    assert b.vm.its_dump()["devices"] == {2: {"nr_eventid_bits": 3, "itt": drv.itt[2]}}
    # kernel: an offset beyond the queue is dropped (vgic_mmio_write_its_cwriter)
    b.its.its_write(0x88, 8, 0x20000)  # beyond the 64 KiB queue
    assert b.its.cwriter == b.its.creadr == 96
    # the guest's command bytes are in its queue as it wrote them
    assert b.mem.read(drv.cmdq_base + 32, 32) == C.mapti(9, 0, 8192, 0)


def test_enabling_the_its_with_a_full_queue_drains_with_timing(b):
    drv = booted(b, enable=False)
    drv.write_cmd(C.mapc(0, 0))
    drv.write_cmd(drv.mapd_cmd(1, 2))
    drv.kick()  # disabled: the kernel only stores CWRITER
    assert b.vm.its_read(0x88) == 64 and b.ran == []
    drv.its_enable()
    assert b.its.enabled and (b.its.creadr, b.its.cwriter) == (0, 64) and b.ran == []
    assert drain(b) == 2 and [n for n, _ in b.ran] == ["MAPC", "MAPD"]
    # disabling with commands left leaves them behind the kernel's CWRITER
    drv.post(C.mapti(1, 0, 8192, 0))
    drv.its_enable(False)
    assert b.vm.its_read(0x88) == 96 and b.its.creadr == 64 and b.its.process_one() is None


def test_msi_fates_are_the_kernels(b):
    assert b.its.vgic_its_inject_msi(1, 0) == MSI_NO_ITS  # no ITS frame at the doorbell yet
    drv = booted(b, enable=False)
    assert b.its.vgic_its_inject_msi(1, 0) == MSI_ITS_DISABLED
    drv.its_enable()
    drv.lpi_config(8192)
    drv.post(C.mapc(0, 1), drv.mapd_cmd(1, 2), C.mapti(1, 0, 8192, 0))
    drain(b)
    assert b.its.vgic_its_inject_msi(1, 1) == MSI_UNMAPPED
    assert b.its.vgic_its_inject_cached_translation(1, 0) is None  # not cached yet
    b.kicked.clear()
    assert b.its.vgic_its_inject_msi(1, 0) == MSI_ACCEPTED
    assert b.kicked == [1]  # the kernel kicked the target vCPU
    hit = b.its.vgic_its_inject_cached_translation(1, 0)  # now the irqfd fast path hits
    assert (hit.intid, hit.target_vcpu) == (8192, 1) and b.kicked == [1, 1]
    drv.disable_lpis(1)
    assert b.its.vgic_its_inject_msi(1, 0) == MSI_LPIS_DISABLED


def test_acknowledge_and_eoi_go_through_the_list_registers(b):
    drv = booted(b)
    drv.lpi_config(8192)
    drv.lpi_config(8193, priority=0x20)
    drv.post(C.mapc(0, 0), drv.mapd_cmd(1, 2), C.mapti(1, 0, 8192, 0), C.mapti(1, 1, 8193, 0))
    drain(b)
    assert not b.vgic.cpus[0].ap_list
    b.its.vgic_its_inject_msi(1, 0)
    b.its.vgic_its_inject_msi(1, 1)
    assert b.vgic.cpus[0].ap_list == 2 and not b.vgic.cpus[1].ap_list
    first = b.vgic.acknowledge(0)
    assert first.intid == 8193  # higher priority (lower value) first
    second = b.vgic.acknowledge(0)
    assert second.intid == 8192 and b.vgic.acknowledge(0) is None
    b.vgic.eoi(0, first)
    b.vgic.eoi(0, second)
    assert not b.vgic.cpus[0].ap_list
    assert b.vm.lpi(8192)["active"] is False


def _gicsim(*args, **env):
    e = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "gicsim", *args], capture_output=True, text=True,
                          cwd=ROOT, env=e)  # fmt: skip


def test_bad_backend_choices_are_one_line_errors(tmp_path):
    kernel("6.12")
    sc = str(ROOT / "scenarios" / "clean-migration.yaml")
    out = str(tmp_path / "out")
    notkernel = tmp_path / "empty"
    notkernel.mkdir()
    cases = [
        (["run", sc, "-o", out, "--kernel-tree", str(notkernel)], {}, "is not a kernel tree"),
        (["run", sc, "-o", out, "--kernel-tree", str(tmp_path / "nope")], {}, "nor an existing path"),
        (["run", str(ROOT / "scenarios" / "v5-double-sync.yaml"), "-o", out, "--backend", "linux"], {},
         "kernel.pending_sync_on_ctlr overrides release 6.12"),
        (["run", sc, "-o", out, "--backend", "linux"], {"CC": "/nonexistent/cc"}, "no C compiler"),
        (["run", sc, "-o", out, "--backend", "rust"], {}, "Invalid value for '--backend'"),
    ]  # fmt: skip
    for args, env, want in cases:
        r = _gicsim(*args, **env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert want in r.stderr and "Traceback" not in r.stderr, r.stderr
        if "Invalid value" not in want:
            assert len(lines) == 1, r.stderr
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_the_hot_paths_do_not_dump_the_its(monkeypatch):
    """bench/run.py's 3x budget rests on MSIs, commands and deliveries not re-reading the
    whole ITS (``h_its_dump``): clean-migration (327 MSIs, 31 commands, a migration) reads
    it a handful of times, for the state snapshots and the slow-path MSIs' translations."""
    kernel("6.12")
    import gicsim
    from gicsim.linux import backend_dump as D
    from gicsim.scenario import load_scenario, resolved_dict

    n = [0]
    orig = D.DumpReader.read

    def counted(self):
        n[0] += 1
        return orig(self)

    monkeypatch.setattr(D.DumpReader, "read", counted)
    d = resolved_dict(load_scenario(ROOT / "scenarios" / "clean-migration.yaml"))
    r = gicsim.run({**d, "kernel": {"backend": "linux"}})
    assert r.summary["lpis"]["accepted"] == 327
    assert n[0] <= 8


def test_a_32bit_cwriter_store_is_one_half_of_the_register(b):
    """kernel: vgic_mmio_write_its_cwriter merges a 32-bit store into CWRITER
    (update_64bit_reg); the commands it makes runnable still run one per slot."""
    drv = booted(b)
    drv.write_cmd(C.mapc(0, 0))
    drv.write_cmd(C.mapc(1, 1))
    b.its.its_write(0x88, 4, 64)
    assert (b.its.creadr, b.its.cwriter, b.ran) == (0, 64, [])
    assert b.its.its_read(0x88, 4) == 64 and b.its.its_read(0x8C, 4) == 0
    b.its.its_write(0x8C, 4, 0)  # the upper half: CWRITER unchanged
    assert b.its.cwriter == 64
    assert drain(b) == 2 and [n for n, _ in b.ran] == ["MAPC", "MAPC"]
