"""Both front ends' ``open_serial_port`` build what they open through one helper.

The keyword arguments are written out in each signature (users and type
checkers read them) and reach :func:`~trioserial._open.open_request` by
name, so the two signatures and the two value types must name the same
fields with the same defaults: a field added to one and not the others
fails here instead of being dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import trioserial
import trioserial.anyio
from trioserial._open import open_request
from trioserial._options import OpenOptions
from trioserial._settings import Parity, SerialSettings


def keywords(fn: Callable[..., Any]) -> dict[str, object]:
    parameters = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize(
    "front_end", [trioserial.open_serial_port, trioserial.anyio.open_serial_port]
)
def test_the_signature_names_every_field_with_its_default(front_end: Callable[..., Any]) -> None:
    fields = {
        name: field.default
        for cls in (SerialSettings, OpenOptions)
        for name, field in attrs.fields_dict(cls).items()
    }
    assert keywords(front_end) == fields


def test_open_request_validates_settings_then_options_then_the_port() -> None:
    arguments = {**keywords(trioserial.open_serial_port), "parity": "E", "dtr": True}
    url, settings, options = open_request("/dev/ttyS0", arguments)
    assert (url, settings.parity, options.dtr) == ("/dev/ttyS0", Parity.EVEN, True)
    with pytest.raises(ValueError, match="baudrate"):
        open_request("nope://x", {**arguments, "baudrate": -1, "dtr": 1})
    with pytest.raises(TypeError, match="dtr"):
        open_request("nope://x", {**arguments, "dtr": 1})
    with pytest.raises(trioserial.UnsupportedURLError, match="nope"):
        open_request("nope://x", arguments)
