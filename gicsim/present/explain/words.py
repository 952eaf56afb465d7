"""Words and numbers of an explanation: times, ID ranges, what each migration step and KVM call does."""


import textwrap
from collections import OrderedDict
from typing import Any

WIDTH = 100

#: what each migration step does (docs/04-restore-ordering.md; QEMU's sequence)
STEP_DOC = {
    "stop_vcpus": "the VMM asks every vCPU to leave KVM_RUN",
    "quiesce_devices": "devices stop sending MSIs and hold them until the VM runs again",
    "save_pending_tables": "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES writes every targeted LPI's "
    "pending_latch into its bit of the target vCPU's pending table in guest RAM",
    "save_its_tables": "KVM_DEV_ARM_ITS_SAVE_TABLES writes the DTEs, ITEs and CTEs into the "
    "device, ITT and collection tables in guest RAM",
    "final_memory": "the VMM reads the GIC and ITS registers through the KVM API and sends the "
    "last dirty pages (with the tables just written)",
    "memory": "the destination loads the final guest memory and device state",
    "redistributors": "GICR_PROPBASER, GICR_PENDBASER and GICR_CTLR of every vCPU are restored",
    "its_init": "KVM_DEV_ARM_VGIC_CTRL_INIT on the destination ITS",
    "gits_cbaser": "GITS_CBASER is restored (a CBASER write resets CREADR and CWRITER to 0)",
    "gits_iidr": "GITS_IIDR (the table ABI revision) is restored",
    "gits_regs": "the GITS_* registers not restored yet, except GITS_CTLR, are restored",
    "gits_creadr": "GITS_CREADR is restored",
    "gits_cwriter": "GITS_CWRITER is restored",
    "gits_baser": "GITS_BASER0..7 (device and collection tables) are restored",
    "its_restore_tables": "KVM_DEV_ARM_ITS_RESTORE_TABLES walks the collection and device tables "
    "in guest RAM and re-creates every LPI, latching its pending bit from the target vCPU's "
    "pending table",
    "gits_ctlr": "GITS_CTLR (Enable) is restored; enabling the ITS runs any command queued "
    "between CREADR and CWRITER",
    "resume": "the vCPUs re-enter KVM_RUN; held MSIs are sent",
}
CALL_DOC = {
    "SAVE_PENDING_TABLES": "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES",
    "ITS_SAVE_TABLES": "KVM_DEV_ARM_ITS_SAVE_TABLES",
    "ITS_RESTORE_TABLES": "KVM_DEV_ARM_ITS_RESTORE_TABLES",
    "ITS_CTRL_INIT": "KVM_DEV_ARM_VGIC_CTRL_INIT (ITS)",
    "ITS_REGS_GET": "reading the GITS_* registers (KVM_DEV_ARM_VGIC_GRP_ITS_REGS)",
    "REDIST_REGS_GET": "reading the redistributor registers (KVM_DEV_ARM_VGIC_GRP_REDIST_REGS)",
    "REDIST_REGS_SET": "writing the redistributor registers (KVM_DEV_ARM_VGIC_GRP_REDIST_REGS)",
}
VARIANT_DOC = {
    "pending_sync_on_ctlr": "restoring GITS_CTLR also re-reads every LPI's pending bit from the "
    "pending tables and overwrites pending_latch with it (the v5 series of 2017)",
    "pending_sync_clears_ram": "creating an LPI latches its pending bit but leaves the consumed "
    "bit set in guest RAM (as the never-merged v5 series of 2017 did; merged kernels clear it since Linux 4.12)",
    "clear_on_unmap": "MAPD V=0 and DISCARD leave the stale DTE/ITE in guest RAM (older trees; 6.12.117 and 6.1.192 zero it)",
    "restore_scan": "the 2024 dummy-head proposal: save writes invalid head entries whose next "
    "field points at the first valid one, and restore follows them",
    "translation_cache": "the MSI translation cache forgets its invalidations (DISCARD, MAPD "
    "V=0, MOVI, MOVALL, ...), so a cached (DeviceID, EventID) keeps hitting the old LPI",
}


def T(ns: int | float | None) -> str:
    return "?" if ns is None else f"{ns / 1000:,.3f} µs"


def ids(xs: Any) -> str:
    """Compress sorted integers into 'a-b, c' runs."""
    v = sorted({int(x) for x in xs})
    if not v:
        return "none"
    out = []
    start = prev = v[0]
    for x in v[1:]:
        if x == prev + 1:
            prev = x
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = x
    out.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(out)


def ids_short(xs: Any, runs: int = 8) -> str:
    """``ids`` cut after ``runs`` runs: ``8192, 8197-8215, … (20,700 in all)``."""
    v = sorted({int(x) for x in xs})
    full = ids(v)
    parts = full.split(", ")
    return full if len(parts) <= runs else ", ".join(parts[:runs]) + f", … ({len(v):,} in all)"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def counts(names: list[str]) -> str:
    c: OrderedDict[str, int] = OrderedDict()
    for n in names:
        c[n] = c.get(n, 0) + 1
    return ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in c.items())



def _wrap(text: str, indent: int = 0, hang: int = 2) -> list[str]:
    pre = " " * (4 * indent)
    return textwrap.wrap(text, WIDTH, initial_indent=pre, subsequent_indent=pre + " " * hang,
                         break_on_hyphens=False, break_long_words=False) or [""]  # fmt: skip


