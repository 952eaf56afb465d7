"""Small scenario builders for process-level tests."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "name": "t",
    "seed": 1,
    "until_us": 3000,
    "vm": {"vcpus": 2, "memory_mib": 64},
    "guest": {
        "boot": [
            {"enable_lpis": "all"},
            {"mapc": {"icid": 0, "vcpu": 0}},
            {"mapc": {"icid": 1, "vcpu": 1}},
            {"mapd": {"device": 2, "event_bits": 4}},
            {"map_events": {"device": 2, "events": "0-15", "lpis": "8192-8207", "icid": [0, 1]}},
            {"its_enable": True},
        ]
    },
}


def scenario(**over: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    for k, v in over.items():
        if k == "actions":
            d["guest"]["actions"] = v
        elif k == "boot_extra":
            d["guest"]["boot"] += v
        else:
            d[k] = v
    return d


def rows(res: Any, kind: str, **match: Any) -> list[tuple]:
    idx = {"side": 2, "vcpu": 3, "lpi": 4, "device": 5, "event": 6, "icid": 7, "info": 8}
    return [r for r in res.records if r[1] == kind and all(r[idx[k]] == v for k, v in match.items())]
