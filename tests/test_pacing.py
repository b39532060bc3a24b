"""Pacing (``cps``): the token bucket without a loop, and the close-aware sleep it needs.

:class:`trioserial._pacing.Pacer` is sans-IO: time is an argument, so its
arithmetic is tested here without an event loop. The sleep the front ends
pace with is tested on both of them against a real pty.
"""

from __future__ import annotations

import anyio
import pytest
import trio
import trio.testing

import trioserial.anyio
from trioserial._pacing import Pacer, check_cps
from trioserial.testing import open_pty_pair


def test_one_character_per_slot_at_a_low_rate() -> None:
    pacer = Pacer(5)  # burst max(1, 5 / 100) = 1
    assert pacer.take(3, now=0.0) == 1  # the bucket starts full: one at once
    assert pacer.take(2, now=0.0) == 0
    assert pacer.delay() == pytest.approx(0.2)
    assert pacer.take(2, now=0.2) == 1
    assert pacer.take(1, now=0.3) == 0
    assert pacer.delay() == pytest.approx(0.1)


def test_a_pause_does_not_save_up_a_burst() -> None:
    pacer = Pacer(10_000)  # 100 characters per 10 ms
    assert pacer.burst == 100
    assert pacer.take(1000, now=0.0) == 100
    assert pacer.take(1000, now=60.0) == 100  # a minute idle: still 10 ms worth


def test_burst_one_is_jumpstarters_pacing() -> None:
    pacer = Pacer(10_000, burst=1)
    assert pacer.take(10, now=0.0) == 1
    assert pacer.take(10, now=0.0) == 0
    assert pacer.delay() == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), (0, None), (0.0, None), (10, 10.0), (2.5, 2.5)]
)
def test_check_cps(value: object, expected: float | None) -> None:
    assert check_cps(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [(True, TypeError), ("10", TypeError), (-1, ValueError), (float("nan"), ValueError)],
)
def test_check_cps_names_a_bad_value(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"cps must be .*got {value!r}"):
        check_cps(value)


async def test_sleep_while_open_on_trio(autojump_clock: trio.testing.MockClock) -> None:
    port, device = await open_pty_pair()
    async with device, port:
        start = trio.current_time()
        await port.sleep_while_open(5)
        assert trio.current_time() - start == pytest.approx(5)
        woken: list[type[BaseException]] = []

        async def sleeper() -> None:
            try:
                await port.sleep_while_open(1000)
            except trio.ClosedResourceError as exc:
                woken.append(type(exc))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await trio.testing.wait_all_tasks_blocked()
            port.close()
        assert woken == [trio.ClosedResourceError]
        with pytest.raises(trio.ClosedResourceError):
            await port.sleep_while_open(1)  # already closed: at once
        assert trio.current_time() - start == pytest.approx(5)  # woken at once


def test_sleep_while_open_on_anyio() -> None:
    async def main() -> None:
        port = await trioserial.anyio.open_serial_port("loop://")
        with anyio.fail_after(5):
            await port.sleep_while_open(0.01)
            async with anyio.create_task_group() as tg:
                woken = anyio.Event()

                async def sleeper() -> None:
                    with pytest.raises(anyio.ClosedResourceError):
                        await port.sleep_while_open(1000)
                    woken.set()

                tg.start_soon(sleeper)
                await anyio.wait_all_tasks_blocked()
                port.close()
                await woken.wait()

    anyio.run(main, backend="asyncio")
