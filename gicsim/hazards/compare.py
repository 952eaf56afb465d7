"""The documented restore orders, as data, next to the ones ``gicsim hazards`` derives.

Three orders are written down by the people who code against the KVM ITS ABI:

* the kernel's own document, ``Documentation/virt/kvm/devices/arm-vgic-its.rst`` section
  "ITS Restore Sequence" (a) memory and vCPUs, (b) redistributors, (c) ITS base address,
  (d) ``GITS_CBASER``, the other ``GITS_*`` but ``GITS_CTLR``, ``RESTORE_TABLES``,
  ``GITS_CTLR``; then vCPUs start) plus its ``KVM_DEV_ARM_VGIC_GRP_ITS_REGS`` notes
  (``GITS_CREADR`` after ``GITS_CBASER`` and before ``GITS_CTLR``; ``GITS_IIDR`` before
  ``RESTORE_TABLES``) — docs/vmm-peers.md §0 K5;
* QEMU: the ITS device is created at machine init (``kvm_arm_its_realize``), RAM is loaded,
  then ``kvm_arm_gicv3_put`` (``MIG_PRI_GICV3``, loaded before the ITS) and
  ``kvm_arm_its_post_load`` (``IIDR``, ``CBASER``, ``CREADR``, ``CWRITER``, ``BASER0..7``,
  ``RESTORE_TABLES``, ``CTLR``) — docs/vmm-peers.md §1.4;
* cloud-hypervisor: memory commands before the state; ``create_interrupt_controller`` (the
  ITS created and its base set, ``KvmGicV3Its::new``) then ``Vgic::set_state``
  (distributor, redistributors, ICC, then the same ITS register sequence as QEMU) —
  docs/vmm-peers.md §2 C1, C8, C10.

Each is a chain of groups of *fine* steps (gicsim's destination step names, with the
``GITS_*`` registers one step each); :func:`project` maps it onto a scenario's steps, where
``gits_regs`` stands for every register step the scenario does not list (it writes them in
QEMU's order: gicsim/sim/migration.py; in the VMMs' chains it comes right after their last
register, where it would find nothing left to write). :func:`compare` puts a ``gicsim hazards`` result
(docs/hazards-json.md) next to them. Nothing here decides a verdict: "necessary" is read off
the clean orders the runs found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import attrs

#: the GITS_* register steps ``gits_regs`` covers when the scenario does not list them
REGISTER_STEPS = ("gits_iidr", "gits_cbaser", "gits_creadr", "gits_cwriter", "gits_baser")


@attrs.frozen
class Documented:
    """One documented restore order: a chain of groups of fine steps (each group after the
    previous one; no order inside a group) with where it is written."""

    key: str
    name: str
    source: str  # file + function / doc section
    groups: tuple[tuple[str, ...], ...]
    #: (fine steps it is about, text): shown when the scenario has a step doing each of them
    notes: tuple[tuple[tuple[str, ...], str], ...] = ()

    def pairs(self) -> list[tuple[str, str]]:
        """Every precedence the chain states (group i before group j > i), fine steps."""
        out = []
        for i, j in combinations(range(len(self.groups)), 2):
            out += [(a, b) for a in self.groups[i] for b in self.groups[j]]
        return out


KERNEL = Documented(
    "kernel",
    "Kernel document",
    "torvalds/linux Documentation/virt/kvm/devices/arm-vgic-its.rst, \"ITS Restore Sequence\" "
    "and KVM_DEV_ARM_VGIC_GRP_ITS_REGS (docs/vmm-peers.md §0 K5)",
    (
        ("memory",),  # a) restore all guest memory and create vcpus
        ("redistributors",),  # b) restore all redistributors
        ("its_init",),  # c) provide the ITS base address
        ("gits_cbaser",),  # d1) GITS_CBASER
        ("gits_iidr", "gits_creadr", "gits_cwriter", "gits_baser", "gits_regs"),  # d2) other GITS_*
        ("its_restore_tables",),  # d3) KVM_DEV_ARM_ITS_RESTORE_TABLES
        ("gits_ctlr",),  # d4) GITS_CTLR
        ("resume",),  # "Then vcpus can be started."
    ),
    ((("gits_cbaser", "gits_creadr"), "Its register notes (CREADR after CBASER and before CTLR, IIDR before "
      "RESTORE_TABLES) are implied by the sequence."),),  # fmt: skip
)
QEMU = Documented(
    "qemu",
    "QEMU",
    "qemu/qemu hw/intc/arm_gicv3_its_kvm.c kvm_arm_its_realize (ITS created at machine init) "
    "and kvm_arm_its_post_load; hw/intc/arm_gicv3_kvm.c kvm_arm_gicv3_put; MIG_PRI_GICV3 > "
    "MIG_PRI_GICV3_ITS (docs/vmm-peers.md §1.4, Q8–Q9)",
    (("its_init",), ("memory",), ("redistributors",), ("gits_iidr",), ("gits_cbaser",),
     ("gits_creadr",), ("gits_cwriter",), ("gits_baser",), ("gits_regs",), ("its_restore_tables",),
     ("gits_ctlr",), ("resume",)),  # fmt: skip
    ((("its_init", "memory"), "The ITS device and its base address are set at machine init, before the "
      "migration stream (RAM) is loaded."),),  # fmt: skip
)
CLOUD_HYPERVISOR = Documented(
    "cloud-hypervisor",
    "cloud-hypervisor",
    "cloud-hypervisor/cloud-hypervisor vmm/src/vm.rs new_from_memory_manager / init_kvm; "
    "hypervisor/src/kvm/aarch64/gic/mod.rs KvmGicV3Its::new and Vgic::set_state "
    "(docs/vmm-peers.md §2 C1, C8, C10)",
    (("memory",), ("its_init",), ("redistributors",), ("gits_iidr",), ("gits_cbaser",),
     ("gits_creadr",), ("gits_cwriter",), ("gits_baser",), ("gits_regs",), ("its_restore_tables",),
     ("gits_ctlr",), ("resume",)),  # fmt: skip
    ((("its_init", "redistributors"), "The interrupt controller (ITS base address included) is created "
      "after the memory and before the redistributor state is set."),),  # fmt: skip
)
DOCUMENTED = (KERNEL, QEMU, CLOUD_HYPERVISOR)
VMMS = (QEMU, CLOUD_HYPERVISOR)


# ========================================================================= projection ====
def step_of(fine: str, steps: Sequence[str]) -> str | None:
    """The scenario step that performs ``fine``: itself when listed; a register step the
    scenario does not list is done by ``gits_regs`` (when listed); else nothing does it."""
    if fine in steps:
        return fine
    if fine in REGISTER_STEPS and "gits_regs" in steps:
        return "gits_regs"
    return None


def project(doc: Documented, steps: Sequence[str]) -> list[list[str]]:
    """``doc``'s chain on the scenario's ``steps``: each fine step replaced by the step that
    performs it; an aggregate (``gits_regs``) stands where the *last* of its registers is
    written (it has restored all of them only then); empty groups dropped."""
    where: dict[str, int] = {}
    for i, group in enumerate(doc.groups):
        for fine in group:
            s = step_of(fine, steps)
            if s is not None:
                where[s] = i  # later groups overwrite: the last position wins
    out: list[list[str]] = []
    for i in range(len(doc.groups)):
        g = [s for s in steps if where.get(s) == i]
        if g:
            out.append(g)
    return out


def projected_pairs(doc: Documented, steps: Sequence[str]) -> list[tuple[str, str]]:
    groups = project(doc, steps)
    out = []
    for i, j in combinations(range(len(groups)), 2):
        out += [(a, b) for a in groups[i] for b in groups[j]]
    return out


def linear(doc: Documented, steps: Sequence[str]) -> list[str] | None:
    """The projected order as one sequence, when every group has one step."""
    groups = project(doc, steps)
    return [g[0] for g in groups] if all(len(g) == 1 for g in groups) else None


def approximations(doc: Documented, steps: Sequence[str]) -> list[str]:
    """Precedences of ``doc`` the projection cannot keep (an aggregate step moved)."""
    kept = set(projected_pairs(doc, steps))
    out = []
    for a, b in doc.pairs():
        sa, sb = step_of(a, steps), step_of(b, steps)
        if sa and sb and sa != sb and (sa, sb) not in kept:
            out.append(f"`{a}` before `{b}` is not kept: `{sa}` runs after `{sb}` here")
    return out


def notes(doc: Documented, steps: Sequence[str]) -> list[str]:
    """``doc``'s notes about steps this scenario has."""
    return [text for about, text in doc.notes if all(step_of(f, steps) for f in about)]


# ========================================================================= comparison ====
def _closure(pairs: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    succ: dict[str, set[str]] = {}
    for a, b in pairs:
        succ.setdefault(a, set()).add(b)
    out: set[tuple[str, str]] = set()
    for a in list(succ):
        seen: set[str] = set()
        stack = list(succ[a])
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                stack += succ.get(x, ())
        out |= {(a, x) for x in seen}
    return out


def explored_orders(result: dict[str, Any]) -> set[tuple[str, ...]] | None:
    """The destination orders the result ran (``None``: every permutation of its steps,
    the space's ``destination_orders: all``), the left-out ones included when listed."""
    space = result.get("space") or {}
    listed = space.get("destination_orders", "all")
    if listed == "all" or listed is None:
        return None
    out = {tuple(o) for o in listed}
    out |= {tuple(c["example_order"]) for c in result.get("classes") or [] if c.get("example_order")}
    return out


def reversed_explored(a: str, b: str, explored: set[tuple[str, ...]] | None) -> bool:
    """Whether some order run has ``b`` before ``a``."""
    if explored is None:
        return True
    return any(a in o and b in o and o.index(b) < o.index(a) for o in explored)


def _witness(a: str, b: str, clean: list[list[str]]) -> list[str] | None:
    """A clean order that has ``b`` before ``a`` (both in it), if any."""
    for o in clean:
        if a in o and b in o and o.index(b) < o.index(a):
            return list(o)
    return None


def violated(order: Sequence[str], constraints: Iterable[Sequence[str]]) -> list[list[str]]:
    """The constraints ``order`` breaks (both steps present, ``after`` before ``before``)."""
    pos = {s: i for i, s in enumerate(order)}
    return [[a, b] for a, b in constraints if a in pos and b in pos and pos[b] < pos[a]]


def _clean(order: list[str] | None, clean: set[tuple[str, ...]], explored: set[tuple[str, ...]] | None,
           steps: Sequence[str]) -> bool | None:  # fmt: skip
    """Whether ``order`` ran clean; ``None`` when it was not run."""
    if order is None:
        return None
    t = tuple(order)
    if t in clean:
        return True
    ran = sorted(t) == sorted(steps) if explored is None else t in explored
    return False if ran else None


def compare(result: dict[str, Any]) -> dict[str, Any]:
    """The derived rules of ``result`` next to the documented orders.

    * ``documented``: per precedence the kernel document states (projected onto the
      scenario's steps), ``necessary`` when orders with it the other way round ran and none
      was clean, ``not needed`` when one was (that clean order is the ``witness``), ``not
      explored`` when no such order ran (a space that lists its orders), ``unknown`` when
      no order was clean; ``class`` is the hazard
      class of transposing the pair in a clean order (the result's ``pairs``), if any.
    * ``undocumented``: derived constraints the document's sequence does not imply.
    * ``vmms``: QEMU's and cloud-hypervisor's orders projected onto the scenario's steps:
      whether they satisfy the derived constraints (those violated listed) and whether that
      exact order ran clean (``None``: it was not run).
    """
    steps = list(result["steps"])
    clean = [list(o) for o in result.get("clean_orders") or []]
    constraints = [tuple(c) for c in result.get("constraints") or []]
    pairs = {(p["before"], p["after"]): p for p in result.get("pairs") or []}
    explored = explored_orders(result)
    doc_pairs = projected_pairs(KERNEL, steps)
    documented = []
    for a, b in doc_pairs:
        w = _witness(a, b, clean) if clean else None
        p = pairs.get((a, b)) or {}
        if not clean:
            status = "unknown"
        elif w:
            status = "not needed"
        else:
            status = "necessary" if reversed_explored(a, b, explored) else "not explored"
        documented.append({
            "before": a, "after": b, "status": status, "witness": w,
            "class": p.get("class") if p.get("hazard") else None,
        })  # fmt: skip
    implied = _closure(doc_pairs)
    undocumented = [list(c) for c in constraints if c not in implied]
    vmms = []
    clean_set = {tuple(o) for o in clean}
    for d in (KERNEL, *VMMS):
        order = linear(d, steps)
        bad = violated(order, constraints) if order else None
        vmms.append({
            "key": d.key, "name": d.name, "source": d.source,
            "order": order, "groups": project(d, steps),
            "satisfies": (bad == []) if order is not None else None,
            "violated": bad,
            "clean": _clean(order, clean_set, explored, steps) if clean else None,
            "notes": notes(d, steps) + approximations(d, steps),
        })  # fmt: skip
    return {
        "steps": steps,
        "clean_orders": len(clean),
        "documented": documented,
        "necessary": sum(1 for x in documented if x["status"] == "necessary"),
        "not_needed": sum(1 for x in documented if x["status"] == "not needed"),
        "not_explored": sum(1 for x in documented if x["status"] == "not explored"),
        "undocumented": undocumented,
        "orders": vmms,
    }
