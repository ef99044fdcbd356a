"""The check every config's ``from_dict`` makes before building the dataclass: no key that is
not one of its fields (a typo in a saved or hand-written config is an error, not ignored)."""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def check_known_fields(
    cls: type, data: Mapping[str, Any], *, comma_separated: bool = False
) -> None:
    """Raise ``ValueError("unknown <cls> fields: ['a', 'b']")`` (``"...: a, b"`` with
    ``comma_separated``) when ``data`` has keys that are not fields of the dataclass ``cls``."""
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        listed = ", ".join(unknown) if comma_separated else str(unknown)
        raise ValueError(f"unknown {cls.__name__} fields: {listed}")
