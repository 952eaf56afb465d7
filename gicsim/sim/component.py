"""A minimal desmod-style component: a dotted scope, a shared env and trace, processes
declared in ``__init__`` and started by the simulation's wiring step."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from gicsim.judge.trace import Trace


class Component:
    base_name = "component"

    def __init__(
        self,
        env: simpy.Environment,
        trace: Trace,
        parent: Component | None = None,
        name: str | None = None,
        index: int | None = None,
    ) -> None:
        self.env = env
        self.trace = trace
        self.parent = parent
        name = name or self.base_name
        if index is not None:
            name = f"{name}{index}"
        self.name = name
        self.scope: str = name if parent is None else f"{parent.scope}.{name}"
        self._processes: list[Callable[[], Generator[Any, Any, Any]]] = []
        self.children: list[Component] = []
        if parent is not None:
            parent.children.append(self)

    def add_process(self, fn: Callable[[], Generator[Any, Any, Any]]) -> None:
        self._processes.append(fn)

    def elaborate(self) -> None:
        """Start this component's processes, then its children's."""
        for fn in self._processes:
            self.env.process(fn())
        for child in self.children:
            child.elaborate()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scope}>"
