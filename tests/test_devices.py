"""Fake devices, driven through real ptys."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from realtime import real_time_limit

from trioserial import AsyncSerial, Expect, open_serial_port
from trioserial.testing import (
    AtModem,
    BootLogDevice,
    EchoDevice,
    FakeDevice,
    LineShell,
    open_fake_device_port,
    open_pty_pair,
)

Connect = Callable[[FakeDevice], Awaitable[AsyncSerial]]


async def read_until(port: AsyncSerial, marker: bytes, *, limit: float = 5) -> bytes:
    """Everything up to and including *marker*, found by the package's Expect.

    Nothing may have arrived past it: the devices send nothing unasked after a
    prompt, so an Expect per call loses nothing.
    """
    ex = Expect(port)
    with real_time_limit(limit):  # wall time: some callers run on the autojump clock
        found = await ex.expect(marker)
    assert ex.buffer == b"", (found, ex.buffer)
    return found.before + found.after


@pytest.fixture
async def connect(no_fd_leaks: None) -> AsyncIterator[Connect]:
    """connect(device) -> an open port whose pty master the device serves."""
    async with trio.open_nursery() as nursery:
        ports: list[AsyncSerial] = []

        async def connect(device: FakeDevice) -> AsyncSerial:
            port, pty = await open_pty_pair()
            ports.append(port)

            async def serve() -> None:
                async with pty:
                    await device.run(pty)

            nursery.start_soon(serve)
            return port

        yield connect
        for port in ports:
            await port.aclose()  # each device sees end of stream and returns


async def test_echo_device(connect: Connect) -> None:
    port = await connect(EchoDevice())
    await port.send_all(b"ping\r\n")
    assert await read_until(port, b"\n") == b"ping\r\n"
    upper = await connect(EchoDevice(transform=bytes.upper))
    await upper.send_all(b"abc")
    assert await read_until(upper, b"C") == b"ABC"


async def test_device_run_returns_quietly_when_the_port_hangs_up() -> None:
    port, pty = await open_pty_pair()
    async with pty:
        await port.send_all(b"x")
        await port.aclose()
        with trio.fail_after(5):
            await EchoDevice().run(pty)  # returns; no exception


async def test_line_shell_commands(connect: Connect) -> None:
    async def slow(args: list[str]) -> str:
        await trio.lowlevel.checkpoint()
        return f"slow {len(args)}\nsecond line"

    shell = LineShell(
        prompt="fake> ",
        banner="FakeShell 1.0",
        commands={"slow": slow, "raw": lambda args: b"\x00\xff", "quiet": lambda args: None},
    )
    port = await connect(shell)
    assert await read_until(port, b"fake> ") == b"FakeShell 1.0\r\nfake> "
    await port.send_all(b"echo hello  world\r")
    assert await read_until(port, b"fake> ") == b"echo hello  world\r\nhello world\r\nfake> "
    await port.send_all(b"slow a b\n")
    assert await read_until(port, b"fake> ") == b"slow a b\r\nslow 2\r\nsecond line\r\nfake> "
    await port.send_all(b"raw\r\n")
    assert await read_until(port, b"fake> ") == b"raw\r\n\x00\xfffake> "
    await port.send_all(b"quiet\r\n")
    assert await read_until(port, b"fake> ") == b"quiet\r\nfake> "
    await port.send_all(b"nope 1\r\n")
    assert await read_until(port, b"fake> ") == b"nope 1\r\nnope: command not found\r\nfake> "
    await port.send_all(b"\r\n")
    assert await read_until(port, b"fake> ") == b"\r\nfake> "


async def test_line_shell_editing_and_type_ahead(connect: Connect) -> None:
    port = await connect(LineShell(echo=False))
    await read_until(port, b"$ ")
    # Backspace and DEL delete (a whole UTF-8 character), Ctrl-C abandons the line.
    await port.send_all("echo hé\x7fi\bo\r".encode())
    assert await read_until(port, b"$ ") == b"ho\r\n$ "
    await port.send_all(b"echo lost\x03")
    assert await read_until(port, b"$ ") == b"^C\r\n$ "
    # Two commands in one write: the second waits, typed ahead, for its turn.
    await port.send_all(b"echo one\recho two\r")
    assert await read_until(port, b"two\r\n$ ") == b"one\r\n$ two\r\n$ "


async def test_backspace_deletes_one_character_in_a_single_byte_encoding(
    connect: Connect,
) -> None:
    # In Latin-1, "±" is the byte 0xB1, which is no UTF-8 continuation byte.
    port = await connect(LineShell(echo=False, encoding="latin-1"))
    await read_until(port, b"$ ")
    await port.send_all("echo a±\x7fb\r".encode("latin-1"))
    assert await read_until(port, b"$ ") == b"ab\r\n$ "


async def test_shell_exit_starts_a_new_session(connect: Connect) -> None:
    port = await connect(LineShell(banner="hi"))
    await read_until(port, b"$ ")
    await port.send_all(b"exit\r")
    assert await read_until(port, b"$ ") == b"exit\r\nhi\r\n$ "


async def test_boot_log_login_and_command(connect: Connect) -> None:
    device = BootLogDevice(
        ["boot line 1", "boot line 2"],
        username="admin",
        password="secret",
        shell=LineShell(prompt="# ", commands={"uname": lambda args: "FakeOS"}),
    )
    port = await connect(device)
    assert await read_until(port, b"login: ") == b"boot line 1\r\nboot line 2\r\nlogin: "
    await port.send_all(b"admin\r")
    assert await read_until(port, b"Password: ") == b"admin\r\nPassword: "
    await port.send_all(b"wrong\r")  # not echoed
    assert await read_until(port, b"login: ") == b"\r\n\r\nLogin incorrect\r\nlogin: "
    await port.send_all(b"admin\rsecret\r")
    assert await read_until(port, b"# ") == b"admin\r\nPassword: \r\n# "
    await port.send_all(b"uname\r")
    assert await read_until(port, b"# ") == b"uname\r\nFakeOS\r\n# "
    await port.send_all(b"exit\r")
    assert await read_until(port, b"login: ") == b"exit\r\nlogin: "


async def test_boot_log_empty_login_prompts_again(connect: Connect) -> None:
    # A harness presses Enter to wake a quiet console and waits for the login
    # prompt; getty answers an empty name with the prompt, not "Password: ".
    port = await connect(BootLogDevice(["booted"]))
    await read_until(port, b"login: ")
    await port.send_all(b"\r")
    assert await read_until(port, b"login: ") == b"\r\nlogin: "
    await port.send_all(b"  \r\n")
    assert await read_until(port, b"login: ") == b"  \r\nlogin: "
    await port.send_all(b"root\r")
    assert await read_until(port, b"Password: ") == b"root\r\nPassword: "


async def test_boot_log_pacing_and_no_password(
    connect: Connect, autojump_clock: trio.testing.MockClock
) -> None:
    port = await connect(BootLogDevice(["a", "b"], line_delay=10.0, password=None))
    start = trio.current_time()
    assert await read_until(port, b"login: ", limit=10) == b"a\r\nb\r\nlogin: "
    assert trio.current_time() - start >= 20.0
    await port.send_all(b"root\r")
    assert await read_until(port, b"# ") == b"root\r\n# "


async def test_at_modem(connect: Connect) -> None:
    port = await connect(AtModem(info="FakeModem 2.0", extended={"+csq": "+CSQ: 20,99"}))
    await port.send_all(b"AT\r")
    assert await read_until(port, b"OK\r\n") == b"AT\r\r\nOK\r\n"
    await port.send_all(b"ati\r")
    assert await read_until(port, b"OK\r\n") == b"ati\r\r\nFakeModem 2.0\r\n\r\nOK\r\n"
    await port.send_all(b"AT+CSQ\r")
    assert await read_until(port, b"OK\r\n") == b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    await port.send_all(b"ATX9\r")
    assert await read_until(port, b"ERROR\r\n") == b"ATX9\r\r\nERROR\r\n"
    await port.send_all(b"AT+FOO\r")
    assert await read_until(port, b"ERROR\r\n") == b"AT+FOO\r\r\nERROR\r\n"
    await port.send_all(b"ATE0\r")
    assert await read_until(port, b"OK\r\n") == b"ATE0\r\r\nOK\r\n"
    await port.send_all(b"AT\r")  # echo is off now
    assert await read_until(port, b"OK\r\n") == b"\r\nOK\r\n"
    await port.send_all(b"garbage\rATV0\r")  # non-AT lines are ignored
    assert await read_until(port, b"0\r") == b"0\r"
    await port.send_all(b"ATE9\r")
    assert await read_until(port, b"4\r") == b"4\r"
    await port.send_all(b"ATZ\r")  # back to echo and verbose
    assert await read_until(port, b"OK\r\n") == b"\r\nOK\r\n"
    await port.send_all(b"AT E1 I\r")
    assert await read_until(port, b"OK\r\n") == b"AT E1 I\r\r\nFakeModem 2.0\r\n\r\nOK\r\n"


async def test_modem_echo_is_on_for_each_connection(connect: Connect) -> None:
    modem = AtModem()
    first = await connect(modem)
    await first.send_all(b"ATE0\r")
    await read_until(first, b"OK\r\n")
    second = await connect(modem)
    await second.send_all(b"AT\r")
    assert await read_until(second, b"OK\r\n") == b"AT\r\r\nOK\r\n"


async def test_fake_device_port_hang_up_and_reappear(no_fd_leaks: None) -> None:
    async with open_fake_device_port(LineShell(banner="hello")) as fake:
        assert fake.plugged_in
        assert fake.generation == 1
        first_pty = fake.pty_path
        assert os.readlink(fake.path) == first_pty
        # The banner was sent before anyone opened the port: it waited in the pty.
        port = await open_serial_port(fake.path)
        async with port:
            assert await read_until(port, b"$ ") == b"hello\r\n$ "
            await port.send_all(b"echo 1\r")
            assert await read_until(port, b"$ ") == b"echo 1\r\n1\r\n$ "
            fake.hang_up()
            fake.hang_up()  # idempotent
            assert not fake.plugged_in
            with pytest.raises(RuntimeError, match="unplugged"):
                fake.pty_path  # noqa: B018
            with trio.fail_after(5):
                assert await port.receive_some() == b""
            with pytest.raises(trio.BrokenResourceError):
                await port.send_all(b"echo 2\r")
        fake.reappear()
        assert fake.generation == 2
        assert os.readlink(fake.path) == fake.pty_path  # (pty numbers may be reused)
        async with await open_serial_port(fake.path) as port:
            assert await read_until(port, b"$ ") == b"hello\r\n$ "
        # Closing our port does not stop a plugged-in device.
        async with await open_serial_port(fake.path) as port:
            await port.send_all(b"echo 3\r")
            assert await read_until(port, b"$ ") == b"echo 3\r\n3\r\n$ "
        path = fake.path
    assert not await trio.Path(path).is_symlink()
    assert not await trio.Path(path).parent.exists()
    # After the block: a clear error, and no pty opened (no_fd_leaks checks).
    with pytest.raises(RuntimeError, match="cannot reappear: its open_fake_device_port"):
        fake.reappear()


async def test_fake_device_port_at_a_chosen_link(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyUSB-fake")
    async with open_fake_device_port(EchoDevice(), link=link) as fake:
        assert fake.path == link
        async with await open_serial_port(link) as port:
            await port.send_all(b"x")
            assert await read_until(port, b"x") == b"x"
    assert not await trio.Path(link).is_symlink()
