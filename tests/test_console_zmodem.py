"""``trioserial console`` and a device-side ``sz``/``rz`` (lrzsz on a socat pty pair).

In process: the terminal is a pty (the session puts its slave in raw mode;
the test types into and reads from its master), the port is end ``a`` of
the cable and lrzsz runs on end ``b``, as it would on the device's console.
The test also holds end ``b`` open, as the device's shell would: after the
transfer it reads what the console's keys send and writes the prompt.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from console_screen import Screen
from lrzsz_peers import PtyCable, lrzsz, pty_cable
from test_cli import Terminal, needs_tmux, terminal

from trioserial import open_serial_port
from trioserial._console import ConsoleOptions, run_console
from trioserial._console_zmodem import ZmodemOptions
from trioserial.testing import PtyDevice

# Real lrzsz peers and whole transfers (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

__all__ = ["pty_cable", "terminal"]  # fixtures


@attrs.define
class Console:
    screen: Screen
    device: trio.lowlevel.FdStream
    codes: list[int]

    async def device_reads(self, expected: bytes) -> None:
        """Wait until what the console sent to the device ends with *expected*."""
        got = b""
        with trio.fail_after(10):
            while not got.endswith(expected):
                got += await self.device.receive_some()


@asynccontextmanager
async def console(cable: PtyCable, zmodem: ZmodemOptions) -> AsyncIterator[Console]:
    """``trioserial console`` on the cable's ``a`` end; the exit key at the end."""
    term_master, term_slave = os.openpty()
    screen = Screen(PtyDevice(term_master, os.ttyname(term_slave)))
    codes: list[int] = []
    device = trio.lowlevel.FdStream(os.open(cable.b, os.O_RDWR | os.O_NOCTTY))
    try:
        async with screen.master, device, trio.open_nursery() as nursery:
            port = await open_serial_port(cable.a)

            async def run() -> None:
                options = ConsoleOptions(zmodem=zmodem)
                codes.append(
                    await run_console(port, cable.a, options, stdin=term_slave, stdout=term_slave)
                )

            nursery.start_soon(run)
            await screen.wait_for(f"connected to {cable.a}")
            yield Console(screen, device, codes)
            await screen.type(b"\x1d")
            await screen.wait_for("[trioserial] exit")
    finally:
        os.close(term_slave)
    assert codes == [0]


async def still_works(session: Console) -> None:
    """After a transfer: the device's output is shown, keys reach the device."""
    await session.device.send_all(b"\r\nroot@board:~# ")
    await session.screen.wait_for("root@board:~# ")
    await session.screen.type(b"uptime\r")
    await session.device_reads(b"uptime\r")


async def test_device_sz_lands_in_the_receive_dir(pty_cable: PtyCable, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096 + b"\x18\x11\x13**\x18B00"  # 1 MiB, and a start inside
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "fw.bin").write_bytes(data)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with trio.fail_after(120):
        async with console(pty_cable, ZmodemOptions(directory=inbox)) as session:
            async with lrzsz(pty_cable, "sz", "fw.bin", cwd=tmp_path / "dev") as sz:
                await session.screen.wait_for(f"receiving into {inbox}/")
                await session.screen.wait_for(f"zmodem: received fw.bin into {inbox}/")
                assert await sz.wait() == 0, sz.output()
            # The progress line, from trioserial send/receive's display:
            assert b"fw.bin: 1048585 bytes in" in session.screen.text
            await still_works(session)
    assert (inbox / "fw.bin").read_bytes() == data


async def test_device_rz_gets_the_send_files(pty_cable: PtyCable, tmp_path: Path) -> None:
    sources = []
    for name, content in {"a.txt": b"first\n", "b.bin": os.urandom(200_000)}.items():
        path = tmp_path / name
        path.write_bytes(content)
        sources.append(path)
    dev = tmp_path / "dev"
    with trio.fail_after(120):
        async with console(pty_cable, ZmodemOptions(send=tuple(sources))) as session:
            async with lrzsz(pty_cable, "rz", cwd=dev) as rz:
                await session.screen.wait_for("sending a.txt, b.bin (Ctrl-C cancels)")
                await session.screen.wait_for("zmodem: sent a.txt, b.bin")
                assert await rz.wait() == 0, rz.output()
            await still_works(session)
    for path in sources:
        assert (dev / path.name).read_bytes() == path.read_bytes()


async def test_device_rz_without_send_files_is_cancelled(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    with trio.fail_after(60):
        async with console(pty_cable, ZmodemOptions()) as session:
            async with lrzsz(pty_cable, "rz", cwd=tmp_path / "dev") as rz:
                await session.screen.wait_for("no file was given (--send FILE): cancelled it")
                assert await rz.wait() != 0  # rz was told, and gave up
            await still_works(session)
    assert list((tmp_path / "dev").iterdir()) == []


@pytest.mark.parametrize("key", [b"\x03", b"\x1d"], ids=["ctrl-c", "exit-key"])
async def test_a_key_cancels_the_transfer_and_the_console_stays(
    pty_cable: PtyCable, tmp_path: Path, key: bytes
) -> None:
    # Large enough that it is still running when the first progress line
    # shows (the pty pair moves tens of MB/s); sparse, so cheap to make.
    (tmp_path / "dev").mkdir()
    with (tmp_path / "dev" / "big.bin").open("wb") as big:
        big.truncate(256 << 20)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with trio.fail_after(120):
        async with console(pty_cable, ZmodemOptions(directory=inbox)) as session:
            async with lrzsz(pty_cable, "sz", "big.bin", cwd=tmp_path / "dev") as sz:
                await session.screen.wait_for("big.bin [")  # the progress bar is drawn
                await session.screen.type(key)
                await session.screen.wait_for("zmodem: receive cancelled (the device was told)")
                # sz stops when it reads the CANs (it never exits 0 here). lrzsz can
                # miss them while its own writes are blocked (about one run in two
                # under load; see docs/transfer.rst) and then streams on to its
                # timeouts: the lrzsz context kills it. That the abort sequence
                # reaches a receiver is proven in tests/test_transfer.py.
                with trio.move_on_after(10):
                    assert await sz.process.wait() != 0, sz.output()
            await still_works(session)
    # What was received stays as a partial file, short of the whole.
    (part,) = inbox.iterdir()
    assert part.name == "big.bin.part"
    assert part.stat().st_size < 256 << 20


@needs_tmux
async def test_the_command_in_a_real_terminal(
    pty_cable: PtyCable, tmp_path: Path, terminal: Terminal
) -> None:
    """``trioserial console --receive-dir DIR --send FILE`` in tmux: both ways, then exit."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "log.txt").write_bytes(b"from the device\n" * 1000)
    (tmp_path / "up.bin").write_bytes(bytes(range(256)) * 100)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with trio.fail_after(120):
        await terminal.run_console(
            pty_cable.a, "--receive-dir", str(inbox), "--send", str(tmp_path / "up.bin")
        )
        await terminal.wait_for("exit with Ctrl-]")
        async with lrzsz(pty_cable, "sz", "log.txt", cwd=tmp_path / "dev") as sz:
            await terminal.wait_for("zmodem: received log.txt")
            assert await sz.wait() == 0, sz.output()
        async with lrzsz(pty_cable, "rz", cwd=tmp_path / "dev") as rz:
            await terminal.wait_for("zmodem: sent up.bin")
            assert await rz.wait() == 0, rz.output()
        await terminal.keys("C-]")
        screen = await terminal.finished(0)
    assert "log.txt: 16000 bytes in" in screen  # the progress line's last state
    assert (inbox / "log.txt").read_bytes() == b"from the device\n" * 1000
    assert (tmp_path / "dev" / "up.bin").read_bytes() == bytes(range(256)) * 100


async def test_a_failed_start_is_reported_once_per_header(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    """The receive directory is gone: said, not retried on the same header, console goes on."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "x.txt").write_bytes(b"x")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with trio.fail_after(60):
        async with console(pty_cable, ZmodemOptions(directory=inbox)) as session:
            inbox.rmdir()
            async with lrzsz(pty_cable, "sz", "x.txt", cwd=tmp_path / "dev"):
                await session.screen.wait_for("zmodem: receive failed: cannot receive into")
            await still_works(session)
    # One header, one attempt: sz's first ZRQINIT (it repeats it only seconds later).
    assert session.screen.text.count(b"receive failed") == 1
