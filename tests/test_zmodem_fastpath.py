"""ZMODEM's fast paths (whole-buffer escaping and parsing) against plain reference implementations.

The references below are the obvious byte-at-a-time (or one-replace-per-byte-value)
versions of the rules in ``_zmodem_wire.py``'s docstring; the fast paths must give
exactly their bytes and items, on random data and on data made only of the bytes
the rules are about (ZDLE, DLE, XON, XOFF with and without bit 7, "@" and CR), at
every length and every split point. No event loop.
"""

from __future__ import annotations

import binascii
import random

import pytest

from trioserial import _zmodem_wire as w

ZDLE = 0x18
ALWAYS = (0x18, 0x10, 0x11, 0x13, 0x90, 0x91, 0x93)
#: The bytes the escaping rules single out, and a few neighbours.
TRICKY = bytes((*ALWAYS, 0x0D, 0x8D, 0x40, 0xC0, 0x41, 0x00, 0xFF, 0x58, 0x69))


def ref_escape(data: bytes) -> bytes:
    """lrzsz's rule, one byte at a time: ZDLE/DLE/XON/XOFF always, CR after "@" or first."""
    out = bytearray()
    previous = None
    for byte in data:
        at_cr = byte & 0x7F == 0x0D and (previous is None or previous & 0x7F == 0x40)
        if byte in ALWAYS or at_cr:
            out += bytes((ZDLE, byte ^ 0x40))
        else:
            out.append(byte)
        previous = byte
    return bytes(out)


def ref_crc(data: bytes, end: int, crc32: bool) -> bytes:
    if crc32:
        return binascii.crc32(data + bytes((end,))).to_bytes(4, "little")
    return binascii.crc_hqx(data + bytes((end,)), 0).to_bytes(2, "big")


def ref_subpackets(data: bytes, last: int, size: int, crc32: bool) -> bytes:
    out = b""
    for at in range(0, max(len(data), 1), size):
        piece = data[at : at + size]
        end = last if at + size >= len(data) else w.ZCRCG
        out += ref_escape(piece) + bytes((ZDLE, end)) + ref_escape(ref_crc(piece, end, crc32))
    return out


def samples(seed: int, count: int, longest: int) -> list[bytes]:
    rng = random.Random(seed)
    found = [b"", b"\r", b"@\r", b"\xc0\x8d\r", bytes(ALWAYS), TRICKY * 3]
    for n in range(count):
        size = rng.randrange(longest)
        if n % 2:
            found.append(bytes(rng.choice(TRICKY) for _ in range(size)))
        else:
            found.append(rng.randbytes(size))
    return found


def test_escape_equals_the_byte_at_a_time_rule() -> None:
    for data in samples(1, 400, 3000):
        assert w.escape(data) == ref_escape(data), data


def test_escape_of_every_short_tricky_string() -> None:
    # Every string of up to three bytes over the tricky alphabet: each "@" CR pair,
    # each CR at the start, each escape next to another, whatever the length.
    alphabet = TRICKY
    for a in alphabet:
        for b in alphabet:
            for c in alphabet:
                for data in (bytes((a,)), bytes((a, b)), bytes((a, b, c))):
                    assert w.escape(data) == ref_escape(data), data


@pytest.mark.parametrize("crc32", [False, True])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1024])
def test_subpackets_equal_one_subpacket_per_piece(size: int, crc32: bool) -> None:
    rng = random.Random(size)
    for data in samples(size, 60 if size < 64 else 200, 5000 if size == 1024 else 200):
        last = rng.choice((w.ZCRCE, w.ZCRCQ, w.ZCRCW))
        fast = w.subpackets(data, last, size=size, crc32=crc32)
        assert fast == ref_subpackets(data, last, size, crc32), (data, size)


def test_subpackets_cut_where_a_cr_starts_a_piece() -> None:
    # A CR first in a subpacket is escaped even when no "@" precedes it; one right
    # after an "@" that ended the previous piece is escaped once, not twice.
    for data in (b"ab\rc", b"a@\rc", b"@\r\r\r", b"\r\x8d\r\x8d", b"x\x18\rz"):
        for size in (1, 2, 3):
            assert w.subpackets(data, w.ZCRCE, size=size, crc32=True) == ref_subpackets(
                data, w.ZCRCE, size, True
            )


def ref_unescape(span: bytes) -> bytes | None:
    """ZDLE c is c XOR 0x40 (c in 0x40-0x5f or 0xc0-0xdf), ZDLE "l" 0x7f, ZDLE "m" 0xff."""
    out = bytearray()
    at = 0
    while at < len(span):
        if span[at] != ZDLE:
            out.append(span[at])
            at += 1
            continue
        if at + 1 == len(span):
            return None
        c = span[at + 1]
        if c == 0x6C:
            out.append(0x7F)
        elif c == 0x6D:
            out.append(0xFF)
        elif c & 0x60 == 0x40:
            out.append(c ^ 0x40)
        else:
            return None
        at += 2
    return bytes(out)


def test_unescape_equals_the_byte_at_a_time_rule() -> None:
    rng = random.Random(3)
    spans = [w.escape(data) for data in samples(4, 300, 2000)]
    spans += [w.escape(data, control=True) for data in samples(5, 100, 2000)]
    # Every escape a sender may use (ZRUB0/ZRUB1 too), and bad ones.
    spans += [bytes((ZDLE, c)) for c in range(256) if c != ZDLE]
    spans += [b"ab\x18", b"\x18", b"a\x18hb", b"\x18\x40\x18\x5f\x18\xc0\x18\xdf\x18l\x18m"]
    for _ in range(300):
        spans.append(bytes(rng.choice(b"\x18XPl\x0d@a\xd1") for _ in range(rng.randrange(40))))
    for span in spans:
        if ZDLE * 2 in span:
            continue  # the reader never asks (ZDLE ZDLE ends the data)
        assert w._unescape_span(bytearray(span), 0, len(span)) == ref_unescape(span), span


def wire_of(pieces: list[tuple[bytes, int]], crc32: bool) -> bytes:
    return w.binary_header(w.ZDATA, w.position(0), crc32=crc32) + b"".join(
        w.subpackets(data, end, size=64, crc32=crc32) for data, end in pieces
    )


def crc_needing_escape(crc32: bool) -> bytes:
    """Data whose subpacket CRC has a byte to escape (the reader's slow path for CRCs)."""
    rng = random.Random(9)
    while True:
        data = rng.randbytes(20)
        crc = ref_crc(data, w.ZCRCG, crc32)
        if any(c in ALWAYS for c in crc):
            return data


@pytest.mark.parametrize("crc32", [False, True])
def test_reader_gives_the_same_items_at_every_split_point(crc32: bool) -> None:
    tricky = bytes(random.Random(2).choice(TRICKY) for _ in range(150))
    pieces = [
        (tricky, w.ZCRCQ),
        (crc_needing_escape(crc32), w.ZCRCG),
        (random.Random(8).randbytes(100), w.ZCRCE),
    ]
    wire = wire_of(pieces, crc32) + w.hex_header(w.ZEOF, w.position(270))
    expected = w.Reader().feed(wire)
    data = b"".join(data for data, _ in pieces)
    assert b"".join(item.data for item in expected if isinstance(item, w.Subpacket)) == data
    assert isinstance(expected[-1], w.Header)
    for cut in range(1, len(wire)):
        reader = w.Reader()
        assert reader.feed(wire[:cut]) + reader.feed(wire[cut:]) == expected, cut
    # And byte by byte.
    reader = w.Reader()
    assert [item for at in range(len(wire)) for item in reader.feed(wire[at : at + 1])] == expected


def test_reader_reports_a_bad_escape_and_a_corrupt_crc_in_a_big_read() -> None:
    data = bytes(range(256)) * 4
    good = wire_of([(data, w.ZCRCG)], True)  # 16 subpackets of 64 bytes
    items = w.Reader().feed(good)
    assert [item.data for item in items[1:] if isinstance(item, w.Subpacket)] == [
        data[at : at + 64] for at in range(0, len(data), 64)
    ]
    bad_escape = good.replace(b"\x18X", b"\x18\x01", 1)  # the first ZDLE, in the first 64
    assert w.Reader().feed(bad_escape)[1:] == [w.DataError("a bad escape")]
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01 if bad_crc[-1] not in (0x10, 0x11, 0x12, 0x13) else 0x04
    assert w.Reader().feed(bytes(bad_crc))[1:] == [*items[1:-1], w.DataError("a CRC error")]
