"""The anyio front end, every scenario on both backends, on real ptys.

Tests are sync functions calling :func:`anyio.run` per backend (see
``anyio_helpers`` for why not the anyio pytest plugin).
"""

from __future__ import annotations

import ast
import asyncio
import errno
import random
import subprocess
import sys
import termios
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trio.testing
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio_helpers import BACKENDS, pending, pty_pair, run, wait_until
from tty_helpers import get_baudrate

import trioserial
from trioserial import ModemLines, SerialSettings, UnsupportedOperationError
from trioserial.anyio import AnyioSerialStream, SerialAttribute, open_serial_port
from trioserial.testing import FakeModem

#: The device never reads, so a send of this much blocks for good.
MORE_THAN_A_PTY_HOLDS = b"x" * 4_000_000


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
            woken = []

            async def blocked(call: str) -> None:
                with pytest.raises(anyio.ClosedResourceError, match="closed"):
                    await (port.send(MORE_THAN_A_PTY_HOLDS) if call == "send" else port.receive())
                woken.append(call)

            # The deadline turns a task that close() failed to wake into a failure.
            with anyio.fail_after(10):
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
        async with pty_pair() as (port, _device), anyio.create_task_group() as tg:
            tg.start_soon(port.receive)
            tg.start_soon(port.send, MORE_THAN_A_PTY_HOLDS)
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


def test_on_trio_a_call_that_did_not_wait_is_still_a_schedule_point() -> None:
    """On Trio the front end takes Trio's order (cancellation check, syscall,
    shielded schedule point only if the syscall did not wait): the schedule
    point must still be there when the data was ready or the write went
    through at once."""

    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.send(b"ready")
            await wait_until(lambda: pending(port) == 5)
            with trio.testing.assert_checkpoints():
                assert await port.receive() == b"ready"
            with trio.testing.assert_checkpoints():
                await port.send(b"at once")

    run("trio", main)


def test_natively_cancelled_receive_consumed_nothing() -> None:
    """asyncio's own cancellation (``asyncio.timeout``, ``wait_for``, grpc.aio
    cancelling a handler) goes through anyio's shields: a receive must not
    have read anything at a point where such a cancellation can still land."""

    async def main() -> None:
        async with pty_pair() as (port, device):
            await device.send(b"kept")
            await wait_until(lambda: pending(port) == 4)
            # The receive runs until its first schedule point, and the
            # cancellation lands there.
            receiving = asyncio.ensure_future(port.receive())
            await asyncio.sleep(0)  # one yield, noqa: not a wait for data
            receiving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await receiving
            assert port.statistics().bytes_received == 0
            with anyio.fail_after(5):
                assert await port.receive() == b"kept"

    run("asyncio", main)


def test_natively_cancelled_receive_while_nothing_was_pending_consumed_nothing() -> None:
    """With nothing to read, a receive on asyncio skips the yield before the
    read (the core says no input is pending) and the wait is its one schedule
    point: a native cancellation there must find nothing read, and the bytes
    that came meanwhile go to the next receive."""

    async def main() -> None:
        async with pty_pair() as (port, device):
            assert port._core.input_pending() is False
            receiving = asyncio.ensure_future(port.receive())
            await wait_until(lambda: port.statistics().tasks_waiting_receive == 1)
            await device.send(b"late")
            await wait_until(lambda: pending(port) == 4)
            receiving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await receiving
            assert port.statistics().bytes_received == 0
            assert port._core.input_pending() is True
            with anyio.fail_after(5):
                assert await port.receive() == b"late"
        assert port._core.input_pending() is None  # closed: the read would tell

    run("asyncio", main)


def test_natively_cancelled_send_sent_nothing() -> None:
    """The same for send: a native cancellation that lands in a send which
    would have written everything at once finds nothing written, so a caller
    that resends on cancellation sends nothing twice."""

    async def main() -> None:
        async with pty_pair() as (port, device):
            sending = asyncio.ensure_future(port.send(b"once"))
            await asyncio.sleep(0)  # one yield to its first schedule point, noqa: not a wait
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            assert port.statistics().bytes_sent == 0
            await port.send(b"again")
            got = b""
            with anyio.fail_after(5):
                while len(got) < 5:
                    got += await device.receive()
            assert got == b"again"

    run("asyncio", main)


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
            # A lost byte would leave the loop waiting forever: fail instead.
            with anyio.fail_after(30):
                while len(got) < total:
                    with anyio.CancelScope() as scope:
                        if rng.random() < 0.1:
                            scope.cancel()  # already cancelled when receive starts
                        else:
                            tg.start_soon(
                                cancel_after, scope, rng.randrange(8), completed + cancelled
                            )
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
            with pytest.raises(UnsupportedOperationError, match="does not support"):
                port.cts  # noqa: B018
            with pytest.raises(UnsupportedOperationError):
                port.dtr = False
            with pytest.raises(UnsupportedOperationError):
                await port.wait_modem_change()
            with pytest.raises(TypeError, match="dtr must be True or False, got 1"):
                port.dtr = 1  # type: ignore[assignment]
            port.break_condition = True  # a pty takes a break and does nothing
            assert port.break_condition
            port.break_condition = False
            await port.wait_drained()  # and has no queue
            assert port.in_waiting == 0

    run(backend, main)


@asynccontextmanager
async def modem_pair(**settings: Any) -> AsyncIterator[tuple[AnyioSerialStream, FakeModem]]:
    """A pty port whose control requests reach a model of a UART's lines.

    A pty has no modem lines, no break and no output queue to watch, so the
    logic above those ioctls is tested through the ioctl seam (issue 3's
    :class:`~trioserial.testing.FakeModem`); the ENOTTY path on the real pty
    is tested above.
    """
    async with pty_pair(**settings) as (port, _device):
        modem = FakeModem(loopback=False, clock=anyio.current_time)
        # attach() takes any stream over a TtyPort; its annotation names AsyncSerial only.
        yield port, modem.attach(port)  # type: ignore[arg-type]


def test_control_surface_sync(backend: str) -> None:
    async def main() -> None:
        async with modem_pair() as (port, modem):
            port.dtr = True
            port.rts = False
            modem.set_inputs(cts=True, ri=True)
            assert (port.dtr, port.rts, port.cts, port.dsr, port.ri, port.cd) == (
                True,
                False,
                True,
                False,
                True,
                False,
            )
            assert (modem.dtr, modem.rts) == (True, False)
            port.break_condition = True
            assert port.break_condition
            assert modem.break_condition
            port.break_condition = False
            modem.out_queue = 7
            assert port.out_waiting == 7
            port.reset_output_buffer()
            assert modem.out_queue == 0
            await port.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                port.cts  # noqa: B018

    run(backend, main)


def test_wait_drained_waits_for_queue_and_fifo(backend: str) -> None:
    async def main() -> None:
        async with modem_pair(baudrate=4_000_000) as (port, modem):
            await port.wait_drained()  # nothing queued: returns
            modem.out_queue, modem.fifo = 100, 16
            drained = False

            async def drain() -> None:
                nonlocal drained
                await port.wait_drained()
                drained = True

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                await wait_until(lambda: modem.calls.get(termios.TIOCOUTQ, 0) >= 3)
                modem.out_queue = 0
                await wait_until(lambda: modem.calls.get(termios.TIOCSERGETLSR, 0) >= 2)
                assert not drained  # the FIFO still holds bytes
                modem.fifo = 0
            assert drained

    run(backend, main)


def test_aclose_lets_queued_output_go_out_but_not_forever(backend: str) -> None:
    async def main() -> None:
        async with modem_pair(baudrate=4_000_000) as (port, modem):
            modem.out_queue = 100
            async with anyio.create_task_group() as tg:
                tg.start_soon(port.aclose)
                await wait_until(lambda: modem.calls.get(termios.TIOCOUTQ, 0) >= 3)
                assert port.extra(SerialAttribute.fd) != -1  # waiting, not discarding
                modem.out_queue = 0  # transmitted
            assert port.extra(SerialAttribute.fd) == -1
            assert termios.TCFLSH not in modem.calls
        async with modem_pair(baudrate=4_000_000) as (port, modem):
            modem.out_queue = 100  # held by flow control: never drains
            with anyio.fail_after(30):
                await port.aclose()  # gives up after its bound (1 s) and discards
            assert modem.events[-1][1:] == ("discard output", 100)

    run(backend, main)


def test_wait_modem_change(backend: str) -> None:
    async def main() -> None:
        async with modem_pair() as (port, modem):
            async with anyio.create_task_group() as tg:
                results: list[ModemLines] = []

                async def waiter(*lines: str) -> None:
                    results.append(await port.wait_modem_change(*lines, poll_interval=0.001))

                tg.start_soon(waiter, "cts")
                await wait_until(lambda: modem.calls.get(termios.TIOCMGET, 0) >= 3)
                modem.set_inputs(dsr=True)  # not watched
                calls = modem.calls[termios.TIOCMGET]
                await wait_until(lambda: modem.calls[termios.TIOCMGET] >= calls + 3)
                assert results == []
                modem.set_inputs(cts=True)
            assert results[0].cts
            # A pulse between two polls is seen through the kernel's counters.
            polls = modem.calls[termios.TIOCGICOUNT]
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter, "ri")
                await wait_until(lambda: modem.calls[termios.TIOCGICOUNT] >= polls + 2)
                modem.pulse("ri")
            assert not results[1].ri
            with pytest.raises(ValueError, match="input line names"):
                await port.wait_modem_change("dtr")
            with pytest.raises(ValueError, match="poll_interval"):
                await port.wait_modem_change(poll_interval=0)

    run(backend, main)


def test_send_break_always_ends_the_break(backend: str) -> None:
    async def main() -> None:
        async with modem_pair() as (port, modem):
            await port.send_break(0.001)
            assert [e[1:] for e in modem.events] == [("break", True), ("break", False)]
            # Cancelled while holding the break: the break still ends.
            async with anyio.create_task_group() as tg:
                tg.start_soon(port.send_break, 3600)
                await wait_until(lambda: modem.break_condition)
                with pytest.raises(anyio.BusyResourceError, match="break"):
                    await port.send_break(1)
                tg.cancel_scope.cancel()
            assert not modem.break_condition
            assert not port.break_condition
            with pytest.raises(ValueError, match="got -1"):
                await port.send_break(-1)
            with pytest.raises(TypeError, match="got '1'"):
                await port.send_break("1")  # type: ignore[arg-type]

    run(backend, main)


def test_close_wakes_control_waits(backend: str) -> None:
    async def main() -> None:
        async with modem_pair() as (port, modem):
            woken: list[str] = []

            async def wait(name: str) -> None:
                call = port.send_break(3600) if name == "break" else port.wait_modem_change()
                with pytest.raises(anyio.ClosedResourceError):
                    await call
                woken.append(name)

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, "break")
                tg.start_soon(wait, "modem")
                await wait_until(
                    lambda: modem.break_condition and termios.TIOCGICOUNT in modem.calls
                )
                port.close()
            assert sorted(woken) == ["break", "modem"]

    run(backend, main)


def test_open_options_reach_the_port(backend: str) -> None:
    async def main() -> None:
        async with pty_pair(hupcl=False) as (port, _device):
            assert not termios.tcgetattr(port.fileno())[2] & termios.HUPCL
        with pytest.raises(TypeError, match="dtr must be True, False or None"):
            await open_serial_port("/dev/null", dtr=1)  # type: ignore[arg-type]

    run(backend, main)


def test_cancelled_control_calls_leave_nothing_behind(backend: str) -> None:
    async def main() -> None:
        async with modem_pair() as (port, modem):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await port.reconfigure(baudrate=9600)
            assert scope.cancelled_caught
            assert port.settings.baudrate == 115200  # cancelled before the change: none
            modem.out_queue = 50

            def polls() -> int:
                return modem.calls.get(termios.TIOCOUTQ, 0) + modem.calls.get(termios.TIOCMGET, 0)

            async def cancel_after_two_polls(scope: anyio.CancelScope, start: int) -> None:
                await wait_until(lambda: polls() >= start + 2)
                scope.cancel()

            for call in (port.wait_drained, port.wait_modem_change):
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(cancel_after_two_polls, scope, polls())
                        await call()
                assert scope.cancelled_caught
            assert modem.out_queue == 50  # nothing discarded
            assert modem.events == []  # no line touched
            modem.out_queue = 0
            await port.wait_drained()  # and the next call works

    run(backend, main)


def test_public_surface_and_lazy_jumpstarter() -> None:
    import trioserial.anyio

    assert set(trioserial.anyio.__all__) == {
        "AnyioSerialStream",
        "SerialAttribute",
        "open_serial_port",
        # Expect over anyio streams (issue 13)
        "Expect",
        "ExpectEOFError",
        "ExpectTimeoutError",
        # finding ports (issue 18)
        "list_ports",
        "wait_for_port",
        "watch_ports",
    }
    # Importing trioserial (or its anyio front end) never imports Jumpstarter.
    code = "import sys, trioserial, trioserial.anyio; assert 'jumpstarter' not in sys.modules"
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(trioserial.__file__).parents[1]
    )
