"""Chrome/Perfetto trace-event JSON export of a run, gzip-compressed
(``trace.perfetto.json.gz``: open it in https://ui.perfetto.dev, which reads gzipped JSON
as it is, or ``gunzip`` it for chrome://tracing; nothing in the file refers to the network).

Tracks (process / thread in trace-event terms):

- process "guest vCPUs": one thread per vCPU with a slice per LPI handler (``deliver`` →
  ``eoi``) and instants for mask/unmask; beside each, a "vCPU n: outside KVM_RUN" thread
  with a slice for every stretch spent outside ``KVM_RUN`` (exit → enter, the ``-EBUSY``
  rule's view).
- process "ITS": one thread ("ITS") with instants for every MSI/INT the ITS accepted or
  dropped, every command it executed and every command the guest wrote; a "devices" thread
  with the raises.
- process "migration": one thread per VM incarnation (``vm0 (source)``, ``vm1 (destination)``
  ...) with slices for pre-copy, the downtime and each migration step, and instants for every
  KVM device call (errno in the name when it failed) and the migration's milestones.

Every track has a thread id of its own across all processes (``Tracks``): the Perfetto UI
merges the names of threads that share a tid even in different processes.

Timestamps are microseconds with nanosecond decimals, as the format wants. One event per
line. The events are built with vectorised string operations a chunk at a time, in time
order, and compressed as they are built, so the export never holds the whole JSON text
(the scale benchmark's is 379 MB; gzip level 3 makes it 44 MB in ~5 s, level 6 would save
6 MB for 8 s more). Why gzip rather than Perfetto's protobuf format: the Perfetto UI opens
both, the JSON stays readable with ``zcat``, it needs no new dependency, and the events keep
their vectorised construction (a protobuf writer, such as the ``perfetto`` package's trace
builder, builds one Python message object per event: millions on the scale benchmark).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa

from gicsim.judge import analysis as A
from gicsim.present.rundata import RunData

#: the file name the export is written under, in run and report directories
FILENAME = "trace.perfetto.json.gz"
PID_VCPU, PID_ITS, PID_MIG = 1, 2, 3
TID_ITS, TID_DEV = 1, 2
#: events formatted (and compressed) per chunk: bounds the text held at once
CHUNK_EVENTS = 50_000
#: characters ``json.dumps`` (ensure_ascii) escapes
_NEEDS_ESCAPE = r'[^\x20\x21\x23-\x5b\x5d-\x7e]'


@attrs.frozen
class Tracks:
    """Thread ids, unique across processes: ITS 1, devices 2, then each VM incarnation,
    then per vCPU its handler track and its outside-KVM_RUN track."""

    sides: tuple[str, ...]  # VM incarnations in order (vm0, vm1, ...)

    def vm(self, side: str) -> int:
        return 3 + self.sides.index(side)

    def vm_of(self) -> dict[str, int]:
        return {s: self.vm(s) for s in self.sides}

    @property
    def _vcpu0(self) -> int:
        return 3 + len(self.sides)

    def vcpu(self, v: Any) -> Any:
        return self._vcpu0 + 2 * v

    def kvm_run(self, v: Any) -> Any:
        return self._vcpu0 + 2 * v + 1


class _Part(NamedTuple):
    """Events of one kind, not yet formatted: ``src`` has a row per event with ``ts`` (ns),
    ``dur`` (ns, 0 for instants), ``tid`` and the columns ``name``/``args`` read."""

    src: pd.DataFrame
    ph: str
    pid: int
    cat: str
    name: Callable[[pd.DataFrame], pd.Series]
    args: Callable[[pd.DataFrame], pd.Series] | None = None


def _ts(ns: pd.Series | np.ndarray) -> pd.Series:
    a = np.asarray(ns, dtype=np.int64)
    whole = pd.Series(a // 1000).astype(str)
    frac = pd.Series(a % 1000).astype(str).str.zfill(3)
    return whole + "." + frac


def _js(values: pd.Series) -> pd.Series:
    """JSON string literals of a column, as ``json.dumps`` writes them: plain printable
    ASCII without ``"`` or ``\\`` is only quoted (vectorised); anything else is escaped once
    per distinct value."""
    values = values.astype(str)
    odd = values.str.contains(_NEEDS_ESCAPE, regex=True).to_numpy(dtype=bool)
    out = ('"' + values + '"').astype(object)
    if odd.any():
        cat = values[odd].astype("category")
        lits = np.asarray([json.dumps(str(c)) for c in cat.cat.categories], dtype=object)
        out[odd] = lits[cat.cat.codes.to_numpy()]
    return out


def _s(x: Any) -> pd.Series:
    return pd.Series(np.asarray(x)).astype(str)


def _lines(p: _Part, rows: pd.DataFrame) -> pd.Series:
    """The JSON text of ``rows`` of part ``p``, one event per string."""
    rows = rows.reset_index(drop=True)
    line = ('{"name":' + _js(p.name(rows).reset_index(drop=True)) + ',"cat":"' + p.cat + '","ph":"' + p.ph
            + '","ts":' + _ts(rows["ts"]) + ',"pid":' + str(p.pid) + ',"tid":' + _s(rows["tid"]))  # fmt: skip
    if p.ph == "X":
        line = line + ',"dur":' + _ts(rows["dur"])
    elif p.ph == "i":
        line = line + ',"s":"t"'
    if p.args is not None:
        line = line + ',"args":' + p.args(rows).reset_index(drop=True)
    return line + "}"


def _part(src: dict[str, Any], ph: str, pid: int, cat: str, name: Callable[[pd.DataFrame], pd.Series],
          args: Callable[[pd.DataFrame], pd.Series] | None = None) -> _Part:  # fmt: skip
    df = pd.DataFrame(src)
    n = len(df)
    for c, default in (("dur", 0), ("tid", 0)):
        df[c] = np.broadcast_to(np.asarray(df[c] if c in df else default, dtype=np.int64), (n,)).copy()
    df["ts"] = np.asarray(df["ts"], dtype=np.int64)
    return _Part(df, ph, pid, cat, name, args)


def _meta(pid: int, tid: int | None, key: str, value: Any) -> str:
    ev: dict[str, Any] = {"name": key, "ph": "M", "pid": pid, "args": {}}
    if tid is not None:
        ev["tid"] = tid
    ev["args"] = {"name": value} if key.endswith("_name") else {"sort_index": value}
    return json.dumps(ev)


def _parts(run: RunData, tracks: Tracks, migs: list[A.MigInfo]) -> list[_Part]:
    df = run.trace
    kind = df["kind"]
    t = df["t"].to_numpy(np.int64)
    side = A._info_str(df["side"]).to_numpy()
    info = A._info_str(df["info"]).to_numpy()
    end = int(run.summary.get("sim_ns", t[-1] if len(t) else 0))
    col = {c: df[c].to_numpy() for c in ("vcpu", "lpi", "device", "event", "icid")}
    parts: list[_Part] = []

    # -- vCPUs: handler slices (the k-th deliver of a vCPU pairs with its k-th eoi) ---------
    dsel = (kind == "deliver").to_numpy()
    esel = (kind == "eoi").to_numpy()
    d = pd.DataFrame({"t": t[dsel], "vcpu": col["vcpu"][dsel], "lpi": col["lpi"][dsel], "side": side[dsel]})
    e = pd.DataFrame({"t_e": t[esel], "vcpu": col["vcpu"][esel]})
    d["k"] = d.groupby("vcpu").cumcount()
    e["k"] = e.groupby("vcpu").cumcount()
    h = d.merge(e, on=["vcpu", "k"], how="left")
    h["t_e"] = h["t_e"].fillna(end).astype(np.int64)
    parts.append(_part({"ts": h["t"], "dur": h["t_e"] - h["t"], "tid": tracks.vcpu(h["vcpu"]), "lpi": h["lpi"],
                        "side": h["side"]}, "X", PID_VCPU, "lpi",
                       lambda r: "LPI " + r["lpi"].astype(str),
                       lambda r: '{"lpi":' + r["lpi"].astype(str) + ',"side":"' + r["side"].astype(str) + '"}'))  # fmt: skip
    msel = (kind == "mask").to_numpy()
    parts.append(_part({"ts": t[msel], "tid": tracks.vcpu(col["vcpu"][msel]), "what": info[msel]}, "i",
                       PID_VCPU, "guest",
                       lambda r: pd.Series(np.where(r["what"] == "1", "mask interrupts", "unmask interrupts"))))  # fmt: skip
    # -- vCPUs: outside KVM_RUN (exit -> next enter) ----------------------------------------
    vr = A.vcpu_rows(df)
    vr["next_t"] = vr.groupby("vcpu")["t"].shift(-1)
    vr["next_what"] = vr.groupby("vcpu")["what"].shift(-1)
    out = vr[vr["what"] == "exit"]
    t_e = np.where(out["next_what"] == "enter", out["next_t"].fillna(end), end).astype(np.int64)
    parts.append(_part({"ts": out["t"].to_numpy(), "dur": t_e - out["t"].to_numpy(),
                        "tid": tracks.kvm_run(out["vcpu"].to_numpy()), "side": out["side"].to_numpy()},
                       "X", PID_VCPU, "kvm_run", lambda r: pd.Series(["outside KVM_RUN"] * len(r)),
                       lambda r: '{"left":"' + r["side"].astype(str) + '"}'))  # fmt: skip
    ent = vr[vr["what"] == "enter"]
    parts.append(_part({"ts": ent["t"].to_numpy(), "tid": tracks.kvm_run(ent["vcpu"].to_numpy()),
                        "side": ent["side"].to_numpy()}, "i", PID_VCPU, "kvm_run",
                       lambda r: "enter KVM_RUN on " + r["side"].astype(str)))  # fmt: skip

    # -- ITS: accept / drop / cmd / gcmd; devices: raises ------------------------------------
    def rows(*kinds: str) -> dict[str, Any]:
        sel = kind.isin(kinds).to_numpy()
        return {"ts": t[sel], "kind": A._info_str(kind[sel]).to_numpy(), "side": side[sel],
                "vcpu": col["vcpu"][sel], "lpi": col["lpi"][sel], "dev": col["device"][sel],
                "ev": col["event"][sel], "icid": col["icid"][sel], "info": info[sel]}  # fmt: skip

    def its_name(r: pd.DataFrame) -> pd.Series:
        k = r["kind"]
        return pd.Series(np.select(
            [k == "accept", k == "drop", k == "cmd"],
            ["accept LPI " + r["lpi"].astype(str), "drop: " + r["info"].astype(str), "cmd " + r["info"].astype(str)],
            "guest wrote " + r["info"].astype(str),
        ))  # fmt: skip

    def its_args(r: pd.DataFrame) -> pd.Series:
        return ('{"side":"' + r["side"] + '","device":' + r["dev"].astype(str) + ',"event":'
                + r["ev"].astype(str) + ',"lpi":' + r["lpi"].astype(str) + ',"vcpu":'
                + r["vcpu"].astype(str) + ',"icid":' + r["icid"].astype(str) + "}")  # fmt: skip

    its = rows("accept", "drop", "cmd", "gcmd")
    parts.append(_part(its | {"tid": TID_ITS}, "i", PID_ITS, "its", its_name, its_args))

    def raise_name(r: pd.DataFrame) -> pd.Series:
        return pd.Series(np.where(r["info"] == "set_pending", "set pending bit LPI " + r["lpi"].astype(str),
                                  r["info"].str.upper() + " dev " + r["dev"].astype(str) + " ev " + r["ev"].astype(str)))  # fmt: skip

    parts.append(_part(rows("raise") | {"tid": TID_DEV}, "i", PID_ITS, "raise", raise_name,
                       lambda r: '{"side":"' + r["side"] + '","device":' + r["dev"].astype(str) + ',"event":'
                       + r["ev"].astype(str) + "}"))  # fmt: skip

    # -- migration: one track per VM incarnation -------------------------------------------
    tid_of = tracks.vm_of()
    st = A.steps(df, migs)
    parts.append(_part({"ts": st["start_ns"], "dur": st["dur_ns"], "tid": st["side"].map(tid_of),
                        "step": st["step"], "mig": st["migration"], "role": st["role"]},
                       "X", PID_MIG, "migration", lambda r: r["step"],
                       lambda r: '{"migration":' + (r["mig"] + 1).astype(str) + ',"role":"' + r["role"] + '"}'))  # fmt: skip
    spans = []
    for m in migs:
        stop = m.stop_ns if m.stop_ns is not None else m.start_ns
        spans.append(("pre-copy", m.start_ns, stop - m.start_ns, tid_of[m.source], m.index))
        if m.stop_ns is not None and m.end_ns is not None:
            spans.append(("downtime", m.stop_ns, m.end_ns - m.stop_ns, tid_of[m.source], m.index))
    sp = pd.DataFrame(spans, columns=["name", "ts", "dur", "tid", "mig"])
    parts.append(_part({c: sp[c].to_numpy() for c in sp.columns}, "X", PID_MIG, "migration",
                       lambda r: r["name"], lambda r: '{"migration":' + (r["mig"] + 1).astype(str) + "}"))  # fmt: skip

    def mig_name(r: pd.DataFrame) -> pd.Series:
        k, i = r["kind"], r["info"]
        return pd.Series(np.select(
            [k == "kvm", k == "migration", k == "quiesce"],
            ["KVM " + i.str.replace(":", " → ", regex=False), "migration " + i,
             np.where(i == "1", "devices quiesced", "devices released")],
            "state snapshot (" + i.str.split(":", n=1).str[0] + ")",
        ))  # fmt: skip

    mr = rows("kvm", "migration", "quiesce", "state")
    mr["tid"] = pd.Series(mr["side"]).map(tid_of).fillna(0).astype(int).to_numpy()
    parts.append(_part(mr, "i", PID_MIG, "migration", mig_name,
                       lambda r: '{"migration":' + (r["icid"] + 1).astype(str) + "}"))  # fmt: skip
    return [p for p in parts if len(p.src)]


def _metadata(run: RunData, tracks: Tracks, migs: list[A.MigInfo]) -> list[str]:
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
    for v in range(run.scenario.vm.vcpus):
        meta += [
            _meta(PID_VCPU, tracks.vcpu(v), "thread_name", f"vCPU {v}"),
            _meta(PID_VCPU, tracks.vcpu(v), "thread_sort_index", 2 * v),
            _meta(PID_VCPU, tracks.kvm_run(v), "thread_name", f"vCPU {v}: outside KVM_RUN"),
            _meta(PID_VCPU, tracks.kvm_run(v), "thread_sort_index", 2 * v + 1),
        ]
    for i, s in enumerate(tracks.sides):
        meta += [_meta(PID_MIG, tracks.vm(s), "thread_name", f"{s} ({_role_words(s, migs)})"),
                 _meta(PID_MIG, tracks.vm(s), "thread_sort_index", i + 1)]  # fmt: skip
    return meta


def event_chunks(run: RunData, chunk: int | None = None) -> Iterator[list[str]]:
    """The events as JSON objects, one per string: the metadata first, then every event in
    time order (slices before instants at one time, longer slices first), ``chunk`` at a
    time."""
    chunk = chunk or CHUNK_EVENTS
    df = run.trace
    migs = A.migrations(df, run.summary, run.scenario)
    side = A._info_str(df["side"])
    sides = sorted(set(side.unique()) | {m.source for m in migs} | {m.destination for m in migs if m.destination},
                   key=lambda s: (len(s), s))  # fmt: skip
    tracks = Tracks(tuple(sides))
    yield _metadata(run, tracks, migs)
    parts = _parts(run, tracks, migs)
    if not parts:
        return
    ts = np.concatenate([p.src["ts"].to_numpy() for p in parts])
    dur = np.concatenate([p.src["dur"].to_numpy() for p in parts])
    starts = np.cumsum([0] + [len(p.src) for p in parts])
    order = np.lexsort((-dur, ts))  # stable: ties keep the parts' order
    del ts, dur
    pool = pa.default_memory_pool()
    for lo in range(0, len(order), chunk):
        g = order[lo : lo + chunk]
        which = np.searchsorted(starts, g, side="right") - 1
        text = np.empty(len(g), dtype=object)
        for i in np.unique(which):
            at = np.flatnonzero(which == i)
            p = parts[i]
            text[at] = _lines(p, p.src.iloc[g[at] - starts[i]]).to_numpy(dtype=object)
        yield text.tolist()
        del text
        pool.release_unused()  # the string operations' Arrow buffers: back to the OS


def trace_events(run: RunData) -> list[str]:
    """Every event as one JSON object per string (metadata first)."""
    return [line for c in event_chunks(run) for line in c]


def _role_words(side: str, migs: list[A.MigInfo]) -> str:
    roles = []
    for m in migs:
        if m.source == side:
            roles.append("source" if len(migs) == 1 else f"source of migration {m.index + 1}")
        if m.destination == side:
            roles.append("destination" if len(migs) == 1 else f"destination of migration {m.index + 1}")
    return ", ".join(roles) or "VM"


def _text(run: RunData) -> Iterator[str]:
    other = json.dumps({"scenario": run.name, "seed": run.summary.get("seed"), "generator": "gicsim"})
    yield '{"displayTimeUnit":"ns","otherData":' + other + ',"traceEvents":[\n'
    first = True
    for c in event_chunks(run):
        if c:
            yield ("" if first else ",\n") + ",\n".join(c)
            first = False
    yield "\n]}\n"


def to_json(run: RunData) -> str:
    """The export as JSON text (the content of ``FILENAME`` uncompressed)."""
    return "".join(_text(run))


def to_gzip(run: RunData, level: int = 3) -> bytes:
    """The export as ``FILENAME`` holds it: gzip with no name and mtime 0, so the same run
    gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as z:
        for s in _text(run):
            z.write(s.encode())
    return buf.getvalue()


def files(run: RunData) -> dict[str, bytes]:
    """What ``--perfetto`` adds to a run or report directory."""
    return {FILENAME: to_gzip(run)}


def write(run: RunData, path: Path) -> None:
    from gicsim.present.output import write_bytes_atomic

    write_bytes_atomic(Path(path), to_gzip(run))
