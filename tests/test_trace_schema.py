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


# --------------------------------------------------- compact conversion, same bytes ----
def _reference_frame(rec):
    """The record-layout frame built the plain way (one object per cell): what
    ``records_to_frame`` must equal, categories in first-appearance order."""
    import numpy as np

    df = pd.DataFrame.from_records(rec, columns=list(COLUMNS))
    for c in ("kind", "side", "info"):
        df[c] = pd.Categorical(df[c], categories=pd.Index(pd.unique(df[c].to_numpy(object)), dtype="str"))
    df["t"] = df["t"].astype(np.int64)
    for c in ("vcpu", "lpi", "device", "event", "icid"):
        df[c] = df[c].astype(np.int32)
    return df


def test_clean_migration_trace_digest_and_table_are_unchanged():
    """The memory work (categories from the distinct values, masks per category) changes no
    byte: the trace digest of clean-migration is the one it had before (commit 4d00268),
    and the frames and the Parquet file equal the plain construction's."""
    import io

    from gicsim.judge.trace import digest

    res = gicsim.run(ROOT / "scenarios" / "clean-migration.yaml")
    assert digest(res.records) == "c7749f51770433a1"
    ref = _reference_frame(res.records)
    pd.testing.assert_frame_equal(records_to_frame(res.records), ref, check_exact=True)

    def parquet(df):
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()

    assert parquet(res.trace) == parquet(public_frame(ref))


def test_long_info_strings_are_never_padded():
    """``info`` holds multi-MB state JSON on a few rows: building the categories must not pad
    every distinct value to the longest (that took 1.5 GB on the scale benchmark)."""
    import tracemalloc

    big = "pause:" + "x" * 1_000_000
    rec = [(i, "cmd", "vm0", -1, -1, i, i, -1, f"INT:{i}") for i in range(200)] + [(200, "state", "vm0", -1, -1, -1, -1, 0, big)]
    tracemalloc.start()
    df = records_to_frame(rec)
    pub = public_frame(df)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 << 20, peak  # padded: 201 x 1 M chars x 4 bytes = 800 MB
    assert pub["info"].iloc[-1] == big and list(df["info"].cat.categories[:2]) == ["INT:0", "INT:1"]
