"""The waiting parts of the control surface, without the waiting (layer 1).

``wait_drained``, ``send_break`` and ``wait_modem_change`` poll non-blocking
port-core primitives between sleeps. The decisions (how long to sleep, whether
a line changed) live here as plain functions of the core, tested without a
loop; the control surface both front ends share (``_surface.py``) does the
waiting around them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from ._core import PortCore
from ._settings import ModemLines, Parity

__all__ = [
    "INPUT_LINES",
    "ModemChangeWatch",
    "check_input_lines",
    "check_seconds",
    "drain_delay",
]

#: The input lines, in ``TIOCGICOUNT``'s order.
INPUT_LINES: Final = ("cts", "dsr", "ri", "cd")
#: Bounds of one sleep of ``wait_drained``.
MIN_DRAIN_SLEEP: Final = 0.001
MAX_DRAIN_SLEEP: Final = 0.1


#: A graceful close waits at least this long for output before discarding it.
MIN_CLOSE_DRAIN: Final = 1.0


def check_seconds(name: str, value: object) -> float:
    """*value* as a finite number of seconds > 0, or an error naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def check_input_lines(lines: Sequence[object]) -> tuple[str, ...]:
    """The input-line names in *lines* (all four when empty), or an error naming the bad one."""
    for line in lines:
        if line not in INPUT_LINES:
            allowed = ", ".join(map(repr, INPUT_LINES))
            raise ValueError(f"lines must be input line names ({allowed}), got {line!r}")
    return tuple(str(line) for line in lines) or INPUT_LINES


def character_time(core: PortCore) -> float:
    """Seconds one character takes on the wire at the settings in force."""
    s = core.settings
    bits = 1 + s.bytesize + (s.parity is not Parity.NONE) + float(s.stopbits)
    return bits / s.baudrate


def drain_delay(core: PortCore) -> float | None:
    """``None`` once the output has been transmitted, else how long to sleep before asking again.

    The sleep is as long as the queued characters take at the current rate
    (``TIOCOUTQ``), between 1 ms and 100 ms. Once the driver's queue is
    empty, a UART that reports its transmitter (``TIOCSERGETLSR``) is asked
    whether its FIFO and shift register are empty too.
    """
    queued = core.out_waiting()
    if queued == 0:
        idle = core.transmitter_empty()
        if idle is None or idle:
            return None
        queued = 1  # the FIFO's size is unknown: look again after a character
    return min(max(queued * character_time(core), MIN_DRAIN_SLEEP), MAX_DRAIN_SLEEP)


def close_drain_limit(core: PortCore) -> float | None:
    """How long a graceful close waits for queued output, or ``None`` for not at all.

    Twice what the queue takes at the current rate, and at least a second:
    enough for a line that is merely slow, bounded for one that flow control
    holds forever (the kernel itself gives up after its ``closing_wait``).
    Transports that cannot report their queue raise ``OSError`` here.
    Transports whose close keeps their queue (TCP sockets) are not waited for:
    their queue is sized by the network, not the line, and would make the
    bound minutes long for a server that has stopped reading.
    """
    if core.close_keeps_output:
        return None
    queued = core.out_waiting()
    if queued == 0 and core.transmitter_empty() in (None, True):
        return None
    return max(MIN_CLOSE_DRAIN, 2 * max(queued, 1) * character_time(core))


class ModemChangeWatch:
    """Compares the input lines with a baseline, poll after poll.

    A change is a level that differs from the baseline, or a transition the
    driver counted (``TIOCGICOUNT``) since the previous poll, which catches
    pulses shorter than the poll interval where counters exist.
    """

    def __init__(self, core: PortCore, lines: tuple[str, ...]) -> None:
        """Take the baseline of *lines* (checked names) now."""
        self._core = core
        self._lines = lines
        self._indexes = [INPUT_LINES.index(line) for line in lines]
        self._before = core.modem_lines()
        self._counts = core.modem_change_counts()

    def poll(self) -> ModemLines | None:
        """The lines now if a watched one changed, else ``None``."""
        now = self._core.modem_lines()
        if any(getattr(now, line) != getattr(self._before, line) for line in self._lines):
            return now
        counts, self._counts = self._counts, self._core.modem_change_counts()
        if (
            counts is not None
            and self._counts is not None
            and any(self._counts[i] != counts[i] for i in self._indexes)
        ):
            return now
        return None
