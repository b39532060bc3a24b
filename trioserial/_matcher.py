"""The matching half of Expect, sans-IO (layer 0): bytes in, matches out.

In h11's shape: a :class:`Matcher` never touches a stream or a clock. Feed it
what arrived with :meth:`Matcher.feed` (and :meth:`Matcher.feed_eof` at end
of stream), then ask :meth:`Matcher.next_match` for the earliest match of a
set of :class:`Patterns`. It answers with an :class:`ExpectMatch` (consumed
from the buffer), :data:`NEED_DATA` (read at most :attr:`Matcher.room` more
bytes and feed them) or :data:`END_OF_STREAM`. The Trio and anyio ``Expect``
(``_expect.py``, ``_anyio_expect.py``) drive it through one shared loop
(``_expect_base.py``); the tests drive it with plain calls.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from typing import Any, AnyStr, Final, Generic, TypeVar, cast, final, overload

import attrs

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "END_OF_STREAM",
    "NEED_DATA",
    "ExpectBufferFullError",
    "ExpectError",
    "ExpectMatch",
    "Matcher",
    "Pattern",
    "Patterns",
]

#: One pattern: ``str``/``bytes`` match exactly (no regex syntax), a compiled
#: :func:`re.compile` pattern as a regular expression.
Pattern = str | bytes | re.Pattern[str] | re.Pattern[bytes]

#: How much of the received data error messages show (their end).
TAIL: Final = 256

DEFAULT_MAX_BUFFER: Final = 1 << 20

#: How many pattern sets' search progress a Matcher remembers at once.
MAX_PROGRESS: Final = 8


class ExpectError(Exception):
    """Base of the errors ``Expect.expect`` raises when nothing matched.

    Both front ends' errors derive from it (:class:`trioserial.Expect`'s and
    :class:`trioserial.anyio.Expect`'s), so one ``except`` serves either. The
    data stays in the ``Expect``'s buffer; :attr:`received` is a copy of it
    when the error was raised.
    """

    def __init__(self, message: str, patterns: tuple[Pattern, ...], received: str | bytes) -> None:
        super().__init__(message)
        #: The patterns that were waited for.
        self.patterns = patterns
        #: Everything received and not consumed, when the error was raised.
        self.received = received


class ExpectBufferFullError(ExpectError):
    """The buffer reached ``max_buffer`` without a match.

    Nothing was dropped: consume data with another ``expect`` or drop it with
    ``clear()`` to go on. The same class for both front ends.
    """


_E = TypeVar("_E", bound=ExpectError)


@final
@attrs.frozen
class ExpectMatch(Generic[AnyStr]):
    """What ``Expect.expect`` found."""

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


@final
class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


@final
class _EndOfStream:
    def __repr__(self) -> str:
        return "END_OF_STREAM"


#: :meth:`Matcher.next_match`: no match yet; feed more data.
NEED_DATA: Final = _NeedData()
#: :meth:`Matcher.next_match`: no match, and the stream has ended.
END_OF_STREAM: Final = _EndOfStream()


def _describe(pattern: Pattern) -> str:
    if isinstance(pattern, re.Pattern):
        return f"re.compile({pattern.pattern!r})"
    return repr(pattern)


def _tail(data: str | bytes) -> str:
    if len(data) <= TAIL:
        return repr(data)
    return f"...{data[-TAIL:]!r}"


def check_size(name: str, value: object) -> int:
    """*value* if it is an int >= 1, else a :exc:`ValueError` naming *name*."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


@final
@attrs.frozen
class _Compiled:
    regex: re.Pattern[Any]
    #: How far back from the previous search end a new match can start, for
    #: an exact pattern (its length minus one); ``None`` for a regex, whose
    #: reach is the matcher's search window.
    overlap: int | None


@final
@attrs.frozen(eq=False)  # compared and hashed by identity: the key of search progress
class Patterns:
    """Patterns checked and compiled for a :class:`Matcher` (of one mode, text or bytes)."""

    #: The patterns as passed.
    given: tuple[Pattern, ...]
    #: Each one as a regex, with how far back a search must reach.
    compiled: tuple[_Compiled, ...]
    #: Whether they were compiled for a text-mode matcher.
    text: bool

    def describe(self) -> str:
        """The patterns as error messages name them."""
        if len(self.given) == 1:
            return _describe(self.given[0])
        return "any of " + ", ".join(_describe(p) for p in self.given)


@final
class Matcher(Generic[AnyStr]):
    """A buffer of received data, searched for patterns; no I/O.

    **Bytes in.** :meth:`feed` appends what was received (decoded
    incrementally in text mode, so a character split across two chunks is
    decoded whole); :meth:`feed_eof` records the end of the stream. Nothing
    is ever dropped except by a match or :meth:`clear`. Memory is bounded by
    the caller: read at most :attr:`room` bytes before each :meth:`feed`
    (with an error handler that expands a byte, such as
    ``"backslashreplace"``, text may exceed *max_buffer* by that factor).

    **Matches out.** :meth:`next_match` finds, of all patterns, the complete
    match that starts earliest (on a tie the pattern listed first), consumes
    the buffer up to its end and returns it. Searching is incremental: asked
    again with the same :class:`Patterns` object after a :meth:`feed`, it
    searches only the new data plus what a match ending in it could reach
    back over (an exact pattern's length minus one; a regex's
    *search_window*, or the whole buffer without one). A new
    :class:`Patterns` (a new ``expect`` call) searches the whole buffer.

    **Several pattern sets at once.** Each :class:`Patterns` object keeps its
    own search progress (the last :data:`MAX_PROGRESS` used), so code that
    polls two sets over one buffer in turn (a prompt, and a kernel-panic
    marker) neither searches the old data again nor, with a search window,
    finds anything else than it would alone. A match or :meth:`clear`
    resets all progress: the buffer has moved.

    Args:
      encoding: decode with this codec (text mode: ``str`` buffers and
        matches); ``None`` keeps bytes.
      errors: the decoding error policy; with ``"strict"``, :meth:`next_match`
        raises the :exc:`UnicodeDecodeError` once nothing before the bad bytes
        matches, until :meth:`clear` drops them.
      max_buffer: the most unconsumed data (bytes, or characters) kept.
      search_window: how far back before new data a regex is searched;
        ``None`` searches the whole buffer.

    Raises:
      ValueError: an unknown *encoding* or *errors*, or a size that is not an
        int >= 1.
    """

    @overload
    def __init__(
        self: Matcher[bytes],
        *,
        encoding: None = None,
        errors: str = "replace",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Matcher[str],
        *,
        encoding: str,
        errors: str = "replace",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
    ) -> None: ...

    def __init__(
        self,
        *,
        encoding: str | None = None,
        errors: str = "replace",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        search_window: int | None = None,
    ) -> None:
        self._max_buffer = check_size("max_buffer", max_buffer)
        self._window = None if search_window is None else check_size("search_window", search_window)
        self._decoder: codecs.IncrementalDecoder | None = None
        if encoding is not None:
            try:
                self._decoder = codecs.getincrementaldecoder(encoding)(errors)
            except LookupError:
                raise ValueError(f"unknown encoding {encoding!r}") from None
            try:
                codecs.lookup_error(errors)
            except LookupError:
                raise ValueError(f"unknown error handler {errors!r}") from None
        self._encoding = encoding
        self._text = encoding is not None
        self._buf: bytearray | str = "" if self._text else bytearray()
        self._eof = False
        #: A decoding error (``errors="strict"``) and the bytes from the bad
        #: ones on, kept until clear() drops the bad ones.
        self._decode_error: UnicodeDecodeError | None = None
        self._undecoded = b""
        #: How much of the buffer each recent Patterns object has searched
        #: (by identity; oldest first, at most MAX_PROGRESS of them).
        self._progress: dict[Patterns, int] = {}
        empty: Any = "" if self._text else b""
        self._before: Any = empty
        self._after: Any = empty
        self._match: re.Match[Any] | None = None

    # ------------------------------------------------------------ state

    @property
    def encoding(self) -> str | None:
        """The codec received data is decoded with, or ``None`` in byte mode."""
        return self._encoding

    @property
    def max_buffer(self) -> int:
        """The most unconsumed data kept (bytes, or characters in text mode); settable."""
        return self._max_buffer

    @max_buffer.setter
    def max_buffer(self, value: int) -> None:
        self._max_buffer = check_size("max_buffer", value)

    @property
    def search_window(self) -> int | None:
        """How far back before new data a regex is searched (``None``: everything); settable."""
        return self._window

    @search_window.setter
    def search_window(self, value: int | None) -> None:
        self._window = None if value is None else check_size("search_window", value)

    @property
    def buffer(self) -> AnyStr:
        """What was received and not yet consumed by a match (a copy)."""
        return cast("AnyStr", self._buf if isinstance(self._buf, str) else bytes(self._buf))

    @property
    def room(self) -> int:
        """How many bytes to read at most before the next :meth:`feed` (0 when full)."""
        return max(0, self._max_buffer - len(self._buf))

    @property
    def before(self) -> AnyStr:
        """What came before the last match (empty before the first)."""
        return cast("AnyStr", self._before)

    @property
    def after(self) -> AnyStr:
        """The text of the last match (empty before the first)."""
        return cast("AnyStr", self._after)

    @property
    def match(self) -> re.Match[AnyStr] | None:
        """The last match, or ``None`` before the first."""
        return self._match

    @property
    def eof(self) -> bool:
        """Whether :meth:`feed_eof` was called (data may still be in :attr:`buffer`)."""
        return self._eof

    # ------------------------------------------------------------ bytes in

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received *data* to the buffer (decoding it in text mode).

        Raises:
          RuntimeError: after :meth:`feed_eof`.
        """
        if self._eof:
            raise RuntimeError("cannot feed data after the end of stream (feed_eof)")
        if self._decoder is None:
            assert isinstance(self._buf, bytearray)
            self._buf += data
        elif data:
            self._decode(bytes(data), final=False)

    def feed_eof(self) -> None:
        """Record the end of the stream; flushes the decoder. Idempotent."""
        if not self._eof:
            self._eof = True
            if self._decoder is not None:
                self._decode(b"", final=True)

    def _decode(self, data: bytes, *, final: bool) -> None:
        decoder = self._decoder
        assert decoder is not None
        assert isinstance(self._buf, str)
        try:
            self._buf += decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            # exc.object is what the decoder held plus *data*: keep what
            # decodes before the bad bytes, and the rest raw, so nothing
            # received is lost; next_match() raises exc until clear().
            held = exc.object
            decoder.reset()
            self._buf += decoder.decode(held[: exc.start])
            self._undecoded = bytes(held[exc.start :])
            self._decode_error = exc

    def clear(self) -> AnyStr:
        """Drop everything buffered and return it.

        After a decoding error (``errors="strict"``) this also drops the bytes
        that could not be decoded; what came after them is decoded again.
        """
        data = self.buffer
        self._buf = "" if self._text else bytearray()
        self._progress.clear()
        error, rest = self._decode_error, self._undecoded
        if error is not None:
            self._decode_error, self._undecoded = None, b""
            self._decode(rest[error.end - error.start :], final=self._eof)
        return data

    # ------------------------------------------------------------ matches out

    def compile(self, patterns: Pattern | Sequence[Pattern] | Patterns) -> Patterns:
        """Check and compile *patterns* (one, or a list) for this matcher.

        Raises:
          TypeError: a pattern of the wrong kind (a ``bytes`` pattern in text
            mode, a ``str`` regex in byte mode, not a pattern at all).
          ValueError: an empty list or an empty exact pattern.
        """
        if isinstance(patterns, Patterns):
            if patterns.text != self._text:
                raise ValueError("these Patterns were compiled for another kind of Matcher")
            return patterns
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
        compiled = tuple(self._compile_one(p) for p in given)
        return Patterns(given, compiled, self._text)

    def _compile_one(self, pattern: object) -> _Compiled:
        mode = "text" if self._text else "byte"
        if isinstance(pattern, re.Pattern):
            if isinstance(pattern.pattern, str) != self._text:
                kind = "str" if self._text else "bytes"
                raise TypeError(
                    f"pattern {_describe(pattern)} must be a {kind} regex "
                    f"(this Expect is in {mode} mode)"
                )
            return _Compiled(pattern, None)
        if not isinstance(pattern, str | bytes):
            raise TypeError(
                "a pattern must be str, bytes or a re.compile() pattern, "
                f"got {type(pattern).__name__}"
            )
        if not pattern:
            raise ValueError("an empty pattern would match at once: pass a non-empty one")
        if self._text and not isinstance(pattern, str):
            raise TypeError(
                f"pattern {pattern!r} is bytes, but this Expect decodes to str "
                f"(encoding={self._encoding!r}): pass a str"
            )
        # An exact match ending in new data starts at most len - 1 before it.
        if isinstance(pattern, str):
            if self._text:
                return _Compiled(re.compile(re.escape(pattern)), len(pattern) - 1)
            pattern = pattern.encode("utf-8")
        return _Compiled(re.compile(re.escape(pattern)), len(pattern) - 1)

    def next_match(
        self, patterns: Pattern | Sequence[Pattern] | Patterns
    ) -> ExpectMatch[AnyStr] | _NeedData | _EndOfStream:
        """The earliest complete match of *patterns*, consumed; or why there is none.

        Pass the same :class:`Patterns` (from :meth:`compile`) on each call
        while waiting, so each search covers only what is new.

        Returns:
          An :class:`ExpectMatch` (the buffer now starts after it, and
          :attr:`before`, :attr:`after`, :attr:`match` describe it);
          :data:`NEED_DATA` (read at most :attr:`room` bytes, :meth:`feed`
          them, ask again); or :data:`END_OF_STREAM` (no match will come).

        Raises:
          UnicodeDecodeError: ``errors="strict"`` and undecodable bytes follow
            the buffer; again on every call until :meth:`clear`.
          ExpectBufferFullError: the buffer holds *max_buffer* and nothing matches.
          TypeError, ValueError: as :meth:`compile`.
        """
        compiled = self.compile(patterns)
        found = self._search(compiled)
        if found is not None:
            return self._consume(compiled, *found)
        self._progress.pop(compiled, None)  # re-inserted as the newest
        self._progress[compiled] = len(self._buf)
        if len(self._progress) > MAX_PROGRESS:
            del self._progress[next(iter(self._progress))]
        if self._decode_error is not None:
            raise self._decode_error.with_traceback(None)
        if self._eof:
            return END_OF_STREAM
        if self.room <= 0:
            data = self.buffer
            raise ExpectBufferFullError(
                f"expect buffer is full ({self._max_buffer}) with no match for "
                f"{compiled.describe()}; consume or clear() it. End of the buffer: {_tail(data)}",
                compiled.given,
                data,
            )
        return NEED_DATA

    def error(self, cls: type[_E], what: str, patterns: Patterns) -> _E:
        """A *cls* error saying *what* happened while waiting for *patterns*.

        The message shows the end of the unmatched data, as in ``"timed out
        after 5 s waiting for b'login: '; received and unmatched (13):
        b'U-Boot 2024\\r\\n'"``.
        """
        data = self.buffer
        return cls(
            f"{what} waiting for {patterns.describe()}; "
            f"received and unmatched ({len(data)}): {_tail(data)}",
            patterns.given,
            data,
        )

    def _search(self, patterns: Patterns) -> tuple[int, int] | None:
        """(pattern index, search start) of the earliest match, first listed on ties."""
        buf = self._buf
        searched = self._progress.get(patterns, 0)
        window = self._window
        best: tuple[int, int] | None = None
        best_start = -1
        for index, pattern in enumerate(patterns.compiled):
            overlap = pattern.overlap
            if overlap is None and window is not None:
                overlap = window - 1
            start = 0 if searched == 0 or overlap is None else max(0, searched - overlap)
            found = pattern.regex.search(buf, start)
            if found is not None and (best is None or found.start() < best_start):
                best, best_start = (index, start), found.start()
        return best

    def _consume(self, patterns: Patterns, index: int, start: int) -> ExpectMatch[AnyStr]:
        buf = self._buf
        # Match again on an immutable copy: a match on the bytearray would
        # change under the caller's feet when we consume from it.
        data: str | bytes = buf if isinstance(buf, str) else bytes(buf)
        found = patterns.compiled[index].regex.search(data, start)
        assert found is not None
        before, after = data[: found.start()], found.group(0)
        if isinstance(buf, str):
            self._buf = buf[found.end() :]
        else:
            del buf[: found.end()]
        self._progress.clear()
        self._before, self._after, self._match = before, after, found
        return ExpectMatch(
            index=index,
            pattern=patterns.given[index],
            match=cast("re.Match[AnyStr]", found),
            before=cast("AnyStr", before),
            after=cast("AnyStr", after),
        )
