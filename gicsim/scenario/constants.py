"""Scenario-format constants: ID ranges, step names, drop reasons, statuses and the loader's caps."""

import errno as _errno

LPI_MIN, LPI_MAX = 8192, 0xFFFF
ID_MAX = 0xFFFF  # DeviceID, EventID and ICID: 16 bits each
MAX_VCPUS = 512
MAX_RANGE_LEN = 1 << 20
MAX_NS = (1 << 63) - 1  # traces store int64 nanoseconds

# Resource caps: a scenario asking for more is refused before it runs (one located line per
# cap exceeded) instead of exhausting the host. Measured: about 0.6 KiB of trace and state per
# MSI (4 trace rows: raise, accept, deliver, eoi), so MAX_MSIS is about 6 GiB and 2 minutes.
# The scale benchmark (scenarios/scale-512.yaml: 512 vCPUs, 3,584 devices x 16 events,
# ~1.0 M MSIs) stays well inside every cap.
MAX_MEMORY_MIB = 1 << 20  # guest RAM is sparse: only written pages cost host memory
MAX_MSIS = 10_000_000  # sum over sources of devices x rate_per_s x time, or x len(at_us) x events
MAX_MSI_SOURCES = 65_536  # devices across all `devices` entries (one SimPy process each)
MAX_DEVICE_EVENTS = 1 << 22  # sum over `devices` entries of devices x events
MAX_MAPPED_LPIS = 57_344 + 8_192  # MAPTIs in guest.boot + guest.actions (the LPI space + margin)
MAX_GUEST_OPS = 1_000_000  # ITS commands + property/pending-table writes of boot + actions
MAX_MIGRATIONS = 64  # each migration builds a whole destination VM
MAX_EXPECT_LPIS = 1_000_000  # (LPI, vCPU, side) checks of expect.delivered
MAX_SEED = (1 << 64) - 1
MAX_RETRY = 10_000  # on_ebusy retries
MAX_RATE_PER_S = 1e9  # one MSI per nanosecond per source
MIN_RATE_PER_S = 1e-9  # the period 1e9 / rate stays an int64 of ns (1e18 < MAX_NS)
MAX_DIRTY_PAGES_PER_S = 1e9
MIN_BANDWIDTH_MIB_S = 1e-3  # lower bandwidths overflow the transfer-time arithmetic
MAX_BANDWIDTH_MIB_S = 1e9

SOURCE_STEPS = (
    "stop_vcpus",
    "quiesce_devices",
    "save_pending_tables",
    "save_its_tables",
    "final_memory",
)
DEFAULT_SOURCE_STEPS = SOURCE_STEPS
DEST_STEPS = (
    "memory",
    "redistributors",
    "its_init",
    "gits_cbaser",
    "gits_iidr",
    "gits_regs",
    "gits_creadr",
    "gits_cwriter",
    "gits_baser",
    "its_restore_tables",
    "gits_ctlr",
    "resume",
)
DEFAULT_DEST_STEPS = (
    "memory",
    "redistributors",
    "its_init",
    "gits_cbaser",
    "gits_regs",
    "its_restore_tables",
    "gits_ctlr",
    "resume",
)
GUEST_STEPS = (
    "enable_lpis",
    "disable_lpis",
    "set_pending",
    "mapc",
    "mapd",
    "mapti",
    "map_events",
    "movi",
    "movall",
    "discard",
    "inv",
    "invall",
    "int",
    "clear",
    "sync",
    "its_enable",
    "lpi_config",
    "map_devices",
    "mask",
)
DROP_REASONS = ("its_disabled", "unmapped", "lpis_disabled", "not_restored")
MIGRATION_STATUSES = ("completed", "completed_with_errors", "aborted", "failed", "none")
_ERRNO_NAMES = frozenset(_errno.errorcode.values())


