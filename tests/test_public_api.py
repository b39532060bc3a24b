"""Each public module's ``__all__`` is exactly what the docs document.

The documented names are read from the Sphinx sources (``docs/*.rst``):
every ``.. autoclass::``/``autofunction``/``autoexception``/``autodata``
directive, under the module that the page's last ``.. module::`` or
``.. currentmodule::`` names. A name exported without documentation, or
documented without being exported, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections import defaultdict
from pathlib import Path

import pytest

import trioserial

DOCS = Path(__file__).parent.parent / "docs"
PUBLIC_MODULES = [
    "trioserial",
    "trioserial.testing",
    "trioserial.anyio",
    "trioserial.jumpstarter",
    "trioserial.transfer",
    "trioserial.anyio_transfer",
]

_MODULE = re.compile(r"^\.\. (?:py:)?(?:module|currentmodule):: +([\w.]+)\s*$")
_OBJECT = re.compile(r"^\.\. (?:auto|py:)?(?:class|function|exception|data):: +([\w.]+)")


def documented_names() -> dict[str, set[str]]:
    """Module name -> the names the docs document at its top level."""
    found: dict[str, set[str]] = defaultdict(set)
    for page in sorted(DOCS.glob("*.rst")):
        module = None  # Sphinx's current module is per page
        for line in page.read_text().splitlines():
            if match := _MODULE.match(line):
                module = match.group(1)
            elif match := _OBJECT.match(line):
                name = match.group(1)
                if "." in name:
                    owner, _, name = name.rpartition(".")
                else:
                    assert module is not None, f"{page.name}: {line!r} before any module"
                    owner = module
                found[owner].add(name)
    return found


def test_the_docs_name_the_modules_this_test_knows() -> None:
    assert set(documented_names()) == set(PUBLIC_MODULES)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_the_documented_surface(name: str) -> None:
    if name == "trioserial.jumpstarter":
        pytest.importorskip("jumpstarter", reason="the jumpstarter extra is not installed")
    module = importlib.import_module(name)
    documented = documented_names()
    # A name that re-exports an object documented under another public module
    # (trioserial.anyio_transfer's errors are trioserial.transfer's) counts as
    # documented: the page says so once, where the object lives.
    aliases = {
        exported
        for exported in set(module.__all__) - documented[name]
        if any(
            exported in names
            and getattr(importlib.import_module(other), exported, None) is getattr(module, exported)
            for other, names in documented.items()
            if other != name and other != "trioserial.jumpstarter"
        )
    }
    assert set(module.__all__) - aliases == documented[name]
    for exported in module.__all__:
        value = getattr(module, exported)
        if inspect.isclass(value) or inspect.isfunction(value):  # ours, not re-exported
            assert value.__module__.startswith("trioserial"), exported


def test_reference_page_reads_as_expected() -> None:
    """The parser above really reads the reference page (a guard for the guard)."""
    names = documented_names()
    assert {"AsyncSerial", "open_serial_port", "UnsupportedURLError"} <= names["trioserial"]
    assert {"open_pty_pair", "FakeModem"} <= names["trioserial.testing"]


def test_errors_are_oserrors_for_pyserial_and_jumpstarter_code() -> None:
    import serial

    for name in ("PortNotFoundError", "PortBusyError", "PortPermissionError"):
        cls = getattr(trioserial, name)
        assert issubclass(cls, serial.SerialException)
        assert issubclass(cls, OSError)
