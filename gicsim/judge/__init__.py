"""Judging (layer 3, above ``gicsim.scenario``): everything that decides an outcome from a
run's trace alone — the trace schema (``trace``, docs/trace-schema.md), the oracles
(``oracles``: lost, spurious, misrouted, dropped by reason, state match, latency), the
architectural state digests (``state``) and the vectorised analysis the reports and
``explain`` read (``analysis``)."""
