"""Kernel releases and variants (SPEC §4): the only switches allowed to change an outcome.

A :class:`KernelProfile` names a kernel ``release`` whose defaults set every variant field;
a field given explicitly overrides its release's value (``KernelProfile(release="6.1",
clear_on_unmap=False)``). The releases are the two trees the kernel reference builds
(``gicsim/linux``): ``"6.12"`` = Debian ``linux-source-6.12`` 6.12.117 (the default) and
``"6.1"`` = Debian ``linux-source-6.1`` 6.1.192. Every field's docstring says where its
values come from (file/function of those trees, or the history it models).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

RestoreScan = Literal["full", "head_pointer"]
TranslationCache = Literal["correct", "stale"]
SaveIteNoCollection = Literal["zero", "oops"]
Release = Literal["6.12", "6.1"]

#: the variant fields' values of each shipped release (both read from the fetched trees)
RELEASES: dict[str, dict[str, Any]] = {
    "6.12": dict(
        pending_sync_on_ctlr=False,
        pending_sync_clears_ram=True,
        clear_on_unmap=True,
        restore_scan="full",
        translation_cache="correct",
        mapc_checks_rdbase_first=False,
        save_ite_no_collection="zero",
        baser_write_frees_on_change=True,
    ),
    "6.1": dict(
        pending_sync_on_ctlr=False,
        pending_sync_clears_ram=True,
        clear_on_unmap=True,
        restore_scan="full",
        translation_cache="correct",
        mapc_checks_rdbase_first=True,
        save_ite_no_collection="zero",
        baser_write_frees_on_change=False,
    ),
}
DEFAULT_RELEASE = "6.12"
#: the variant fields (everything but ``release``), in declaration order
VARIANT_FIELDS = tuple(RELEASES[DEFAULT_RELEASE])


@attrs.frozen(slots=True)
class KernelProfile:
    """A kernel release plus overrides. Fields left ``None`` take the release's value
    (resolved at construction, so reading a field always gives a concrete value)."""

    #: ``"6.12"`` (Debian 6.12.117, default) or ``"6.1"`` (Debian 6.1.192).
    release: Release = attrs.field(default=DEFAULT_RELEASE, validator=attrs.validators.in_(tuple(RELEASES)))
    #: v5 of the 2017 ITS migration series (never merged) also synced the pending tables
    #: when GITS_CTLR was restored. No release has it: False in 6.12.117 and 6.1.192
    #: (``vgic_mmio_write_its_ctlr`` of both only processes commands). **Hypothetical when
    #: combined with** ``pending_sync_clears_ram=True``: the v5 series never cleared a
    #: consumed bit (clear-on-consume came with the merged version of the series, Linux 4.12),
    #: so no kernel ever shipped the two together (see :attr:`hypothetical`).
    pending_sync_on_ctlr: bool | None = None
    #: ``vgic_v3_lpi_sync_pending_status`` (``vgic-v3.c``) clears the consumed pending bit in
    #: guest RAM ("clear consumed data": in the function since it came with the 2017 ITS
    #: migration ABI series, Linux 4.12); True in 6.12.117 and 6.1.192.
    pending_sync_clears_ram: bool | None = None
    #: MAPD V=0 and DISCARD zero the DTE/ITE in guest RAM (``vgic_its_cmd_handle_mapd`` /
    #: ``vgic_its_cmd_handle_discard`` end in ``vgic_its_write_entry_lock(.., 0)``); True in
    #: 6.12.117 and 6.1.192 (stable backport); False models older trees.
    clear_on_unmap: bool | None = None
    #: ``full``: ``scan_its_table`` walks every slot (both releases); ``head_pointer``: the 2024
    #: dummy-head proposal (posted, not merged).
    restore_scan: RestoreScan | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("full", "head_pointer")))
    )
    #: ``stale``: the translation cache forgets the invalidations of SPEC §1 (a bug model; no
    #: release). ``correct`` in both releases (6.12: per-ITS xarray ``its->translation_cache``;
    #: 6.1: per-VM LRU list ``dist->lpi_translation_cache``).
    translation_cache: TranslationCache | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("correct", "stale")))
    )
    #: ``vgic_its_cmd_handle_mapc``: 6.1.192 checks ``target_addr >= online_vcpus`` before the
    #: Valid bit, so MAPC V=0 with an out-of-range RDbase fails E_ITS_MAPC_PROCNUM_OOR and
    #: keeps the collection; 6.12.117 looks the vCPU up (``kvm_get_vcpu_by_id``) only for V=1,
    #: so MAPC V=0 unmaps whatever the RDbase says.
    mapc_checks_rdbase_first: bool | None = None
    #: ``vgic_its_save_ite`` for an ITE whose collection MAPC V=0 dropped: ``zero`` writes a
    #: zero ITE (``if (!ite->collection) return vgic_its_write_entry_lock(.., 0ULL, ..)``,
    #: present in 6.12.117 and 6.1.192: the mapping is gone after restore); ``oops``: trees
    #: without that check dereference ``ite->collection`` (NULL): a kernel oops, modelled as
    #: :class:`~gicsim.kvm.errors.KernelOops` (errno name ``OOPS``). No profile default uses it.
    save_ite_no_collection: SaveIteNoCollection | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("zero", "oops")))
    )

    #: ``vgic_mmio_write_its_baser`` (``vgic-its.c``): 6.12.117 frees the device (BASER0)
    #: or collection (BASER1) list, and invalidates the translation cache, whenever the
    #: write changes the register (``if (reg != old)``: "The ITS driver rewrites an unchanged
    #: GITS_BASER<n> on resume"), Valid or not; 6.1.192 frees it only when the written value
    #: has Valid clear (``if (!(reg & GITS_BASER_VALID))``).
    baser_write_frees_on_change: bool | None = None

    def __attrs_post_init__(self) -> None:
        defaults = RELEASES[self.release]
        for name in VARIANT_FIELDS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])

    @property
    def kernel_version(self) -> str:
        return {"6.12": "6.12.117", "6.1": "6.1.192"}[self.release]

    @property
    def hypothetical(self) -> bool:
        """True for a combination no kernel ever shipped: the v5 double sync on GITS_CTLR
        together with clear-on-consume (the v5 series never cleared consumed bits)."""
        return bool(self.pending_sync_on_ctlr and self.pending_sync_clears_ram)

    def overrides(self) -> dict[str, Any]:
        """The variant fields that differ from the release's defaults."""
        d = RELEASES[self.release]
        return {f: getattr(self, f) for f in VARIANT_FIELDS if getattr(self, f) != d[f]}


MAINLINE = KernelProfile()
"""The default release (6.12.117). Kept under this name for the present/ layer."""
