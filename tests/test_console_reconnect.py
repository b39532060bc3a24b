"""``trioserial console --reconnect`` runs on ``PySerial.run()``: it follows a renumbered adapter.

In process, so udev can be stood in for: the terminal is a pty (the session
puts its slave in raw mode and the test types into and reads from its
master), the adapter is a pty behind a kernel-style name, and a by-id
directory holds its stable link. The tmux tests in ``test_cli.py`` cover
the command itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from console_screen import Screen

import trioserial._supervised
from trioserial import PySerial
from trioserial._console import ConsoleOptions, run_reconnecting_console
from trioserial.testing import PtyDevice


def plug(name: Path, stable: Path) -> PtyDevice:
    """A new adapter under the kernel name *name*, with its by-id link *stable*."""
    master, slave = os.openpty()
    name.symlink_to(os.ttyname(slave))
    os.close(slave)
    stable.symlink_to(name)
    return PtyDevice(master, str(name))


async def test_reconnect_follows_a_renumbered_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    monkeypatch.setattr(trioserial._supervised, "BY_ID_DIR", by_id)
    stable = by_id / "usb-Acme_Board_1234-if00-port0"
    usb0, usb1 = tmp_path / "ttyUSB0", tmp_path / "ttyUSB1"
    term_master, term_slave = os.openpty()
    screen = Screen(PtyDevice(term_master, os.ttyname(term_slave)))
    codes: list[int] = []
    first = plug(usb0, stable)
    async with screen.master, trio.open_nursery() as nursery:

        async def console() -> None:
            codes.append(
                await run_reconnecting_console(
                    PySerial(usb0),
                    ConsoleOptions(reconnect=True),
                    stdin=term_slave,
                    stdout=term_slave,
                )
            )

        nursery.start_soon(console)
        await screen.wait_for(f"connected to {usb0}")
        await screen.type(b"one")
        assert await first.receive_some() == b"one"
        stable.unlink()  # unplugged: udev removes both names ...
        usb0.unlink()
        await first.aclose()  # ... and the adapter goes
        await screen.wait_for(f"waiting for {usb0} to come back")
        async with plug(usb1, stable) as second:  # back, as ttyUSB1
            await screen.wait_for(f"reconnected to {usb0}")
            await screen.type(b"two")
            with trio.fail_after(10):
                assert await second.receive_some() == b"two"
            await screen.type(b"\x1d")  # the exit key
            await screen.wait_for("[trioserial] exit")
    os.close(term_slave)
    assert codes == [0]
