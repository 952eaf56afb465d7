"""The trace table users see (docs/trace-schema.md): one meaning per column, no -1 sentinels,
and an exact round trip to the record layout the analysis reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import gicsim
from gicsim.judge.trace import (
    COLUMNS,
    PUBLIC_COLUMNS,
    internal_frame,
    public_frame,
    records_to_frame,
)

ROOT = Path(__file__).parent.parent

REC = [
    (0, "gcmd", "vm0", 2, -1, -1, -1, 5, "MAPC"),
    (1, "gcmd", "vm0", 3, -1, -1, -1, 1, "MOVALL"),
    (2, "cmd", "vm0", 2, -1, -1, -1, 5, "MAPC"),
    (3, "cmd", "vm0", 1, -1, -1, -1, 3, "MOVALL"),
    (4, "cmd", "vm0", -1, -1, 7, 9, -1, "INT:E_ITS_INT_UNMAPPED_INTERRUPT"),
    (5, "kvm", "vm1", -1, -1, -1, -1, 0, "ITS_RESTORE_TABLES"),
    (6, "deliver", "vm1", 1, 8192, -1, -1, -1, ""),
    (7, "migration", "vm1", -1, -1, -1, -1, 1, "completed"),
]


def test_public_columns_have_one_meaning_each():
    pub = public_frame(records_to_frame(REC))
    assert list(pub.columns) == list(PUBLIC_COLUMNS)
    rows = pub.to_dict("records")
    na = pd.isna
    # MAPC (guest intent and ITS execution): the target vCPU is a command argument
    for r in rows[0], rows[2]:
        assert r["cmd_vcpu"] == 2 and r["icid"] == 5 and na(r["vcpu"]) and na(r["migration"])
    # MOVALL: from and to vCPU, neither in vcpu nor icid
    for r, frm, to in ((rows[1], 1, 3), (rows[3], 1, 3)):
        assert (r["cmd_from_vcpu"], r["cmd_vcpu"]) == (frm, to), r
        assert na(r["vcpu"]) and na(r["icid"])
    assert (rows[4]["device"], rows[4]["event"]) == (7, 9) and na(rows[4]["icid"])
    # migration index in its own column, not in icid
    assert rows[5]["migration"] == 0 and na(rows[5]["icid"])
    assert rows[7]["migration"] == 1 and na(rows[7]["icid"])
    assert rows[6]["vcpu"] == 1 and rows[6]["lpi"] == 8192 and na(rows[6]["cmd_vcpu"])


def test_round_trip_to_record_layout_is_exact():
    df = records_to_frame(REC)
    back = internal_frame(public_frame(df))
    assert list(back.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(back.astype({c: str for c in ("kind", "side", "info")}),
                                  df.astype({c: str for c in ("kind", "side", "info")}))


def test_a_whole_run_has_no_sentinels_and_round_trips():
    res = gicsim.run(ROOT / "scenarios" / "movi-race.yaml")
    pub = res.trace
    ints = [c for c in PUBLIC_COLUMNS if c not in ("t", "kind", "side", "info")]
    for c in ints:
        assert str(pub[c].dtype) == "Int32", c
        assert not (pub[c].dropna() < 0).any(), c  # <NA>, never -1
    assert pub["migration"].notna().any() and pub["cmd_vcpu"].notna().any()
    assert pub.loc[pub["kind"].isin(["kvm", "step", "migration", "state"]), "icid"].isna().all()
    back = internal_frame(pub)
    ref = res.frame
    for c in COLUMNS:
        assert back[c].astype(str).tolist() == ref[c].astype(str).tolist(), c
