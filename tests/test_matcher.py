"""The sans-IO matcher behind both Expect front ends, tested with plain calls: no event loop."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from trioserial._matcher import (
    END_OF_STREAM,
    MAX_PROGRESS,
    NEED_DATA,
    ExpectBufferFullError,
    ExpectError,
    ExpectMatch,
    Matcher,
    Patterns,
)


def matched(result: object) -> ExpectMatch[bytes]:
    assert isinstance(result, ExpectMatch), result
    return result


def text_matched(result: object) -> ExpectMatch[str]:
    assert isinstance(result, ExpectMatch), result
    return result


def test_feed_then_match_consumes_up_to_its_end() -> None:
    m = Matcher()
    assert m.next_match(b"login: ") is NEED_DATA
    m.feed(b"booting...\r\nlogin: rest")
    result = matched(m.next_match(b"login: "))
    assert (result.index, result.pattern) == (0, b"login: ")
    assert (result.before, result.after) == (b"booting...\r\n", b"login: ")
    assert result.match.span() == (12, 19)
    assert (m.before, m.after, m.match) == (b"booting...\r\n", b"login: ", result.match)
    assert m.buffer == b"rest"
    assert m.next_match(b"login: ") is NEED_DATA
    assert m.buffer == b"rest"  # a search that found nothing consumed nothing


def test_nothing_before_the_first_match() -> None:
    m = Matcher()
    assert (m.before, m.after, m.match, m.buffer, m.eof) == (b"", b"", None, b"", False)
    t = Matcher(encoding="utf-8")
    assert (t.before, t.after, t.buffer) == ("", "", "")
    assert repr(NEED_DATA) == "NEED_DATA"
    assert repr(END_OF_STREAM) == "END_OF_STREAM"


def test_exact_patterns_are_not_regexes_and_str_is_utf8_in_byte_mode() -> None:
    m = Matcher()
    m.feed(bytearray(b"x$ y.z \xc3\xa9"))
    assert matched(m.next_match("$ ")).before == b"x"
    assert matched(m.next_match(b".")).before == b"y"
    assert matched(m.next_match("é")).before == b"z "


@pytest.mark.parametrize("split", range(1, 7))
def test_pattern_split_over_two_feeds(split: int) -> None:
    data = b"login: "
    m = Matcher()
    patterns = m.compile(data)
    m.feed(b"xx" + data[:split])
    assert m.next_match(patterns) is NEED_DATA
    m.feed(memoryview(data[split:] + b"yy"))
    assert matched(m.next_match(patterns)).before == b"xx"
    assert m.buffer == b"yy"


def test_earliest_complete_match_wins_then_first_listed() -> None:
    m = Matcher()
    m.feed(b"abc abc a")
    assert matched(m.next_match([b"c", b"bc"])).index == 1  # "bc" starts first
    assert matched(m.next_match([b"ab", b"abc"])).after == b"ab"  # a tie: first listed
    assert matched(m.next_match([re.compile(rb"c\s*a"), b"c"])).after == b"c a"
    m.feed(b"log in")
    # "login" might still come, but "in" is complete now: it wins.
    assert matched(m.next_match([b"login", b"in"])).index == 1


def test_regex_groups_and_anchor_after_the_previous_match() -> None:
    m = Matcher()
    m.feed(b"eth0: 10.0.0.7/24\nok\n")
    result = matched(m.next_match(re.compile(rb"(\w+): (?P<ip>[\d.]+)/(\d+)")))
    assert result.match.groups() == (b"eth0", b"10.0.0.7", b"24")
    assert result.match.group("ip") == b"10.0.0.7"
    assert m.next_match(re.compile(rb"^ok")) is NEED_DATA  # "\n" comes first
    assert matched(m.next_match(re.compile(rb"^\n"))).before == b""
    assert matched(m.next_match(re.compile(rb"^ok"))).before == b""


def test_a_returned_match_survives_later_consumption() -> None:
    m = Matcher()
    m.feed(b"first second third")
    first = matched(m.next_match(re.compile(rb"(\w+) ")))
    matched(m.next_match(b"third"))
    assert first.match.group(1) == b"first"
    assert first.match.string == b"first second third"


def test_search_window_bounds_a_regex_but_never_an_exact_pattern() -> None:
    m = Matcher(search_window=8)
    regex = m.compile(re.compile(rb"<x*>"))
    exact = m.compile(b"<" + b"x" * 20 + b">")
    m.feed(b"<" + b"x" * 20)
    assert m.next_match(regex) is NEED_DATA
    assert m.next_match(exact) is NEED_DATA
    m.feed(b">")
    # The regex's match starts more than 8 bytes before the new data: missed.
    assert m.next_match(regex) is NEED_DATA
    assert matched(m.next_match(exact)).before == b""


def test_new_patterns_search_the_whole_buffer_again() -> None:
    m = Matcher(search_window=4)
    waiting = m.compile(re.compile(rb"value=(\d+);"))
    m.feed(b"value=")
    assert m.next_match(waiting) is NEED_DATA
    m.feed(b"42;")
    # The match starts 6 bytes before the new data; the window reaches back 3.
    assert m.next_match(waiting) is NEED_DATA
    # A fresh compile (a new expect() call) starts from the beginning.
    assert matched(m.next_match(re.compile(rb"value=(\d+);"))).match.group(1) == b"42"


def test_without_a_window_a_regex_searches_the_whole_buffer() -> None:
    m = Matcher()
    regex = m.compile(re.compile(rb"<x*>"))
    m.feed(b"<" + b"x" * 100)
    assert m.next_match(regex) is NEED_DATA
    m.feed(b">")
    assert matched(m.next_match(regex)).after == b"<" + b"x" * 100 + b">"


def test_clear_returns_the_buffer_and_restarts_the_search() -> None:
    m = Matcher()
    patterns = m.compile(b"abc")
    m.feed(b"xxxxab")
    assert m.next_match(patterns) is NEED_DATA
    assert m.clear() == b"xxxxab"
    m.feed(b"c")  # with the buffer gone, "ab" + "c" is no match
    assert m.next_match(patterns) is NEED_DATA
    m.feed(b"abc")
    assert matched(m.next_match(patterns)).before == b"c"


def test_end_of_stream() -> None:
    m = Matcher()
    m.feed(b"Kernel panic")
    m.feed_eof()
    m.feed_eof()  # idempotent
    assert m.eof
    assert m.next_match(b"login: ") is END_OF_STREAM
    # What is buffered can still be matched after the end.
    assert matched(m.next_match(b"panic")).before == b"Kernel "
    assert m.next_match(b"x") is END_OF_STREAM
    with pytest.raises(RuntimeError, match="cannot feed data after the end of stream"):
        m.feed(b"more")


def test_room_bounds_the_buffer_and_a_full_buffer_keeps_everything() -> None:
    m = Matcher(max_buffer=10)
    patterns = m.compile(b"login: ")
    assert m.room == 10
    m.feed(b"a" * 6)
    assert m.room == 4
    assert m.next_match(patterns) is NEED_DATA
    m.feed(b"b" * 4)
    assert m.room == 0
    with pytest.raises(ExpectBufferFullError, match=r"expect buffer is full \(10\)") as info:
        m.next_match(patterns)
    assert "with no match for b'login: '; consume or clear() it" in str(info.value)
    assert info.value.received == m.buffer == b"a" * 6 + b"b" * 4
    assert info.value.patterns == (b"login: ",)
    # A match in a full buffer is still found.
    assert matched(m.next_match(b"ab")).before == b"a" * 5
    assert m.room == 7


def test_error_names_the_patterns_and_shows_the_tail() -> None:
    m = Matcher()
    m.feed(b"U-Boot 2024\r\n" + b"." * 300)
    error = m.error(ExpectError, "timed out after 5 s", m.compile(["login: ", re.compile(rb"\$ ")]))
    message = str(error)
    assert message.startswith(
        "timed out after 5 s waiting for any of 'login: ', re.compile(b'\\\\$ '); "
        "received and unmatched (313): ...b'...."
    )
    assert message.endswith("." * 256 + "'")
    assert error.received == m.buffer
    assert error.patterns == ("login: ", re.compile(rb"\$ "))


def test_text_mode_decodes_across_feeds() -> None:
    data = "températur: 21 °C\n".encode()
    split = data.index(b"\xc3") + 1  # in the middle of "é"
    m = Matcher(encoding="utf-8")
    m.feed(data[:split])
    assert m.buffer == "temp"  # the half character waits in the decoder
    m.feed(data[split:] + b"\xff!")
    result = text_matched(m.next_match(re.compile(r"(\d+) °C")))
    assert (result.before, result.match.group(1)) == ("températur: ", "21")
    assert text_matched(m.next_match("!")).before == "\n\ufffd"  # errors="replace"
    m.feed(b"\xe2\x82")  # half of "€", then the end
    m.feed_eof()
    assert m.buffer == "\ufffd"


def test_strict_decoding_keeps_what_decoded_and_raises_until_clear() -> None:
    m = Matcher(encoding="utf-8", errors="strict")
    m.feed(b"login: r")
    m.feed(b"oot\r\n\xe2\x82")
    m.feed(b"\xffok # ")
    assert text_matched(m.next_match("root")).before == "login: "
    with pytest.raises(UnicodeDecodeError) as info:
        m.next_match("# ")
    assert info.value.object[info.value.start : info.value.end] == b"\xe2\x82"
    assert m.buffer == "\r\n"
    with pytest.raises(UnicodeDecodeError):  # again, until clear()
        m.next_match("# ")
    assert m.clear() == "\r\n"  # drops the bad bytes only
    with pytest.raises(UnicodeDecodeError) as info:
        m.next_match("# ")
    assert info.value.object[info.value.start : info.value.end] == b"\xff"
    assert m.clear() == ""
    assert text_matched(m.next_match("# ")).before == "ok "


def test_strict_decoding_of_a_truncated_character_at_the_end() -> None:
    m = Matcher(encoding="utf-8", errors="strict")
    m.feed(b"ok \xe2\x82")
    m.feed_eof()
    assert text_matched(m.next_match("ok")).after == "ok"
    with pytest.raises(UnicodeDecodeError):
        m.next_match("x")
    assert m.clear() == " "
    assert m.next_match("x") is END_OF_STREAM


def test_bad_patterns_and_options() -> None:
    m = Matcher()
    with pytest.raises(ValueError, match="empty pattern"):
        m.next_match(b"")
    with pytest.raises(ValueError, match="at least one pattern"):
        m.next_match([])
    with pytest.raises(TypeError, match="must be a bytes regex"):
        m.next_match(re.compile("x"))
    with pytest.raises(TypeError, match="got int"):
        m.next_match(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got bytearray"):
        m.next_match(bytearray(b"x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a pattern must be str, bytes or a re\.compile"):
        m.next_match([b"x", 3])  # type: ignore[list-item]
    t = Matcher(encoding="utf-8")
    with pytest.raises(TypeError, match="is bytes, but this Expect decodes to str"):
        t.next_match(b"x")
    with pytest.raises(TypeError, match="must be a str regex"):
        t.next_match(re.compile(rb"x"))
    with pytest.raises(ValueError, match="compiled for another kind of Matcher"):
        t.next_match(m.compile("x"))
    other = Matcher(search_window=5)  # same mode: compiled patterns carry over
    other.feed(b"x")
    assert matched(other.next_match(m.compile("x"))).after == b"x"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"max_buffer": 0}, "max_buffer must be an int >= 1, got 0"),
        ({"max_buffer": True}, "max_buffer must be an int >= 1, got True"),
        ({"search_window": 0}, "search_window must be an int >= 1, got 0"),
        ({"encoding": "nope"}, "unknown encoding 'nope'"),
        ({"encoding": "utf-8", "errors": "bogus"}, "unknown error handler 'bogus'"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            Matcher(**options)


def test_a_compiled_pattern_set_is_reusable_and_describes_itself() -> None:
    m = Matcher()
    patterns = m.compile([b"OK\r\n", re.compile(rb"ERROR")])
    assert isinstance(patterns, Patterns)
    assert m.compile(patterns) is patterns
    assert patterns.describe() == "any of b'OK\\r\\n', re.compile(b'ERROR')"
    assert m.compile(b"OK").describe() == "b'OK'"
    m.feed(b"AT\r\r\nOK\r\nAT+X\r\r\nERROR\r\n")
    assert matched(m.next_match(patterns)).index == 0
    assert matched(m.next_match(patterns)).index == 1


@pytest.mark.parametrize("window", [None, 6, 64])  # 6: the longest match
@pytest.mark.parametrize("seed", range(20))
def test_random_chunking_finds_every_record_once(seed: int, window: int | None) -> None:
    """Whatever the chunking, the matches are those of one search over all the data."""
    rng = random.Random(seed)
    records = [b"rec%03d;" % i + rng.randbytes(rng.randint(0, 12)) for i in range(60)]
    data = b"".join(records)
    m = Matcher(search_window=window, max_buffer=4096)
    patterns = m.compile([b";", re.compile(rb"rec(\d{3})")])
    expected = [
        (0 if found.group(0) == b";" else 1, found.group(0))
        for found in re.finditer(rb";|rec\d{3}", data)
    ]
    seen: list[tuple[int, bytes]] = []
    rebuilt = b""
    pos = 0
    while pos < len(data):
        size = min(rng.randint(1, 9), m.room)
        m.feed(data[pos : pos + size])
        pos += size
        while isinstance(result := m.next_match(patterns), ExpectMatch):
            seen.append((result.index, result.after))
            rebuilt += result.before + result.after
    m.feed_eof()
    assert m.next_match(patterns) is END_OF_STREAM
    assert seen == expected
    assert rebuilt + m.buffer == data  # nothing lost, nothing duplicated


def test_pattern_sets_keep_their_own_progress() -> None:
    """Two sets polled in turn over one buffer: each searches as if alone."""
    m = Matcher(search_window=4)
    prompt = m.compile(re.compile(rb"<x+>"))
    panic = m.compile(b"Kernel panic")
    m.feed(b"<xxxxxx")
    assert m.next_match(prompt) is NEED_DATA
    assert m.next_match(panic) is NEED_DATA
    m.feed(b"> Kernel pan")
    # Polling `panic` in between did not restart `prompt`'s search: its
    # match starts more than 4 bytes back, beyond the window, as when alone.
    assert m.next_match(prompt) is NEED_DATA
    assert m.next_match(panic) is NEED_DATA
    m.feed(b"ic")
    assert matched(m.next_match(panic)).before == b"<xxxxxx> "
    # Progress is kept for the MAX_PROGRESS sets used last: an older one
    # searches from the start again, as a new one would.
    m.feed(b"<xxxxxx")
    old = m.compile(re.compile(rb"<x+>"))
    assert m.next_match(old) is NEED_DATA
    for _ in range(MAX_PROGRESS):
        assert m.next_match(re.compile(rb"never")) is NEED_DATA
    m.feed(b">")
    assert matched(m.next_match(old)).after == b"<xxxxxx>"


def test_limits_can_change_on_the_way() -> None:
    m = Matcher(max_buffer=4)
    m.feed(b"abcd")
    with pytest.raises(ExpectBufferFullError):
        m.next_match(b"ef")
    m.max_buffer = 16  # make room instead of dropping data
    assert m.next_match(b"ef") is NEED_DATA
    m.feed(b"ef")
    assert matched(m.next_match(b"ef")).before == b"abcd"
    regex = m.compile(re.compile(rb"<x+>"))
    m.feed(b"<xxxxxx")
    assert m.next_match(regex) is NEED_DATA
    m.search_window = 2  # from now on a regex reaches back 1 byte
    m.feed(b">")
    assert m.next_match(regex) is NEED_DATA
    m.search_window = None
    assert matched(m.next_match(regex)).after == b"<xxxxxx>"
    with pytest.raises(ValueError, match="max_buffer must be an int >= 1, got 0"):
        m.max_buffer = 0
    with pytest.raises(ValueError, match=r"search_window must be an int >= 1, got 1\.5"):
        m.search_window = 1.5  # type: ignore[assignment]
    assert (m.max_buffer, m.search_window) == (16, None)
