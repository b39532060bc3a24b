"""A pty slave opens on the event loop; every other device in a worker thread.

A pty slave's open never sleeps, so both front ends open it inline, without
the thread hop that costs more than the open itself (docs/performance.rst,
"Opening"). Which thread ran ``TtyPort.open`` is observed with a spy that
records it and then runs the real open: on the loop's thread for a pty
under /dev, on another thread for /dev/null (a character device whose
driver is not a pty's), and for a symlink to a pty from outside /dev (a
path that is not looked at on the loop). A UART or USB adapter, whose
open can sleep, takes the same thread path as /dev/null; no such device
exists on a test machine, and the decision (``opens_inline``) is tested on
the device numbers it reads.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

import anyio
import pytest
import trio
import trio.testing
from conftest import fds_not_leaked
from tty_helpers import locked

import trioserial
import trioserial.anyio
from trioserial._open import opens_inline
from trioserial._port import TtyPort

BACKENDS = ["asyncio", "trio"]


class OpenSpy:
    """Records the thread of every ``TtyPort.open``, then runs the real one
    (and then :attr:`after`, if set)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[int] = []
        self.after: Callable[[], object] | None = None
        real = TtyPort.open.__func__  # type: ignore[attr-defined]

        def spy(cls: type[TtyPort], /, *args: object, **kwargs: object) -> TtyPort:
            self.threads.append(threading.get_ident())
            port: TtyPort = real(cls, *args, **kwargs)
            if self.after is not None:
                self.after()
            return port

        monkeypatch.setattr(TtyPort, "open", classmethod(spy))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> OpenSpy:
    return OpenSpy(monkeypatch)


# ------------------------------------------------------------- the decision


def test_opens_inline_only_pty_paths_under_dev(pty_path: str, pty_link: str) -> None:
    assert os.major(os.stat(pty_path).st_rdev) in range(136, 144)
    assert opens_inline(pty_path)
    assert not opens_inline("/dev/null")  # a character device, not a pty
    assert not opens_inline("/dev/ptmx")  # opening it makes a new pair: not a slave
    assert not opens_inline(pty_link)  # not stat'ed outside /dev
    assert not opens_inline("/dev/../" + pty_path.removeprefix("/"))
    assert not opens_inline("/dev/no-such-device")  # the thread's open says what is wrong
    assert not opens_inline("/dev/pts")  # a directory
    slave = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
    try:
        if os.path.isdir("/dev/fd"):
            # /dev/fd/N is a symlink (through /proc/self/fd) to the pty: not followed.
            assert os.path.samefile(f"/dev/fd/{slave}", pty_path)
            assert not opens_inline(f"/dev/fd/{slave}")
    finally:
        os.close(slave)
    if os.path.exists("/dev/tty"):
        # (5, 0) whatever terminal it leads to, a pty or a UART.
        assert not opens_inline("/dev/tty")


# ------------------------------------------------------- which thread opens


async def test_trio_opens_a_pty_on_the_loop_thread(pty_path: str, spy: OpenSpy) -> None:
    with trio.fail_after(10):
        async with await trioserial.open_serial_port(pty_path) as port:
            assert not port.closed
    assert spy.threads == [threading.get_ident()]


async def test_trio_opens_other_devices_in_a_thread(pty_link: str, spy: OpenSpy) -> None:
    with trio.fail_after(10):
        async with await trioserial.open_serial_port(pty_link) as port:
            assert not port.closed
        with pytest.raises(trioserial.NotASerialPortError):
            await trioserial.open_serial_port("/dev/null")
    assert len(spy.threads) == 2
    assert threading.get_ident() not in spy.threads


async def test_the_driver_opens_as_open_serial_port_does(
    pty_path: str, pty_link: str, spy: OpenSpy
) -> None:
    # PySerial's connections open through the same code: a pty on the loop, others in a thread.
    with trio.fail_after(10):
        async with trioserial.PySerial(pty_path).connect():
            pass
        assert spy.threads == [threading.get_ident()]
        async with trioserial.PySerial(pty_link).connect():
            pass
    assert len(spy.threads) == 2
    assert spy.threads[1] != threading.get_ident()


@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_opens_a_pty_on_the_loop_thread_and_others_in_a_thread(
    backend: str, pty_path: str, pty_link: str, spy: OpenSpy
) -> None:
    async def main() -> None:
        with anyio.fail_after(10):
            async with await trioserial.anyio.open_serial_port(pty_path):
                pass
            assert spy.threads == [threading.get_ident()]
            async with await trioserial.anyio.open_serial_port(pty_link):
                pass
            with pytest.raises(trioserial.NotASerialPortError):
                await trioserial.anyio.open_serial_port("/dev/null")
        assert threading.get_ident() not in spy.threads[1:]
        assert len(spy.threads) == 3

    anyio.run(main, backend=backend)


# ------------------------------------------------------------- cancellation


async def test_trio_inline_open_is_a_checkpoint(pty_path: str, spy: OpenSpy) -> None:
    with fds_not_leaked(), trio.CancelScope() as scope:
        scope.cancel()
        await trioserial.open_serial_port(pty_path)
    assert scope.cancelled_caught
    assert spy.threads == []  # not started once cancelled
    assert not locked(pty_path)
    with trio.fail_after(10), trio.testing.assert_checkpoints():
        port = await trioserial.open_serial_port(pty_path)
    await port.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_inline_open_cancelled_before_opens_nothing(
    backend: str, pty_path: str, spy: OpenSpy
) -> None:
    async def main() -> None:
        with fds_not_leaked(), anyio.CancelScope() as scope:
            scope.cancel()
            await trioserial.anyio.open_serial_port(pty_path)
        assert scope.cancelled_caught
        assert spy.threads == []
        assert not locked(pty_path)

    anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancellation_that_comes_during_an_inline_open_closes_the_port(
    backend: str, pty_path: str, spy: OpenSpy
) -> None:
    """The scope is cancelled while the pty opens (by the spy, right after the
    real open): the checkpoint after the open delivers it, and the port the
    caller never got is closed again."""

    async def main() -> None:
        with fds_not_leaked(), anyio.CancelScope() as scope:
            spy.after = scope.cancel
            await trioserial.anyio.open_serial_port(pty_path)
        assert scope.cancelled_caught
        assert len(spy.threads) == 1
        assert not locked(pty_path)

    anyio.run(main, backend=backend)


async def test_trio_cancellation_during_an_inline_open_closes_the_port(
    pty_path: str, spy: OpenSpy
) -> None:
    with fds_not_leaked(), trio.CancelScope() as scope:
        spy.after = scope.cancel
        await trioserial.open_serial_port(pty_path)
    assert scope.cancelled_caught
    assert len(spy.threads) == 1
    assert not locked(pty_path)


def test_asyncio_native_cancel_after_an_inline_open_closes_the_port(
    pty_path: str, spy: OpenSpy
) -> None:
    """``task.cancel()`` gets through anyio's shield at the schedule point
    after the open: the port opened inline must be closed again."""

    async def main() -> None:
        with fds_not_leaked():
            task = asyncio.ensure_future(trioserial.anyio.open_serial_port(pty_path))
            await asyncio.sleep(0)  # the task runs: it opens, then yields once
            assert spy.threads
            assert not task.done()
            assert locked(pty_path)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            assert not locked(pty_path)

    asyncio.run(main())
