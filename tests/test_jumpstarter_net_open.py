# Jumpstarter's gRPC stubs declare servicer methods abstract that only its Session
# implements; at run time nothing is abstract.
# mypy: disable-error-code="abstract"
"""The Jumpstarter driver's network opens run on the event loop: close() and cancellation
end a connecting ``connect()`` at once (asyncio, as in exporters).

The server accepts the TCP connection and never answers the RFC 2217
negotiation; the URL's ``?timeout`` is longer than any test may take, so an
open that is not cut short fails its ``fail_after``. The listener becomes
readable once the driver's connection is queued on it: the open is then
under way.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pytest
from conftest import fds_not_leaked

pytest.importorskip("jumpstarter")

from trioserial.jumpstarter import PySerial

LONG = 60  #: longer than any test may take
PROMPTLY = 10  #: a deadline for an open cut short, not a measurement


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A server that accepts nothing itself and never sends a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


@pytest.mark.parametrize("from_thread", [False, True], ids=["loop-thread", "other-thread"])
def test_close_ends_a_connecting_connect_at_once(
    listener: socket.socket, from_thread: bool
) -> None:
    url = f"rfc2217://127.0.0.1:{listener.getsockname()[1]}?timeout={LONG}"

    async def main() -> None:
        driver = PySerial(url=url, check_present=False)
        outcome: list[type[BaseException]] = []

        async def connect() -> None:
            async with driver.connect() as stream:
                try:
                    await stream.receive()
                except BaseException as exc:
                    outcome.append(type(exc))

        with fds_not_leaked(), anyio.fail_after(PROMPTLY):
            async with anyio.create_task_group() as tg:
                tg.start_soon(connect)
                await anyio.wait_readable(listener)  # the open is under way
                if from_thread:
                    closer = threading.Thread(target=driver.close)
                    closer.start()
                    await anyio.to_thread.run_sync(closer.join)
                else:
                    driver.close()
            assert outcome == [anyio.EndOfStream]

    anyio.run(main, backend="asyncio")


def test_a_cancelled_connect_ends_at_once(listener: socket.socket) -> None:
    url = f"rfc2217://127.0.0.1:{listener.getsockname()[1]}?timeout={LONG}"

    async def main() -> None:
        driver = PySerial(url=url, check_present=False)
        with fds_not_leaked(), anyio.fail_after(PROMPTLY):
            with anyio.move_on_after(0.1) as scope:
                async with driver.connect():
                    pytest.fail("the open cannot have finished")  # pragma: no cover
            assert scope.cancelled_caught
            assert not driver._connections
            assert not driver._openings

    anyio.run(main, backend="asyncio")
