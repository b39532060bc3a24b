"""The console's ZMODEM start detector (sans-IO, no event loop) and its replay stream.

The detector is fed the device's output in whatever chunks the port returns:
these tests cut real lrzsz start sequences at every byte boundary and check
that what is shown and what the transfer gets add up to the output, each
byte once.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from trioserial._console_zmodem import ReplayStream
from trioserial._zmodem_detect import Direction, ZmodemDetector, ZmodemStart

# What lrzsz writes first (captured from sz 0.12.21 and rz on a pty).
SZ_START = b"rz\r**\x18B00000000000000\r\x8a\x11"
RZ_START = b"**\x18B0100000023be50\r\x8a\x11"


def feed_all(chunks: list[bytes]) -> tuple[bytes, ZmodemStart | None, bytes]:
    """Feed *chunks* as the console does: (shown, start, what the transfer reads)."""
    detector = ZmodemDetector()
    shown = b""
    for i, chunk in enumerate(chunks):
        text, start = detector.feed(chunk)
        shown += text
        if start is not None:
            return shown, start, start.data + b"".join(chunks[i + 1 :])
    return shown, None, b""


@pytest.mark.parametrize(
    ("output", "direction"), [(SZ_START, Direction.RECEIVE), (RZ_START, Direction.SEND)]
)
def test_a_start_sequence_in_one_chunk(output: bytes, direction: Direction) -> None:
    before = b"$ some command\r\n"
    shown, start, rest = feed_all([before + output + b"more"])
    assert start is not None
    assert start.direction is direction
    header = output.index(b"**")
    assert shown == before + output[:header]
    assert rest == output[header:] + b"more"


@pytest.mark.parametrize("output", [SZ_START, RZ_START])
def test_a_start_sequence_cut_at_every_byte(output: bytes) -> None:
    stream = b"login: root\r\n# sz x\r\n" + output + b"DATA"
    header = stream.index(b"**")
    for cut in range(1, len(stream)):
        shown, start, rest = feed_all([stream[:cut], stream[cut:]])
        assert start is not None, cut
        # The transfer gets every byte from the header on, exactly once ...
        assert rest == stream[header:], cut
        # ... and the screen what came before it (and, cut inside the
        # header, the part of it that arrived first: it could not wait).
        inside = header < cut < header + 6
        assert shown == stream[: cut if inside else header], cut


def test_one_byte_at_a_time_and_random_chunks() -> None:
    stream = b"*" * 7 + b"**\x18B" + b"x" + SZ_START + b"tail"
    header = stream.index(b"rz\r") + 3
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    _, start, rest = feed_all(chunks)
    assert start is not None
    assert rest == stream[header:]
    rng = random.Random(4)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), 4))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        _, start, rest = feed_all(pieces)
        assert start is not None
        assert rest == stream[header:]


@pytest.mark.parametrize(
    "output",
    [
        b"**\x18B02",  # ZSINIT: not a start
        b"*\x18B00",  # one ZPAD
        b"**B00",  # no ZDLE
        b"**\x18A00",  # a binary header
        b"** B00 *** x*",
        b"",
    ],
)
def test_other_output_is_only_shown(output: bytes) -> None:
    assert feed_all([output, b"rest"]) == (output + b"rest", None, b"")


def test_bounded_state_and_reset_after_a_start() -> None:
    detector = ZmodemDetector()
    # A megabyte of near misses: the state stays one small number.
    for _ in range(1000):
        assert detector.feed(b"**\x18B" * 256 + b"**\x18B") == (b"**\x18B" * 257, None)
    assert vars(detector) == {"_partial": 4}
    text, start = detector.feed(b"0" + b"1")
    assert text == b""
    assert start == ZmodemStart(Direction.SEND, b"**\x18B01")
    # After a start, nothing carries over: the next output starts fresh.
    assert vars(detector) == {"_partial": 0}
    assert detector.feed(b"01") == (b"01", None)


async def test_replay_stream_gives_the_prefix_first() -> None:
    left, right = trio.testing.memory_stream_pair()
    replay = ReplayStream(left, b"abcdef")
    await right.send_all(b"port")
    assert await replay.receive_some(4) == b"abcd"
    assert replay.unread == b"ef"
    assert await replay.receive_some() == b"ef"
    assert await replay.receive_some() == b"port"
    await replay.send_all(b"out")
    assert await right.receive_some() == b"out"
    await replay.wait_drained()  # a memory stream has no queue to wait for
    await replay.aclose()  # does not close the port
    await right.send_all(b"still open")
    assert await left.receive_some() == b"still open"
