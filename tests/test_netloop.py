"""The network opens' loop table: the blocking one runs an open to its end in one step."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from trioserial._netloop import BLOCKING, recv_some, run_blocking, send_all


def test_run_blocking_returns_what_the_coroutine_returns() -> None:
    async def opener() -> str:
        return "core"

    assert run_blocking(opener()) == "core"


def test_run_blocking_refuses_a_coroutine_that_suspends() -> None:
    # Only BLOCKING's waits may be awaited: anything that yields to a loop is a bug.
    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_blocking(suspends())


def test_blocking_waits_honour_data_and_deadlines() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        now = BLOCKING.current_time()
        # Nothing to read: the deadline (already past) ends the wait at once.
        assert run_blocking(recv_some(a, 10, BLOCKING, now)) is None
        b.sendall(b"hi")
        assert run_blocking(recv_some(a, 10, BLOCKING, time.monotonic() + 10)) == b"hi"
        assert run_blocking(send_all(a, b"x" * 100, BLOCKING, time.monotonic() + 10))
        assert b.recv(200) == b"x" * 100
