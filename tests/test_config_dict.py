from dataclasses import dataclass

import pytest

from hyperdas_tl.config_dict import check_known_fields


@dataclass
class Config:
    a: int = 0
    b: int = 0


def test_known_fields_pass():
    check_known_fields(Config, {"a": 1, "b": 2})
    check_known_fields(Config, {})


def test_unknown_fields_are_named_sorted():
    with pytest.raises(ValueError, match=r"^unknown Config fields: \['x', 'y'\]$"):
        check_known_fields(Config, {"y": 1, "a": 1, "x": 2})
    with pytest.raises(ValueError, match=r"^unknown Config fields: x, y$"):
        check_known_fields(Config, {"y": 1, "x": 2}, comma_separated=True)
