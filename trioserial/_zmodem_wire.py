"""ZMODEM on the wire, sans-IO (layer 0): headers, ZDLE escaping, data subpackets.

What is built here follows lrzsz, the reference implementation:

- a **hex header** (``**``, ZDLE, ``B``, the frame type, four bytes and a
  CRC-16 as lower-case hex digits, CR LF|0x80, then XON unless ZACK/ZFIN)
  is what a receiver sends; it survives any line that passes text;
- a **binary header** (``*``, ZDLE, ``A`` with a CRC-16 or ``C`` with a
  CRC-32, its bytes ZDLE-escaped) is what a sender sends, and the data
  subpackets after a header carry the same kind of CRC as that header;
- a **data subpacket** is escaped data, ZDLE and the end byte (ZCRCE: end,
  a header follows; ZCRCG: more data follows, no answer; ZCRCQ: more data,
  answer with ZACK; ZCRCW: end, answer with ZACK), then the CRC of data and
  end byte;
- **escaping** replaces ZDLE, DLE, XON and XOFF (with and without bit 7),
  and CR after ``@`` (the Telenet escape), with ZDLE and the byte XOR 0x40;
  a receiver that asked for it (ESCCTL) gets every control character
  escaped. Raw XON/XOFF arriving are flow control a line inserted: ignored.
- five CAN in a row outside a frame are the peer's abort.

:class:`Reader` parses what arrives, in any pieces, with bounded memory and
work linear in what it is given.
"""

from __future__ import annotations

import binascii
import itertools
import re
from typing import Final

import attrs

__all__ = [
    "Cancelled",
    "DataError",
    "Header",
    "HeaderError",
    "Reader",
    "Subpacket",
    "binary_header",
    "escape",
    "flags",
    "hex_header",
    "position",
    "subpacket",
    "subpackets",
]

ZPAD: Final = 0x2A  # "*"
ZDLE: Final = 0x18  # the escape character (it is CAN)
ZBIN: Final = 0x41  # "A": binary header, CRC-16
ZHEX: Final = 0x42  # "B": hex header, CRC-16
ZBIN32: Final = 0x43  # "C": binary header, CRC-32
XON: Final = 0x11

# Frame types.
ZRQINIT, ZRINIT, ZSINIT, ZACK, ZFILE, ZSKIP, ZNAK, ZABORT = range(8)
ZFIN, ZRPOS, ZDATA, ZEOF, ZFERR, ZCRC, ZCHALLENGE, ZCOMPL = range(8, 16)
ZCAN, ZFREECNT, ZCOMMAND, ZSTDERR = range(16, 20)
#: Frame types a data subpacket follows.
WITH_DATA: Final = frozenset({ZSINIT, ZFILE, ZDATA, ZCOMMAND})

# Data subpacket ends (the byte after ZDLE).
ZCRCE: Final = 0x68  # "h": end of frame, a header follows
ZCRCG: Final = 0x69  # "i": more data follows, no answer
ZCRCQ: Final = 0x6A  # "j": more data follows, answer ZACK
ZCRCW: Final = 0x6B  # "k": end of frame, answer ZACK
ZRUB0: Final = 0x6C  # "l": an escaped 0x7F
ZRUB1: Final = 0x6D  # "m": an escaped 0xFF
ENDS: Final = frozenset({ZCRCE, ZCRCG, ZCRCQ, ZCRCW})

# ZRINIT capabilities (ZF0).
CANFDX: Final = 0x01  # full duplex
CANOVIO: Final = 0x02  # can receive data while writing to disk
CANBRK: Final = 0x04
CANFC32: Final = 0x20  # can use CRC-32
ESCCTL: Final = 0x40  # wants every control character escaped
ESC8: Final = 0x80
# ZSINIT flags (ZF0).
TESCCTL: Final = 0x40
# ZFILE conversion (ZF0).
ZCBIN: Final = 1
ZCRESUM: Final = 3

#: The largest data subpacket accepted (lrzsz sends 1024, 8192 with ``-8``).
MAX_SUBPACKET: Final = 8192
#: Text after a frame kept to explain a failure.
MAX_SEEN: Final = 64

#: Bytes always escaped (ZDLE, DLE, XON, XOFF, with and without bit 7).
_SPECIAL = bytes((ZDLE, 0x10, 0x11, 0x13, 0x90, 0x91, 0x93))
_CR = b"\r\x8d"
_ESCAPE_CTL = re.compile(b"[\x00-\x1f\x80-\x9f]")
_TABLE = {bytes((b,)): bytes((ZDLE, b ^ 0x40)) for b in range(256)}
# escape() interleaves two streams, one byte of each per byte of data: a
# prefix (ZDLE, or XON for "none") and the value (the byte, or the byte XOR
# 0x40 after a ZDLE); then it deletes the XONs. No value is ever XON: XON is
# escaped. Per byte, that is C loops only (translate, slice assignment).
_NONE = XON
_NONE_BYTE = bytes((_NONE,))
_ZDLE_BYTE = bytes((ZDLE,))
_PREFIX = bytes(ZDLE if b in _SPECIAL else _NONE for b in range(256))
_VALUE = bytes(b ^ 0x40 if b in _SPECIAL else b for b in range(256))
# "@" and CR with or without bit 7, folded to one spelling to find "@" CR in one search.
_FOLD_AT_CR = bytes.maketrans(b"\xc0\x8d", b"@\r")
_AT_CR = re.compile(b"@\r")  # finditer: a third of the time of a bytes.find loop
#: Bytes never escaped without ESCCTL (the CRs: sometimes).
_PLAIN = bytes(b for b in range(256) if b not in _SPECIAL and b not in _CR)
_END_BYTES = {end: bytes((end,)) for end in (0x68, 0x69, 0x6A, 0x6B)}
_ENDS_WIRE = {end: bytes((ZDLE, end)) for end in (0x68, 0x69, 0x6A, 0x6B)}
_HEADER_START = re.compile(b"\\*\x18[ABC]|\x18\x18\x18\x18\x18")
#: The end of a subpacket's data: ZDLE and an end byte, or ZDLE ZDLE (an abort, or bad).
_DATA_STOP = re.compile(b"\x18[hijk\x18]")
#: What each byte after ZDLE stands for (no entry: a bad escape).
_UNESCAPED = {c: bytes((c ^ 0x40,)) for c in range(256) if c & 0x60 == 0x40} | {
    0x6C: b"\x7f",  # ZRUB0
    0x6D: b"\xff",  # ZRUB1
}
#: _UNESCAPED as a list: -1 for a bad escape (assigning it to a byte fails).
_DECODE = [_UNESCAPED[c][0] if c in _UNESCAPED else -1 for c in range(256)]
_FLOW_BYTES = b"\x11\x13\x91\x93"
_HEX = frozenset(b"0123456789abcdefABCDEF")
_NOT_TEXT = b"*\r\n\x8a\x8d\x11\x91\x13\x93"


def _escape_one(match: re.Match[bytes]) -> bytes:
    return _TABLE[match.group()]


def _crs_to_escape(data: bytes, size: int) -> list[int]:
    """Where *data* has a CR to escape: after "@" (the Telenet escape), or first in a
    piece of *size* bytes (what was sent before it is not known here)."""
    folded = data.translate(_FOLD_AT_CR)
    found = [match.end() - 1 for match in _AT_CR.finditer(folded)]
    starts = [at for at in range(0, len(data), size) if folded[at] == 0x0D]
    return sorted({*found, *starts}) if starts else found


def _interleaved(data: bytes, size: int) -> bytearray:
    """Two bytes per byte of *data*: a prefix (ZDLE, or :data:`_NONE`) and the value.

    Deleting the :data:`_NONE` bytes from ``[2 * a : 2 * b]`` gives
    ``data[a:b]`` escaped, for *a* and *b* at multiples of *size*.
    """
    prefix = data.translate(_PREFIX)
    value = data.translate(_VALUE)
    crs = _crs_to_escape(data, size)
    out = bytearray(2 * len(data))
    out[0::2] = prefix
    out[1::2] = value
    for at in crs:  # a few in a window of random data: patch them in place
        out[2 * at] = ZDLE
        out[2 * at + 1] ^= 0x40
    return out


def escape(data: bytes | bytearray | memoryview, *, control: bool = False) -> bytes:
    """*data* ZDLE-escaped; with *control*, every control character too (ESCCTL)."""
    data = bytes(data)
    if control:
        return _ESCAPE_CTL.sub(_escape_one, data)
    if len(data) <= 16 and not data.translate(None, _PLAIN):
        return data  # nothing to escape (a header, a CRC: mostly)
    return bytes(_interleaved(data, len(data) or 1).translate(None, _NONE_BYTE))


def position(pos: int) -> bytes:
    """A header's four bytes for a file position (ZP0, the low byte, first)."""
    return (pos & 0xFFFFFFFF).to_bytes(4, "little")


def flags(f0: int = 0, f1: int = 0, f2: int = 0, f3: int = 0) -> bytes:
    """A header's four bytes for flags (ZF0 is the last byte on the wire)."""
    return bytes((f3, f2, f1, f0))


def hex_header(frame: int, arg: bytes) -> bytes:
    """A hex header, as receivers send them (ZRQINIT and ZFIN from a sender too)."""
    body = bytes((frame,)) + arg
    crc = binascii.crc_hqx(body, 0).to_bytes(2, "big")
    out = b"**\x18B" + (body + crc).hex().encode() + b"\r\x8a"
    return out if frame in (ZACK, ZFIN) else out + b"\x11"


def binary_header(frame: int, arg: bytes, *, crc32: bool, control: bool = False) -> bytes:
    """A binary header (ZBIN32 with *crc32*, else ZBIN), escaped."""
    body = bytes((frame,)) + arg
    if crc32:
        return b"*\x18C" + escape(body + _crc32(body), control=control)
    return b"*\x18A" + escape(body + binascii.crc_hqx(body, 0).to_bytes(2, "big"), control=control)


def subpacket(data: bytes, end: int, *, crc32: bool, control: bool = False) -> bytes:
    """One data subpacket: escaped *data*, ZDLE *end*, the escaped CRC of both."""
    return (
        escape(data, control=control)
        + bytes((ZDLE, end))
        + escape(_check(data, end, crc32), control=control)
    )


def subpackets(data: bytes, last: int, *, size: int, crc32: bool, control: bool = False) -> bytes:
    """*data* as subpackets of *size* bytes (the last may be shorter), all ZCRCG but the *last*.

    The same bytes as :func:`subpacket` called for each piece (``b""`` gives
    one empty subpacket), in a fraction of the time: the whole of *data* is
    escaped at once (:func:`_interleaved`) and each piece taken from that.
    """
    data = bytes(data)
    if control or len(data) <= size:
        pieces = range(0, max(len(data), 1), size)
        return b"".join(
            subpacket(
                data[at : at + size],
                last if at + size >= len(data) else ZCRCG,
                crc32=crc32,
                control=control,
            )
            for at in pieces
        )
    both = _interleaved(data, size)
    out: list[bytes | bytearray] = []
    for at in range(0, len(data), size):
        stop = at + size
        end = ZCRCG if stop < len(data) else last
        out.append(both[2 * at : 2 * stop].translate(None, _NONE_BYTE))
        out.append(_ENDS_WIRE[end])
        crc = _check(data[at:stop], end, crc32)
        out.append(escape(crc) if crc.translate(None, _PLAIN) else crc)
    return b"".join(out)


def _crc32(data: bytes | bytearray) -> bytes:
    return binascii.crc32(data).to_bytes(4, "little")


def _check(data: bytes | bytearray, end: int, crc32: bool) -> bytes:
    if crc32:
        return binascii.crc32(_END_BYTES[end], binascii.crc32(data)).to_bytes(4, "little")
    return binascii.crc_hqx(_END_BYTES[end], binascii.crc_hqx(data, 0)).to_bytes(2, "big")


# ---------------------------------------------------------------- parsing


@attrs.frozen
class Header:
    """A header that arrived with a good CRC.

    Attributes:
      frame: the frame type (ZRINIT, ZDATA, ...).
      arg: its four bytes as on the wire (:func:`position` order).
      crc32: it was a ZBIN32 header (its data subpackets carry CRC-32).
    """

    frame: int
    arg: bytes
    crc32: bool = False

    @property
    def position(self) -> int:
        """The four bytes read as a file position."""
        return int.from_bytes(self.arg, "little")

    @property
    def f0(self) -> int:
        return self.arg[3]

    @property
    def f1(self) -> int:
        return self.arg[2]


@attrs.frozen
class HeaderError:
    """Something that began like a header failed its CRC (or was malformed)."""


@attrs.frozen
class Subpacket:
    """A data subpacket that arrived with a good CRC; *end* is ZCRCE/G/Q/W."""

    data: bytes
    end: int


@attrs.frozen
class DataError:
    """A data subpacket was corrupt (*why*); what follows is skipped until a header."""

    why: str


@attrs.frozen
class Cancelled:
    """The peer sent five CAN in a row: it aborts."""


Item = Header | HeaderError | Subpacket | DataError | Cancelled

_MORE: Final = "more"


def _unescape(buf: bytearray, i: int, n: int) -> tuple[bytes, int] | str:
    """*n* escaped bytes from ``buf[i:]``: (bytes, end), ``_MORE``, or what is wrong."""
    out = bytearray()
    size = len(buf)
    while len(out) < n:
        if i >= size:
            return _MORE
        c = buf[i]
        if c != ZDLE:
            out.append(c)
            i += 1
            continue
        if i + 1 >= size:
            return _MORE
        c = buf[i + 1]
        if c == ZRUB0:
            out.append(0x7F)
        elif c == ZRUB1:
            out.append(0xFF)
        elif c & 0x60 == 0x40:
            out.append(c ^ 0x40)
        else:
            return f"a bad escape ZDLE {c:#04x}"
        i += 2
    return bytes(out), i


def _unescape_span(buf: bytearray, start: int, stop: int) -> bytes | None:
    """``buf[start:stop]`` (no end, no ZDLE ZDLE) unescaped; ``None`` for a bad escape."""
    span = buf[start:stop]
    if ZDLE not in span:
        return bytes(span)
    # The bytes without their ZDLEs, then each escaped byte decoded in place: it
    # sits where the lengths of the pieces between ZDLEs add up to.
    out = span.translate(None, _ZDLE_BYTE)
    try:
        for at in itertools.accumulate(map(len, span.split(_ZDLE_BYTE)[:-1])):
            out[at] = _DECODE[out[at]]
    except (IndexError, ValueError):  # ZDLE last, or not followed by an escape
        return None
    return bytes(out)


class Reader:
    """Parses the bytes from the peer into :data:`Item` values, in any pieces.

    Memory is bounded: a partial header or escape (a few bytes), one data
    subpacket (:data:`MAX_SUBPACKET`), and :attr:`seen`.
    """

    def __init__(self, *, seen: bytearray | None = None) -> None:
        self._buf = bytearray()
        self._data = False
        self._crc32 = False
        self._sub = bytearray()
        self._skip_crlf = False
        #: The last bytes (at most 64) outside any frame: a shell's message, say
        #: (*seen*, when given, is the buffer to keep them in).
        self.seen = bytearray() if seen is None else seen

    @property
    def in_data(self) -> bool:
        """Data subpackets are expected (after ZDATA, ZFILE, ZSINIT, ZCOMMAND)."""
        return self._data

    def feed(self, data: bytes | bytearray) -> list[Item]:
        buf = self._buf
        # Every XON/XOFF a sender means is escaped: raw ones are the line's flow
        # control (even between ZDLE and the byte it escapes), never data.
        buf += data.translate(None, _FLOW_BYTES)
        out: list[Item] = []
        i = 0
        while i < len(buf):
            if self._data:
                i, item = self._read_data(buf, i)
            else:
                i, item = self._read_header(buf, i)
            if item is None:
                break
            out.append(item)
        del buf[:i]
        return out

    def _junk(self, data: bytes | bytearray) -> None:
        text = bytes(data).translate(None, _NOT_TEXT)
        if text:
            self.seen += text
            del self.seen[:-MAX_SEEN]

    def _read_header(self, buf: bytearray, i: int) -> tuple[int, Item | None]:
        while True:
            match = _HEADER_START.search(buf, i)
            if match is None:
                keep = _partial_start(buf, i)
                self._junk(buf[i:keep])
                return keep, None
            start = match.start()
            self._junk(buf[i:start])
            if buf[start] == ZDLE:
                return match.end(), Cancelled()
            kind = buf[start + 2]
            parsed = self._header_at(buf, start + 3, kind)
            if parsed == _MORE:
                return start, None
            if isinstance(parsed, str):
                i = start + 1  # not a header after all: look again from the next byte
                if parsed == "crc":
                    return i, HeaderError()
                continue
            header, end = parsed
            if header.frame in WITH_DATA:
                self._data = True
                self._crc32 = header.crc32
                self._skip_crlf = kind == ZHEX
                self._sub.clear()
            return end, header

    @staticmethod
    def _header_at(buf: bytearray, i: int, kind: int) -> tuple[Header, int] | str:
        if kind == ZHEX:
            digits = bytes(buf[i : i + 14])
            if not set(digits) <= _HEX:
                return "not hex"
            if len(digits) < 14:
                return _MORE
            raw = bytes.fromhex(digits.decode())
            if binascii.crc_hqx(raw[:5], 0) != int.from_bytes(raw[5:], "big"):
                return "crc"
            return Header(raw[0], raw[1:5]), i + 14
        crc32 = kind == ZBIN32
        got = _unescape(buf, i, 9 if crc32 else 7)
        if isinstance(got, str):
            return got
        raw, end = got
        if crc32:
            good = _crc32(raw[:5]) == raw[5:]
        else:
            good = binascii.crc_hqx(raw[:5], 0) == int.from_bytes(raw[5:], "big")
        if not good:
            return "crc"
        return Header(raw[0], raw[1:5], crc32), end

    def _read_data(self, buf: bytearray, i: int) -> tuple[int, Item | None]:
        sub = self._sub  # the start of a subpacket that an earlier read cut off
        if self._skip_crlf:
            while i < len(buf) and buf[i] in b"\r\n\x8a\x8d\x11" and len(sub) == 0:
                i += 1
            if i >= len(buf):
                return i, None
            self._skip_crlf = False
        # The first ZDLE and an end byte ends the data: an escaped ZDLE is ZDLE "X",
        # so ZDLE ZDLE never occurs in good data (five of them are an abort).
        match = _DATA_STOP.search(buf, i)
        stop = len(buf) if match is None else match.start()
        cans = -1
        if match is not None and buf[stop + 1] == ZDLE:
            cans, match = stop, None
        elif match is None:
            while stop > i and buf[stop - 1] == ZDLE:  # an escape still arriving
                stop -= 1
        decoded = _unescape_span(buf, i, stop)
        if decoded is None:
            return stop, self._data_error("a bad escape")
        if sub:
            decoded = bytes(sub + decoded)
            sub.clear()
        i = stop
        if len(decoded) > MAX_SUBPACKET:
            return i, self._data_error(f"a data subpacket longer than {MAX_SUBPACKET} bytes")
        if cans >= 0:
            sub += decoded
            run = bytes(buf[cans : cans + 5])
            if run == b"\x18" * 5:
                self._data = False
                return cans + 5, Cancelled()
            if run == b"\x18" * len(run):
                return i, None
            return cans + 1, self._data_error("a bad escape ZDLE CAN")
        if match is None:
            sub += decoded
            return i, None
        end = buf[i + 1]
        after = i + (6 if self._crc32 else 4)
        crc = bytes(buf[i + 2 : after])
        if len(crc) < after - i - 2 or ZDLE in crc:  # not all here yet, or escaped
            got = _unescape(buf, i + 2, 4 if self._crc32 else 2)
            if got == _MORE:
                sub += decoded
                return i, None
            if isinstance(got, str):
                return i + 2, self._data_error(f"{got} in a CRC")
            crc, after = got
        if crc != _check(decoded, end, self._crc32):
            return after, self._data_error("a CRC error")
        if end in (ZCRCE, ZCRCW):
            self._data = False
        return after, Subpacket(decoded, end)

    def _data_error(self, why: str) -> DataError:
        self._data = False
        self._sub.clear()
        return DataError(why)


def _partial_start(buf: bytearray, i: int) -> int:
    """Where the end of ``buf[i:]`` could begin a header start or an abort: keep from there."""
    end = len(buf)
    cans = 0
    while cans < 4 and end - cans > i and buf[end - cans - 1] == ZDLE:
        cans += 1
    if cans == 1 and end - 2 >= i and buf[end - 2] == ZPAD:
        return end - 2
    if cans:
        return end - cans
    if end > i and buf[end - 1] == ZPAD:
        return end - 1
    return end
