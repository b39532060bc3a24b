"""The start of a ZMODEM session in a device's output (sans-IO, layer 0).

:class:`ZmodemDetector` is fed the device's output, chunk by chunk, and
returns what to show and, when a ZMODEM session starts, the exact bytes from
the start of its first header onward. Its whole state is how many bytes of a
start sequence ended the last chunk (at most five), so it cannot grow, and
each call is one regular-expression search over the chunk.

A device-side ``sz`` opens with ``rz\\r`` and a hex ZRQINIT header
(``**\\x18B00...``); a device-side ``rz`` with a hex ZRINIT
(``**\\x18B01...``). ``trioserial console`` uses it (``_console_zmodem``).
"""

from __future__ import annotations

import enum
import re
from typing import Final

import attrs

__all__ = ["Direction", "ZmodemDetector", "ZmodemStart"]

#: ``ZPAD ZPAD ZDLE 'B'`` and the first hex digit of the frame type: every
#: hex header of ZRQINIT (type 00) or ZRINIT (type 01) starts so.
_LEAD: Final = b"**\x18B0"
_START: Final = re.compile(rb"\*\*\x18B0([01])")


class Direction(enum.Enum):
    """What the console does in answer to the device (named from our side)."""

    #: The device runs ``sz``: we receive.
    RECEIVE = "receive"
    #: The device runs ``rz``: we send.
    SEND = "send"


@attrs.frozen
class ZmodemStart:
    """A ZMODEM session starting: which way, and the bytes from its first header on.

    Attributes:
      direction: :attr:`Direction.RECEIVE` for a ZRQINIT, :attr:`Direction.SEND` for a ZRINIT.
      data: the header's first byte and everything after it in the chunk;
        the transfer must read these before the port.
    """

    direction: Direction
    data: bytes


class ZmodemDetector:
    """Recognises ZMODEM start headers in a device's output, across chunk boundaries."""

    def __init__(self) -> None:
        #: How many bytes of :data:`_LEAD` ended the previous chunk (0..5).
        self._partial = 0

    def feed(self, data: bytes) -> tuple[bytes, ZmodemStart | None]:
        """Take the next chunk of output; return ``(to_show, start)``.

        *to_show* is the output before a start header (all of *data* when
        there is none). When *start* is not ``None`` the rest of *data* is in
        ``start.data`` (preceded by the part of the header that ended the
        previous chunk, which was shown then), and the detector is ready for
        the output after the transfer.
        """
        carried = _LEAD[: self._partial]
        if not carried and b"*" not in data:  # the usual chunk: nothing to look at
            return data, None
        buffer = carried + data
        match = _START.search(buffer)
        if match is not None:
            self._partial = 0
            direction = Direction.RECEIVE if match.group(1) == b"0" else Direction.SEND
            begin = match.start()
            return data[: max(0, begin - len(carried))], ZmodemStart(direction, buffer[begin:])
        self._partial = next((n for n in range(len(_LEAD), 0, -1) if buffer.endswith(_LEAD[:n])), 0)
        return data, None
