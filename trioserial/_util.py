"""Small helpers shared by every layer (layer 0: no I/O, no trio, no anyio)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import attrs


def check_bool(name: str, value: object) -> bool:
    """*value* if it is a bool, else a :exc:`TypeError` naming *name* (``1`` is no bool here)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def bool_validator(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """:func:`check_bool` as an ``attrs`` validator."""
    check_bool(attribute.name, value)


class ConflictDetector:
    """Detects two tasks using one direction of a stream at once.

    Trio's own ``ConflictDetector`` is private, so we keep this 15-line copy
    of the idea. *error_factory* builds the exception to raise (each front
    end raises its own library's ``BusyResourceError``).
    """

    __slots__ = ("_error_factory", "_held", "_message")

    def __init__(self, message: str, error_factory: type[Exception]) -> None:
        self._message = message
        self._error_factory = error_factory
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise self._error_factory(self._message)
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._held = False
