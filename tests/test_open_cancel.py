"""A cancelled open leaves nothing behind, and ends at once where it can.

Network opens (socket://, rfc2217://, also under spy://) connect and
negotiate on the event loop: a cancellation ends them at once, with the
socket closed, whatever ``?timeout`` says. Two servers that never finish:
one whose listen backlog is full (the connect itself never completes) and
one that accepts and then says nothing (the negotiation never completes).
The ``fail_after`` around each cancelled open is well below the URL's
``?timeout``: an open that waited for the timeout fails the test.

Opens of local devices run in a worker thread that cannot be interrupted:
a cancellation that arrives meanwhile must find the port closed again
(fd and lock) by the time it reaches the caller, on every backend,
including asyncio's own ``task.cancel()``. A pty slave under /dev opens
inline instead (tests/test_open_inline.py); here the same pty is reached
through a symlink from outside /dev as well, which opens in a thread, so
the races run against both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import trio
from conftest import fds_not_leaked
from tty_helpers import locked
from url_servers import full_backlog, silent_server

import trioserial
import trioserial._open_async
import trioserial.anyio
from trioserial._core import PortCore
from trioserial._open import open_core, opens_inline
from trioserial._options import OpenOptions
from trioserial._settings import SerialSettings

#: Longer than any test may take: an open that waits for it has failed.
LONG = 60
#: How long a cancelled open may take, at most (a deadline, not a measurement).
PROMPTLY = 10


def urls(port: int, tmp_path: Path) -> list[str]:
    return [
        f"rfc2217://127.0.0.1:{port}?timeout={LONG}",
        f"socket://127.0.0.1:{port}?timeout={LONG}",
        f"spy://rfc2217://127.0.0.1:{port}?file={tmp_path / 'trace.txt'}",
    ]


@pytest.mark.parametrize("server", [full_backlog, silent_server])
async def test_trio_cancelled_network_open_ends_at_once(
    server: Callable[[], contextlib.AbstractContextManager[int]], tmp_path: Path
) -> None:
    with server() as port:
        for url in urls(port, tmp_path):
            if url.startswith("socket") and server is silent_server:
                continue  # socket:// is open once connected
            with fds_not_leaked(), trio.fail_after(PROMPTLY):
                with trio.move_on_after(0.1) as scope:
                    await trioserial.open_serial_port(url)
                assert scope.cancelled_caught, url


@pytest.mark.parametrize("server", [full_backlog, silent_server])
def test_anyio_on_asyncio_cancelled_network_open_ends_at_once(
    server: Callable[[], contextlib.AbstractContextManager[int]], tmp_path: Path
) -> None:
    async def main(port: int) -> None:
        for url in urls(port, tmp_path):
            if url.startswith("socket") and server is silent_server:
                continue
            # anyio's own cancellation, then asyncio's native one.
            with fds_not_leaked(), anyio.fail_after(PROMPTLY):
                with anyio.move_on_after(0.1) as scope:
                    await trioserial.anyio.open_serial_port(url)
                assert scope.cancelled_caught, url
            with fds_not_leaked():
                task = asyncio.ensure_future(trioserial.anyio.open_serial_port(url))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(task, PROMPTLY)

    with server() as port:
        anyio.run(main, port, backend="asyncio")


async def test_blocking_open_core_still_times_out_itself() -> None:
    # PySerial's thread open: the same code, driven by poll(2) with the URL's timeout.
    with silent_server() as port, fds_not_leaked():
        url = f"rfc2217://127.0.0.1:{port}?timeout=0.2"
        with pytest.raises(trioserial.SerialPortError, match="no answer from the server"):
            await trio.to_thread.run_sync(open_core, url, SerialSettings())
    with full_backlog() as port, fds_not_leaked():
        url = f"socket://127.0.0.1:{port}?timeout=0.2"
        with pytest.raises(trioserial.SerialPortError, match=r"within 0\.2 s") as info:
            await trio.to_thread.run_sync(open_core, url, SerialSettings())
        assert info.value.errno == 110  # ETIMEDOUT


# ------------------------------------------------------ opens in a thread


@pytest.fixture(params=["inline", "thread"])
def pty_path(request: pytest.FixtureRequest, pty_path: str, tmp_path: Path) -> str:
    """The pty as opened inline (its /dev path) and in a thread (a symlink)."""
    if request.param == "inline":
        assert opens_inline(pty_path)
        return pty_path
    link = tmp_path / "ttyV0"
    link.symlink_to(pty_path)
    return str(link)


class Gate:
    """open_core held in its thread until released: the cancellation lands mid-open."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.proceed = threading.Event()

    def open(self, url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        self.entered.set()
        assert self.proceed.wait(PROMPTLY)
        return open_core(url, settings, options)


def test_asyncio_native_cancel_mid_open_waits_and_closes(
    pty_link: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pty_path = pty_link
    gate = Gate()
    monkeypatch.setattr(trioserial._open_async, "open_core", gate.open)

    async def main() -> None:
        with fds_not_leaked():
            task = asyncio.ensure_future(trioserial.anyio.open_serial_port(pty_path))
            await asyncio.wait_for(asyncio.to_thread(gate.entered.wait), PROMPTLY)
            task.cancel()
            for _ in range(20):
                await asyncio.sleep(0)
            # The open goes on in its thread: the cancellation must wait for it.
            assert not task.done()
            gate.proceed.set()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, PROMPTLY)
            assert not locked(pty_path)

    asyncio.run(main())


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancellations_raced_against_opens_leave_nothing(pty_path: str, backend: str) -> None:
    rng = random.Random(12)

    async def main() -> tuple[int, int]:
        opened = cancelled = 0
        with fds_not_leaked():
            for i in range(150):
                # None: cancelled before the open starts (an inline open takes
                # no schedule point before it ends, so a task that cancels
                # "soon" finds it done).
                delay = rng.choice([None, 0, 0, 1e-5, 1e-4, 5e-4, 1e-3, 3e-3])
                port = None
                with anyio.CancelScope() as scope:
                    if delay is None:
                        scope.cancel()
                    async with anyio.create_task_group() as tg:

                        async def cancel_soon(
                            scope: anyio.CancelScope = scope, delay: float | None = delay
                        ) -> None:
                            await anyio.sleep(delay or 0)
                            scope.cancel()

                        tg.start_soon(cancel_soon)
                        port = await trioserial.anyio.open_serial_port(pty_path)
                        tg.cancel_scope.cancel()
                if port is not None:
                    opened += 1
                    assert not port.closed
                    await port.aclose()
                else:
                    cancelled += 1
                assert scope.cancelled_caught or port is not None
                assert not locked(pty_path), f"left locked by cancelled open {i}"
        return opened, cancelled

    _, cancelled = anyio.run(main, backend=backend)
    assert cancelled > 0


def test_asyncio_native_cancellations_raced_against_opens_leave_nothing(pty_path: str) -> None:
    rng = random.Random(13)

    async def main() -> int:
        cancelled = 0
        with fds_not_leaked():
            for i in range(150):
                task = asyncio.ensure_future(trioserial.anyio.open_serial_port(pty_path))
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
                await asyncio.sleep(rng.choice([0, 0, 1e-5, 1e-4, 5e-4, 1e-3]))
                task.cancel()
                try:
                    port = await asyncio.wait_for(task, PROMPTLY)
                except asyncio.CancelledError:
                    cancelled += 1
                    assert not locked(pty_path), f"left locked by cancelled open {i}"
                else:
                    await port.aclose()
        return cancelled

    assert asyncio.run(main()) > 0
