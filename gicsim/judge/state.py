"""A canonical snapshot of the architectural state of SPEC §1–2, for comparing a source at
pause with a destination at resume (the state-match oracle) and for round-trip tests.

On the kernel backend the same attributes are the kernel's state (``gicsim.linux.backend``:
registers by MMIO, devices/ITEs/collections from the harness's ITS dump, LPI records from
``h_lpi_state``, ``ctlr`` = EnableLPIs), so one snapshot function serves both backends and
``tests/test_backend_parity.py`` sees identical snapshots."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gicsim.kvm.its import VgicIts
from gicsim.kvm.vgic_init import Vgic


def its_state(its: VgicIts) -> dict[str, Any]:
    return {
        "enabled": its.enabled,
        "cbaser": its.cbaser,
        "creadr": its.creadr,
        "cwriter": its.cwriter,
        "baser0": its.baser_device_table,
        "baser1": its.baser_coll_table,
        "abi_rev": its.abi_rev,
        "devices": sorted(
            (d.device_id, d.itt_addr, d.num_eventid_bits) for d in its.device_list
        ),
        "ites": sorted((k[0], k[1], v[0], v[1]) for k, v in its.mappings().items()),
        "collections": sorted(
            (c.collection_id, c.target_addr) for c in its.collection_list.values()
        ),
    }


def vgic_state(vgic: Vgic) -> dict[str, Any]:
    return {
        "propbaser": vgic.propbaser,
        "redists": [(c.pendbaser, c.ctlr) for c in vgic.cpus],
        "lpis": sorted(
            (i.intid, -1 if i.target_vcpu is None else i.target_vcpu, i.enabled, i.priority)
            for i in vgic.lpi_xa.values()
        ),
        "pending": sorted(i.intid for i in vgic.lpi_xa.values() if i.pending_latch),
    }


def architectural_state(vgic: Vgic) -> dict[str, Any]:
    # the vGIC knows its ITSes only as ItsHooks (vgic.py sits below its.py); they are VgicIts
    return {"gic": vgic_state(vgic), "its": [its_state(its) for its in vgic.its_list]}  # type: ignore[arg-type]


def digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
