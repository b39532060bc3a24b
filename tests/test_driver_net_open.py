"""PySerial opens network ports on the event loop: close() and cancellation end them at once.

The server accepts the TCP connection and never answers the RFC 2217
negotiation, and the URL's ``?timeout`` is longer than any test may take,
so an open that is not cut short fails its ``fail_after``. A device path's
open runs in a worker thread instead (tested in ``test_driver.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
import trio.testing
from conftest import fds_not_leaked
from url_servers import full_backlog, silent_server

from trioserial import DriverStream, PySerial, SupervisedStream

#: Longer than any test may take: an open that waits for it has failed.
LONG = 60
#: How long an open cut short may take, at most (a deadline, not a measurement).
PROMPTLY = 10


@pytest.fixture(params=["rfc2217", "socket"])
def silent_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL whose open never finishes: an RFC 2217 server that never answers the
    negotiation, or a listener whose full backlog never answers the connect.

    (``spy://`` opens its inner port the same way, shown cancellable in
    ``test_open_cancel.py``; its query is its own, so the inner ``?timeout``
    cannot be raised above a test's deadline there.)
    """
    if request.param == "rfc2217":
        with silent_server() as port:
            yield f"rfc2217://127.0.0.1:{port}?timeout={LONG}"
    else:
        with full_backlog() as port:
            yield f"socket://127.0.0.1:{port}?timeout={LONG}"


async def assert_ended(stream: DriverStream) -> None:
    """A connection the driver's close() ended: end of stream, sends refused, no fd."""
    assert stream.closed_by_driver
    assert stream.fileno() == -1
    assert await stream.receive_some() == b""
    with pytest.raises(trio.EndOfChannel, match="closed by the driver"):
        await stream.receive()
    with pytest.raises(trio.ClosedResourceError, match="closed by the driver"):
        await stream.send_all(b"x")


@pytest.mark.parametrize("from_thread", [False, True], ids=["task", "thread"])
async def test_close_ends_a_connecting_connect_at_once(silent_url: str, from_thread: bool) -> None:
    driver = PySerial(silent_url)
    with fds_not_leaked(), trio.fail_after(PROMPTLY):
        async with trio.open_nursery() as nursery:

            async def connect() -> None:
                async with driver.connect() as stream:
                    await assert_ended(stream)
                reached.append(silent_url)

            reached: list[str] = []
            nursery.start_soon(connect)
            nursery.start_soon(connect)  # the second waits for the first's open
            await trio.testing.wait_all_tasks_blocked()  # both are connecting
            if from_thread:
                await trio.to_thread.run_sync(driver.close)
            else:
                driver.close()
        assert reached == [silent_url, silent_url]
        async with trio.open_nursery() as nursery:  # the driver stays usable
            nursery.start_soon(connect)
            await trio.testing.wait_all_tasks_blocked()
            driver.close()


async def test_a_cancelled_connect_ends_at_once(silent_url: str) -> None:
    driver = PySerial(silent_url)
    with fds_not_leaked(), trio.fail_after(PROMPTLY):
        with trio.move_on_after(0.1) as scope:
            async with driver.connect():
                pytest.fail("the open cannot have finished")  # pragma: no cover
        assert scope.cancelled_caught
        assert not driver._connections


async def test_close_and_cancellation_together_raise_the_cancellation(silent_url: str) -> None:
    driver = PySerial(silent_url)
    with fds_not_leaked(), trio.fail_after(PROMPTLY):
        async with trio.open_nursery() as nursery:

            async def connect() -> None:
                async with driver.connect():
                    pytest.fail("cancelled before the body")  # pragma: no cover

            nursery.start_soon(connect)
            await trio.testing.wait_all_tasks_blocked()
            driver.close()
            nursery.cancel_scope.cancel()  # the body never runs
        assert nursery.cancel_scope.cancelled_caught


async def test_close_ends_a_supervisor_in_its_first_open_at_once(silent_url: str) -> None:
    driver = PySerial(silent_url)
    with fds_not_leaked(), trio.fail_after(PROMPTLY):
        async with trio.open_nursery() as nursery:

            async def close_when_connecting() -> None:
                await trio.testing.wait_all_tasks_blocked()
                driver.close()

            nursery.start_soon(close_when_connecting)
            supervised: SupervisedStream = await nursery.start(driver.run)
        assert not supervised.connected.value
        assert supervised.connect_count == 0
        assert await supervised.receive_some() == b""


async def test_a_cancelled_supervisor_open_ends_at_once(silent_url: str) -> None:
    driver = PySerial(silent_url)
    with fds_not_leaked(), trio.fail_after(PROMPTLY):
        with trio.move_on_after(0.1) as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(driver.run)
        assert scope.cancelled_caught
        assert not driver._supervisors
