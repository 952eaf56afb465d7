"""Kernel aborts become clean test failures (worker processes), and the library is clean
under ASan+UBSan."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from linux_helpers import RELEASES, kernel, unavailable

from gicsim.linux import lib as L
from gicsim.linux.errors import KernelCrash, KernelRefError
from gicsim.linux.worker import run_isolated, run_isolated_ex


def _fault(kind):
    return L.load("6.12").dll.h_debug_fault(kind)


def _cpu_sysregs_attr():
    """A real kernel path into a stub: KVM_HAS_DEVICE_ATTR(GRP_CPU_SYSREGS) on the GICv3
    device reaches vgic_v3_has_cpu_sysregs_attr() (vgic-sys-reg-v3.c is not compiled)."""
    vm = L.VM(L.load("6.12"), 1)
    return vm.has_attr(vm.vgic, L.GRP_CPU_SYSREGS, vm.mpidr_attr(0) | 0xC664)


def _boot_and_count(release):
    with L.VM(L.load(release), 2) as vm:
        vm.boot_lpis()
        return vm.its_read(L.GITS_TYPER)


def _raise():
    raise ValueError("from the child")


def test_aborting_stub_is_a_clean_failure():
    kernel("6.12")
    with pytest.raises(KernelCrash) as ei:
        run_isolated(_fault, 1)
    assert ei.value.signal == 6 and "vgic_v2_load" in str(ei.value)


def test_kernel_path_into_a_stub_is_a_clean_failure():
    kernel("6.12")
    with pytest.raises(KernelCrash, match="vgic_v3_has_cpu_sysregs_attr"):
        run_isolated(_cpu_sysregs_attr)


def test_bug_on_is_a_clean_failure():
    kernel("6.12")
    with pytest.raises(KernelCrash, match=r"BUG_ON"):
        run_isolated(_fault, 3)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_returns_results_and_errors(method):
    kernel("6.12")
    assert run_isolated(_boot_and_count, "6.12", method=method) == 0x1EF71
    res, err = run_isolated_ex(_boot_and_count, "6.12", method=method)
    assert res == 0x1EF71 and "kref:" not in err
    with pytest.raises(KernelRefError, match="ValueError in kernel worker: from the child"):
        run_isolated(_raise, method=method)


def _sanitized(release, code):
    from gicsim.linux.build import build, sanitizer_runtime

    try:
        built = build(release, sanitize=True)
        preload = sanitizer_runtime()
    except KernelRefError as e:
        unavailable(str(e))
    env = dict(os.environ, LD_PRELOAD=" ".join(preload),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return subprocess.run([sys.executable, "-c", code.format(lib=str(built.path))], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("release", RELEASES)
def test_selftest_is_clean_under_asan_and_ubsan(release):
    kernel(release)
    r = _sanitized(release, "import json; from gicsim.linux import lib as L, selftest;"
                   f"print(json.dumps(selftest.exercise(L.KernelLib({{lib!r}}, {release!r}))))")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
    plain = run_isolated(_selftest_plain, release)
    assert json.loads(r.stdout) == plain                 # same observations, instrumented


DIFF_UNDER_SANITIZERS = 150      # streams per release; ~3x slower than the plain library


@pytest.mark.parametrize("release", RELEASES)
def test_differential_streams_are_clean_under_asan_and_ubsan(release):
    """Part of the differential suite on the instrumented library: every area (queue,
    MSIs, registers, save/restore from corrupted images, -EBUSY) runs through ASan+UBSan,
    and the sanitised kernel still agrees with the model."""
    kernel(release)
    r = _sanitized(release, "import json; from gicsim.linux import lib as L, check as C;"
                   f"k = L.KernelLib({{lib!r}}, {release!r}); C._lib = lambda source: k;"
                   f"out = C.run_chunk({release!r}, 4242, {DIFF_UNDER_SANITIZERS});"
                   "print(json.dumps([out['streams'], out['disagreements']]))")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [DIFF_UNDER_SANITIZERS, 0]


def _selftest_plain(release):
    from gicsim.linux import selftest

    return json.loads(json.dumps(selftest.exercise(L.load(release))))


def test_asan_catches_a_heap_overflow():
    """Positive control: the sanitised build really is instrumented."""
    kernel("6.12")
    r = _sanitized("6.12", "from gicsim.linux import lib as L;"
                   "L.KernelLib({lib!r}).dll.h_debug_fault(2)")
    assert r.returncode != 0
    # UBSan's object-size check or ASan's redzone, whichever fires first
    assert "heap-buffer-overflow" in r.stderr or "insufficient space" in r.stderr
