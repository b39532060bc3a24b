"""What the Trio and anyio ``Expect`` share: one I/O loop over the sans-IO matcher.

Written once against :class:`ExpectPrimitives`: the library's own table
(:class:`~trioserial._surface.LoopPrimitives`: checkpoint, clock, deadline
scope, busy error), plus how a stream of that library receives and sends and
which Expect errors to raise, in the way anyio's ``AsyncBackend`` separates
its backends. This module imports neither
:mod:`trio` nor :mod:`anyio` (``tests/test_layers.py`` keeps it so); the
front ends are ``_expect.py`` (Trio) and ``_anyio_expect.py`` (anyio).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, AnyStr, ClassVar, Generic, TextIO, TypedDict, cast

import attrs

from ._matcher import (
    DEFAULT_MAX_BUFFER,
    END_OF_STREAM,
    ExpectError,
    ExpectMatch,
    Matcher,
    Pattern,
    check_size,
)
from ._surface import LoopPrimitives
from ._util import ConflictDetector

__all__ = ["ExpectBase", "ExpectOptions", "ExpectPrimitives"]


class ExpectOptions(TypedDict, total=False):
    """The keyword options both ``Expect`` constructors take besides *encoding*.

    For the front ends' typed constructor overloads (``**options:
    Unpack[ExpectOptions]``), so the list is written once.
    """

    errors: str
    line_ending: str | bytes
    max_buffer: int
    search_window: int | None
    transcript: TextIO | logging.Logger | None
    receive_size: int


@attrs.frozen
class ExpectPrimitives:
    """What one event-loop library gives the shared Expect loop: its table, and
    how its streams receive and send."""

    #: The library's loop primitives (checkpoint, clock, deadline scope, busy error).
    library: LoopPrimitives
    #: The stream classes accepted for receiving and for sending, and their
    #: names in error messages, with the article ("a trio.abc.SendStream").
    receive_stream: type[Any]
    send_stream: type[Any]
    receive_stream_name: str
    send_stream_name: str
    #: ``await stream.receive...(max_bytes)``: 1 or more bytes, or ``b""``
    #: at end of stream; a cancelled receive must consume nothing.
    receive: Callable[[Any, int], Awaitable[bytes]]
    #: ``await stream.send...(data)``.
    send: Callable[[Any, bytes], Awaitable[None]]
    #: The Expect errors to raise.
    timeout_error: type[ExpectError]
    eof_error: type[ExpectError]


class ExpectBase(Generic[AnyStr]):
    """The public methods of both ``Expect`` classes; see ``trioserial.Expect``.

    A subclass sets ``_loop`` and, for type checkers only, overloads
    ``__init__`` with its stream type and ``str``/``bytes`` by *encoding*.
    """

    _loop: ClassVar[ExpectPrimitives]
    stream: Any

    def __init__(
        self,
        stream: object,
        *,
        encoding: str | None = None,
        errors: str = "replace",
        line_ending: str | bytes = "\r",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
        transcript: TextIO | logging.Logger | None = None,
        receive_size: int = 65536,
    ) -> None:
        loop = self._loop
        if not isinstance(stream, loop.receive_stream):
            raise TypeError(f"stream must be {loop.receive_stream_name}, got {stream!r}")
        self._receive_size = check_size("receive_size", receive_size)
        self._matcher: Matcher[Any] = Matcher(
            encoding=encoding, errors=errors, max_buffer=max_buffer, search_window=search_window
        )
        self._send_encoding = encoding or "utf-8"
        self._line_ending = self._to_bytes(line_ending, "line_ending")
        self.stream = stream
        self._transcript = transcript
        self._conflict = ConflictDetector(
            "another task is already waiting in expect() on this Expect", loop.library.busy_error
        )
        try:
            self._t0: float | None = loop.library.current_time()
        except RuntimeError:  # made outside the event loop: the first event starts the clock
            self._t0 = None

    # ------------------------------------------------------------ state

    @property
    def encoding(self) -> str | None:
        """The codec received data is decoded with, or ``None`` in byte mode."""
        return self._matcher.encoding

    @property
    def max_buffer(self) -> int:
        """The most unconsumed data kept (bytes, or characters in text mode); settable."""
        return self._matcher.max_buffer

    @max_buffer.setter
    def max_buffer(self, value: int) -> None:
        self._matcher.max_buffer = value

    @property
    def search_window(self) -> int | None:
        """See *search_window*; ``None`` searches all the buffer; settable."""
        return self._matcher.search_window

    @search_window.setter
    def search_window(self, value: int | None) -> None:
        self._matcher.search_window = value

    @property
    def buffer(self) -> AnyStr:
        """What was received and not yet consumed by a match (a copy)."""
        return cast("AnyStr", self._matcher.buffer)

    @property
    def before(self) -> AnyStr:
        """What came before the last successful match (empty before the first)."""
        return cast("AnyStr", self._matcher.before)

    @property
    def after(self) -> AnyStr:
        """The text of the last successful match (empty before the first)."""
        return cast("AnyStr", self._matcher.after)

    @property
    def match(self) -> re.Match[AnyStr] | None:
        """The last successful match, or ``None`` before the first."""
        return self._matcher.match

    @property
    def eof(self) -> bool:
        """Whether the stream has ended (data may still be in :attr:`buffer`)."""
        return self._matcher.eof

    def clear(self) -> AnyStr:
        """Drop everything buffered and return it.

        After a decoding error (``errors="strict"``) this also drops the bytes
        that could not be decoded; what came after them is decoded again. An
        ``expect`` waiting in another task meanwhile goes on with what
        arrives next.
        """
        return cast("AnyStr", self._matcher.clear())

    # ------------------------------------------------------------ transcript

    def _log(self, event: str, data: bytes = b"") -> None:
        transcript = self._transcript
        if transcript is None:
            return
        now = self._loop.library.current_time()
        if self._t0 is None:
            self._t0 = now
        line = f"{now - self._t0:11.6f} {event}" + (f" {data!r}" if event != "eof" else "")
        if isinstance(transcript, logging.Logger):
            transcript.debug("%s", line)
        else:
            transcript.write(line + "\n")
            transcript.flush()

    # ------------------------------------------------------------ sending

    def _to_bytes(self, data: object, what: str) -> bytes:
        if isinstance(data, str):
            return data.encode(self._send_encoding)
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data)
        raise TypeError(f"{what} must be str or bytes-like, got {type(data).__name__}")

    async def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send *data* (``str`` is encoded with *encoding*, or UTF-8 in byte mode).

        Always a checkpoint. The transcript records the data before it is
        sent. Cancellation: as the stream's send (for a trioserial port, a
        prefix was sent, and its statistics say how much).

        Raises:
          TypeError: *data* is neither ``str`` nor bytes-like, or the stream
            cannot send.
        """
        payload = self._to_bytes(data, "data")
        loop, stream = self._loop, self.stream
        if not isinstance(stream, loop.send_stream):
            raise TypeError(f"cannot send: {stream!r} is not {loop.send_stream_name}")
        self._log("send", payload)
        await loop.send(stream, payload)

    async def sendline(self, line: str | bytes = "") -> None:
        """Send *line* and then the line ending (see *line_ending*); as :meth:`send`."""
        await self.send(self._to_bytes(line, "line") + self._line_ending)

    # ------------------------------------------------------------ expecting

    async def expect(
        self,
        patterns: Pattern | Sequence[Pattern],
        *,
        # A cancel scope works too; timeout= exists for an error that says what
        # was awaited and what arrived instead.
        timeout: float | None = None,
    ) -> ExpectMatch[AnyStr]:
        """Wait until one of *patterns* matches what was received; consume up to its end.

        Always a checkpoint. See the class docs for pattern kinds, which match
        wins, and the buffer.

        Cancellation (a cancel scope, ``timeout=``, or, on asyncio,
        ``task.cancel()``): nothing was consumed; every byte received so far
        is in :attr:`buffer` for the next call. The one checkpoint that can
        deliver a cancellation before data arrives comes first; after it the
        buffer is searched, and a match found is consumed and returned with
        no await in between, so a match is consumed only when this call
        returns it. Data a receive returns is buffered before anything else
        runs (the transcript is written after), so a cancellation while
        waiting loses nothing that the stream's own receive did not lose: a
        trioserial port's cancelled receive consumes nothing.

        Args:
          patterns: one pattern or a list of them.
          timeout: seconds to wait for more data before raising the timeout
            error; what has already arrived is searched first, so ``0``
            checks the buffer without waiting. ``None`` waits for ever (use a
            cancel scope).

        Returns:
          Which pattern matched, the match, and what came before it.

        Raises:
          ExpectTimeoutError: *timeout* expired (:exc:`trioserial.ExpectTimeoutError`,
            a :exc:`trio.TooSlowError`, from :class:`trioserial.Expect`;
            :exc:`trioserial.anyio.ExpectTimeoutError`, a :exc:`TimeoutError`,
            from :class:`trioserial.anyio.Expect`).
          ExpectEOFError: the stream ended first (:exc:`trioserial.ExpectEOFError`,
            a :exc:`trio.EndOfChannel`; :exc:`trioserial.anyio.ExpectEOFError`,
            an :exc:`anyio.EndOfStream`).
          ExpectBufferFullError: the buffer holds *max_buffer* and nothing matches.
          UnicodeDecodeError: ``errors="strict"`` and the bytes after the
            buffer do not decode; again on every call until :meth:`clear`.
          TypeError, ValueError: a malformed pattern or a negative *timeout*
            (before anything is read).
          trio.BusyResourceError, anyio.BusyResourceError: another task is in
            ``expect`` on this object (the front end's library's class).

        What the stream's receive raises (the port was closed, or broke)
        passes through unchanged; the buffer is kept.
        """
        loop, matcher = self._loop, self._matcher
        compiled = matcher.compile(patterns)
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be non-negative, got {timeout!r}")
        # The deadline bounds only the waits for more data: what has already
        # arrived is always searched, so timeout=0 means "is it there yet?".
        deadline = math.inf if timeout is None else loop.library.current_time() + timeout
        with self._conflict:
            await loop.library.checkpoint()
            while True:
                found = matcher.next_match(compiled)
                if isinstance(found, ExpectMatch):
                    return cast("ExpectMatch[AnyStr]", found)
                if found is END_OF_STREAM:
                    raise matcher.error(loop.eof_error, "end of stream while", compiled)
                with loop.library.move_on_at(deadline) as scope:
                    size = min(matcher.room, self._receive_size)
                    chunk = await loop.receive(self.stream, size)
                if scope.cancelled_caught:
                    # A cancelled receive took nothing: the stream's guarantee.
                    raise matcher.error(
                        loop.timeout_error, f"timed out after {timeout} s", compiled
                    )
                # Buffer first: a transcript that fails to write must not lose data.
                if chunk:
                    matcher.feed(chunk)
                    self._log("recv", bytes(chunk))
                else:
                    matcher.feed_eof()
                    self._log("eof")
