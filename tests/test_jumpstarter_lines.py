# Jumpstarter's gRPC stubs declare servicer methods abstract that only its Session
# implements; at run time nothing is abstract.
# mypy: disable-error-code="abstract"
"""The Jumpstarter driver's brief open for ``set_dtr``/``set_rts`` keeps ``disable_hupcl``.

A pty has no modem lines (the set itself fails with ENOTTY) but it does keep
termios, so the ``HUPCL`` flag the brief open leaves behind is what shows
whether its close would drop DTR/RTS on a real port.
"""

from __future__ import annotations

import os
import termios

import pytest

pytest.importorskip("jumpstarter")

import trioserial
from trioserial.jumpstarter import PySerial


@pytest.mark.parametrize("line", ["dtr", "rts"])
def test_brief_open_for_a_line_keeps_disable_hupcl(line: str) -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        attrs = termios.tcgetattr(slave)
        attrs[2] |= termios.HUPCL
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        driver = PySerial(url=path, disable_hupcl=True)
        with pytest.raises(trioserial.UnsupportedOperationError):
            getattr(driver, f"set_{line}")(True)  # no connection: a brief open
        assert not termios.tcgetattr(slave)[2] & termios.HUPCL
    finally:
        os.close(slave)
        os.close(master)
