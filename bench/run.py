"""gicsim benchmark: ``python bench/run.py [--json] [--quick]``.

Measures, in one process:
 1. a bare SimPy skeleton with gicsim's process structure (bench/skeleton.py), no modelling;
 2. gicsim on the same workload (scenarios/scale-512.yaml shrunk to 64 vCPUs);
 3. the full scale scenario (512 vCPUs, 57,344 LPIs, ~1 M MSIs, a migration): wall, peak RSS;
 4. a 1 M-row trace -> DataFrame -> Parquet;
 5. the kernel backend (``kernel: {backend: linux}``, 6.12) next to the Python model on
    scenarios/clean-migration.yaml and a 10x longer, 4x wider version of it;
 6. ``gicsim hazards`` runs/s: 720 destination orders of scenarios/hazard-small.yaml, -j 2.
Prints events/s for each and the ratio gicsim/skeleton (events/s over events/s).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent

from skeleton import Skeleton  # noqa: E402

from gicsim.judge import oracles  # noqa: E402
from gicsim.judge.trace import records_to_frame  # noqa: E402
from gicsim.scenario import load_scenario, resolved_dict, scenario_from_dict  # noqa: E402
from gicsim.sim.simulation import Simulation, run  # noqa: E402

SCALE = ROOT / "scenarios" / "scale-512.yaml"


def shrunk(n: int) -> dict[str, Any]:
    """scale-512 with n vCPUs and 7n devices (same rates, same per-vCPU load)."""
    d = resolved_dict(load_scenario(SCALE))
    d["name"] = f"scale-{n}"
    d["vm"]["vcpus"] = n
    boot = []
    for b in d["guest"]["boot"]:
        if "mapc" in b and b["mapc"]["icid"] >= n:
            continue
        if "map_devices" in b:
            b["map_devices"]["devices"] = f"0-{7 * n - 1}"
            b["map_devices"]["icid"] = list(range(n))
        if "enable_lpis" in b:
            b["enable_lpis"] = "all"
        boot.append(b)
    d["guest"]["boot"] = boot
    d["devices"][0]["device"] = f"0-{7 * n - 1}"
    d["expect"] = {}
    return d


def run_gicsim(d: dict[str, Any]) -> tuple[dict[str, float], Simulation]:
    sc = scenario_from_dict(d)
    t = time.perf_counter()
    sim = Simulation(sc)
    sim.run()
    wall = time.perf_counter() - t
    return {"events": sim.events, "wall_s": wall, "events_per_s": sim.events / wall}, sim


def skeleton_workload(sim: Simulation) -> dict[str, Any]:
    sc = sim.scenario
    dev = sc.devices[0]
    m = sim.migrations[0]
    t = sc.timing
    boot_cmds = sum(1 for r in sim.trace.rec if r[1] == "cmd")
    return {
        "seed": sc.seed,
        "vcpus": sc.vm.vcpus,
        "devices": len(dev.device),
        "events": len(dev.events),
        "rate_per_s": dev.rate_per_s,
        "start_ns": dev.start_ns,
        "stop_ns": dev.stop_ns,
        "until_ns": sc.until_ns,
        "deliver_ns": t.lpi_delivery_ns,
        "handler_ns": t.handler_ns,
        "cmd_ns": t.its_cmd_ns,
        "boot_commands": boot_cmds,
        "migration_at_ns": m.phases["precopy"]["end_ns"],
        "downtime_ns": m.downtime_ns or 0,
    }


def run_skeleton(w: dict[str, Any]) -> dict[str, float]:
    t = time.perf_counter()
    sk = Skeleton(w)
    events = sk.run()
    wall = time.perf_counter() - t
    return {"events": events, "wall_s": wall, "events_per_s": events / wall}


CLEAN = ROOT / "scenarios" / "clean-migration.yaml"


def backend_workloads() -> dict[str, dict[str, Any]]:
    """clean-migration as shipped, and the same guest 10x longer with 4x the devices
    (the kernel-backend comparison's workloads)."""
    base = resolved_dict(load_scenario(CLEAN))
    big = json.loads(json.dumps(base))
    big["name"] = "clean-migration-x10"
    big["until_us"] = base["until_us"] * 10
    for b in big["guest"]["boot"]:
        if "map_devices" in b:
            b["map_devices"]["devices"] = "1-12"
    big["devices"][0]["device"] = "1-12"
    big["devices"][0]["stop_us"] = big["until_us"] - 500
    big["expect"] = {}
    return {"clean-migration": base, "clean-migration-x10": big}


def kernel_backend_bench(repeat: int = 5, budget_s: float = 2.0) -> dict[str, Any]:
    """Each workload on the Python model and on the 6.12 kernel backend, alternating,
    best of at least ``repeat`` pairs (more, up to 50, while a workload has used less than
    ``budget_s``: a 10 ms run needs many samples on a busy machine): events/s, wall, and
    the wall-time ratio kernel/python. Both must run the same events."""
    from gicsim.linux.errors import KernelRefError
    from gicsim.sim.vm import kernel_library

    out: dict[str, Any] = {}
    for name, d in backend_workloads().items():
        lx = {**d, "kernel": {**d.get("kernel", {}), "backend": "linux"}}
        try:
            kernel_library(scenario_from_dict(lx))
        except KernelRefError as e:
            return {"skipped": str(e)}
        best: dict[str, dict[str, float]] = {}
        spent, n = 0.0, 0
        while n < repeat or (spent < budget_s and n < 50):
            for label, dd in (("python", d), ("linux", lx)):
                r, sim = run_gicsim(dd)
                spent += r["wall_s"]
                if label not in best or r["wall_s"] < best[label]["wall_s"]:
                    best[label] = r
            n += 1
        py, k = best["python"], best["linux"]
        assert py["events"] == k["events"], (name, py["events"], k["events"])
        out[name] = {
            "events": py["events"], "samples": n,
            "python_wall_s": round(py["wall_s"], 4), "python_events_per_s": round(py["events_per_s"]),
            "linux_wall_s": round(k["wall_s"], 4), "linux_events_per_s": round(k["events_per_s"]),
            "linux_over_python_wall": round(k["wall_s"] / py["wall_s"], 2),
        }  # fmt: skip
    return out


def trace_1m() -> float:
    rec = []
    kinds = ("raise", "accept", "deliver", "eoi")
    for i in range(250_000):
        t = i * 1000
        for k in kinds:
            rec.append((t, k, "vm0", i % 512, 8192 + i % 57344, i % 3584, i % 16, -1, "msi" if k != "eoi" else ""))
    t0 = time.perf_counter()
    df = records_to_frame(rec)
    with tempfile.TemporaryDirectory() as tmp:
        df.to_parquet(Path(tmp) / "t.parquet", index=False)
    return time.perf_counter() - t0


HAZARD_STEPS = ["memory", "redistributors", "its_init", "gits_regs", "its_restore_tables", "resume"]


def hazard_bench(jobs: int = 2) -> dict[str, Any]:
    """``gicsim hazards`` throughput: the 720 orders of six destination steps of
    scenarios/hazard-small.yaml, through the sweep machinery with ``jobs`` local workers
    (a fresh store each time: every run runs)."""
    from gicsim.hazards import expand
    from gicsim.hazards.runs import build, hazard_one
    from gicsim.sweeps.runner import execute

    base = resolved_dict(load_scenario(ROOT / "scenarios" / "hazard-small.yaml"))
    base["migration"][0]["destination"]["steps"] = list(HAZARD_STEPS)
    sweep, _ = build(expand(base, {"leave_out": False}))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        execute(sweep, Path(tmp), None, progress=False, jobs=jobs, worker=hazard_one, row=lambda r, s: None)
        wall = time.perf_counter() - t0
    return {"runs": len(sweep.runs), "jobs": jobs, "wall_s": round(wall, 2), "runs_per_s": round(len(sweep.runs) / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="skip the full scale run")
    ap.add_argument("--vcpus", type=int, default=64, help="size of the comparison workload")
    ap.add_argument("--no-kernel", action="store_true", help="skip the kernel-backend comparison")
    ap.add_argument("--kernel-scale", action="store_true",
                    help="also run the full scale scenario on the kernel backend (~1 min)")
    a = ap.parse_args()
    out: dict[str, Any] = {}
    g, sim = run_gicsim(shrunk(a.vcpus))
    sk = run_skeleton(skeleton_workload(sim))
    # run each once more, alternating, and keep the best of two (less noise on 2 cores)
    sk2 = run_skeleton(skeleton_workload(sim))
    g2, _ = run_gicsim(shrunk(a.vcpus))
    sk = max(sk, sk2, key=lambda r: r["events_per_s"])
    g = max(g, g2, key=lambda r: r["events_per_s"])
    out["skeleton_events_per_s"] = round(sk["events_per_s"])
    out["gicsim_events_per_s"] = round(g["events_per_s"])
    out["ratio"] = round(g["events_per_s"] / sk["events_per_s"], 3)
    out["workload"] = {"vcpus": a.vcpus, "gicsim_events": g["events"], "skeleton_events": sk["events"]}
    if not a.quick:
        t0 = time.perf_counter()
        res = run(SCALE)
        out["scale_wall_s"] = round(time.perf_counter() - t0, 2)
        out["scale_sim_wall_s"] = res.summary["wall_s"]
        out["scale_events"] = res.summary["events"]
        out["scale_msis"] = sum(1 for r in res.records if r[1] == "raise")
        out["scale_expect_passed"] = res.summary["expect"]["passed"]
        out["scale_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        t0 = time.perf_counter()
        oracles.judge(res.records, res.scenario.until_ns)
        out["scale_oracle_s"] = round(time.perf_counter() - t0, 2)
    out["trace_1m_s"] = round(trace_1m(), 3)
    hz = hazard_bench()
    out["hazard_runs_per_s"] = hz["runs_per_s"]
    out["hazard_bench"] = hz
    if not a.no_kernel:
        out["kernel_backend"] = kernel_backend_bench()
        if a.kernel_scale and "skipped" not in out["kernel_backend"]:
            d = resolved_dict(load_scenario(SCALE))
            t0 = time.perf_counter()
            res = run({**d, "kernel": {**d["kernel"], "backend": "linux"}})
            out["kernel_backend"]["scale_wall_s"] = round(time.perf_counter() - t0, 2)
            out["kernel_backend"]["scale_events"] = res.summary["events"]
            out["kernel_backend"]["scale_expect_passed"] = res.summary["expect"]["passed"]
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:26} {v}")


if __name__ == "__main__":
    main()
