"""``trioserial.anyio.Expect``: wait for patterns in any anyio byte stream (layer 2).

The same matcher (``_matcher.py``) and the same loop (``_expect_base.py``)
as :class:`trioserial.Expect`, on anyio's table (``_anyio_loop``): this
module is how anyio byte streams receive and send, the anyio error classes
and the typed constructor. It never
imports :mod:`trio`, so it runs on either anyio backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AnyStr, final, overload

import anyio
import anyio.lowlevel
from anyio.abc import ByteReceiveStream, ByteSendStream

from ._anyio_loop import ANYIO_PRIMITIVES
from ._expect_base import ExpectBase, ExpectOptions, ExpectPrimitives
from ._matcher import ExpectError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Expect", "ExpectEOFError", "ExpectTimeoutError"]


class ExpectTimeoutError(ExpectError, TimeoutError):
    """``timeout=`` expired before a pattern matched (:class:`trioserial.anyio.Expect`).

    Also a :exc:`TimeoutError`, what :func:`anyio.fail_after` raises, so one
    ``except`` handles both; and a :exc:`trioserial.ExpectError`.
    """


class ExpectEOFError(ExpectError, anyio.EndOfStream):
    """The stream ended before a pattern matched (:class:`trioserial.anyio.Expect`).

    Also an :exc:`anyio.EndOfStream`, what the stream's own ``receive``
    raises there; and a :exc:`trioserial.ExpectError`.
    """


async def _receive(stream: ByteReceiveStream, max_bytes: int) -> bytes:
    try:
        return await stream.receive(max_bytes)
    except anyio.EndOfStream:
        return b""


async def _send(stream: ByteSendStream, data: bytes) -> None:
    await stream.send(data)


_ANYIO = ExpectPrimitives(
    library=ANYIO_PRIMITIVES,
    receive_stream=ByteReceiveStream,
    send_stream=ByteSendStream,
    receive_stream_name="an anyio.abc.ByteReceiveStream",
    send_stream_name="an anyio.abc.ByteSendStream",
    receive=_receive,
    send=_send,
    timeout_error=ExpectTimeoutError,
    eof_error=ExpectEOFError,
)


@final
class Expect(ExpectBase[AnyStr]):
    """Wait for patterns in what an anyio byte stream sends; send to it.

    The anyio twin of :class:`trioserial.Expect`, on asyncio or trio: the
    same arguments, methods, patterns, match rules, buffer, search window
    and transcript (see there), the same matching code. What differs is
    anyio's:

    ::

        async with await trioserial.anyio.open_serial_port(path) as port:
            ex = trioserial.anyio.Expect(port, encoding="utf-8")
            with anyio.fail_after(30):
                await ex.expect("login: ")
                await ex.sendline("root")

    - *stream* is any :class:`anyio.abc.ByteReceiveStream` (an
      :class:`~trioserial.anyio.AnyioSerialStream`, a TCP stream from
      :func:`anyio.connect_tcp`, ...); :meth:`send` needs an
      :class:`anyio.abc.ByteSendStream`.
    - Timeouts are anyio cancel scopes (:func:`anyio.fail_after`,
      :func:`anyio.move_on_after`) or ``timeout=``, which raises
      :exc:`trioserial.anyio.ExpectTimeoutError` (a :exc:`TimeoutError`).
      The end of the stream raises :exc:`trioserial.anyio.ExpectEOFError`
      (an :exc:`anyio.EndOfStream`); a full buffer
      :exc:`trioserial.ExpectBufferFullError`; all three are
      :exc:`trioserial.ExpectError`. A second task in :meth:`expect` gets
      :exc:`anyio.BusyResourceError`.
    - The transcript's clock is :func:`anyio.current_time`.

    **Cancellation** leaves what :class:`trioserial.Expect` leaves: nothing
    consumed, everything received in :attr:`buffer`. On asyncio that holds
    for asyncio's own cancellation too (``task.cancel()``,
    ``asyncio.timeout``, which anyio's shielded scopes do not stop): the
    one checkpoint comes before the search, and a match is consumed and
    returned with no await in between. A cancellation that lands inside the
    stream's ``receive`` loses what that ``receive`` loses: nothing, for an
    :class:`~trioserial.anyio.AnyioSerialStream` on either backend.

    Args:
      stream: where data comes from. The caller keeps owning it.
      encoding: as :class:`trioserial.Expect`.
      errors: as :class:`trioserial.Expect`.
      line_ending: as :class:`trioserial.Expect`.
      max_buffer: as :class:`trioserial.Expect`.
      search_window: as :class:`trioserial.Expect`.
      transcript: as :class:`trioserial.Expect`.
      receive_size: the ``max_bytes`` of each ``receive``; default 65536.
    """

    _loop = _ANYIO
    stream: ByteReceiveStream

    if TYPE_CHECKING:  # the constructor is ExpectBase's; this only types it

        @overload
        def __init__(
            self: Expect[bytes],
            stream: ByteReceiveStream,
            *,
            encoding: None = None,
            **options: Unpack[ExpectOptions],
        ) -> None: ...

        @overload
        def __init__(
            self: Expect[str],
            stream: ByteReceiveStream,
            *,
            encoding: str,
            **options: Unpack[ExpectOptions],
        ) -> None: ...

        def __init__(
            self,
            stream: ByteReceiveStream,
            *,
            encoding: str | None = None,
            **options: Unpack[ExpectOptions],
        ) -> None: ...
