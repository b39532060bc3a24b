"""Expect: matching across chunks, which match wins, cancellation, errors, transcript."""

from __future__ import annotations

import ast
import inspect
import io
import logging
import random
import re
from pathlib import Path

import pytest
import trio
import trio.testing

import trioserial.anyio
from trioserial import (
    Expect,
    ExpectBufferFullError,
    ExpectEOFError,
    ExpectError,
    ExpectTimeoutError,
)
from trioserial.testing import open_pty_pair


class ChunkStream(trio.abc.ReceiveStream):
    """Delivers the chunks put into *send*, one per receive (split at
    ``max_bytes``); ``b""`` once
    *send* is closed. A cancelled receive takes nothing (a memory channel's
    guarantee), like :class:`~trioserial.AsyncSerial`."""

    def __init__(self) -> None:
        self.send, self._receive = trio.open_memory_channel[bytes](1000)
        self._rest = b""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._rest:
            await trio.lowlevel.checkpoint()
            chunk = self._rest
        else:
            try:
                chunk = await self._receive.receive()
            except trio.EndOfChannel:
                return b""
        size = len(chunk) if max_bytes is None else max_bytes
        chunk, self._rest = chunk[:size], chunk[size:]
        return chunk

    async def aclose(self) -> None:
        await self._receive.aclose()


def chunked(*chunks: bytes, eof: bool = False) -> ChunkStream:
    stream = ChunkStream()
    for chunk in chunks:
        stream.send.send_nowait(chunk)
    if eof:
        stream.send.close()
    return stream


async def test_exact_match_before_after_and_consumption() -> None:
    ex = Expect(chunked(b"booting...\r\nlogin: rest"))
    result = await ex.expect(b"login: ")
    assert (result.index, result.pattern) == (0, b"login: ")
    assert result.before == ex.before == b"booting...\r\n"
    assert result.after == ex.after == b"login: "
    assert result.match.span() == (12, 19)
    assert ex.match is result.match
    assert ex.buffer == b"rest"


async def test_exact_patterns_are_not_regexes() -> None:
    ex = Expect(chunked(b"x$ y.z"))
    assert (await ex.expect("$ ")).before == b"x"  # a str is encoded (UTF-8)
    with trio.testing.assert_checkpoints():
        assert (await ex.expect(b".")).before == b"y"


@pytest.mark.parametrize("split", range(1, 7))
async def test_pattern_split_over_two_receives(split: int) -> None:
    data = b"login: "
    ex = Expect(chunked(b"xx" + data[:split], data[split:] + b"yy"))
    assert (await ex.expect(data)).before == b"xx"
    assert ex.buffer == b"yy"


async def test_pattern_split_over_many_receives() -> None:
    data = b"noise Password: tail"
    ex = Expect(chunked(*(bytes([b]) for b in data)))
    result = await ex.expect([b"Password: ", re.compile(rb"word: t")])
    assert (result.index, result.before) == (0, b"noise ")
    assert ex.buffer == b""  # "tail" has not been received yet
    assert (await ex.expect(re.compile(rb"t(ai)l"))).match.group(1) == b"ai"


async def test_earliest_match_wins_then_first_listed() -> None:
    ex = Expect(chunked(b"abc abc a"))
    # "bc" starts before "c", whatever the order of the list.
    assert (await ex.expect([b"c", b"bc"])).index == 1
    # Both start at the same place: the first listed wins.
    assert (await ex.expect([b"ab", b"abc"])).after == b"ab"
    assert (await ex.expect([re.compile(rb"c\s*a"), b"c"])).after == b"c a"


async def test_complete_match_does_not_wait_for_an_earlier_incomplete_one() -> None:
    stream = chunked(b"log in")
    ex = Expect(stream)
    # "login" might still come... but "in" is complete now, so it wins.
    assert (await ex.expect([b"login", b"in"])).index == 1


async def test_clear_while_waiting_restarts_the_search() -> None:
    stream = chunked(b"xxxxxx")
    ex = Expect(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ex.expect, b"abc")
            await trio.testing.wait_all_tasks_blocked()
            assert ex.clear() == b"xxxxxx"
            stream.send.send_nowait(b"abc")
    assert ex.before == b""
    assert ex.after == b"abc"


async def test_a_cancelled_expect_does_not_consume_a_ready_match(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ex = Expect(chunked(b"login: "))
    with trio.move_on_after(1):
        await ex.expect(b"nothing")  # fills the buffer
    with trio.CancelScope() as scope:
        scope.cancel()
        await ex.expect(b"login: ")
    assert ex.buffer == b"login: "
    assert ex.match is None


async def test_regex_groups_and_anchor() -> None:
    ex = Expect(chunked(b"eth0: 10.0.0.7/24\n", b"ok\n"))
    result = await ex.expect(re.compile(rb"(\w+): (?P<ip>[\d.]+)/(\d+)"))
    assert result.match.group(1) == b"eth0"
    assert result.match.group("ip") == b"10.0.0.7"
    assert result.match.groups() == (b"eth0", b"10.0.0.7", b"24")
    # ^ anchors right after the previous match.
    assert (await ex.expect(re.compile(rb"^\n"))).before == b""
    assert (await ex.expect(re.compile(rb"^ok"))).before == b""


async def test_returned_match_survives_later_consumption() -> None:
    ex = Expect(chunked(b"first second third"))
    first = await ex.expect(re.compile(rb"(\w+) "))
    await ex.expect(b"third")
    assert first.match.group(1) == b"first"
    assert first.before == b""


async def test_regex_split_over_chunks_with_a_search_window() -> None:
    ex = Expect(chunked(b"val", b"ue=4", b"2;"), search_window=16)
    assert (await ex.expect(re.compile(rb"value=(\d+);"))).match.group(1) == b"42"


async def test_search_window_bounds_regex_match_length() -> None:
    ex = Expect(chunked(b"<" + b"x" * 20, b">", eof=True), search_window=8)
    with pytest.raises(ExpectEOFError):
        await ex.expect(re.compile(rb"<x*>"))
    # Exact patterns look back their own length, whatever the window.
    assert (await ex.expect(b"<" + b"x" * 20 + b">")).before == b""


async def test_timeout_error_names_pattern_and_tail_and_keeps_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = chunked(b"U-Boot 2024\r\n" + b"." * 300)
    ex = Expect(stream)
    with pytest.raises(ExpectTimeoutError) as info:
        await ex.expect(["login: ", re.compile(rb"\$ ")], timeout=5)
    message = str(info.value)
    assert "timed out after 5 s" in message
    assert "any of 'login: ', re.compile(b'\\\\$ ')" in message
    assert "received and unmatched (313)" in message
    assert message.endswith("...b'" + "." * 256 + "'")
    assert isinstance(info.value, trio.TooSlowError)
    assert info.value.received == b"U-Boot 2024\r\n" + b"." * 300
    stream.send.send_nowait(b"login: ")
    assert (await ex.expect(b"login: ")).before.startswith(b"U-Boot 2024\r\n...")


async def test_eof_error_shows_what_was_received() -> None:
    ex = Expect(chunked(b"Kernel panic", eof=True))
    with pytest.raises(ExpectEOFError, match=r"end of stream while waiting for b'login: '.*"):
        await ex.expect(b"login: ")
    assert ex.eof
    with pytest.raises(trio.EndOfChannel, match="Kernel panic"):
        await ex.expect(b"login: ")
    # What is buffered can still be matched after the end.
    assert (await ex.expect(b"panic")).before == b"Kernel "


async def test_buffer_full_error_keeps_everything() -> None:
    ex = Expect(chunked(b"a" * 6, b"b" * 6, b"login: "), max_buffer=10, receive_size=4)
    with pytest.raises(ExpectBufferFullError, match=r"expect buffer is full \(10\)") as info:
        await ex.expect(b"login: ")
    assert info.value.received == ex.buffer == b"a" * 6 + b"b" * 4
    assert ex.clear() == b"a" * 6 + b"b" * 4
    assert (await ex.expect(b"login: ")).before == b"bb"


async def test_a_full_buffer_can_be_enlarged_instead_of_cleared() -> None:
    ex = Expect(chunked(b"a" * 6, b"login: "), max_buffer=4)
    assert (ex.max_buffer, ex.search_window, ex.encoding) == (4, None, None)
    with pytest.raises(ExpectBufferFullError):
        await ex.expect(b"login: ")
    ex.max_buffer = 64
    assert (await ex.expect(b"login: ")).before == b"a" * 6
    with pytest.raises(ValueError, match="max_buffer must be an int >= 1"):
        ex.max_buffer = -1
    ex.search_window = 8
    assert ex.search_window == 8


async def test_max_bytes_respects_the_buffer_room() -> None:
    ex = Expect(chunked(b"abcd"), max_buffer=4)
    assert (await ex.expect(b"d")).before == b"abc"


@pytest.mark.parametrize("seed", range(12))
async def test_cancellation_at_random_points_loses_nothing(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    rng = random.Random(seed)
    stream = ChunkStream()
    records = [b"rec%03d;" % i for i in range(40)]
    data = b"".join(records)
    current = trio.CancelScope()
    cancels = 0
    seen = b""
    ex = Expect(stream)

    async def feed() -> None:
        nonlocal cancels
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 11)
            await stream.send.send(data[pos : pos + size])
            pos += size
            if rng.random() < 0.5:
                # Lands after the chunk was handed over, before expect() has
                # looked at it: the chunk must still end up in the buffer.
                current.cancel()
                cancels += 1
            await trio.sleep(rng.random())  # autojump clock: virtual time

    async def consume() -> None:
        nonlocal current, seen
        for _ in records:
            while True:
                with trio.CancelScope() as current, trio.move_on_after(rng.random() * 0.5):
                    result = await ex.expect([re.compile(rb"rec(\d+);"), b"never"])
                    break
                # The timeout= flavour too.
                with pytest.raises(ExpectTimeoutError):
                    await ex.expect(b"never", timeout=rng.random() * 0.1)
            seen += result.before + result.after

    # Virtual time: if a byte were lost, consume() would time out for ever.
    with trio.fail_after(10_000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            await consume()
    assert seen == data
    assert cancels > 5


async def test_cancelled_expect_on_a_pty_loses_nothing() -> None:
    port, device = await open_pty_pair()
    async with port, device:
        ex = Expect(port)
        await device.send_all(b"Password")
        # Wherever these cancellations land (before or after the kernel hands
        # the bytes over), the outcome below is the same.
        with trio.move_on_after(0.02):
            await ex.expect(b"Password: ")
        with trio.CancelScope() as scope:
            scope.cancel()
            await ex.expect(b"Password: ")
        await device.send_all(b": ok")
        with trio.fail_after(5):
            assert (await ex.expect(b"Password: ")).before == b""
            assert (await ex.expect(b"ok")).before == b""


async def test_send_and_sendline() -> None:
    left, right = trio.testing.memory_stream_pair()
    ex = Expect(left, line_ending=b"\r\n")
    await ex.sendline("root")
    await ex.send(b"\x03")
    await ex.sendline()
    assert await right.receive_some() == b"root\r\n\x03\r\n"
    default = Expect(left)
    await default.sendline(b"ls")
    assert await right.receive_some() == b"ls\r"
    with pytest.raises(TypeError, match="data must be str or bytes-like, got int"):
        await ex.send(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"is not a trio\.abc\.SendStream"):
        await Expect(chunked()).send(b"x")


async def test_text_mode_decodes_across_chunks() -> None:
    data = "températur: 21 °C\n".encode()
    split = data.index(b"\xc3") + 1  # in the middle of "é"
    ex = Expect(chunked(data[:split], data[split:] + b"\xff!"), encoding="utf-8")
    result = await ex.expect(re.compile(r"(\d+) °C"))
    assert result.before == "températur: "
    assert result.match.group(1) == "21"
    assert (await ex.expect("!")).before == "\n\ufffd"  # errors="replace" by default
    with pytest.raises(TypeError, match="is bytes, but this Expect decodes to str"):
        await ex.expect(b"x")
    with pytest.raises(TypeError, match="must be a str regex"):
        await ex.expect(re.compile(rb"x"))


async def test_strict_decoding_raises() -> None:
    ex = Expect(chunked(b"\xff"), encoding="ascii", errors="strict")
    with pytest.raises(UnicodeDecodeError):
        await ex.expect("x")


async def test_strict_decoding_error_keeps_what_was_received() -> None:
    stream = chunked(b"login: r", b"oot\r\n\xe2\x82", b"\xffok # ")
    ex = Expect(stream, encoding="utf-8", errors="strict")
    with trio.fail_after(5):  # a lost byte would hang
        # What decoded before the bad byte is buffered and can still match.
        assert (await ex.expect("root")).before == "login: "
        with pytest.raises(UnicodeDecodeError) as info:
            await ex.expect("# ")
        assert info.value.object[info.value.start : info.value.end] == b"\xe2\x82"
        assert ex.buffer == "\r\n"
        # The error stays until clear(), which drops the undecodable bytes only.
        with pytest.raises(UnicodeDecodeError):
            await ex.expect("# ")
        assert ex.clear() == "\r\n"
        with pytest.raises(UnicodeDecodeError) as info:  # the next bad byte
            await ex.expect("# ")
        assert info.value.object[info.value.start : info.value.end] == b"\xff"
        assert ex.clear() == ""
        assert (await ex.expect("# ")).before == "ok "


async def test_unknown_error_handler_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown error handler 'bogus'"):
        Expect(chunked(), encoding="utf-8", errors="bogus")


async def test_bad_patterns_and_options() -> None:
    ex = Expect(chunked())
    with pytest.raises(ValueError, match="empty pattern"):
        await ex.expect(b"")
    with pytest.raises(ValueError, match="at least one pattern"):
        await ex.expect([])
    with pytest.raises(TypeError, match="must be a bytes regex"):
        await ex.expect(re.compile("x"))
    with pytest.raises(TypeError, match="got int"):
        await ex.expect(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a pattern must be str, bytes or a re\.compile"):
        await ex.expect([b"x", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_buffer must be an int >= 1, got 0"):
        Expect(chunked(), max_buffer=0)
    with pytest.raises(ValueError, match="search_window must be an int >= 1"):
        Expect(chunked(), search_window=0)
    with pytest.raises(ValueError, match="unknown encoding 'nope'"):
        Expect(chunked(), encoding="nope")
    with pytest.raises(TypeError, match=r"must be a trio\.abc\.ReceiveStream"):
        Expect(b"x")  # type: ignore[call-overload]


async def test_two_tasks_cannot_expect_at_once() -> None:
    ex = Expect(chunked())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.expect, b"x")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError, match="already waiting in expect"):
            await ex.expect(b"y")
        nursery.cancel_scope.cancel()


async def test_transcript_to_a_file(autojump_clock: trio.testing.MockClock) -> None:
    left, right = trio.testing.memory_stream_pair()
    transcript = io.StringIO()
    ex = Expect(left, transcript=transcript)
    await trio.sleep(1.5)  # autojump clock: virtual time
    await right.send_all(b"login: \xff")
    await ex.expect(b"login: ")
    await ex.sendline(b"root")
    await right.aclose()
    with pytest.raises(ExpectEOFError):
        await ex.expect(b"#")
    assert transcript.getvalue().splitlines() == [
        "   1.500000 recv b'login: \\xff'",
        "   1.500000 send b'root\\r'",
        "   1.500000 eof",
    ]


async def test_transcript_to_a_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.serial")
    left, right = trio.testing.memory_stream_pair()
    ex = Expect(left, transcript=logger)
    with caplog.at_level(logging.DEBUG, logger="test.serial"):
        await ex.send(b"AT\r")
        await right.send_all(b"OK\r\n")
        await ex.expect(b"OK")
    lines = [record.getMessage() for record in caplog.records if record.name == "test.serial"]
    assert [line.split(maxsplit=1)[1] for line in lines] == ["send b'AT\\r'", "recv b'OK\\r\\n'"]


def test_errors_are_expect_errors() -> None:
    for cls in (ExpectTimeoutError, ExpectEOFError, ExpectBufferFullError):
        assert issubclass(cls, ExpectError)


async def test_timeout_zero_still_matches_what_is_buffered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = chunked(b"login: ")
    ex = Expect(stream)
    with trio.move_on_after(1):
        await ex.expect(b"nothing")  # fills the buffer
    # "Wait 0 s" means: look at what has arrived, wait for nothing more.
    assert (await ex.expect(b"login", timeout=0)).after == b"login"
    stream.send.send_nowait(b"late")
    with pytest.raises(ExpectTimeoutError, match="timed out after 0 s"):
        await ex.expect(b"#", timeout=0)
    assert ex.buffer == b": "  # the expired wait took nothing from the stream
    assert (await ex.expect(b"late")).before == b": "
    with pytest.raises(ValueError, match="timeout must be non-negative"):
        await ex.expect(b"x", timeout=-1)


async def test_a_failing_transcript_loses_no_received_data() -> None:
    transcript = io.StringIO()
    ex = Expect(chunked(b"login: "), transcript=transcript)
    transcript.close()  # say, the harness closed its log file too early
    with pytest.raises(ValueError, match="closed file"):
        await ex.expect(b"login: ")
    assert ex.buffer == b"login: "


@pytest.mark.parametrize(
    ("page", "cls"), [("reference.rst", Expect), ("anyio.rst", trioserial.anyio.Expect)]
)
def test_documented_signature_is_the_real_one(page: str, cls: type) -> None:
    """The docs spell Expect's signature out (the typing-only overloads would
    show ``**options`` instead): it must stay the constructor's."""
    text = (Path(__file__).resolve().parent.parent / "docs" / page).read_text()
    documented = re.search(r"^\.\. autoclass:: Expect(\(.*\))$", text, re.MULTILINE)
    assert documented is not None
    function = ast.parse(f"def f{documented.group(1)}: pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    args = function.args
    names = [a.arg for a in args.args + args.kwonlyargs]
    defaults = [None if d is None else ast.literal_eval(d) for d in args.kw_defaults]
    real = inspect.signature(cls).parameters.values()
    assert names == [p.name for p in real]
    assert defaults == [p.default for p in real if p.kind is p.KEYWORD_ONLY]
