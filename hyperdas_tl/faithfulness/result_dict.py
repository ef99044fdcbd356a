"""The one ``to_dict`` of every faithfulness result: its dataclass fields, JSON-ready."""

from dataclasses import fields, is_dataclass
from typing import Any

from torch import Tensor

NOT_IN_DICT = {"to_dict": False}
"""``field(metadata=NOT_IN_DICT)``: a field ``to_dict`` leaves out (e.g. full ``EvalResult``s or
tensors that a result keeps for the caller but that do not belong in a results file)."""


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts of their fields (in declaration order,
    without the :data:`NOT_IN_DICT` ones), tensors and tuples as lists, recursively. A nested
    :class:`ResultDict` that extends ``to_dict`` is converted by its own ``to_dict``."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _nested(getattr(value, f.name))
            for f in fields(value)
            if f.metadata.get("to_dict", True)
        }
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _nested(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nested(item) for item in value]
    return value


def _nested(value: Any) -> Any:
    if isinstance(value, ResultDict) and type(value).to_dict is not ResultDict.to_dict:
        return value.to_dict()
    return plain(value)


class ResultDict:
    """Mixin of the faithfulness result dataclasses: ``to_dict`` = :func:`plain`."""

    def to_dict(self) -> dict[str, Any]:
        return plain(self)
