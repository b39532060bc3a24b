"""rfc2217:// against hostile servers: a flood of Telnet negotiation with no data.

Each server (``url_servers.flood_server``) negotiates correctly, then sends
one kind of Telnet chatter without end and never reads again. What must
hold, on the Trio front end, the anyio front end on asyncio and the sync
``in_waiting``: other tasks keep running, a receive under a timeout returns,
the replies we owe do not pile up, and the server is dropped with an error
that says why, well before it stops on its own.
"""

from __future__ import annotations

import contextlib
import re
import socket
import tracemalloc

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.lowlevel
from url_servers import MAX_FLOOD_SECONDS, flood_server

import trioserial
import trioserial.anyio
from trioserial._rfc2217 import MAX_BUFFERED, MAX_PENDING, RFC2217Port

pytestmark = pytest.mark.usefixtures("no_fd_leaks")

FLOODS = {
    "nop": bytes((255, 241)),  # IAC NOP
    "will-do": bytes((255, 251, 99, 255, 253, 98)),  # IAC WILL 99, IAC DO 98: refused once
    "notify-modemstate": bytes((255, 250, 44, 107, 0x30, 255, 240)),
    # WILL/WONT BINARY: a change of state each time, each answered (DO/DONT),
    # and the server reads none of the answers.
    "will-wont": bytes((255, 251, 0, 255, 252, 0)),
}
NO_DATA = "bytes of Telnet negotiation and no data"
# Which limit a WILL/WONT flood meets first depends on how much of our
# answers the kernel's socket buffers absorb (autotuned, megabytes on loopback).
UNREAD = f"({NO_DATA}|negotiates without reading the answers)"
WHY = {"nop": NO_DATA, "will-do": NO_DATA, "notify-modemstate": NO_DATA, "will-wont": UNREAD}


def core_of(port: trioserial.AsyncSerial | trioserial.anyio.AnyioSerialStream) -> RFC2217Port:
    core = port._core
    assert isinstance(core, RFC2217Port)
    return core


def owed(core: RFC2217Port) -> int:
    return len(core._pending) + len(core._protocol._outgoing)


async def receive_until_dropped(port: trioserial.AsyncSerial) -> trio.BrokenResourceError:
    """Receive under short timeouts until the port reports the server dropped."""
    with trio.fail_after(MAX_FLOOD_SECONDS + 5):
        while True:
            with trio.move_on_after(0.05):
                try:
                    await port.receive_some()
                except trio.BrokenResourceError as exc:
                    return exc
            assert owed(core_of(port)) <= MAX_PENDING


@pytest.mark.parametrize("kind", FLOODS)
async def test_trio_front_end_keeps_the_loop_and_drops_the_server(kind: str) -> None:
    with flood_server(FLOODS[kind]) as server:
        async with await trioserial.open_serial_port(server.url) as port:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await trio.lowlevel.checkpoint()
                    ticks += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                error = await receive_until_dropped(port)
                nursery.cancel_scope.cancel()
            assert isinstance(error.__cause__, trioserial.SerialPortError)
            assert re.search(WHY[kind], str(error))
            assert server.url in str(error)
            assert ticks > 0
            # Dropped for good: every later call says so too.
            with pytest.raises(trio.BrokenResourceError, match="dropped"):
                await port.send_all(b"x")
        assert not server.ran_out.is_set(), f"blocked for the whole {MAX_FLOOD_SECONDS} s flood"


async def test_a_receive_under_a_timeout_returns_during_a_flood() -> None:
    # The first receive of a NOP flood: it must end at its own deadline (or
    # with the drop), and the other task must have run meanwhile.
    with flood_server(FLOODS["nop"]) as server:
        async with await trioserial.open_serial_port(server.url) as port:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await trio.lowlevel.checkpoint()
                    ticks += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await trio.lowlevel.checkpoint()
                with trio.move_on_after(0.01), contextlib.suppress(trio.BrokenResourceError):
                    data = await port.receive_some()
                    pytest.fail(f"received {data!r} from a server that sends no data")
                nursery.cancel_scope.cancel()
            assert ticks > 0
        assert not server.ran_out.is_set()


@pytest.mark.parametrize("kind", ["nop", "will-wont"])
def test_anyio_front_end_on_asyncio(kind: str) -> None:
    async def receive_until_dropped(
        port: trioserial.anyio.AnyioSerialStream,
    ) -> anyio.BrokenResourceError:
        with anyio.fail_after(MAX_FLOOD_SECONDS + 5):
            while True:
                with anyio.move_on_after(0.05):
                    try:
                        await port.receive()
                    except anyio.BrokenResourceError as exc:
                        return exc
                assert owed(core_of(port)) <= MAX_PENDING

    async def main() -> tuple[int, BaseException]:
        with flood_server(FLOODS[kind]) as server:
            async with await trioserial.anyio.open_serial_port(server.url) as port:
                ticks = 0

                async def ticker() -> None:
                    nonlocal ticks
                    while True:
                        await anyio.lowlevel.checkpoint()
                        ticks += 1

                async with anyio.create_task_group() as tg:
                    tg.start_soon(ticker)
                    error = await receive_until_dropped(port)
                    tg.cancel_scope.cancel()
            assert not server.ran_out.is_set()
            return ticks, error

    ticks, error = anyio.run(main, backend="asyncio")
    assert ticks > 0
    assert re.search(WHY[kind], str(error))


@pytest.mark.parametrize("kind", ["nop", "will-wont"])
async def test_sync_in_waiting_does_bounded_work(kind: str) -> None:
    with flood_server(FLOODS[kind]) as server:
        async with await trioserial.open_serial_port(server.url) as port:
            calls = 0
            error = None
            with trio.fail_after(MAX_FLOOD_SECONDS + 5):
                while error is None:
                    try:
                        assert port.in_waiting == 0
                    except trioserial.SerialPortError as exc:
                        error = exc
                    calls += 1
                    assert owed(core_of(port)) <= MAX_PENDING
                    await trio.lowlevel.wait_readable(port.fileno())
            assert re.search(WHY[kind], str(error))
            assert calls > 2  # each call did a bounded share of the work
        assert not server.ran_out.is_set()


async def test_an_open_that_waits_for_acknowledgements_buffers_boundedly() -> None:
    # The server agrees to RFC 2217, then floods data and never answers the
    # settings: the open fails at ?timeout, having kept at most MAX_BUFFERED
    # bytes of that data (it would be dropped at the purge anyway).
    with flood_server(b"x" * 4096, acknowledge=False) as server:
        tracemalloc.start()
        try:
            with pytest.raises(trioserial.SerialPortError, match="no answer from the server"):
                await trioserial.open_serial_port(server.url + "?timeout=1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert server.sent[0] > 8 * MAX_BUFFERED  # the flood was large ...
        assert peak < 4 * MAX_BUFFERED  # ... and the open did not keep it


def test_one_call_reads_at_most_the_budget() -> None:
    # No event loop: a connected socket pair with 1 MiB of IAC NOP waiting.
    # Each call takes at most PUMP_BUDGET of it and leaves the rest in the kernel.
    from trioserial import SerialSettings
    from trioserial._rfc2217 import PUMP_BUDGET, Options
    from trioserial._socket import unread_bytes
    from trioserial._telnet import RFC2217Client

    ours, theirs = socket.socketpair()
    with theirs:
        theirs.setblocking(False)
        url = "rfc2217://test:1"
        core = RFC2217Port(ours, url, SerialSettings(), RFC2217Client(), Options(url))
        try:
            flood = FLOODS["nop"] * 8192
            sent = 0
            with contextlib.suppress(BlockingIOError):
                while sent < 1 << 20:
                    sent += theirs.send(flood)
            before = unread_bytes(ours)
            assert before > 2 * PUMP_BUDGET
            assert core.in_waiting() == 0
            assert before - unread_bytes(ours) <= PUMP_BUDGET
            with pytest.raises(BlockingIOError):
                core.read_nowait(100)
            assert before - unread_bytes(ours) <= 2 * PUMP_BUDGET
        finally:
            core.close()
