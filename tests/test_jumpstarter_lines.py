# Jumpstarter's gRPC stubs declare servicer methods abstract that only its Session
# implements; at run time nothing is abstract.
# mypy: disable-error-code="abstract"
"""The Jumpstarter driver's opens and ``close()``: what the brief open keeps, what close covers.

The brief open behind ``set_dtr``/``set_rts`` keeps ``disable_hupcl``.

A pty has no modem lines (the set itself fails with ENOTTY) but it does keep
termios, so the ``HUPCL`` flag the brief open leaves behind is what shows
whether its close would drop DTR/RTS on a real port.
"""

from __future__ import annotations

import os
import termios

import anyio
import anyio.abc
import pytest

pytest.importorskip("jumpstarter")

import trioserial
from trioserial.anyio import AnyioSerialStream, SerialAttribute
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


def test_close_during_a_connect_covers_that_connection_too() -> None:
    """close() promises every fd closed when it returns; a connect() whose open
    was still running then must not come up as a live connection afterwards."""

    class ClosedMidOpen(PySerial):
        async def open_port(self) -> AnyioSerialStream:
            port = await super().open_port()
            self.close()  # the exporter's close() lands while the open runs
            return port

    async def main(path: str) -> None:
        async with ClosedMidOpen(url=path).connect() as stream:
            assert isinstance(stream, anyio.abc.ByteStream)
            assert stream.extra(SerialAttribute.fd) == -1
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()

    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    try:
        anyio.run(main, path, backend="asyncio")
    finally:
        os.close(master)


def test_send_eof_when_close_lands_during_its_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client leaving (send_eof) as the lease ends (close()) is no error, even
    when the close lands at send_eof's own checkpoint."""
    driver = PySerial(url="loop://")
    real_checkpoint = anyio.lowlevel.checkpoint
    armed = False

    async def checkpoint_then_close() -> None:
        nonlocal armed
        await real_checkpoint()
        if armed:
            armed = False
            driver.close()  # the worst moment: after send_eof looked, before it acts

    async def main() -> None:
        nonlocal armed
        async with driver.connect() as stream:
            monkeypatch.setattr(anyio.lowlevel, "checkpoint", checkpoint_then_close)
            armed = True
            await stream.send_eof()
            assert not armed  # the close did land inside send_eof
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()

    anyio.run(main, backend="asyncio")
