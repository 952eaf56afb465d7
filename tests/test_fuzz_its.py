"""Property tests of the kernel model: random command streams written into the queue (raw
32-byte commands and valid opcodes with random or edge fields), interleaved with MSIs, guest
register writes, LPI configuration, acknowledge/EOI and KVM device calls.

After every step the model's invariants hold (``invariants.assert_invariants``); every
command's error is the one recorded for it; a command that fails has no effect (SPEC §1);
an MSI's outcome is one of the architectural ones and an accepted MSI leaves its LPI pending.
Nothing raises except the typed KVM errnos, and those only from KVM API calls.

CI runs the ``ci`` hypothesis profile; ``--hypothesis-profile=long`` runs 10,000 streams.
"""

from __future__ import annotations

from conftest import make_vm
from hypothesis import event, given
from hypothesis import strategies as st
from invariants import assert_invariants

from gicsim.judge.state import architectural_state
from gicsim.kvm import commands as C
from gicsim.kvm.arm_gic_v3 import GICR_CTLR, GICR_IIDR, GICR_PENDBASER, GICR_PROPBASER, GICR_TYPER
from gicsim.kvm.errors import E_ITS, ERRNOS, KvmError
from gicsim.kvm.its import (
    GITS_BASER,
    GITS_CBASER,
    GITS_CBASER_ADDRESS,
    GITS_CREADR,
    GITS_CTLR,
    GITS_CWRITER,
    GITS_IIDR,
    GITS_TYPER,
    ITS_CMD_BUFFER_SIZE,
    MSI_ACCEPTED,
    MSI_ITS_DISABLED,
    MSI_LPIS_DISABLED,
    MSI_UNMAPPED,
)
from gicsim.kvm.kvm_device import (
    KVM_DEV_ARM_ITS_CTRL_RESET,
    KVM_DEV_ARM_ITS_RESTORE_TABLES,
    KVM_DEV_ARM_ITS_SAVE_TABLES,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
    KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
    KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
    KVM_VGIC_ITS_ADDR_TYPE,
    redist_attr,
)
from gicsim.kvm.releases import KernelProfile

ERROR_NAMES = set(E_ITS) | set(ERRNOS)
MSI_OUTCOMES = {MSI_ACCEPTED, MSI_ITS_DISABLED, MSI_LPIS_DISABLED, MSI_UNMAPPED}
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)

# --------------------------------------------------------------------- strategies ----
# mostly IDs the setup below maps (so commands meet live state), else edges and anything
devids = st.one_of(st.integers(0, 7), st.integers(0, 7), st.integers(0, 7), st.sampled_from([0xFFFF, 0x1_0000, 0xFFFF_FFFF]), U32)
eventids = st.one_of(st.integers(0, 15), st.integers(0, 15), st.integers(0, 15), st.sampled_from([255, 256, 0xFFFF, 0x1_0000, 2**32 - 1]), U32)
pintids = st.one_of(
    st.integers(8192, 8192 + 31), st.integers(8192, 8192 + 31), st.sampled_from([0, 1, 8191, 0xFFFF, 0x1_0000, 2**32 - 1]), U32
)
icids = st.one_of(st.integers(0, 5), st.integers(0, 5), st.sampled_from([0xFFFF, 0x8000]), st.integers(0, 0xFFFF))
rdbases = st.one_of(st.integers(0, 5), st.integers(0, 5), st.sampled_from([0xFFFF_FFFF, 512, 0x1_0000]), U32)
event_bits = st.integers(1, 32)  # MAPD's Size field is 5 bits: 1..32 EventID bits
# ITT addresses: an index into the VM's pool of allocated ITTs, or a raw (edge) address
itt_refs = st.one_of(
    st.integers(0, 7),
    st.sampled_from([0, 0x3FFF_FF00, 0x4000_0000, 0x4000_0100, 0x43FF_FF00, 0x4400_0000]),
    st.integers(0, 2**52 - 1).map(lambda a: a & ~0xFF),
)


@st.composite
def structured_cmd(draw):
    """A command with a valid opcode, built by the architectural encoders."""
    kind = draw(st.sampled_from(
        ["mapd", "mapc", "mapti", "mapi", "movi", "discard", "inv", "int", "clear", "invall",
         "sync", "movall"]
    ))  # fmt: skip
    if kind == "mapd":
        return ("mapd", draw(devids), draw(itt_refs), draw(event_bits), draw(st.booleans()))
    if kind == "mapc":
        return ("raw", C.mapc(draw(icids), draw(rdbases), draw(st.booleans())))
    if kind == "mapti":
        return ("raw", C.mapti(draw(devids), draw(eventids), draw(pintids), draw(icids)))
    if kind == "mapi":
        return ("raw", C.mapi(draw(devids), draw(st.one_of(pintids, eventids)), draw(icids)))
    if kind == "movi":
        return ("raw", C.movi(draw(devids), draw(eventids), draw(icids)))
    if kind in ("discard", "inv", "int", "clear"):
        enc = {"discard": C.discard, "inv": C.inv, "int": C.int_, "clear": C.clear}[kind]
        return ("raw", enc(draw(devids), draw(eventids)))
    if kind == "invall":
        return ("raw", C.invall(draw(icids)))
    if kind == "sync":
        return ("raw", C.sync(draw(rdbases)))
    return ("raw", C.movall(draw(rdbases), draw(rdbases)))


def with_opcode(raw: bytes, opcode: int) -> bytes:
    return bytes([opcode]) + raw[1:]


commands = st.one_of(
    structured_cmd(),
    structured_cmd(),
    st.binary(min_size=32, max_size=32).map(lambda b: ("raw", b)),  # fully random
    st.tuples(st.binary(min_size=32, max_size=32), st.sampled_from(sorted(C.OPCODE_NAMES))).map(
        lambda t: ("raw", with_opcode(*t))  # valid opcode, every other bit random
    ),
)

its_reg_offsets = st.sampled_from(
    [GITS_CTLR, GITS_IIDR, GITS_TYPER, GITS_CBASER, GITS_CBASER + 4, GITS_CWRITER,
     GITS_CWRITER + 4, GITS_CREADR, GITS_BASER, GITS_BASER + 4, GITS_BASER + 8,
     GITS_BASER + 12, GITS_BASER + 16]
)  # fmt: skip

# a command or an MSI aimed at a live (DeviceID, EventID), chosen when it runs
live_ops = st.tuples(
    st.just("live"),
    st.sampled_from(["movi", "discard", "inv", "int", "clear", "msi", "msi", "mapd-"]),
    st.integers(0, 255),
    st.integers(0, 5),
)
ops = st.one_of(
    commands.map(lambda c: ("cmd", c)),
    commands.map(lambda c: ("cmd", c)),
    live_ops,
    live_ops,
    st.tuples(st.just("msi"), st.one_of(st.integers(0, 7), U32.map(lambda x: x & 0xFFFF)),
              st.one_of(st.integers(0, 15), st.integers(0, 0xFFFF))),  # fmt: skip
    st.tuples(st.just("ack"), st.integers(0, 3)),
    st.tuples(st.just("eoi"), st.integers(0, 3)),
    st.tuples(st.just("lpis"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("its"), st.booleans()),
    st.tuples(st.just("prop"), st.integers(8192, 8192 + 31), st.integers(0, 255)),
    st.tuples(st.just("pend"), st.integers(0, 3), st.integers(8192, 8192 + 31)),
    st.tuples(st.just("mmio"), its_reg_offsets, st.sampled_from([4, 8]),
              st.one_of(st.integers(0, 0x1000), U64)),  # fmt: skip
    st.tuples(st.just("kvm"), st.sampled_from(
        ["save", "restore", "reset", "save_pending", "its_reg", "redist_reg"]),
        st.one_of(its_reg_offsets, its_reg_offsets, st.integers(0, 2**32 - 1)),
        U64, st.booleans()),  # fmt: skip
    # the guest moves its LPI property table or a pending table (LPIs off, write, LPIs on),
    # possibly somewhere that is not RAM: later LPI creation or INV meets -EFAULT
    st.tuples(st.just("propbase"), st.sampled_from(["ram", "ram_end", "last_page", "below_ram", "random"]),
              st.integers(0, 31), U64),  # fmt: skip
    st.tuples(st.just("pendbase"), st.integers(0, 3),
              st.sampled_from(["ram", "ram_end", "last_page", "below_ram", "random"]), U64),  # fmt: skip
)


# ------------------------------------------------------------------------ harness ----
def state_without_creadr(vm) -> dict:
    s = architectural_state(vm.vgic)
    for its in s["its"]:
        its.pop("creadr")
    return s


class Harness:
    """Drives one VM; every command runs alone so invariants are checked after each."""

    def __init__(self, nr_vcpus: int, kernel: KernelProfile, device_table: str) -> None:
        self.vm = vm = make_vm(nr_vcpus, kernel=kernel, device_table=device_table)
        vm.its.deferred = True  # commands run one at a time, from drain()
        self.itt_pool = [vm.drv.alloc(1 << 12, 256) for _ in range(8)]
        for lpi in range(8192, 8192 + 32):
            vm.drv.lpi_config(lpi)
        self.recorded: list[tuple] = []
        vm.its.on_command = lambda its, cmd, err: self.recorded.append((cmd, err))
        self.active: list[list] = [[] for _ in range(nr_vcpus)]
        self.commands = self.errors = self.msis = 0

    def write_cmd(self, raw: bytes) -> None:
        its, mem = self.vm.its, self.vm.mem
        size = ITS_CMD_BUFFER_SIZE(its.cbaser)
        try:
            mem.write(GITS_CBASER_ADDRESS(its.cbaser) + its.cwriter, raw)
        except KvmError:
            pass  # the queue is not in RAM (a fuzzed CBASER): the guest's store goes nowhere
        its.its_write(GITS_CWRITER, 8, (its.cwriter + 32) % size)

    def drain(self) -> None:
        its = self.vm.its
        for _ in range(ITS_CMD_BUFFER_SIZE(its.cbaser) // 32 + 1):
            before = state_without_creadr(self.vm)
            n = len(self.recorded)
            r = its.process_one()
            if r is None:
                break
            cmd, err = r
            if cmd is not None:
                self.commands += 1
                assert self.recorded[n:] == [(cmd, err)], "the command hook saw another result"
                assert err is None or err in ERROR_NAMES, err
                if err is not None:
                    self.errors += 1
                    # a failed command has no effect (SPEC §1); KVM discards the error
                    assert state_without_creadr(self.vm) == before, (cmd, err)
            assert_invariants(self.vm)
        else:
            raise AssertionError("the command queue never drained")

    def kvm(self, what: str, off: int, value: int, busy: bool) -> None:
        vm = self.vm
        vm.vgic.vcpu_mutex_held[0] = busy
        try:
            if what == "save":
                vm.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES)
            elif what == "restore":
                vm.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES)
            elif what == "reset":
                vm.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_CTRL_RESET)
            elif what == "save_pending":
                vm.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)
            elif what == "its_reg":
                vm.itsdev.get_attr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off)
                vm.itsdev.set_attr(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, value)
            else:
                reg = [GICR_CTLR, GICR_PROPBASER, GICR_PENDBASER, GICR_PENDBASER + 4][value % 4]
                attr = redist_attr(value % vm.vgic.nr_vcpus, reg)
                vm.gic.set_attr(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, attr, value >> 8)
        except KvmError as e:
            assert e.errno in ERRNOS
            if busy:
                assert e.errno == "EBUSY" or what == "its_reg"
        finally:
            vm.vgic.vcpu_mutex_held[0] = False

    def apply(self, op: tuple) -> None:
        vm, kind = self.vm, op[0]
        vgic = vm.vgic
        if kind == "cmd":
            c = op[1]
            if c[0] == "mapd":
                _, dev, itt, bits, valid = c
                addr = self.itt_pool[itt] if itt < len(self.itt_pool) else itt
                if valid and dev <= 0xFFFF:
                    vm.drv.ensure_dt_slot(dev)  # a driver allocates the level-2 page first
                raw = C.mapd(dev, addr, bits, valid)
            else:
                raw = c[1]
            self.write_cmd(raw)
        elif kind == "live":
            _, what, idx, icid = op
            live = sorted(vm.its.mappings())
            if not live:
                return self.apply(("msi", idx % 8, icid))
            dev, ev = live[idx % len(live)]
            if what == "msi":
                return self.apply(("msi", dev, ev))
            enc = {"movi": lambda: C.movi(dev, ev, icid), "discard": lambda: C.discard(dev, ev),
                   "inv": lambda: C.inv(dev, ev), "int": lambda: C.int_(dev, ev),
                   "clear": lambda: C.clear(dev, ev), "mapd-": lambda: C.mapd(dev, 0, 1, False)}
            self.write_cmd(enc[what]())
        elif kind == "msi":
            _, dev, ev = op
            self.msis += 1
            why = vm.its.vgic_its_inject_msi(dev, ev)
            assert why in MSI_OUTCOMES, why
            if why == MSI_ACCEPTED:
                irq = vm.its.translate(dev, ev)
                assert irq is not None and irq.pending_latch
        elif kind == "ack":
            v = op[1] % vgic.nr_vcpus
            irq = vgic.acknowledge(v)
            if irq is not None:
                assert irq.active and not irq.pending_latch
                self.active[v].append(irq)
        elif kind == "eoi":
            v = op[1] % vgic.nr_vcpus
            if self.active[v]:
                vgic.eoi(v, self.active[v].pop(0))
        elif kind == "lpis":
            v = op[1] % vgic.nr_vcpus
            (vm.drv.enable_lpis if op[2] else vm.drv.disable_lpis)(v)
        elif kind == "its":
            vm.drv.its_enable(op[1])
        elif kind == "prop":
            vm.mem.write_u8(vm.drv.prop_base + op[1] - 8192, op[2])
        elif kind == "pend":
            vm.drv.set_pending(op[1] % vgic.nr_vcpus, op[2])
        elif kind == "mmio":
            _, off, width, value = op
            vm.its.its_write(off, width, value & ((1 << (8 * width)) - 1))
        elif kind == "kvm":
            self.kvm(*op[1:])
        elif kind in ("propbase", "pendbase"):
            if kind == "propbase":
                _, where, idbits, rnd = op
            else:
                _, v, where, rnd = op
                idbits = 0
            addr = {"ram": vm.drv.prop_base if kind == "propbase" else vm.drv.alloc(8192),
                    "ram_end": vm.mem.end - 0x1_0000, "last_page": vm.mem.end - 0x1000,
                    "below_ram": 0x1_0000,
                    "random": rnd & ((1 << 52) - 1)}[where]  # fmt: skip
            for v2 in range(vgic.nr_vcpus):
                vm.drv.disable_lpis(v2)
            if kind == "propbase":
                vgic.redist_write(0, GICR_PROPBASER, 8, (addr & ~0xFFF) | idbits)
            else:
                vgic.redist_write(v % vgic.nr_vcpus, GICR_PENDBASER, 8, addr & ~0xFFFF)
            for v2 in range(vgic.nr_vcpus):
                vgic.redist_write(v2, GICR_CTLR, 4, 1)  # EnableLPIs, keeping the new bases
        assert_invariants(vm)
        self.drain()


kernels = st.builds(
    KernelProfile,
    pending_sync_on_ctlr=st.booleans(),
    pending_sync_clears_ram=st.booleans(),
    clear_on_unmap=st.booleans(),
    restore_scan=st.sampled_from(["full", "head_pointer"]),
    translation_cache=st.sampled_from(["correct", "stale"]),
)


# A plausible start (what a driver would do), so the random stream meets live mappings:
# collections, a few devices with 16 events, and some of their events mapped.
@st.composite
def setups(draw):
    mapcs = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=4))
    mapds = draw(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(1, 6)),
                          min_size=1, max_size=4))  # fmt: skip
    devs = st.sampled_from([d for d, _, _ in mapds])
    icids = st.sampled_from([i for i, _ in mapcs] + [4])
    mapti = draw(st.lists(
        st.tuples(devs, st.integers(0, 15), st.integers(8192, 8192 + 31), icids), max_size=16
    ))  # fmt: skip
    return mapcs, mapds, mapti


def setup_ops(setup) -> list[tuple]:
    mapcs, mapds, mapti = setup
    out = [("cmd", ("raw", C.mapc(icid, v))) for icid, v in mapcs]
    out += [("cmd", ("mapd", dev, itt, bits, True)) for dev, itt, bits in mapds]
    out += [("cmd", ("raw", C.mapti(*a))) for a in mapti]
    return out


def run_stream(nr_vcpus, kernel, device_table, stream, setup=((), (), ())) -> Harness:
    h = Harness(nr_vcpus, kernel, device_table)
    assert_invariants(h.vm)
    for op in setup_ops(setup) + list(stream):
        if op[0] == "cmd" and op[1][0] == "raw" and op[1][1][0] == C.GITS_CMD_MAPC:
            # MAPC of the setup names vCPUs modulo the VM's size
            raw = op[1][1]
            dw2 = int.from_bytes(raw[16:24], "little")
            if (dw2 >> 16) & 0xFFFF_FFFF < 4:
                tgt = ((dw2 >> 16) & 0xFFFF_FFFF) % nr_vcpus
                dw2 = (dw2 & ~(0xFFFF_FFFF << 16)) | tgt << 16
                op = ("cmd", ("raw", raw[:16] + dw2.to_bytes(8, "little") + raw[24:]))
        h.apply(op)
    return h


# -------------------------------------------------------------------------- tests ----
@given(
    nr_vcpus=st.integers(1, 4),
    kernel=kernels,
    device_table=st.sampled_from(["flat", "two_level"]),
    setup=setups(),
    stream=st.lists(ops, min_size=5, max_size=60),
)
def test_random_command_streams_keep_invariants(nr_vcpus, kernel, device_table, setup, stream):
    h = run_stream(nr_vcpus, kernel, device_table, stream, setup)
    event(f"live LPIs at the end: {min(len(h.vm.vgic.lpi_xa), 8)}{'+' if len(h.vm.vgic.lpi_xa) >= 8 else ''}")
    event(f"commands failed: {'none' if not h.errors else 'some' if h.errors < h.commands else 'all'}")


@given(stream=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=200))
def test_random_raw_queue_bytes(stream):
    """Only raw bytes, many commands per CWRITER write, as a guest with a corrupted queue."""
    h = Harness(2, KernelProfile(), "flat")
    for i, raw in enumerate(stream):
        h.write_cmd(raw)
        if i % 7 == 6:
            h.drain()
    h.drain()
    assert h.vm.its.creadr == h.vm.its.cwriter


# A hand-written stream whose every step matters, so the harness itself is known to see
# what it claims to check (the property tests above pass vacuously if it does not).
def test_harness_catches_a_broken_refcount():
    h = Harness(2, KernelProfile(), "flat")
    h.apply(("cmd", ("raw", C.mapc(0, 1))))
    h.apply(("cmd", ("mapd", 2, 0, 4, True)))
    h.apply(("cmd", ("raw", C.mapti(2, 3, 8192, 0))))
    h.apply(("msi", 2, 3))
    assert h.vm.vgic.lpi_xa[8192].pending_latch and h.commands == 3 and h.errors == 0
    h.apply(("cmd", ("raw", C.mapti(9, 3, 8193, 0))))  # unmapped device
    assert h.errors == 1 and h.recorded[-1][1] == "E_ITS_MAPTI_UNMAPPED_DEVICE"
    h.vm.vgic.lpi_xa[8192].refcount += 1
    try:
        assert_invariants(h.vm)
    except AssertionError as e:
        assert "refcount" in str(e)
    else:  # pragma: no cover
        raise AssertionError("assert_invariants missed a refcount leak")


def test_invariants_catch_each_kind_of_corruption():
    def fresh():
        h = Harness(2, KernelProfile(), "flat")
        for op in [("cmd", ("raw", C.mapc(0, 1))), ("cmd", ("mapd", 2, 0, 4, True)),
                   ("cmd", ("raw", C.mapti(2, 3, 8192, 0))), ("msi", 2, 3)]:  # fmt: skip
            h.apply(op)
        return h.vm

    breakers = {
        "orphan LPI": lambda vm: vm.vgic.lpi_xa.__setitem__(9000, type(vm.vgic.lpi_xa[8192])(9000, 0)),
        "device list": lambda vm: vm.its.device_list.clear(),
        "collection target": lambda vm: setattr(vm.its.collection_list[0], "target_addr", 7),
        "creadr": lambda vm: setattr(vm.its, "creadr", 16),
        "cwriter": lambda vm: setattr(vm.its, "cwriter", 1 << 20),
        "ap_list": lambda vm: setattr(vm.vgic.lpi_xa[8192], "vcpu", 0),
    }
    for name, breaker in breakers.items():
        vm = fresh()
        assert_invariants(vm)
        breaker(vm)
        try:
            assert_invariants(vm)
        except AssertionError:
            continue
        raise AssertionError(f"assert_invariants missed: {name}")



def test_invall_ignores_unreadable_property_bytes():
    """Found by the stream test: INVALL used to stop at the first LPI whose property byte is
    outside RAM and fail with -EFAULT after updating some LPIs. ``vgic_its_invall`` ignores
    ``update_lpi_config``'s result: every readable LPI is updated and INVALL succeeds."""
    h = Harness(2, KernelProfile(), "flat")
    h.vm.drv.lpi_config(0xFFFF)
    for op in [("cmd", ("raw", C.mapc(0, 1))), ("cmd", ("mapd", 2, 0, 4, True)),
               ("cmd", ("raw", C.mapti(2, 3, 8192, 0))), ("cmd", ("raw", C.mapti(2, 4, 0xFFFF, 0))),
               ("propbase", "last_page", 15, 0)]:  # fmt: skip
        h.apply(op)
    h.vm.mem.write_u8(h.vm.mem.end - 0x1000, 0x40)  # LPI 8192: priority 0x40, disabled
    h.apply(("cmd", ("raw", C.invall(0))))  # LPI 65535's byte is beyond the end of RAM
    assert h.recorded[-1][1] is None
    irq = h.vm.vgic.lpi_xa[8192]
    assert (irq.priority, irq.enabled) == (0x40, False)
    h.apply(("cmd", ("raw", C.inv(2, 4))))  # INV of that one LPI does report it
    assert h.recorded[-1][1] == "EFAULT"


# ------------------------------------------------------------------ KVM device API ----
its_attrs = st.one_of(
    its_reg_offsets,
    st.sampled_from([0, 1, 2, 3, 4, 5, KVM_VGIC_ITS_ADDR_TYPE, 0xFFD0, 0xFFFC, 0x10000, 3, 0x8C]),
    U64,
)


@st.composite
def gic_attrs(draw):
    v = draw(st.integers(0, 5))
    off = draw(st.sampled_from([GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_TYPER + 4, GICR_PROPBASER,
                                GICR_PROPBASER + 4, GICR_PENDBASER, GICR_PENDBASER + 4, 0x10, 2]))  # fmt: skip
    return draw(st.one_of(st.just(redist_attr(v, off)), st.integers(0, 5), U64))


api_calls = st.tuples(
    st.sampled_from(["its", "gic"]),
    st.sampled_from(["set", "get", "has"]),
    st.one_of(st.sampled_from([KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CTRL,
                               KVM_DEV_ARM_VGIC_GRP_ITS_REGS, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS]),
              st.integers(0, 12), U32),  # fmt: skip
    st.data(),
    U64,
    st.integers(-1, 4),  # which vCPU is inside KVM_RUN (-1: none)
)


@given(nr_vcpus=st.integers(1, 4), boot=st.booleans(), calls=st.lists(api_calls, max_size=30))
def test_random_kvm_api_calls_raise_only_errnos(nr_vcpus, boot, calls):
    vm = make_vm(nr_vcpus, boot=boot)
    for dev_name, how, group, data, value, busy in calls:
        attr = data.draw(its_attrs if dev_name == "its" else gic_attrs())
        dev = vm.itsdev if dev_name == "its" else vm.gic
        held = [i == busy for i in range(nr_vcpus)]
        vm.vgic.vcpu_mutex_held[:] = held
        try:
            if how == "set":
                dev.set_attr(group, attr, value)
            elif how == "get":
                r = dev.get_attr(group, attr)
                assert isinstance(r, int) and 0 <= r < 1 << 64
            else:
                assert dev.has_attr(group, attr) == 0
        except KvmError as e:
            assert type(e) is ERRNOS[e.errno]
        vm.vgic.vcpu_mutex_held[:] = [False] * nr_vcpus
        assert_invariants(vm)
