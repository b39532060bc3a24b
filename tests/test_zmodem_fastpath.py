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
