"""Kernel variants (SPEC §4): the only switches allowed to change an outcome."""

from __future__ import annotations

from typing import Literal

import attrs

RestoreScan = Literal["full", "head_pointer"]
TranslationCache = Literal["correct", "stale"]


@attrs.frozen(slots=True)
class KernelProfile:
    """Behaviours the history of ``vgic-its.c`` changed; defaults are today's mainline."""

    #: v5 of the 2017 series also synced pending tables when GITS_CTLR was restored.
    pending_sync_on_ctlr: bool = False
    #: since 2020 ``vgic_v3_lpi_sync_pending_status`` clears the consumed RAM bit.
    pending_sync_clears_ram: bool = True
    #: since 6.13 MAPD V=0 and DISCARD zero the DTE/ITE in guest RAM.
    clear_on_unmap: bool = True
    #: ``full``: mainline walk; ``head_pointer``: the 2024 dummy-head proposal (not merged).
    restore_scan: RestoreScan = attrs.field(
        default="full", validator=attrs.validators.in_(("full", "head_pointer"))
    )
    #: ``stale``: the translation cache forgets the invalidations of SPEC §1.
    translation_cache: TranslationCache = attrs.field(
        default="correct", validator=attrs.validators.in_(("correct", "stale"))
    )


MAINLINE = KernelProfile()
