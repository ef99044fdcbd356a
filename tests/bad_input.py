"""``raises_bad_input``: expect the library's clear ``ValueError`` for bad input."""

import contextlib
import re
from collections.abc import Iterator

import pytest
from jaxtyping import TypeCheckError


@contextlib.contextmanager
def raises_bad_input(match: str) -> Iterator[None]:
    """Expect the library's ``ValueError`` naming the problem (``match``).

    Under the test suite's runtime jaxtyping checks a wrong *shape* can be caught one step
    earlier, by jaxtyping's own ``TypeCheckError``; that is also accepted.
    """
    with pytest.raises((ValueError, TypeCheckError)) as info:
        yield
    if not isinstance(info.value, TypeCheckError):
        assert re.search(match, str(info.value)), f"{match!r} not in {info.value}"
