"""What an explanation reads: a run's trace split into the frames the narrative and the cause rules use."""


from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pandas as pd

from gicsim.judge import analysis as A
from gicsim.kvm.releases import MAINLINE
from gicsim.present.explain.words import ids, plural
from gicsim.present.rundata import RunData


# ======================================================================= the context ====
@attrs.define
class Ctx:
    run: RunData
    df: pd.DataFrame
    migs: list[A.MigInfo]
    acc: pd.DataFrame
    dl: pd.DataFrame
    vr: pd.DataFrame
    masks: pd.DataFrame
    kvm: pd.DataFrame
    steps: pd.DataFrame
    rows: pd.DataFrame  # the non-traffic rows (everything but raise/accept/drop/deliver/eoi)
    variants: dict[str, Any]
    verdict: Any
    first_side: str
    end_ns: int
    cache: dict[tuple[Any, ...], Any] = attrs.Factory(dict)


def context(run: RunData) -> Ctx:
    from gicsim.judge import oracles

    df = run.trace
    migs = A.migrations(df, run.summary, run.scenario)
    acc = A.attribute(df)
    acc["drop_reason"] = A.drop_reasons(acc, df).reindex(acc.index).fillna("")
    dl = A.deliveries(df, acc)
    traffic = df["kind"].isin(["raise", "accept", "drop", "deliver", "eoi", "lpi_config"]).to_numpy()
    rows = df.loc[~traffic].copy()
    rows["pos"] = A.positions(df)[~traffic]
    for c in ("kind", "side", "info"):
        rows[c] = A._info_str(rows[c])
    lp = run.summary.get("lpis", {})
    if run.result is not None:
        verdict = run.result.verdict
    elif all(lp.get(k) == 0 for k in ("lost", "spurious", "misrouted")):
        # nothing to explain per LPI: the summary's counts are the verdict (no re-judging)
        verdict = oracles.Verdict(**{k: lp[k] for k in ("accepted", "delivered", "lost", "spurious", "misrouted",
                                                         "withdrawn", "in_flight") if k in lp})  # fmt: skip
        verdict.dropped = dict(lp.get("dropped") or verdict.dropped)
    else:
        verdict = oracles.judge(run.records(), run.until_ns)
    k = run.resolved.get("kernel") or {}
    variants = {f: v for f, v in k.items() if getattr(MAINLINE, f, v) != v}
    return Ctx(
        run=run, df=df, migs=migs, acc=acc, dl=dl, vr=A.vcpu_rows(df), masks=A.mask_rows(df),
        kvm=A.kvm_calls(df), steps=A.steps(df, migs), rows=rows, variants=variants, verdict=verdict,
        first_side=str(df["side"].iloc[0]) if len(df) else "vm0",
        end_ns=int(run.summary.get("sim_ns", run.until_ns)),
    )  # fmt: skip



def _pos_at(cx: Ctx, t: int) -> int:
    ts = _cached(cx, ("t",), lambda: cx.df["t"].to_numpy())
    return int(np.searchsorted(ts, t, side="left"))


def _gcmd_words(grp: pd.DataFrame) -> str:
    names = grp["info"].tolist()
    bits = []
    for name, sub in grp.groupby("info", sort=False):
        n = len(sub)
        if name == "MAPTI":
            devs = sorted(set(sub["device"]))
            bits.append(f"MAPTI ×{n} (device {ids(devs)}, events {ids(sub['event'])} → LPIs {ids(sub['lpi'])})"
                        if n > 1 else f"MAPTI (device {sub['device'].iloc[0]} event {sub['event'].iloc[0]} → "
                        f"LPI {sub['lpi'].iloc[0]}, collection {sub['icid'].iloc[0]})")  # fmt: skip
        elif name == "MAPC" and n > 3:
            bits.append(f"MAPC ×{n} (collections {ids(sub['icid'])} → vCPUs {ids(sub['vcpu'])})")
        elif name == "MAPC":
            bits.append(", ".join(f"MAPC (collection {r.icid} → vCPU {r.vcpu})" for r in sub.itertuples()))
        elif name in ("MAPD", "MAPD-") and n > 3:
            bits.append(("MAPD V=0" if name == "MAPD-" else "MAPD") + f" ×{n} (devices {ids(sub['device'])})")
        elif name in ("MOVI", "DISCARD", "CLEAR", "INV", "INT", "MOVALL") and n > 3:
            bits.append(f"{name} ×{n} (devices {ids(sub['device'])})" if name != "MOVALL" else f"MOVALL ×{n}")
        elif name in ("MAPD", "MAPD-"):
            bits.append(("MAPD V=0" if name == "MAPD-" else "MAPD") + f" (device {ids(sub['device'])})")
        elif name in ("MOVI", "DISCARD", "CLEAR", "INV", "INT"):
            bits.append(", ".join(f"{name} (device {r.device} event {r.event}" + (f" → collection {r.icid})" if name == "MOVI" else ")")
                                  for r in sub.itertuples()))  # fmt: skip
        elif name == "MOVALL":
            bits.append(", ".join(f"MOVALL (vCPU {r.icid} → vCPU {r.vcpu})" for r in sub.itertuples()))
        else:
            bits.append(f"{name} ×{n}" if n > 1 else name)
    return f"{plural(len(names), 'command')}: " + "; ".join(bits)


def _replayed(cx: Ctx, side: str, pos: int) -> bool:
    """Commands executed on a destination VM before it ever resumed."""
    for m in cx.migs:
        if m.destination == side and (m.resume_ns is None or m.resume_side != side or pos < _pos_of_resume(cx, m)):
            return True
    return False


def _pos_of_resume(cx: Ctx, m: A.MigInfo) -> int:
    def f() -> int:
        r = cx.rows[(cx.rows["kind"] == "migration") & (cx.rows["icid"] == m.index) & (cx.rows["info"] == "resume")]
        return int(r["pos"].iloc[0]) if len(r) else 1 << 62

    return _cached(cx, ("resume_pos", m.index), f)



def _cached(cx: Ctx, key: tuple[Any, ...], fn: Callable[[], Any]) -> Any:
    if key not in cx.cache:
        cx.cache[key] = fn()
    return cx.cache[key]


