"""``Expect``: wait for patterns in a byte stream, Trio-native (layer 2).

Works over any :class:`trio.abc.ReceiveStream` (an :class:`~trioserial.AsyncSerial`,
a :class:`~trioserial.testing.PtyDevice`, ``trio.testing.memory_stream_pair``,
a TCP stream...). The matching is the sans-IO :class:`~trioserial._matcher.Matcher`
and the loop is shared with :class:`trioserial.anyio.Expect`
(``_expect_base.py``); this module is how Trio streams receive and send, the
Trio error classes and the typed constructor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AnyStr, final, overload

import trio

from ._expect_base import ExpectBase, ExpectOptions, ExpectPrimitives
from ._matcher import (
    ExpectBufferFullError,
    ExpectError,
    ExpectMatch,
    Pattern,
)
from ._trio_loop import TRIO_PRIMITIVES

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "Expect",
    "ExpectBufferFullError",
    "ExpectEOFError",
    "ExpectError",
    "ExpectMatch",
    "ExpectTimeoutError",
    "Pattern",
]


class ExpectTimeoutError(ExpectError, trio.TooSlowError):
    """``timeout=`` expired before a pattern matched.

    Also a :exc:`trio.TooSlowError`, so one ``except`` handles it and
    :func:`trio.fail_after`'s error alike.
    """


class ExpectEOFError(ExpectError, trio.EndOfChannel):
    """The stream ended (the device hung up) before a pattern matched.

    Also a :exc:`trio.EndOfChannel`.
    """


async def _receive(stream: trio.abc.ReceiveStream, max_bytes: int) -> bytes:
    return bytes(await stream.receive_some(max_bytes))


async def _send(stream: trio.abc.SendStream, data: bytes) -> None:
    await stream.send_all(data)


_TRIO = ExpectPrimitives(
    library=TRIO_PRIMITIVES,
    receive_stream=trio.abc.ReceiveStream,
    send_stream=trio.abc.SendStream,
    receive_stream_name="a trio.abc.ReceiveStream",
    send_stream_name="a trio.abc.SendStream",
    receive=_receive,
    send=_send,
    timeout_error=ExpectTimeoutError,
    eof_error=ExpectEOFError,
)


@final
class Expect(ExpectBase[AnyStr]):
    """Wait for patterns in what a stream sends; send to it.

    ::

        ex = Expect(port)
        with trio.fail_after(30):
            await ex.expect("login: ")
            await ex.sendline("root")
            result = await ex.expect([re.compile(rb"(\\d+) errors"), "# "])

    **Patterns.** ``bytes`` and ``str`` match exactly, character for
    character (so ``"$ "`` is a shell prompt, not a regex); a compiled
    :func:`re.compile` pattern is a regular expression. In byte mode (no
    *encoding*) a ``str`` exact pattern is encoded as UTF-8, and a regex must
    be a bytes regex; in text mode patterns are ``str``. ``^`` in a regex
    anchors at the start of the buffer, that is right after the previous
    match.

    **Which match wins.** Of all patterns, the match that *starts* earliest
    in the data wins; if several start at the same place, the one listed
    first wins. "Earliest" is among matches complete in what has arrived so
    far: a pattern whose match would start earlier but whose end has not
    arrived yet does not hold back a complete one.

    **The buffer.** Received data stays buffered until a match consumes it
    (up to the match's end); a timeout, a cancellation, end of stream or a
    full buffer consume nothing, so the next call sees everything. The
    buffer holds at most *max_buffer* bytes (characters in text mode): when
    it is full and nothing matches, :exc:`ExpectBufferFullError`.

    **Search window.** With *search_window* set, each new chunk is searched
    together with only the last *search_window* units before it: a regex
    match longer than that may be missed, and searching costs
    O(chunk + window) instead of O(buffer). Exact patterns are always found
    (they look back exactly their own length).

    **Timeouts** are Trio cancel scopes around the call (``with
    trio.fail_after(5): ...``), or ``timeout=`` for an
    :exc:`ExpectTimeoutError` that names the patterns and shows the end of
    what was received.

    **Transcript.** Every chunk received and sent, with the time since this
    object was made (Trio's clock), written to a text file as lines
    ``"  12.345678 recv b'login: '"`` (``send`` for sent data, ``eof`` at end
    of stream), or logged at ``DEBUG`` to a :class:`logging.Logger` with the
    same text. Bytes appear as Python ``bytes`` literals, so nothing is lost
    or ambiguous.

    Args:
      stream: where data comes from; :meth:`send` needs it to be a
        :class:`trio.abc.SendStream` too. The caller keeps owning it.
      encoding: decode received data with this codec (text mode: buffers,
        matches and results are ``str``); ``None`` (default) keeps bytes.
      errors: the decoding error policy; default ``"replace"``, because a
        console spews garbage now and then (a baud-rate mismatch at reset)
        and a harness should see it rather than crash. With ``"strict"``,
        :meth:`expect` raises the :exc:`UnicodeDecodeError` once nothing
        before the bad bytes matches, and again on every call until
        :meth:`clear` drops them; nothing else is lost.
      line_ending: what :meth:`sendline` appends; default ``"\\r"``, what the
        Enter key sends (``"\\r\\n"`` makes U-Boot repeat the last command).
      max_buffer: the most unconsumed data kept; default 1 MiB.
      search_window: see above; default ``None``, search all the buffer.
      transcript: a text file or a logger, or ``None``.
      receive_size: the ``max_bytes`` of each receive; default 65536.
    """

    _loop = _TRIO
    stream: trio.abc.ReceiveStream

    if TYPE_CHECKING:  # the constructor is ExpectBase's; this only types it

        @overload
        def __init__(
            self: Expect[bytes],
            stream: trio.abc.ReceiveStream,
            *,
            encoding: None = None,
            **options: Unpack[ExpectOptions],
        ) -> None: ...

        @overload
        def __init__(
            self: Expect[str],
            stream: trio.abc.ReceiveStream,
            *,
            encoding: str,
            **options: Unpack[ExpectOptions],
        ) -> None: ...

        def __init__(
            self,
            stream: trio.abc.ReceiveStream,
            *,
            encoding: str | None = None,
            **options: Unpack[ExpectOptions],
        ) -> None: ...
