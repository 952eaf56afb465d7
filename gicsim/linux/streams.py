"""Hypothesis strategies for differential streams (see :mod:`gicsim.linux.differential` for
the step kinds). Needs ``hypothesis`` (the ``test`` extra).

``streams()`` is every area at once: an optional standard prologue (devices, collections,
mappings: so short random tails reach interesting states) followed by up to ``max_size``
random steps. ``command_streams()`` is commands only (the original differential).
Ranges are small on purpose (4 devices, 10 events, 4 collections, 3 vCPUs) so that random
steps hit each other's objects; a few values step outside (EventID >= 0x10000, RDbase 5,
unknown registers) to reach the error paths.
"""

from __future__ import annotations

from hypothesis import strategies as st

from gicsim.linux import differential as D
from gicsim.linux import lib as L

ITT = D.ITT
_dev, _ev, _icid = st.integers(0, D.NR_DEVS - 1), st.integers(0, 9), st.integers(0, 3)
_rd = st.integers(0, D.NR_VCPUS - 1)        # valid targets (6.1/6.12 differ beyond)
_vcpu = st.integers(0, D.NR_VCPUS - 1)
_valid = st.sampled_from([1, 1, 1, 0])

CMDS = st.one_of(
    st.builds(lambda d, s, v: L.cmd_mapd(d, s, ITT + d * 0x1000, valid=v), _dev,
              st.integers(0, 3), _valid),
    st.builds(lambda c, r, v: L.cmd_mapc(c, r, valid=v), _icid, _rd, _valid),
    st.builds(lambda d, e, i, c: L.cmd_mapti(d, e, 8192 + i, c), _dev, _ev,
              st.integers(0, 11), _icid),
    st.builds(L.cmd_mapi, _dev, _ev, _icid),
    st.builds(L.cmd_movi, _dev, _ev, _icid),
    st.builds(L.cmd_discard, _dev, _ev),
    st.builds(L.cmd_int, _dev, _ev),
    st.builds(L.cmd_clear, _dev, _ev),
    st.builds(L.cmd_inv, _dev, _ev),
    st.builds(L.cmd_invall, _icid),
    st.builds(L.cmd_sync, _rd),
)
#: all 12 commands (MOVALL was first left out: the harness found the model's disagreement,
#: test_movall_filters_by_source_as_the_kernel_does, since fixed in the model)
CMDS_ALL = st.one_of(CMDS, st.builds(L.cmd_movall, _rd, _rd))

#: a standard bring-up: 3 devices, 3 collections (one per vCPU), 6 mappings
PROLOGUE = tuple(("cmd", c) for c in (
    L.cmd_mapd(0, 3, ITT), L.cmd_mapd(1, 3, ITT + 0x1000), L.cmd_mapd(2, 1, ITT + 0x2000),
    L.cmd_mapc(0, 0), L.cmd_mapc(1, 1), L.cmd_mapc(2, 2),
    L.cmd_mapti(0, 0, 8192, 0), L.cmd_mapti(0, 1, 8193, 1), L.cmd_mapti(1, 0, 8200, 1),
    L.cmd_mapti(1, 2, 8201, 2), L.cmd_mapti(2, 1, 8300, 0), L.cmd_mapi(1, 3, 2)))

_msi_ev = st.one_of(_ev, _ev, _ev, st.integers(0x10000, 0x10003))   # > 0xFFFF: cache key
_msi_dev = st.one_of(_dev, _dev, _dev, st.just(0x10001))
ITS_OFFS = st.sampled_from([L.GITS_CTLR, L.GITS_IIDR, L.GITS_TYPER, L.GITS_CBASER,
                            L.GITS_CWRITER, L.GITS_CREADR, L.GITS_BASER0, L.GITS_BASER1,
                            0x110, 0xFFE8, 3, 0x200])
RD_OFFS = st.sampled_from([L.GICR_CTLR, L.GICR_IIDR, L.GICR_TYPER, L.GICR_TYPER + 4,
                           L.GICR_PROPBASER, L.GICR_PROPBASER + 4, L.GICR_PENDBASER,
                           L.GICR_PENDBASER + 4, 0x10, 0x14, 0x10100])
_u64 = st.one_of(st.sampled_from([0, 1, 0x20, 0x40, 0x1000, 1 << 63]),
                 st.integers(0, (1 << 64) - 1))


def _its_val(off):
    """Values that mean something for the register: the layout's own, variations, noise."""
    base = L.RAM_BASE
    own = {L.GITS_CBASER: (base + 0x10000) | (1 << 63) | 0xF,
           L.GITS_BASER0: (base + 0x400000) | (1 << 63) | 0xF,
           L.GITS_BASER1: (base + 0x500000) | (1 << 63),
           L.GITS_CREADR: 0x40, L.GITS_CWRITER: 0x40, L.GITS_CTLR: 1,
           L.GITS_IIDR: 0x4B00043B}.get(off, 0)
    return st.one_of(st.just(own), st.just(own & ~(1 << 63)), st.just(own ^ (1 << 12)),
                     st.just(0x4B01043B), _u64)


ITS_SET = ITS_OFFS.flatmap(lambda off: _its_val(off).map(lambda v: ("its_set", off, v)))
RD_SET = st.tuples(_vcpu, RD_OFFS).flatmap(
    lambda t: st.one_of(st.just(0), st.just(1), _u64.map(lambda v: v & 0xFFFFFFFF)).map(
        lambda v: ("rd_set", t[0], t[1], v)))


def _dte(valid, nxt, itt, size):
    return (valid << 63) | ((nxt & 0x3FFF) << 49) | (((itt >> 8) & ((1 << 44) - 1)) << 5) | (size & 0x1F)


def _ite(nxt, intid, icid):
    return ((nxt & 0xFFFF) << 48) | ((intid & 0xFFFFFFFF) << 16) | (icid & 0xFFFF)


def _cte(valid, rd, icid):
    return (valid << 63) | ((rd & ((1 << 36) - 1)) << 16) | (icid & 0xFFFF)


CORRUPTION = st.one_of(
    st.none(), st.none(),
    st.builds(lambda d, v: ("dte", d, v), _dev, st.one_of(
        st.just(0), _u64,
        st.builds(lambda d, n, s, far: _dte(1, n, (0x1_0000_0000 if far else ITT + d * 0x1000), s),
                  _dev, st.integers(0, 3), st.integers(0, 17), st.booleans()))),
    st.builds(lambda d, e, v: ("ite", d, e, v), _dev, _ev, st.one_of(
        st.just(0), _u64,
        st.builds(_ite, st.integers(0, 3), st.sampled_from([0, 100, 8192, 8195, 70000]),
                  st.sampled_from([0, 1, 2, 3, 77])))),
    st.builds(lambda i, v: ("cte", i, v), _icid, st.one_of(
        st.just(0), _u64,
        st.builds(_cte, st.just(1), st.sampled_from([0, 1, 2, 5, (1 << 36) - 1]), _icid))),
    st.builds(lambda v, b, x: ("pend", v, b, x), _vcpu, st.integers(1024, 1060),
              st.integers(0, 255)),
)

STEPS = st.one_of(
    CMDS_ALL.map(lambda c: ("cmd", c)),
    CMDS_ALL.map(lambda c: ("cmd", c)),
    st.lists(CMDS_ALL, min_size=1, max_size=3).map(lambda cs: ("queue", tuple(cs))),
    st.builds(lambda d, e: ("msi", d, e), _msi_dev, _msi_ev),
    st.builds(lambda d, e: ("msi", d, e), _dev, _ev),
    st.builds(lambda d, e: ("irqfd", d, e), _dev, _msi_ev),
    ITS_OFFS.map(lambda o: ("its_get", o)),
    ITS_SET,
    st.builds(lambda o, s: ("its_read", o, s), st.sampled_from(
        [L.GITS_CTLR, L.GITS_TYPER, L.GITS_CBASER, L.GITS_CREADR, L.GITS_CWRITER,
         L.GITS_BASER0, L.GITS_BASER1, 0xFFE8]), st.sampled_from([4, 8])).filter(
        lambda t: t[2] == 4 or t[1] & 7 == 0),
    st.builds(lambda v: ("its_ctlr", v), st.sampled_from([0, 1])),
    st.builds(lambda v, o: ("rd_get", v, o), _vcpu, RD_OFFS),
    RD_SET,
    st.builds(lambda v, x: ("lpis", v, x), _vcpu, st.sampled_from([0, 1])),
    st.builds(lambda v, x: ("running", v, x), _vcpu, st.booleans()),
    st.just(("save",)),
    st.just(("save_pending",)),
    CORRUPTION.map(lambda c: ("restore", c)),
    st.builds(lambda v: ("deliver", v), _vcpu),
    st.builds(lambda v: ("deliver", v), _vcpu),
)


def streams(steps=STEPS, max_size: int = 24):
    """An optional prologue, then 1..max_size random steps."""
    return st.tuples(st.booleans(), st.lists(steps, min_size=1, max_size=max_size)).map(
        lambda t: (list(PROLOGUE) if t[0] else []) + t[1])


def command_streams(max_size: int = 24):
    return st.lists(CMDS_ALL.map(lambda c: ("cmd", c)), min_size=1, max_size=max_size)


#: Disagreements the differential found that the model does not fix yet: name ->
#: (does a step reach it, kernel function, the strict-xfail test pinning it). The CI
#: differential leaves such steps out of its streams (so that every other disagreement
#: still fails it); `gicsim kernel check` keeps them unless --skip-known.
KNOWN: dict[str, tuple] = {
    # all five found so far are fixed in the model (each now a plain agreement test in
    # tests/test_linux_differential.py): GICR_IIDR (vgic_mmio_read_v3r_iidr), GICR_CTLR
    # IR|CES (vgic_mmio_read_v3r_ctlr), ITS access widths (dispatch_mmio_read /
    # check_region), the SGI_base frame (vgic_v3_sgibase_registers), a restored DTE with
    # more than 16 EventID bits (vgic_its_restore_dte)
}


def is_known(op) -> bool:
    return any(pred(op) for pred, _, _ in KNOWN.values())


def without_known(strategy):
    return strategy.map(lambda s: [op for op in s if not is_known(op)]).filter(bool)
