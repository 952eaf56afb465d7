"""The base of every scenario model: frozen, strict about keys, ``None`` left out of dumps."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_serializer


class _Model(BaseModel):
    """Frozen, strict about keys; ``None`` values are left out of dumps (they are defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
        revalidate_instances="always",
    )
    _keep_none: ClassVar[frozenset[str]] = frozenset()
    _dump_first: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: Any) -> Any:
        d = handler(self)
        if isinstance(d, dict):
            d = {k: v for k, v in d.items() if v is not None or k in self._keep_none}
            if self._dump_first:
                first = {k: d.pop(k) for k in self._dump_first if k in d}
                d = {**first, **d}
        return d


def _put(model: BaseModel, **values: Any) -> None:
    """Fill defaults into a model being validated (models are frozen)."""
    for k, v in values.items():
        object.__setattr__(model, k, v)
