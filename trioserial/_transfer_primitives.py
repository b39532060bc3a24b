"""The loop operations the transfer driver needs, bound to one stream (layer 1).

:class:`Primitives` is what ``_transfer``'s one driver calls;
:func:`stream_primitives` builds it, once for both front ends, from a
library's table of loop primitives and a stream's send and receive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol, TypeVar, cast

import attrs

from ._errors import UnsupportedOperationError

__all__ = ["CANCEL_SEND_LIMIT", "LoopTable", "Primitives", "stream_primitives"]

T = TypeVar("T")


@attrs.frozen
class Primitives:
    """The loop operations the driver needs, bound to one stream.

    Attributes:
      now: the loop's clock, in seconds.
      receive: up to ``max_bytes`` from the stream; ``None`` if *timeout*
        (seconds, or ``None`` for no limit) passed first; ``b""`` at its end.
        A cancelled or timed-out receive has consumed nothing.
      send: all of *data* to the stream.
      cancel_send: *data* to the stream under a shield, for at most a
        second, swallowing errors (the peer is being told we stop).
      run_sync: run a blocking call in a worker thread; with ``shield=True``
        not even a cancellation interrupts the wait for it.
    """

    now: Callable[[], float]
    receive: Callable[[int, float | None], Awaitable[bytes | None]]
    send: Callable[[bytes], Awaitable[None]]
    cancel_send: Callable[[bytes], Awaitable[None]]
    run_sync: Callable[..., Awaitable[Any]]


#: The longest a cancelled transfer spends telling the peer.
CANCEL_SEND_LIMIT: Final = 1.0


class LoopTable(Protocol):
    """What :func:`stream_primitives` takes from a library's ``LoopPrimitives``.

    (``_surface.LoopPrimitives`` has all of it; named here by shape, as this
    layer sits below the front ends' surface.)
    """

    @property
    def closed_error(self) -> type[Exception]: ...
    @property
    def broken_error(self) -> type[Exception]: ...
    @property
    def move_on_after(self) -> Callable[[float], AbstractContextManager[object]]: ...
    @property
    def current_time(self) -> Callable[[], float]: ...
    @property
    def shielded(self) -> Callable[[], AbstractContextManager[object]]: ...


def stream_primitives(
    loop: LoopTable,
    *,
    send: Callable[[bytes], Awaitable[None]],
    receive_some: Callable[[int], Awaitable[bytes]],
    to_thread: Callable[..., Awaitable[Any]],
    drained: Callable[[], Awaitable[None]] | None,
) -> Primitives:
    """The driver's :class:`Primitives` for one stream, on *loop*'s library.

    Written once for both front ends: each passes its stream's *send* and
    *receive_some* (``b""`` at the end of the stream), its library's
    worker-thread call and the stream's ``wait_drained`` if it has one.
    """

    async def receive(max_bytes: int, wait: float | None) -> bytes | None:
        if wait is None:
            return await receive_some(max_bytes)
        with loop.move_on_after(wait):
            return await receive_some(max_bytes)
        return None

    async def cancel_send(data: bytes) -> None:
        with (
            loop.shielded(),
            loop.move_on_after(CANCEL_SEND_LIMIT),
            contextlib.suppress(loop.broken_error, loop.closed_error, UnsupportedOperationError),
        ):
            await send(data)
            # Out of the driver's queue too: closing a tty discards what is queued.
            if drained is not None:
                await drained()

    async def run_sync(fn: Callable[..., T], *args: Any, shield: bool = False) -> T:
        if not shield:
            return cast("T", await to_thread(fn, *args))
        with loop.shielded():
            result = await to_thread(fn, *args)
        return cast("T", result)

    return Primitives(
        now=loop.current_time,
        receive=receive,
        send=send,
        cancel_send=cancel_send,
        run_sync=run_sync,
    )
