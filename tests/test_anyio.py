"""The anyio front end, every scenario on both backends, on real ptys.

Tests are sync functions calling :func:`anyio.run` per backend (see
``anyio_helpers`` for why not the anyio pytest plugin).
"""

from __future__ import annotations

import ast
import errno
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import attrs
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio_helpers import BACKENDS, clog, pending, pty_pair, run, wait_until

import trioserial
from trioserial import ModemLines, SerialSettings, UnsupportedOperationError
from trioserial._port import TtyPort
from trioserial._termios import get_baudrate
from trioserial.anyio import AnyioSerialStream, SerialAttribute, open_serial_port


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_module_never_imports_trio() -> None:
    source = Path(trioserial.__file__).with_name("anyio.py").read_text()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        assert not any(n == "trio" or n.startswith(("trio.", "_stream")) for n in names)


# ------------------------------------------------------------------ contract


def test_round_trip_both_ways(backend: str, no_fd_leaks: None) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await port.send(b"ping\xff\x00")
            assert await device.receive() == b"ping\xff\x00"
            await device.send(bytearray(b"pong"))
            assert await port.receive() == b"pong"
            await port.send(memoryview(b"abcdef")[1:4])
            assert await device.receive() == b"bcd"
            stats = port.statistics()
            assert (stats.bytes_sent, stats.bytes_received) == (9, 4)

    run(backend, main)


def test_buffered_receive_until_and_exactly(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            buffered = BufferedByteReceiveStream(port)
            await device.send(b"hello\r\nworld\r\n\x01\x02\x03\x04tail")
            assert await buffered.receive_until(b"\r\n", 100) == b"hello"
            assert await buffered.receive_until(b"\r\n", 100) == b"world"
            assert await buffered.receive_exactly(4) == b"\x01\x02\x03\x04"
            assert await buffered.receive_exactly(4) == b"tail"

    run(backend, main)


def test_receive_respects_max_bytes_and_checks_it(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.send(b"12345")
            await wait_until(lambda: pending(port) == 5)
            assert await port.receive(2) == b"12"
            assert await port.receive(10) == b"345"
            with pytest.raises(ValueError, match="max_bytes must be an int >= 1"):
                await port.receive(0)
            with pytest.raises(TypeError, match=r"got 1\.5"):
                await port.receive(1.5)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="got str: encode it"):
                await port.send("text")  # type: ignore[arg-type]

    run(backend, main)


def test_send_eof_is_local_and_receiving_goes_on(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await port.send_eof()
            await port.send_eof()  # idempotent
            with pytest.raises(anyio.ClosedResourceError, match="after sending EOF"):
                await port.send(b"x")
            await device.send(b"still here")
            assert await port.receive() == b"still here"
            assert not port.closed

    run(backend, main)


def test_closed_port_raises_closed_and_aclose_is_idempotent(
    backend: str, no_fd_leaks: None
) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _device):
            await port.aclose()
            await port.aclose()
            assert port.closed
            assert port.fileno() == -1
            assert port.extra(SerialAttribute.fd) == -1
            for call in (port.send(b""), port.receive(), port.send_eof()):
                with pytest.raises(anyio.ClosedResourceError, match="already closed"):
                    await call
            with pytest.raises(anyio.ClosedResourceError):
                port.dtr = True
            with pytest.raises(anyio.ClosedResourceError):
                await port.reconfigure(baudrate=9600)

    run(backend, main)


def test_typed_attributes(backend: str) -> None:
    async def main() -> None:
        async with pty_pair(baudrate=9600) as (port, _device):
            assert port.extra(SerialAttribute.port) == port.port
            assert port.extra(SerialAttribute.port).startswith("/dev/pts/")
            assert port.extra(SerialAttribute.fd) == port.fileno() >= 0
            assert port.extra(SerialAttribute.settings) == SerialSettings(baudrate=9600)
            assert port.extra(SerialAttribute.transport) == "tty"
            with pytest.raises(anyio.TypedAttributeLookupError):
                port.extra(anyio.abc.SocketAttribute.family)
            assert port.extra(anyio.abc.SocketAttribute.family, None) is None
            assert "9600 8N1" in repr(port)

    run(backend, main)


def test_async_for_ends_at_hangup(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.send(b"abc")
            chunks = []
            async for chunk in port:
                chunks.append(chunk)
                if b"".join(chunks) == b"abc":
                    await device.aclose()
            assert b"".join(chunks) == b"abc"

    run(backend, main)


# ----------------------------------------------------------- errors and hangup


def test_hangup_is_end_of_stream_then_broken_on_send(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.aclose()
            with pytest.raises(anyio.EndOfStream, match="hung up"):
                await port.receive()
            with pytest.raises(anyio.EndOfStream):  # and again: never b""
                await port.receive()
            with pytest.raises(anyio.BrokenResourceError, match="failed") as info:
                await port.send(b"x")
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.__cause__.errno == errno.EIO

    run(backend, main)


def test_hangup_wakes_a_blocked_receive(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device), anyio.create_task_group() as tg:
            done = anyio.Event()

            async def reader() -> None:
                with pytest.raises(anyio.EndOfStream):
                    await port.receive()
                done.set()

            tg.start_soon(reader)
            await wait_until(lambda: port.statistics().tasks_waiting_receive == 1)
            await device.aclose()
            await done.wait()

    run(backend, main)


def test_open_errors(backend: str, tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(trioserial.PortNotFoundError, match="cannot open '/dev/nope'"):
            await open_serial_port("/dev/nope")
        with pytest.raises(ValueError, match="baudrate must be between 1"):
            await open_serial_port("/dev/nope", baudrate=0)
        with pytest.raises(trioserial.NotASerialPortError):
            await open_serial_port(tmp_path)
        with pytest.raises(trioserial.UnsupportedURLError, match="unsupported URL scheme"):
            await open_serial_port("nope://x")
        async with pty_pair() as (port, _device):
            with pytest.raises(trioserial.PortBusyError, match="busy"):
                await open_serial_port(port.port)

    run(backend, main)


# ------------------------------------------------------ close while blocked, busy


def test_close_wakes_blocked_receive_and_send(backend: str, no_fd_leaks: None) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _device):
            await clog(port)
            woken = []

            async def blocked(call: str) -> None:
                with pytest.raises(anyio.ClosedResourceError, match="closed"):
                    await (port.send(b"x" * 100) if call == "send" else port.receive())
                woken.append(call)

            async with anyio.create_task_group() as tg:
                tg.start_soon(blocked, "send")
                tg.start_soon(blocked, "receive")
                await wait_until(
                    lambda: (
                        port.statistics().tasks_waiting_receive == 1
                        and port.statistics().tasks_waiting_send == 1
                    )
                )
                port.close()
            assert sorted(woken) == ["receive", "send"]

    run(backend, main)


def test_concurrent_use_is_busy(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _device):
            await clog(port)
            async with anyio.create_task_group() as tg:
                tg.start_soon(port.receive)
                tg.start_soon(port.send, b"x")
                await wait_until(
                    lambda: (
                        port.statistics().tasks_waiting_receive == 1
                        and port.statistics().tasks_waiting_send == 1
                    )
                )
                with pytest.raises(anyio.BusyResourceError, match="for receive"):
                    await port.receive()
                with pytest.raises(anyio.BusyResourceError, match="for send"):
                    await port.send(b"y")
                with pytest.raises(anyio.BusyResourceError, match="for send"):
                    await port.send_eof()
                tg.cancel_scope.cancel()

    run(backend, main)


# -------------------------------------------------------------- cancellation


def test_receive_is_a_checkpoint_and_a_cancelled_one_consumed_nothing(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.send(b"kept")
            with anyio.CancelScope() as scope:
                scope.cancel()
                await port.receive()
            assert scope.cancelled_caught
            assert await port.receive() == b"kept"

    run(backend, main)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_cancellation_loses_and_duplicates_nothing(backend: str, seed: int) -> None:
    """The device streams a known pattern while receives are cancelled at
    random points (before the data arrives, while waiting, as it wakes):
    every byte arrives exactly once, in order."""
    total = 500_000
    pattern = bytes(i % 251 for i in range(total))

    async def main() -> None:
        rng = random.Random(seed)
        cancelled = completed = cancelled_waiting = 0
        got = bytearray()

        async def cancel_after(scope: anyio.CancelScope, checkpoints: int, round: int) -> None:
            nonlocal cancelled_waiting
            for _ in range(checkpoints):
                await anyio.lowlevel.checkpoint()
            if round == completed + cancelled:  # that receive is still running
                cancelled_waiting += port.statistics().tasks_waiting_receive
            scope.cancel()

        async def feed(device: AnyioSerialStream) -> None:
            view = memoryview(pattern)
            start = 0
            while start < total:
                size = rng.choice([1, 100, 3000])
                await device.send(view[start : start + size])
                start += size
                for _ in range(rng.randrange(3)):
                    await anyio.lowlevel.checkpoint()

        async with pty_pair() as (port, device), anyio.create_task_group() as tg:
            tg.start_soon(feed, device)
            while len(got) < total:
                with anyio.CancelScope() as scope:
                    if rng.random() < 0.1:
                        scope.cancel()  # already cancelled when receive starts
                    else:
                        tg.start_soon(cancel_after, scope, rng.randrange(8), completed + cancelled)
                    got += await port.receive(rng.choice([1, 13, 512, 4096, 65536]))
                    completed += 1
                if scope.cancelled_caught:
                    cancelled += 1
        assert got == pattern
        assert cancelled > 10
        assert cancelled_waiting > 10
        assert completed > 10
        assert port.statistics().bytes_received == total

    run(backend, main)


def test_cancelled_send_sent_exactly_a_prefix(backend: str) -> None:
    async def main() -> None:
        payload = bytes(i % 253 for i in range(300_000))
        async with pty_pair() as (port, device):
            with anyio.CancelScope() as scope:

                async def cancel_when_blocked() -> None:
                    await wait_until(lambda: port.statistics().tasks_waiting_send == 1)
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_when_blocked)
                    await port.send(payload)
            assert scope.cancelled_caught
            sent = port.statistics().bytes_sent
            assert 0 < sent < len(payload)
            got = bytearray()
            while len(got) < sent:
                got += await device.receive()
            assert got == payload[:sent]

    run(backend, main)


def test_cancelled_aclose_still_closes(backend: str, no_fd_leaks: None) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _device):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await port.aclose()
            assert scope.cancelled_caught
            assert port.closed

    run(backend, main)


# ------------------------------------------------------------------ control


def test_reconfigure_on_a_pty(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.send(b"buffered")
            await wait_until(lambda: pending(port) == 8)
            await port.reconfigure(baudrate=250_000, xonxoff=True)
            assert get_baudrate(port.fileno()) == 250_000
            assert port.settings == SerialSettings(baudrate=250_000, xonxoff=True)
            with pytest.raises(ValueError, match="bytesize must be 5, 6, 7 or 8, got 9"):
                await port.reconfigure(bytesize=9)
            assert port.settings.baudrate == 250_000  # the rejected change did nothing
            assert await port.receive() == b"buffered"  # input kept

    run(backend, main)


def test_pty_has_no_modem_lines(backend: str) -> None:
    """A pty answers modem-line ioctls with ENOTTY: one documented error type."""

    async def main() -> None:
        async with pty_pair() as (port, _device):
            with pytest.raises(UnsupportedOperationError):
                port.cts  # noqa: B018
            with pytest.raises(UnsupportedOperationError):
                port.dtr = False
            with pytest.raises(TypeError, match="dtr must be True or False, got 1"):
                port.dtr = 1  # type: ignore[assignment]

    run(backend, main)


class SeamPort(TtyPort):
    """A real pty port whose line primitives are a model: a pty has no modem
    lines, no break and no output queue to watch, so the logic above those
    ioctls is tested here and the ioctls themselves in the core's tests."""

    lines = ModemLines()
    queue: list[int]
    breaks: list[bool]
    break_started: anyio.Event | None = None

    def modem_lines(self) -> ModemLines:
        return self.lines

    def set_dtr(self, value: bool) -> None:
        self.lines = attrs.evolve(self.lines, dtr=value)

    def set_rts(self, value: bool) -> None:
        self.lines = attrs.evolve(self.lines, rts=value)

    def set_break(self, value: bool) -> None:
        self.breaks.append(value)
        if value and self.break_started is not None:
            self.break_started.set()

    def out_waiting(self) -> int:
        return self.queue.pop(0) if self.queue else 0


@asynccontextmanager
async def seam_port() -> AsyncIterator[tuple[SeamPort, AnyioSerialStream]]:
    master, slave = os.openpty()
    try:
        core = SeamPort.open(os.ttyname(slave), SerialSettings(baudrate=4_000_000))
    finally:
        os.close(slave)
    assert isinstance(core, SeamPort)
    core.queue = []
    core.breaks = []
    try:
        async with AnyioSerialStream(core) as port:
            yield core, port
    finally:
        os.close(master)


def test_control_surface_delegates_to_the_core(backend: str) -> None:
    async def main() -> None:
        async with seam_port() as (core, port):
            port.dtr = True
            port.rts = True
            assert (port.dtr, port.rts, port.cts, port.dsr, port.ri, port.cd) == (
                True,
                True,
                False,
                False,
                False,
                False,
            )
            port.break_condition = True
            assert port.break_condition
            port.break_condition = False
            assert core.breaks == [True, False]

            core.queue = [4000, 100, 1]
            await port.wait_drained()
            assert core.queue == []

            async def flip() -> None:
                core.lines = attrs.evolve(core.lines, dsr=True)  # not watched
                for _ in range(3):
                    await anyio.sleep(0.01)
                core.lines = attrs.evolve(core.lines, cts=True)

            async with anyio.create_task_group() as tg:
                tg.start_soon(flip)
                now = await port.wait_modem_change("cts")
            assert now.cts
            with pytest.raises(ValueError, match="modem line must be one of"):
                await port.wait_modem_change("dtr")

    run(backend, main)


def test_send_break_and_its_cancellation_clear_the_break(backend: str) -> None:
    async def main() -> None:
        async with seam_port() as (core, port):
            await port.send_break(0.001)
            assert core.breaks == [True, False]
            core.break_started = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(port.send_break, 3600)
                await core.break_started.wait()
                tg.cancel_scope.cancel()
            assert core.breaks == [True, False, True, False]
            assert not port.break_condition
            with pytest.raises(ValueError, match="got -1"):
                await port.send_break(-1)
            with pytest.raises(TypeError, match="got '1'"):
                await port.send_break("1")  # type: ignore[arg-type]

    run(backend, main)
