"""The one ``to_dict`` of every faithfulness result: its dataclass fields, JSON-ready."""

from dataclasses import fields, is_dataclass
from typing import Any

from torch import Tensor

NOT_IN_DICT = {"to_dict": False}
"""``field(metadata=NOT_IN_DICT)``: a field ``to_dict`` leaves out (e.g. full ``EvalResult``s or
tensors that a result keeps for the caller but that do not belong in a results file)."""


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts of their fields (in declaration order,
    without the :data:`NOT_IN_DICT` ones), tensors and tuples as lists, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in fields(value)
            if f.metadata.get("to_dict", True)
        }
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class ResultDict:
    """Mixin of the faithfulness result dataclasses: ``to_dict`` = :func:`plain`."""

    def to_dict(self) -> dict[str, Any]:
        return plain(self)
