"""Scenario-format constants: ID ranges, step names, drop reasons, statuses and the loader's caps."""

import errno as _errno

LPI_MIN, LPI_MAX = 8192, 0xFFFF
ID_MAX = 0xFFFF  # DeviceID, EventID and ICID: 16 bits each
MAX_VCPUS = 512
MAX_RANGE_LEN = 1 << 20
MAX_NS = (1 << 63) - 1  # traces store int64 nanoseconds

# Resource caps: a scenario asking for more is refused before it runs (one located line per
# cap exceeded) instead of exhausting the host.
#
# Memory is the trace: one row per event (gicsim.judge.trace), held as a tuple while the run
# goes, then as a DataFrame and Parquet at the end, next to the model state and the summary.
# Measured with `gicsim run` (peak RSS, /usr/bin/time -v, Python 3.11, pandas 2, after the
# round-3 memory work — categorical columns, no fixed-width copies, streamed Perfetto):
# the scale benchmark (scenarios/scale-512.yaml: 512 vCPUs, 57,344 LPIs, 1.0 M MSIs, 3.11 M
# rows, ~45 s of simulation) peaks at 1.42 GB, also with --report --perfetto: ~470 B per row
# including the ~200 MB a run starts with. At the cap, 1.45 M MSIs all delivered on 4 vCPUs
# (clean-migration stretched to 24 s): estimate 5.81 M rows, trace 5.80 M rows, 2.10 GB peak,
# 33 s of simulation; `explain` on that run directory 40 s / 1.53 GB, `report` 39 s / 1.50 GB.
# An MSI is up to 4 rows (raise, accept or drop, deliver, eoi): up to ~1.9 KiB of peak memory.
# So the trace is capped on an estimate of its rows that is an upper bound of the real count
# (gicsim.scenario.limits.trace_rows, ROWS_PER_* below): MAX_TRACE_ROWS rows are at most
# ~2.7 GiB at BYTES_PER_TRACE_ROW. The scale benchmark's estimate is 4.2 M rows.
BYTES_PER_TRACE_ROW = 470  # measured peak RSS per trace row (scale-512), for messages
MAX_TRACE_ROWS = 6_000_000  # estimated rows of a run's trace (~2.7 GiB peak)
ROWS_PER_MSI = 4  # raise, accept (or drop), deliver, eoi
ROWS_PER_COMMAND = 2  # gcmd (the guest wrote it) + cmd (the ITS ran it)
ROWS_PER_MIGRATION = 64  # steps (start/end), KVM calls, migration, quiesce, state rows
ROWS_PER_MIGRATED_VCPU = 2  # the vCPU leaves KVM_RUN on the source, enters on the destination
ROWS_PER_RETRY = 4  # an on_ebusy retry: the failed call again, on each call that can fail
MAX_MEMORY_MIB = 1 << 20  # guest RAM is sparse: only written pages cost host memory
MAX_MSIS = MAX_TRACE_ROWS // ROWS_PER_MSI  # sum over sources of devices x rate_per_s x time, or x len(at_us) x events
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
#: why an MSI/INT was dropped (``summary.json`` ``dropped``): the ITS is disabled, no ITS is
#: at the doorbell (``vgic_msi_to_its`` -EINVAL: the destination ITS has no base yet), the
#: event is not mapped, the target's LPIs are disabled; ``not_restored`` is derived: it hit a
#: destination ITS before that VM resumed (disabled or without a base yet)
DROP_REASONS = ("its_disabled", "no_its", "unmapped", "lpis_disabled", "not_restored")
MIGRATION_STATUSES = ("completed", "completed_with_errors", "aborted", "failed", "none")
_ERRNO_NAMES = frozenset(_errno.errorcode.values())


