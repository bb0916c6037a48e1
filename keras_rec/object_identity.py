"""`unique_by_identity`: objects in order, each once, told apart by identity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def unique_by_identity(objects: Iterable[Any]) -> list[Any]:
    """The first occurrence of each object, in order, comparing with `is`.

    Variables and resources compare (or hash) by value or not at all, so a
    set of them cannot tell two apart: this keys on `id`.
    """
    seen, unique = set(), []
    for obj in objects:
        if id(obj) not in seen:
            seen.add(id(obj))
            unique.append(obj)
    return unique
