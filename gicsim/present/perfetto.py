"""Chrome/Perfetto trace-event JSON export of a run (open it in https://ui.perfetto.dev or
chrome://tracing; nothing in the file refers to the network).

Tracks (process / thread in trace-event terms):

- process "guest vCPUs": one thread per vCPU with a slice per LPI handler (``deliver`` →
  ``eoi``) and instants for mask/unmask; beside each, a "vCPU n: KVM_RUN" thread with a slice
  for every stretch spent outside ``KVM_RUN`` (exit → enter, the ``-EBUSY`` rule's view).
- process "ITS": one thread ("ITS") with instants for every MSI/INT the ITS accepted or
  dropped, every command it executed and every command the guest wrote; a "devices" thread
  with the raises.
- process "migration": one thread per VM incarnation (``vm0 (source)``, ``vm1 (destination)``
  ...) with slices for pre-copy, the downtime and each migration step, and instants for every
  KVM device call (errno in the name when it failed) and the migration's milestones.

Timestamps are microseconds with nanosecond decimals, as the format wants. The JSON is built
with vectorised string operations, one event per line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gicsim.judge import analysis as A
from gicsim.present.rundata import RunData

PID_VCPU, PID_ITS, PID_MIG = 1, 2, 3
TID_ITS, TID_DEV = 1, 2
KVMRUN_TID = 10_000  # vCPU n's KVM_RUN track is tid KVMRUN_TID + n


def _ts(ns: pd.Series | np.ndarray) -> pd.Series:
    a = np.asarray(ns, dtype=np.int64)
    whole = pd.Series(a // 1000).astype(str)
    frac = pd.Series(a % 1000).astype(str).str.zfill(3)
    return whole + "." + frac


def _js(values: pd.Series) -> pd.Series:
    """JSON string literals of a column (escaped once per distinct value)."""
    cat = values.astype("category")
    lits = [json.dumps(str(c)) for c in cat.cat.categories]
    return pd.Series(np.asarray(lits, dtype=object)[cat.cat.codes.to_numpy()], index=values.index)


def _events(name: pd.Series, ph: str, ts_ns: Any, pid: Any, tid: Any, args: pd.Series | None = None,
            dur_ns: Any = None, cat: str = "") -> pd.DataFrame:  # fmt: skip
    n = len(name)
    if not n:
        return pd.DataFrame(columns=["ts", "dur", "line"])
    ts_ns = np.broadcast_to(np.asarray(ts_ns, dtype=np.int64), (n,))
    pid_s = pd.Series(np.broadcast_to(np.asarray(pid), (n,))).astype(str)
    tid_s = pd.Series(np.broadcast_to(np.asarray(tid), (n,))).astype(str)
    line = ('{"name":' + _js(name.reset_index(drop=True)) + ',"cat":"' + cat + '","ph":"' + ph + '","ts":'
            + _ts(ts_ns) + ',"pid":' + pid_s + ',"tid":' + tid_s)  # fmt: skip
    dur = np.zeros(n, dtype=np.int64)
    if ph == "X":
        dur = np.broadcast_to(np.asarray(dur_ns, dtype=np.int64), (n,))
        line = line + ',"dur":' + _ts(dur)
    elif ph == "i":
        line = line + ',"s":"t"'
    if args is not None:
        line = line + ',"args":' + args.reset_index(drop=True)
    line = line + "}"
    return pd.DataFrame({"ts": ts_ns, "dur": dur, "line": line})


def _meta(pid: int, tid: int | None, key: str, value: Any) -> str:
    ev: dict[str, Any] = {"name": key, "ph": "M", "pid": pid, "args": {}}
    if tid is not None:
        ev["tid"] = tid
    ev["args"] = {"name": value} if key.endswith("_name") else {"sort_index": value}
    return json.dumps(ev)


def _col(df: pd.DataFrame, c: str) -> pd.Series:
    return df[c].reset_index(drop=True)


def trace_events(run: RunData) -> list[str]:
    """Every event as one JSON object per string (metadata first)."""
    df = run.trace
    n_vcpus = run.scenario.vm.vcpus
    migs = A.migrations(df, run.summary, run.scenario)
    kind = df["kind"]
    t = df["t"].to_numpy(np.int64)
    side = A._info_str(df["side"])
    info = A._info_str(df["info"])
    parts: list[pd.DataFrame] = []

    # -- vCPUs: handler slices (the k-th deliver of a vCPU pairs with its k-th eoi) ---------
    dsel = (kind == "deliver").to_numpy()
    esel = (kind == "eoi").to_numpy()
    d = pd.DataFrame({"t": t[dsel], "vcpu": df["vcpu"].to_numpy()[dsel], "lpi": df["lpi"].to_numpy()[dsel],
                      "side": side.to_numpy()[dsel]})  # fmt: skip
    e = pd.DataFrame({"t_e": t[esel], "vcpu": df["vcpu"].to_numpy()[esel]})
    d["k"] = d.groupby("vcpu").cumcount()
    e["k"] = e.groupby("vcpu").cumcount()
    h = d.merge(e, on=["vcpu", "k"], how="left")
    h["t_e"] = h["t_e"].fillna(int(run.summary.get("sim_ns", t[-1] if len(t) else 0))).astype(np.int64)
    args = '{"lpi":' + h["lpi"].astype(str) + ',"side":"' + h["side"].astype(str) + '"}'
    parts.append(_events("LPI " + h["lpi"].astype(str), "X", h["t"], PID_VCPU, h["vcpu"] + 1, args,
                         h["t_e"] - h["t"], cat="lpi"))  # fmt: skip
    msel = (kind == "mask").to_numpy()
    mk = pd.DataFrame({"t": t[msel], "vcpu": df["vcpu"].to_numpy()[msel], "what": info.to_numpy()[msel],
                       "side": side.to_numpy()[msel]})  # fmt: skip
    parts.append(_events(pd.Series(np.where(mk["what"] == "1", "mask interrupts", "unmask interrupts")),
                         "i", mk["t"], PID_VCPU, mk["vcpu"] + 1, cat="guest"))  # fmt: skip
    # -- vCPUs: outside KVM_RUN (exit -> next enter) ----------------------------------------
    vr = A.vcpu_rows(df)
    vr["next_t"] = vr.groupby("vcpu")["t"].shift(-1)
    vr["next_what"] = vr.groupby("vcpu")["what"].shift(-1)
    out = vr[vr["what"] == "exit"].copy()
    end = int(run.summary.get("sim_ns", t[-1] if len(t) else 0))
    out["t_e"] = np.where(out["next_what"] == "enter", out["next_t"].fillna(end), end).astype(np.int64)
    args = '{"left":"' + out["side"].astype(str) + '"}'
    parts.append(_events(pd.Series(["outside KVM_RUN"] * len(out)), "X", out["t"], PID_VCPU,
                         KVMRUN_TID + out["vcpu"], args, out["t_e"] - out["t"], cat="kvm_run"))  # fmt: skip
    ent = vr[vr["what"] == "enter"]
    parts.append(_events(pd.Series("enter KVM_RUN on " + ent["side"].astype(str)), "i", ent["t"], PID_VCPU,
                         KVMRUN_TID + ent["vcpu"], cat="kvm_run"))  # fmt: skip

    # -- ITS: accept / drop / cmd / gcmd; devices: raises ------------------------------------
    def rows(*kinds: str) -> pd.DataFrame:
        sel = kind.isin(kinds).to_numpy()
        return pd.DataFrame({
            "t": t[sel], "kind": A._info_str(kind[sel]).to_numpy(), "side": side.to_numpy()[sel],
            "vcpu": df["vcpu"].to_numpy()[sel], "lpi": df["lpi"].to_numpy()[sel],
            "dev": df["device"].to_numpy()[sel], "ev": df["event"].to_numpy()[sel],
            "icid": df["icid"].to_numpy()[sel], "info": info.to_numpy()[sel],
        })  # fmt: skip

    its = rows("accept", "drop", "cmd", "gcmd")
    if len(its):
        k = its["kind"]
        name = np.select(
            [k == "accept", k == "drop", k == "cmd"],
            ["accept LPI " + its["lpi"].astype(str), "drop: " + its["info"].astype(str), "cmd " + its["info"].astype(str)],
            "guest wrote " + its["info"].astype(str),
        )  # fmt: skip
        args = ('{"side":"' + its["side"] + '","device":' + its["dev"].astype(str) + ',"event":'
                + its["ev"].astype(str) + ',"lpi":' + its["lpi"].astype(str) + ',"vcpu":'
                + its["vcpu"].astype(str) + ',"icid":' + its["icid"].astype(str) + "}")  # fmt: skip
        parts.append(_events(pd.Series(name), "i", its["t"], PID_ITS, TID_ITS, args, cat="its"))
    rz = rows("raise")
    if len(rz):
        name = np.where(rz["info"] == "set_pending", "set pending bit LPI " + rz["lpi"].astype(str),
                        rz["info"].str.upper() + " dev " + rz["dev"].astype(str) + " ev " + rz["ev"].astype(str))  # fmt: skip
        args = '{"side":"' + rz["side"] + '","device":' + rz["dev"].astype(str) + ',"event":' + rz["ev"].astype(str) + "}"
        parts.append(_events(pd.Series(name), "i", rz["t"], PID_ITS, TID_DEV, args, cat="raise"))

    # -- migration: one track per VM incarnation -------------------------------------------
    sides = sorted(set(side.unique()) | {m.source for m in migs} | {m.destination for m in migs if m.destination},
                   key=lambda s: (len(s), s))  # fmt: skip
    tid_of = {s: i + 1 for i, s in enumerate(sides)}
    st = A.steps(df, migs)
    if len(st):
        args = '{"migration":' + (st["migration"] + 1).astype(str) + ',"role":"' + st["role"] + '"}'
        parts.append(_events(st["step"], "X", st["start_ns"], PID_MIG, st["side"].map(tid_of), args,
                             st["dur_ns"], cat="migration"))  # fmt: skip
    spans = []
    for m in migs:
        tid = tid_of[m.source]
        stop = m.stop_ns if m.stop_ns is not None else m.start_ns
        spans.append(("pre-copy", m.start_ns, stop - m.start_ns, tid, m.index))
        if m.stop_ns is not None and m.end_ns is not None:
            spans.append(("downtime", m.stop_ns, m.end_ns - m.stop_ns, tid, m.index))
    if spans:
        sp = pd.DataFrame(spans, columns=["name", "t", "dur", "tid", "mig"])
        args = '{"migration":' + (sp["mig"] + 1).astype(str) + "}"
        parts.append(_events(sp["name"], "X", sp["t"], PID_MIG, sp["tid"], args, sp["dur"], cat="migration"))
    mr = rows("kvm", "migration", "quiesce", "state")
    if len(mr):
        k = mr["kind"]
        label = np.select(
            [k == "kvm", k == "migration", k == "quiesce"],
            ["KVM " + mr["info"].str.replace(":", " → ", regex=False), "migration " + mr["info"],
             np.where(mr["info"] == "1", "devices quiesced", "devices released")],
            "state snapshot (" + mr["info"].str.split(":", n=1).str[0] + ")",
        )  # fmt: skip
        args = '{"migration":' + (mr["icid"] + 1).astype(str) + "}"
        parts.append(_events(pd.Series(label), "i", mr["t"], PID_MIG, mr["side"].map(tid_of).fillna(0).astype(int),
                             args, cat="migration"))  # fmt: skip

    ev = pd.concat([p for p in parts if len(p)], ignore_index=True)
    ev = ev.sort_values(["ts", "dur"], ascending=[True, False], kind="stable")
    meta = [
        _meta(PID_VCPU, None, "process_name", "guest vCPUs"),
        _meta(PID_VCPU, None, "process_sort_index", 1),
        _meta(PID_ITS, None, "process_name", "ITS"),
        _meta(PID_ITS, None, "process_sort_index", 2),
        _meta(PID_MIG, None, "process_name", "migration"),
        _meta(PID_MIG, None, "process_sort_index", 3),
        _meta(PID_ITS, TID_ITS, "thread_name", "ITS"),
        _meta(PID_ITS, TID_DEV, "thread_name", "devices (MSI raises)"),
    ]
    for v in range(n_vcpus):
        meta += [
            _meta(PID_VCPU, v + 1, "thread_name", f"vCPU {v}"),
            _meta(PID_VCPU, v + 1, "thread_sort_index", 2 * v),
            _meta(PID_VCPU, KVMRUN_TID + v, "thread_name", f"vCPU {v}: outside KVM_RUN"),
            _meta(PID_VCPU, KVMRUN_TID + v, "thread_sort_index", 2 * v + 1),
        ]
    for s, tid in tid_of.items():
        meta += [_meta(PID_MIG, tid, "thread_name", f"{s} ({_role_words(s, migs)})"),
                 _meta(PID_MIG, tid, "thread_sort_index", tid)]  # fmt: skip
    return meta + ev["line"].tolist()


def _role_words(side: str, migs: list[A.MigInfo]) -> str:
    roles = []
    for m in migs:
        if m.source == side:
            roles.append("source" if len(migs) == 1 else f"source of migration {m.index + 1}")
        if m.destination == side:
            roles.append("destination" if len(migs) == 1 else f"destination of migration {m.index + 1}")
    return ", ".join(roles) or "VM"


def to_json(run: RunData) -> str:
    lines = trace_events(run)
    other = json.dumps({"scenario": run.name, "seed": run.summary.get("seed"), "generator": "gicsim"})
    return ('{"displayTimeUnit":"ns","otherData":' + other + ',"traceEvents":[\n'
            + ",\n".join(lines) + "\n]}\n")  # fmt: skip


def write(run: RunData, path: Path) -> None:
    from gicsim.present.output import write_text_atomic

    write_text_atomic(Path(path), to_json(run))
