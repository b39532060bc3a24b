"""Public names imported on first use (PEP 562), for ``trioserial`` and ``trioserial.anyio``.

Each of those modules keeps a table of public name -> private module, the
same names under ``if TYPE_CHECKING:`` for type checkers and Sphinx, and
gets its module ``__getattr__`` and ``__dir__`` from :func:`lazy_attributes`.
``tests/test_lazy_import.py`` checks the tables against those imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: dict[str, Any], table: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` for the names in *table*.

    *namespace* is the module's ``globals()``; *table* maps a public name to
    the ``trioserial`` submodule that defines it. A name, once imported, is
    stored in *namespace*, so the next access does not come here.
    """

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"trioserial.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace["__all__"]})

    return __getattr__, __dir__
