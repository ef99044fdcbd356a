"""Constrained field types of the configs, and how the command line reads them.

Each type (``PositiveInt``, ``OpenUnitFloat``, ...) is the plain type annotated with the parser
the command line uses for it (a :class:`tyro.constructors.PrimitiveConstructorSpec`), so a
config field declares its constraint once and :mod:`hyperdas_tl.cli` turns the field into an
option that rejects a bad value with one message (``must be a positive integer, got '0'``)
before anything heavy is imported. The configs' ``__post_init__`` still validate values given in
Python.
"""

from collections.abc import Callable
from typing import Annotated, Any

from tyro.constructors import PrimitiveConstructorSpec


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise ValueError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise ValueError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise ValueError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {text!r}")
    return value


def open_unit_float(text: str) -> float:
    value = _float(text)
    if not 0.0 < value < 1.0:
        raise ValueError(f"must be a number in (0, 1), got {text!r}")
    return value


def unit_float(text: str) -> float:
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be a number in [0, 1], got {text!r}")
    return value


def attribute_name(text: str) -> str:
    if not text.strip():
        raise ValueError("attribute names must not be empty")
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"must be a finite number, got {text!r}")
    return value


def _one(parse: Callable[[str], Any], kind: type, metavar: str) -> PrimitiveConstructorSpec:
    return PrimitiveConstructorSpec(
        nargs=1,
        metavar=metavar,
        instance_from_str=lambda args: parse(args[0]),
        is_instance=lambda value: isinstance(value, kind) and not isinstance(value, bool),
        str_from_instance=lambda value: [str(value)],
    )


def one_or_more(
    parse: Callable[[str], Any], metavar: str, choices: tuple[str, ...] | None = None
) -> PrimitiveConstructorSpec:
    """A tuple option that takes at least one value, each read by ``parse``."""
    return PrimitiveConstructorSpec(
        nargs="+",
        metavar=metavar,
        instance_from_str=lambda args: tuple(parse(text) for text in args),
        is_instance=lambda value: isinstance(value, tuple),
        str_from_instance=lambda value: [str(v) for v in value],
        choices=choices,
    )


def none_or_more(parse: Callable[[str], Any], metavar: str) -> PrimitiveConstructorSpec:
    """A tuple-or-None option: ``None`` (the word) or at least one value, each read by
    ``parse`` (tyro's own ``X | None`` does not combine with a ``+`` count)."""
    return PrimitiveConstructorSpec(
        nargs="+",
        metavar=f"{{None}}|{metavar}",
        instance_from_str=lambda args: (
            None if list(args) == ["None"] else tuple(parse(text) for text in args)
        ),
        is_instance=lambda value: value is None or isinstance(value, tuple),
        str_from_instance=lambda value: ["None"] if value is None else [str(v) for v in value],
    )


PositiveInt = Annotated[int, _one(positive_int, int, "INT")]
NonNegativeInt = Annotated[int, _one(non_negative_int, int, "INT")]
PositiveFloat = Annotated[float, _one(positive_float, float, "FLOAT")]
NonNegativeFloat = Annotated[float, _one(non_negative_float, float, "FLOAT")]
OpenUnitFloat = Annotated[float, _one(open_unit_float, float, "FLOAT")]
UnitFloat = Annotated[float, _one(unit_float, float, "FLOAT")]
AttributeNames = Annotated[tuple[str, ...], one_or_more(attribute_name, "NAME")]
AttributeNamesOrNone = Annotated[tuple[str, ...] | None, none_or_more(attribute_name, "NAME")]


def one_of(choices: tuple[str, ...], metavar: str) -> PrimitiveConstructorSpec:
    """A string option limited to ``choices``."""
    return PrimitiveConstructorSpec(
        nargs=1,
        metavar=metavar,
        instance_from_str=lambda args: args[0],
        is_instance=lambda value: value in choices,
        str_from_instance=lambda value: [value],
        choices=choices,
    )
