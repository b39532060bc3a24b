"""``Expect``: wait for patterns in a byte stream, Trio-native (layer 3).

Works over any :class:`trio.abc.ReceiveStream` (an :class:`~trioserial.AsyncSerial`,
a :class:`~trioserial.testing.PtyDevice`, ``trio.testing.memory_stream_pair``,
a TCP stream...). Received data goes into a buffer that only a successful
match consumes, so a timed-out or cancelled wait loses nothing.
"""

from __future__ import annotations

import codecs
import logging
import math
import re
from collections.abc import Sequence
from typing import Any, AnyStr, Generic, TextIO, cast, final, overload

import attrs
import trio

from ._util import ConflictDetector

__all__ = [
    "Expect",
    "ExpectBufferFullError",
    "ExpectEOFError",
    "ExpectError",
    "ExpectMatch",
    "ExpectTimeoutError",
    "Pattern",
]

#: One pattern: ``str``/``bytes`` match exactly (no regex syntax), a compiled
#: :func:`re.compile` pattern as a regular expression.
Pattern = str | bytes | re.Pattern[str] | re.Pattern[bytes]

#: How much of the received data error messages show (their end).
TAIL = 256

DEFAULT_MAX_BUFFER = 1 << 20


class ExpectError(Exception):
    """Base of the errors :meth:`Expect.expect` raises when nothing matched.

    The data stays in the :class:`Expect`'s buffer (see :attr:`Expect.buffer`);
    :attr:`received` is a copy of it when the error was raised.
    """

    def __init__(self, message: str, patterns: tuple[Pattern, ...], received: str | bytes) -> None:
        super().__init__(message)
        #: The patterns that were waited for.
        self.patterns = patterns
        #: Everything received and not consumed, when the error was raised.
        self.received = received


class ExpectTimeoutError(ExpectError, trio.TooSlowError):
    """``timeout=`` expired before a pattern matched.

    Also a :exc:`trio.TooSlowError`, so one ``except`` handles it and
    :func:`trio.fail_after`'s error alike.
    """


class ExpectEOFError(ExpectError, trio.EndOfChannel):
    """The stream ended (the device hung up) before a pattern matched.

    Also a :exc:`trio.EndOfChannel`.
    """


class ExpectBufferFullError(ExpectError):
    """The buffer reached ``max_buffer`` without a match.

    Nothing was dropped: consume data with another :meth:`Expect.expect` or
    drop it with :meth:`Expect.clear` to go on.
    """


@final
@attrs.frozen
class ExpectMatch(Generic[AnyStr]):
    """What :meth:`Expect.expect` found."""

    #: Position of the matching pattern in the list passed (0 for a single one).
    index: int
    #: The pattern that matched, as passed.
    pattern: Pattern
    #: The match; ``match.group(1)`` and friends give a regex's groups. Exact
    #: patterns match too (as an escaped regex) and have no groups.
    match: re.Match[AnyStr]
    #: What came before the match (consumed with it).
    before: AnyStr
    #: The matched text, ``match.group(0)``.
    after: AnyStr


@attrs.frozen
class _Compiled:
    regex: re.Pattern[Any]
    #: How far back from the previous search end a new match can start: for
    #: an exact pattern its length minus one; ``None`` means "search it all".
    overlap: int | None


def _describe(pattern: Pattern) -> str:
    if isinstance(pattern, re.Pattern):
        return f"re.compile({pattern.pattern!r})"
    return repr(pattern)


def _describe_all(patterns: tuple[Pattern, ...]) -> str:
    if len(patterns) == 1:
        return _describe(patterns[0])
    return "any of " + ", ".join(_describe(p) for p in patterns)


def _tail(data: str | bytes) -> str:
    if len(data) <= TAIL:
        return repr(data)
    return f"...{data[-TAIL:]!r}"


@final
class Expect(Generic[AnyStr]):
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

    @overload
    def __init__(
        self: Expect[bytes],
        stream: trio.abc.ReceiveStream,
        *,
        encoding: None = None,
        errors: str = "replace",
        line_ending: str | bytes = "\r",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
        transcript: TextIO | logging.Logger | None = None,
        receive_size: int = 65536,
    ) -> None: ...

    @overload
    def __init__(
        self: Expect[str],
        stream: trio.abc.ReceiveStream,
        *,
        encoding: str,
        errors: str = "replace",
        line_ending: str | bytes = "\r",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
        transcript: TextIO | logging.Logger | None = None,
        receive_size: int = 65536,
    ) -> None: ...

    def __init__(
        self,
        stream: trio.abc.ReceiveStream,
        *,
        encoding: str | None = None,
        errors: str = "replace",
        line_ending: str | bytes = "\r",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
        transcript: TextIO | logging.Logger | None = None,
        receive_size: int = 65536,
    ) -> None:
        if not isinstance(stream, trio.abc.ReceiveStream):
            raise TypeError(f"stream must be a trio.abc.ReceiveStream, got {stream!r}")
        for name, value in (
            ("max_buffer", max_buffer),
            ("receive_size", receive_size),
            ("search_window", search_window),
        ):
            if value is None and name == "search_window":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if encoding is not None:
            try:
                decoder = codecs.getincrementaldecoder(encoding)(errors)
            except LookupError:
                raise ValueError(f"unknown encoding {encoding!r}") from None
            try:
                codecs.lookup_error(errors)
            except LookupError:
                raise ValueError(f"unknown error handler {errors!r}") from None
            self._decoder: codecs.IncrementalDecoder | None = decoder
        else:
            self._decoder = None
        self._send_encoding = encoding or "utf-8"
        self._line_ending = self._to_bytes(line_ending, "line_ending")
        self.stream = stream
        self.encoding = encoding
        self.max_buffer = max_buffer
        self.search_window = search_window
        self._receive_size = receive_size
        self._transcript = transcript
        self._text = encoding is not None
        self._buf: bytearray | str = "" if self._text else bytearray()
        self._eof = False
        #: A decoding error (``errors="strict"``) and the bytes from the bad
        #: ones on, kept until clear() drops the bad ones.
        self._decode_error: UnicodeDecodeError | None = None
        self._undecoded = b""
        #: How much of the buffer the current expect() has searched.
        self._searched = 0
        self._before: Any = self._empty()
        self._after: Any = self._empty()
        self._match: re.Match[Any] | None = None
        self._conflict = ConflictDetector(
            "another task is already waiting in expect() on this Expect", trio.BusyResourceError
        )
        try:
            self._t0: float | None = trio.current_time()
        except RuntimeError:
            self._t0 = None

    # ------------------------------------------------------------ state

    def _empty(self) -> str | bytes:
        return "" if self._text else b""

    @property
    def buffer(self) -> AnyStr:
        """What was received and not yet consumed by a match (a copy)."""
        return cast("AnyStr", self._buf if isinstance(self._buf, str) else bytes(self._buf))

    @property
    def before(self) -> AnyStr:
        """What came before the last successful match (empty before the first)."""
        return cast("AnyStr", self._before)

    @property
    def after(self) -> AnyStr:
        """The text of the last successful match (empty before the first)."""
        return cast("AnyStr", self._after)

    @property
    def match(self) -> re.Match[AnyStr] | None:
        """The last successful match, or ``None`` before the first."""
        return self._match

    @property
    def eof(self) -> bool:
        """Whether the stream has ended (data may still be in :attr:`buffer`)."""
        return self._eof

    def clear(self) -> AnyStr:
        """Drop everything buffered and return it.

        After a decoding error (``errors="strict"``) this also drops the bytes
        that could not be decoded; what came after them is decoded again.
        """
        data = self.buffer
        self._buf = "" if self._text else bytearray()
        self._searched = 0  # an expect() waiting meanwhile starts over
        error, rest = self._decode_error, self._undecoded
        if error is not None:
            self._decode_error, self._undecoded = None, b""
            self._decode(rest[error.end - error.start :], final=self._eof)
        return data

    # ------------------------------------------------------------ transcript

    def _log(self, event: str, data: bytes = b"") -> None:
        transcript = self._transcript
        if transcript is None:
            return
        now = trio.current_time()
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
        sent. Cancellation: as the stream's ``send_all`` (for an
        :class:`~trioserial.AsyncSerial`, a prefix was sent).

        Raises:
          TypeError: *data* is neither ``str`` nor bytes-like, or the stream
            is not a :class:`trio.abc.SendStream`.
        """
        payload = self._to_bytes(data, "data")
        stream = self.stream
        if not isinstance(stream, trio.abc.SendStream):
            raise TypeError(f"cannot send: {stream!r} is not a trio.abc.SendStream")
        self._log("send", payload)
        await stream.send_all(payload)

    async def sendline(self, line: str | bytes = "") -> None:
        """Send *line* and then the line ending (see *line_ending*); as :meth:`send`."""
        await self.send(self._to_bytes(line, "line") + self._line_ending)

    # ------------------------------------------------------------ expecting

    def _compile(
        self, patterns: Pattern | Sequence[Pattern]
    ) -> tuple[tuple[Pattern, ...], list[_Compiled]]:
        if isinstance(patterns, str | bytes | re.Pattern):
            given: tuple[Pattern, ...] = (patterns,)
        elif isinstance(patterns, Sequence) and not isinstance(patterns, bytearray):
            given = tuple(cast("Sequence[Pattern]", patterns))
            if not given:
                raise ValueError("expect() needs at least one pattern, got an empty list")
        else:
            raise TypeError(
                "expect() takes a str, bytes or re.compile() pattern or a list of them, "
                f"got {type(patterns).__name__}"
            )
        compiled = []
        window = self.search_window
        for pattern in given:
            if isinstance(pattern, re.Pattern):
                if isinstance(pattern.pattern, str) != self._text:
                    kind = "str" if self._text else "bytes"
                    raise TypeError(
                        f"pattern {_describe(pattern)} must be a {kind} regex "
                        f"(this Expect is in {'text' if self._text else 'byte'} mode)"
                    )
                compiled.append(_Compiled(pattern, None if window is None else window - 1))
            elif isinstance(pattern, str | bytes):
                if not pattern:
                    raise ValueError("an empty pattern would match at once: pass a non-empty one")
                if self._text:
                    if not isinstance(pattern, str):
                        raise TypeError(
                            f"pattern {pattern!r} is bytes, but this Expect decodes to str "
                            f"(encoding={self.encoding!r}): pass a str"
                        )
                    regex: re.Pattern[Any] = re.compile(re.escape(pattern))
                    size = len(pattern)
                else:
                    literal = pattern.encode("utf-8") if isinstance(pattern, str) else pattern
                    regex = re.compile(re.escape(literal))
                    size = len(literal)
                # An exact match ending in new data starts at most size - 1 before it.
                compiled.append(_Compiled(regex, size - 1))
            else:
                raise TypeError(
                    "a pattern must be str, bytes or a re.compile() pattern, "
                    f"got {type(pattern).__name__}"
                )
        return given, compiled

    def _search(self, compiled: list[_Compiled]) -> tuple[int, int] | None:
        """(pattern index, search start) of the earliest match, first listed on ties."""
        buf = self._buf
        searched = self._searched
        best: tuple[int, int] | None = None
        best_start = -1
        for index, pattern in enumerate(compiled):
            if searched == 0 or pattern.overlap is None:
                start = 0
            else:
                start = max(0, searched - pattern.overlap)
            found = pattern.regex.search(buf, start)
            if found is not None and (best is None or found.start() < best_start):
                best, best_start = (index, start), found.start()
        return best

    def _consume(
        self, given: tuple[Pattern, ...], compiled: list[_Compiled], index: int, start: int
    ) -> ExpectMatch[AnyStr]:
        buf = self._buf
        # Match again on an immutable copy: a match on the bytearray would
        # change under the caller's feet when we consume from it.
        data: str | bytes = buf if isinstance(buf, str) else bytes(buf)
        found = compiled[index].regex.search(data, start)
        assert found is not None
        before, after = data[: found.start()], found.group(0)
        if isinstance(buf, str):
            self._buf = buf[found.end() :]
        else:
            del buf[: found.end()]
        self._before, self._after, self._match = before, after, found
        return ExpectMatch(
            index=index,
            pattern=given[index],
            match=cast("re.Match[AnyStr]", found),
            before=cast("AnyStr", before),
            after=cast("AnyStr", after),
        )

    def _feed(self, data: bytes) -> None:
        if self._decoder is None:
            assert isinstance(self._buf, bytearray)
            self._buf += data
        else:
            self._decode(data, final=not data)

    def _decode(self, data: bytes, *, final: bool) -> None:
        decoder = self._decoder
        assert decoder is not None
        assert isinstance(self._buf, str)
        try:
            self._buf += decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            # exc.object is what the decoder held plus *data*: keep what
            # decodes before the bad bytes, and the rest raw, so nothing
            # received is lost; expect() raises exc until clear().
            held = exc.object
            decoder.reset()
            self._buf += decoder.decode(held[: exc.start])
            self._undecoded = bytes(held[exc.start :])
            self._decode_error = exc

    async def expect(
        self,
        patterns: Pattern | Sequence[Pattern],
        *,
        # A cancel scope works too; timeout= exists for an error that says what
        # was awaited and what arrived instead.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ExpectMatch[AnyStr]:
        """Wait until one of *patterns* matches what was received; consume up to its end.

        Always a checkpoint. See the class docs for pattern kinds, which match
        wins, and the buffer.

        Cancellation (a cancel scope, ``timeout=``, or anything else):
        nothing was consumed; every byte received so far is in
        :attr:`buffer` for the next call. A match is consumed only when this
        call returns it.

        Args:
          patterns: one pattern or a list of them.
          timeout: seconds to wait for more data before raising
            :exc:`ExpectTimeoutError`; what has already arrived is searched
            first, so ``0`` checks the buffer without waiting. ``None`` waits
            for ever (use a cancel scope).

        Returns:
          Which pattern matched, the match, and what came before it.

        Raises:
          ExpectTimeoutError: *timeout* expired.
          ExpectEOFError: the stream ended first.
          ExpectBufferFullError: the buffer holds *max_buffer* and nothing matches.
          TypeError, ValueError: a malformed pattern or a negative *timeout*
            (before anything is read).
          trio.BusyResourceError: another task is in ``expect`` on this object.
        """
        given, compiled = self._compile(patterns)
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be non-negative, got {timeout!r}")
        # The deadline bounds only the waits for more data: what has already
        # arrived is always searched, so timeout=0 means "is it there yet?".
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        with self._conflict:
            return await self._expect(given, compiled, deadline, f"{timeout} s")

    async def _expect(
        self,
        given: tuple[Pattern, ...],
        compiled: list[_Compiled],
        deadline: float,
        waited: str,
    ) -> ExpectMatch[AnyStr]:
        await trio.lowlevel.checkpoint_if_cancelled()
        self._searched = 0
        while True:
            # From a successful receive to here there is no checkpoint: the
            # data is in the buffer before anything can cancel us.
            found = self._search(compiled)
            if found is not None:
                result = self._consume(given, compiled, *found)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return result
            self._searched = len(self._buf)
            if self._decode_error is not None:
                raise self._decode_error.with_traceback(None)
            if self._eof:
                data = self.buffer
                raise ExpectEOFError(
                    f"end of stream while waiting for {_describe_all(given)}; "
                    f"received and unmatched ({len(data)}): {_tail(data)}",
                    given,
                    data,
                )
            room = self.max_buffer - len(self._buf)
            if room <= 0:
                data = self.buffer
                raise ExpectBufferFullError(
                    f"expect buffer is full ({self.max_buffer}) with no match for "
                    f"{_describe_all(given)}; consume or clear() it. "
                    f"End of the buffer: {_tail(data)}",
                    given,
                    data,
                )
            with trio.move_on_at(deadline) as scope:
                chunk = await self.stream.receive_some(min(room, self._receive_size))
            if scope.cancelled_caught:
                # A cancelled receive took nothing: the stream's guarantee.
                data = self.buffer
                raise ExpectTimeoutError(
                    f"timed out after {waited} waiting for {_describe_all(given)}; "
                    f"received and unmatched ({len(data)}): {_tail(data)}",
                    given,
                    data,
                )
            # Buffer first: a transcript that fails to write must not lose data.
            self._eof = not chunk
            self._feed(bytes(chunk))
            if chunk:
                self._log("recv", bytes(chunk))
            else:
                self._log("eof")
