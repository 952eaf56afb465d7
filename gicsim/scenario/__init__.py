"""Scenarios: the format (docs/scenario-format.md), its schema, limits and loader.

Layer 2 of gicsim (above ``gicsim.kvm``, below the judging layer): plain data, no SimPy.
Modules, bottom to top: ``constants`` (step names, ID ranges, caps), ``errors``,
``timing`` (timing profiles as data, with their sources), ``fields`` (scalar types and ranges),
``limits`` (resource estimates), ``schema`` (the pydantic models), ``yamlpos`` (YAML with
positions), ``messages`` (pydantic errors as ``FILE:LINE:COL`` lines), ``load`` (the public
entry points re-exported here).
"""

from gicsim.scenario.constants import (
    DEFAULT_DEST_STEPS,
    DEFAULT_SOURCE_STEPS,
    DEST_STEPS,
    DROP_REASONS,
    GUEST_STEPS,
    MIGRATION_STATUSES,
    SOURCE_STEPS,
)
from gicsim.scenario.errors import ScenarioError
from gicsim.scenario.fields import After, Compare, RangeError, format_range, parse_range
from gicsim.scenario.load import (
    check_scenario,
    load_scenario,
    load_scenario_text,
    resolved_dict,
    scenario_from_dict,
)
from gicsim.scenario.schema import Action, BootStep, Scenario
from gicsim.scenario.yamlpos import MAX_FILE_BYTES, MAX_NODES

__all__ = [
    "DEFAULT_DEST_STEPS",
    "DEFAULT_SOURCE_STEPS",
    "DEST_STEPS",
    "DROP_REASONS",
    "GUEST_STEPS",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MIGRATION_STATUSES",
    "SOURCE_STEPS",
    "Action",
    "After",
    "BootStep",
    "Compare",
    "RangeError",
    "Scenario",
    "ScenarioError",
    "check_scenario",
    "format_range",
    "load_scenario",
    "load_scenario_text",
    "parse_range",
    "resolved_dict",
    "scenario_from_dict",
]
