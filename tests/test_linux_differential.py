"""Model vs kernel: the same command streams to gicsim.kvm and to the kernel library.

Streams come from hypothesis (derandomised; the seed is printed) and shrink to a minimal
disagreement. A deliberately wrong model answer must be caught and minimised.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from linux_helpers import RELEASES, kernel

from gicsim.linux import differential as D
from gicsim.linux import lib as L
from gicsim.linux import streams as S

SEED = int(os.environ.get("GICSIM_DIFF_SEED", "12"))
#: streams per test per release; 2000 in CI (~40-80 s per release for the all-areas test)
N = int(os.environ.get("GICSIM_DIFF_STREAMS", "2000"))
#: the commands-only test (the all-areas one sends commands too): a quarter as many
N_CMD = int(os.environ.get("GICSIM_DIFF_CMD_STREAMS", str(max(N // 4, 1))))
ITT = L.RAM_BASE + 0x600000
print(f"differential seed {SEED}, {N} streams")

CMDS_ALL = S.CMDS_ALL


def streams(cmds=CMDS_ALL):
    return st.lists(cmds.map(lambda c: ("cmd", c)), min_size=1, max_size=24)


def _check(release, stream, model_cls=D.ModelSide):
    res = D.run_stream(kernel(release), stream, model_cls=model_cls)
    assert not res.disagreements, "\n".join(
        [f"{release}: minimal stream ({len(stream)} steps):"]
        + [f"  {D.describe(op)}" for op in stream] + [str(d) for d in res.disagreements])


@pytest.mark.parametrize("release", RELEASES)
def test_model_agrees_with_kernel_on_command_streams(release):
    kernel(release)

    @seed(SEED)
    @settings(max_examples=N_CMD, deadline=None, derandomize=False, database=None,
              suppress_health_check=list(HealthCheck))
    @given(streams(CMDS_ALL))
    def check(stream):
        _check(release, stream)


    check()


def test_a_wrong_model_answer_is_caught_and_minimised():
    """Inject a bug into the model (MOVI is ignored) and check that the differential finds
    it and shrinks the stream to the 4 commands that show it."""
    kernel("6.12")

    class Buggy(D.ModelSide):
        def cmd(self, words):
            if words[0] & 0xFF == L.MOVI:
                return None
            return super().cmd(words)

    found = []

    @seed(SEED)
    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(streams(CMDS_ALL))
    def check(stream):
        res = D.run_stream(kernel("6.12"), stream, model_cls=Buggy)
        if res.disagreements:
            found.append(stream)
            raise AssertionError(str(res.disagreements[0]))

    with pytest.raises(AssertionError):
        check()
    minimal = found[-1]
    ops = [w[0] & 0xFF for _, w in minimal]
    assert L.MOVI in ops and len(minimal) <= 5, [D.describe(o) for o in minimal]


@pytest.mark.parametrize("release", RELEASES)
def test_movall_filters_by_source_as_the_kernel_does(release):
    """Found by this harness: MOVALL only moves LPIs that target RDbase1 (the model moved
    every LPI of the VM)."""
    stream = [("cmd", c) for c in (L.cmd_mapd(1, 0, ITT + 0x1000), L.cmd_mapc(0, 0),
                                   L.cmd_mapti(1, 0, 8192, 0), L.cmd_movall(1, 2))]
    _check(release, stream)


# ===================================================== every area, not just commands ====
@pytest.mark.parametrize("release", RELEASES)
def test_model_agrees_with_kernel_on_all_areas(release):
    """MSIs (cached/uncached), register attrs, EnableLPIs, SAVE/SAVE_PENDING (table bytes),
    RESTORE from saved and corrupted images, running vCPUs, LR delivery. Steps that reach a
    known, pinned disagreement (S.KNOWN: empty now) are left out."""
    k = kernel(release)
    print(f"{release}: all-areas differential, seed {SEED}, {N} streams")

    @seed(SEED)
    @settings(max_examples=N, deadline=None, derandomize=False, database=None,
              suppress_health_check=list(HealthCheck))
    @given(S.without_known(S.streams()))
    def check(stream):
        res = D.run_stream(k, stream)
        if res.disagreements:
            minimal = D.minimise(k, stream, res.area)
            again = D.run_stream(k, minimal)
            raise AssertionError("\n".join(
                [f"{release} seed {SEED}: minimal stream ({len(minimal)} steps):"]
                + [f"  {D.describe(op)}" for op in minimal]
                + [str(d) for d in again.disagreements]))

    check()


def _found(release, model_cls, n=300, strategy=None):
    """Run seeded streams against a (buggy) model until one disagrees; hypothesis shrinks
    it, then D.minimise. Returns (minimal stream, its first disagreement)."""
    k = kernel(release)
    found = []

    @seed(SEED)
    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy if strategy is not None else S.without_known(S.streams()))
    def check(stream):
        res = D.run_stream(k, stream, model_cls=model_cls)
        if res.disagreements:
            found.append(stream)
            raise AssertionError(str(res.disagreements[0]))

    with pytest.raises(AssertionError):
        check()
    minimal = D.minimise(k, found[-1], model_cls=model_cls)
    return minimal, D.run_stream(k, minimal, model_cls=model_cls).disagreements[0]


class WrongPendingByte(D.ModelSide):
    """SAVE_PENDING_TABLES forgets LPIs that target vCPU 1 (their bit stays clear)."""

    def save_pending(self):
        saved = {i: r.pending_latch for i, r in self.vgic.lpi_xa.items()
                 if r.target_vcpu == 1}
        for i in saved:
            self.vgic.lpi_xa[i].pending_latch = False
        try:
            return super().save_pending()
        finally:
            for i, p in saved.items():
                self.vgic.lpi_xa[i].pending_latch = p


class WrongMsiReturn(D.ModelSide):
    """KVM_SIGNAL_MSI says 1 (delivered) for an MSI the guest blocked (0)."""

    def msi(self, dev, ev):
        r = super().msi(dev, ev)
        return 1 if r == 0 else r


class ReversedDelivery(D.ModelSide):
    def deliver(self, vcpu, max_irqs=4096):
        return tuple(reversed(super().deliver(vcpu, max_irqs)))


#: a narrower mix for the liar tests (so that 300 examples surely reach the bug)
#: (hypothesis draws one_of's early branches more often: the rare steps go first)
FOCUSED = S.streams(st.one_of(
    st.sampled_from([(0, 0), (0, 1), (1, 0), (1, 2), (2, 1)]).map(lambda t: ("msi", *t)),
    st.just(("save_pending",)), st.builds(lambda v: ("deliver", v), st.integers(0, 2)),
    CMDS_ALL.map(lambda c: ("cmd", c))), max_size=8)


def test_a_wrong_pending_table_byte_is_caught_and_minimised():
    minimal, d = _found("6.12", WrongPendingByte, strategy=FOCUSED)
    kinds = [op[0] for op in minimal]
    assert d.area == "save" and d.what.startswith("memory:pend1"), str(d)
    # an LPI on vCPU 1 made pending, then saved: MAPD, MAPC, MAPTI, INT/MSI, save_pending
    assert kinds[-1] == "save_pending" and len(minimal) <= 5, [D.describe(o) for o in minimal]


def test_a_wrong_msi_return_is_caught_and_minimised():
    minimal, d = _found("6.12", WrongMsiReturn, strategy=FOCUSED)
    assert d.area == "msi" and d.what == "return" and (d.kernel, d.model) == (0, 1), str(d)
    assert minimal == [minimal[-1]] and minimal[-1][0] == "msi", [D.describe(o) for o in minimal]


def test_a_wrong_delivery_order_is_caught_and_minimised():
    msis_and_deliveries = S.streams(st.one_of(
        st.sampled_from([(0, 0), (0, 1), (1, 0), (1, 2), (2, 1)]).map(lambda t: ("msi", *t)),
        st.builds(lambda v: ("deliver", v), st.integers(0, 2))), max_size=6)
    minimal, d = _found("6.12", ReversedDelivery, strategy=msis_and_deliveries)
    assert d.area == "delivery" and len(d.kernel) == 2 and d.model == d.kernel[::-1], str(d)
    assert len(minimal) <= 8 and minimal[-1][0] == "deliver", [D.describe(o) for o in minimal]


# ================================= disagreements the harness found, fixed in the model ====
def _agrees(release, stream):
    res = D.run_stream(kernel(release), stream)
    assert not res.disagreements, str(res.disagreements[0])
    return res


@pytest.mark.parametrize("release", RELEASES)
def test_gicr_iidr_is_the_kernels(release):
    """Was a strict xfail: vgic_mmio_read_v3r_iidr reads PRODUCT_ID_KVM << 24 |
    IMPLEMENTER_ARM (0x4b00043b); the model read 0x0300043b."""
    _agrees(release, [("rd_get", 0, L.GICR_IIDR)])


@pytest.mark.parametrize("release", RELEASES)
def test_gicr_ctlr_reads_ir_ces(release):
    """Was a strict xfail: vgic_mmio_read_v3r_ctlr adds GICR_CTLR_IR | GICR_CTLR_CES
    (implementation rev 3) to EnableLPIs: 7, the model read 1. Also after a guest
    EnableLPIs 1 -> 0 (reads IR|CES = 6) and back."""
    _agrees(release, [("rd_get", 0, L.GICR_CTLR)])
    _agrees(release, [("lpis", 1, 0), ("rd_get", 1, L.GICR_CTLR), ("lpis", 1, 1),
                      ("rd_get", 1, L.GICR_CTLR)])


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("off", [L.GITS_CTLR, 0xFFE8])
def test_its_mmio_access_width(release, off):
    """Was a strict xfail: dispatch_mmio_read/check_region: an 8-byte guest read of a
    32-bit-only ITS register (GITS_CTLR, the ID registers) reads 0."""
    _agrees(release, [("its_read", off, 8), ("its_read", off, 4)])


@pytest.mark.parametrize("release", RELEASES)
def test_gicr_sgi_frame(release):
    """Was a strict xfail: vgic_v3_sgibase_registers: GRP_REDIST_REGS reaches the SGI
    frame; GICR_ISENABLER0 reads 0xffff (vgic_allocate_private_irqs_locked enables the
    SGIs), the model read 0. Writes (vgic_uaccess_write_senable) enable PPIs too."""
    _agrees(release, [("rd_get", 0, 0x10100)])
    _agrees(release, [("rd_set", 1, 0x10100, 0xF0F0_0001), ("rd_get", 1, 0x10100),
                      ("rd_get", 0, 0x10100)])


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("far", [False, True])
def test_restore_dte_rejects_eventid_bits(release, far):
    """Was a strict xfail: vgic_its_restore_dte rejects a valid DTE with more than 16
    EventID bits with -EINVAL ('Mimic the MAPD behaviour') before it reads the ITT; the
    model restored it (or failed with -EFAULT reading the huge ITT)."""
    dte = S._dte(1, 0, 0x1_0000_0000 if far else ITT, 17)
    _agrees(release, [("restore", ("dte", 0, dte))])


@pytest.mark.parametrize("release", RELEASES)
def test_baser_rewrite_frees_the_device_list_on_change_in_6_12(release):
    """Found once the KNOWN filter was emptied: vgic_mmio_write_its_baser of 6.12.117 frees
    the device list on any change of GITS_BASER0 (``reg != old``), Valid or not; 6.1.192
    only when Valid is clear (KernelProfile.baser_write_frees_on_change)."""
    stream = [("cmd", L.cmd_mapd(0, 0, ITT)), ("its_ctlr", 0),
              ("its_set", L.GITS_BASER0, 0x8000_0000_4040_100F)]
    _agrees(release, stream)


def test_every_known_disagreement_is_pinned_by_a_test():
    names = set(globals())
    for key, (_, func, test) in S.KNOWN.items():
        assert test in names, (key, func, test)


@pytest.mark.parametrize("release", RELEASES)
def test_a_failed_restore_keeps_the_lpis_an_ap_list_holds(release):
    """A restore that fails after one ITE came back pending: the ITE is freed, but the LPI was
    queued on vCPU 0's ap_list and that reference keeps it alive, in both the kernel and the
    model (found by tests/test_fuzz_restore.py). The LPI whose collection was corrupted is
    never created."""
    k = kernel(release)
    lay = D.KernelSide(k, bytes([0xA1]) * (65536 - 8192)).lay
    stream = [("cmd", L.cmd_mapc(2, 0)), ("cmd", L.cmd_mapc(0, 0)),
              ("cmd", L.cmd_mapd(0, 1, D.itt_addr(lay, 0))),
              ("cmd", L.cmd_mapti(0, 0, 8192, 0)), ("cmd", L.cmd_mapti(0, 1, 8193, 2)),
              ("msi", 0, 0), ("save_pending",), ("save",),
              ("restore", ("cte", 0, 0x8000_0000_0000_0003))]
    _check(release, stream)
    ks = D.KernelSide(k, bytes([0xA1]) * (65536 - 8192))
    for op in stream[:-1]:
        getattr(ks, op[0])(*op[1:])
    dst, rets = ks.migrate(stream[-1][1])
    assert rets["restore"] == "EINVAL"
    assert set(dst.state()["lpis"]) == {8192}
    dst.close()
    ks.close()


@pytest.mark.parametrize("release", RELEASES)
def test_disabling_lpis_clears_the_pending_state_of_queued_lpis(release):
    """EnableLPIs 1->0 (``vgic_flush_pending_lpis``) takes every LPI off the vCPU's ap_list
    and clears its pending latch; here the LPI was restored pending from a (corrupted)
    pending-table bit. Found by the 100,000-stream differential run (the model kept the
    latch), minimised to these six steps."""
    k = kernel(release)
    lay = D.KernelSide(k, bytes([0xA1]) * (65536 - 8192)).lay
    stream = [("cmd", L.cmd_mapd(1, 3, D.itt_addr(lay, 1))), ("cmd", L.cmd_mapc(2, 2)),
              ("cmd", L.cmd_mapti(1, 2, 8201, 2)), ("save",),
              ("restore", ("pend", 2, 1025, 18)), ("lpis", 2, 0)]
    _check(release, stream)
