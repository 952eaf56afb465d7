"""A broad tour of the kernel library (every command, both register paths, MSIs, LR delivery,
save/restore, pending tables, reset, teardown), used by the tests and to run the library
under ASan/UBSan:

    python -m gicsim.linux.selftest --release 6.12            # plain build
    python -m gicsim.linux.selftest --release 6.12 --sanitize # re-executes itself with
                                                              # LD_PRELOAD=libasan...

It prints one JSON object (the observations) and exits 0; a sanitizer report aborts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from gicsim.linux import lib as L


def exercise(k: L.KernelLib, nr_vcpus: int = 3) -> dict:
    out: dict = {}
    vm = L.VM(k, nr_vcpus)
    lay = vm.boot_lpis()
    itt = lay["itt"]
    out["typer"] = vm.its_read(L.GITS_TYPER)
    cmds = [L.cmd_mapd(1, 4, itt), L.cmd_mapd(2, 1, itt + 0x1000), L.cmd_mapc(0, 0),
            L.cmd_mapc(1, 1), L.cmd_mapc(2, 2)]
    cmds += [L.cmd_mapti(1, e, 8192 + e, e % 3) for e in range(12)]
    cmds += [L.cmd_mapi(2, 1, 0), L.cmd_int(1, 0), L.cmd_int(1, 3), L.cmd_movi(1, 3, 2),
             L.cmd_inv(1, 1), L.cmd_invall(0), L.cmd_sync(0), L.cmd_clear(1, 0),
             L.cmd_movall(1, 0), L.cmd_discard(1, 11), L.cmd_mapc(9, 7, valid=0)]
    out["rets"] = [vm.exec_cmd(c) for c in cmds]
    out["queue"] = vm.queue(L.cmd_int(1, 5), L.cmd_int(1, 6), L.cmd_sync(0))
    out["msi"] = [vm.signal_msi(1, e) for e in range(14)] + [vm.signal_msi(7, 0)]
    out["irqfd"] = [vm.irqfd_inject(1, e) for e in range(3)]
    out["delivered"] = {v: vm.deliver(v) for v in range(nr_vcpus)}
    vm.set_running(1)
    out["busy"] = [vm.save_tables(), vm.its_reg_get(L.GITS_CTLR)[0]]
    vm.set_running(1, False)
    out["save"] = vm.save_tables()
    out["save_pending"] = vm.save_pending_tables()
    out["dump"] = repr(vm.its_dump())
    out["lpis"] = repr(vm.lpi_records())
    # restore into a second VM from a copy of RAM + the registers userspace saves
    regs = {off: vm.its_reg_get(off)[1] for off in
            (L.GITS_IIDR, L.GITS_CBASER, L.GITS_CREADR, L.GITS_BASER0, L.GITS_BASER1)}
    rd = {(v, off): vm.redist_reg_get(v, off)[1] for v in range(nr_vcpus)
          for off in (L.GICR_PROPBASER, L.GICR_PENDBASER, L.GICR_PROPBASER + 4,
                      L.GICR_PENDBASER + 4)}
    ram = bytes(vm.ram)
    vm2 = L.VM(k, nr_vcpus)
    vm2.ram[:] = ram
    for (v, off), val in rd.items():
        vm2.redist_reg_set(v, off, val)
    for v in range(nr_vcpus):
        vm2.redist_reg_set(v, L.GICR_CTLR, 1)
    for off, val in regs.items():
        vm2.its_reg_set(off, val)
    out["restore"] = vm2.restore_tables()
    vm2.its_reg_set(L.GITS_CTLR, 1)
    out["restored"] = repr(vm2.its_dump()["ites"])
    out["reset"] = vm2.its_reset()
    out["kvm_bugs"] = vm.kvm_bugs()
    vm.close()
    vm2.close()
    return out


def _main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", default="6.12")
    ap.add_argument("--lib", help="path of a built libkref.so")
    ap.add_argument("--sanitize", action="store_true")
    a = ap.parse_args()
    if a.sanitize and "GICSIM_KREF_SANITIZED" not in os.environ:
        from gicsim.linux.build import build, sanitizer_runtime

        built = build(a.release, sanitize=True)
        env = dict(os.environ, GICSIM_KREF_SANITIZED="1",
                   LD_PRELOAD=" ".join(sanitizer_runtime()),
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        return subprocess.call([sys.executable, "-m", "gicsim.linux.selftest",
                                "--lib", str(built.path)], env=env)
    k = L.KernelLib(a.lib, a.release) if a.lib else L.load(a.release)
    print(json.dumps(exercise(k), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
