"""A model of a UART's control lines, for testing modem-line logic without hardware.

A pty has no modem lines, no break and no transmit queue: every such ioctl
fails with ``ENOTTY`` or does nothing. :class:`FakeModem` sits in the one
seam below a tty port's control surface (the ``ioctl`` callable of the port
core) and answers those requests from a small model, while everything else
(reads, writes, ``FIONREAD``, termios) still happens on the real pty.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .. import _termios
from .._core import PortCore
from .._port import TtyPort
from .._termios import INT, os_ioctl

if TYPE_CHECKING:
    from .._stream import AsyncSerial

__all__ = ["FakeModem"]

_INPUTS: Final = ("cts", "dsr", "ri", "cd")
_BITS: Final = {
    "dtr": _termios.TIOCM_DTR,
    "rts": _termios.TIOCM_RTS,
    "cts": _termios.TIOCM_CTS,
    "dsr": _termios.TIOCM_DSR,
    "ri": _termios.TIOCM_RI,
    "cd": _termios.TIOCM_CD,
}


class FakeModem:
    """The control lines of a UART and the device wired to it.

    Plug it into a port with :meth:`attach` (or pass it as the ``ioctl`` of
    the port core); the port's modem-line, break, queue and flush requests
    then reach this model instead of the pty, which has none of them.

    What it models:

    - the output lines DTR and RTS, driven by the port;
    - the input lines CTS, DSR, RI and CD, driven by the test through
      :meth:`set_inputs` and :meth:`pulse`; with ``loopback=True`` (a
      loopback plug) DSR follows DTR and CTS follows RTS;
    - the kernel's transition counters (``TIOCGICOUNT``), so a pulse shorter
      than a poll interval is still seen;
    - the break condition; the transmit queue (:attr:`out_queue` bytes that
      ``TIOCOUTQ`` reports and ``TCOFLUSH`` discards) and the UART's FIFO
      (:attr:`fifo`, seen only through ``TIOCSERGETLSR``);
    - the driver's ``serial_struct`` flags (``TIOCGSERIAL``/``TIOCSSERIAL``)
      and RS-485 configuration (``TIOCGRS485``/``TIOCSRS485``), kept as raw
      bytes.

    Every change a port makes is appended to :attr:`events` as
    ``(time, name, value)``, timed by *clock* (pass :func:`trio.current_time`
    to read times on Trio's autojump clock). Requests the model does not
    cover go to the real fd, or fail with ``ENOTTY`` when *passthrough* is
    false.

    Args:
      loopback: wire DTR to DSR and RTS to CTS.
      clock: the time source for :attr:`events`.
      passthrough: send other requests to the real fd.
      unsupported: request numbers to answer with ``ENOTTY`` (as a driver
        without the feature does), such as ``{termios.TIOCGICOUNT}``.
      on_change: called as ``on_change(name, value)`` after every change the
        port makes (the device's view of its lines); it runs inside the
        port's call, so it must not block (hand the news to a task with
        ``send_nowait`` on a memory channel).
    """

    def __init__(
        self,
        *,
        loopback: bool = True,
        clock: Callable[[], float] = time.monotonic,
        passthrough: bool = True,
        unsupported: frozenset[int] | set[int] = frozenset(),
        on_change: Callable[[str, object], None] | None = None,
    ) -> None:
        self.loopback = loopback
        self.on_change = on_change
        self.clock = clock
        self.passthrough = passthrough
        self.unsupported = set(unsupported)
        #: Output lines as the port drives them.
        self.dtr = False
        self.rts = False
        self._inputs = dict.fromkeys(_INPUTS, False)
        #: Transitions of each input line since the model was made.
        self.counts = dict.fromkeys(_INPUTS, 0)
        #: Whether the port holds a break.
        self.break_condition = False
        #: Bytes waiting to be transmitted (what ``TIOCOUTQ`` reports).
        self.out_queue = 0
        #: Bytes in the UART's own FIFO and shift register, which ``TIOCOUTQ``
        #: does not count; ``TIOCSERGETLSR`` reports "empty" only when this
        #: and :attr:`out_queue` are 0.
        self.fifo = 0
        #: ``(time, name, value)`` of every change the port made.
        self.events: list[tuple[float, str, object]] = []
        #: Raw ``struct serial_struct`` (``None``: the driver has none, ``ENOTTY``).
        self.serial_struct: bytes | None = None
        #: Raw ``struct serial_rs485`` (``None``: the driver has no RS-485, ``ENOTTY``).
        self.rs485: bytes | None = None
        #: How many ioctls the port made, by request number.
        self.calls: dict[int, int] = {}

    # ---------------------------------------------------------------- wiring

    def attach(self, port: AsyncSerial | PortCore) -> FakeModem:
        """Route *port*'s control requests to this model; returns the model."""
        core = getattr(port, "_core", port)
        if not isinstance(core, TtyPort):
            raise TypeError(f"FakeModem models a tty port's lines, not {core!r}")
        core.ioctl = self
        return self

    # ------------------------------------------------------------ the device

    def inputs(self) -> dict[str, bool]:
        """The input lines now: ``{"cts": ..., "dsr": ..., "ri": ..., "cd": ...}``."""
        lines = dict(self._inputs)
        if self.loopback:
            lines["dsr"], lines["cts"] = self.dtr, self.rts
        return lines

    def set_inputs(
        self,
        *,
        cts: bool | None = None,
        dsr: bool | None = None,
        ri: bool | None = None,
        cd: bool | None = None,
    ) -> None:
        """Drive input lines as the device would (``None`` leaves a line alone)."""
        before = self.inputs()
        for name, value in (("cts", cts), ("dsr", dsr), ("ri", ri), ("cd", cd)):
            if value is not None:
                self._inputs[name] = value
        self._count(before)

    def pulse(self, line: str) -> None:
        """Toggle input *line* twice at once: a pulse too short for any poll to see."""
        if line not in _INPUTS:
            raise ValueError(f"line must be one of {', '.join(_INPUTS)}, got {line!r}")
        self.counts[line] += 2

    def _count(self, before: dict[str, bool]) -> None:
        after = self.inputs()
        for name in _INPUTS:
            if after[name] != before[name]:
                self.counts[name] += 1

    def _record(self, name: str, value: object) -> None:
        self.events.append((self.clock(), name, value))
        if self.on_change is not None:
            self.on_change(name, value)

    def _set_output(self, name: str, value: bool) -> None:
        if getattr(self, name) == value:
            return
        before = self.inputs()
        setattr(self, name, value)
        self._record(name, value)
        self._count(before)

    def bits(self) -> int:
        """The ``TIOCMGET`` bit mask of all six lines."""
        lines = {**self.inputs(), "dtr": self.dtr, "rts": self.rts}
        return sum(bit for name, bit in _BITS.items() if lines[name])

    # ------------------------------------------------------------- the seam

    def __call__(self, fd: int, request: int, arg: int | bytes) -> int | bytes:
        """Answer one ioctl, as ``fcntl.ioctl(fd, request, arg)`` would."""
        self.calls[request] = self.calls.get(request, 0) + 1
        if fd < 0:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if request in self.unsupported:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        t = _termios
        if request == t.TIOCMGET:
            return INT.pack(self.bits())
        if request in (t.TIOCMBIS, t.TIOCMBIC):
            assert isinstance(arg, bytes)
            (mask,) = INT.unpack(arg)
            for name in ("dtr", "rts"):
                if mask & _BITS[name]:
                    self._set_output(name, request == t.TIOCMBIS)
            return arg
        if request in (t.TIOCSBRK, t.TIOCCBRK):
            value = request == t.TIOCSBRK
            self.break_condition = value
            self._record("break", value)
            return 0
        if request == t.TIOCOUTQ:
            return INT.pack(self.out_queue)
        if request == t.TIOCSERGETLSR:
            empty = self.out_queue == 0 and self.fifo == 0
            return INT.pack(t.TIOCSER_TEMT if empty else 0)
        if request == t.TIOCGICOUNT:
            c = self.counts
            return t.ICOUNT.pack(c["cts"], c["dsr"], c["ri"], c["cd"], *([0] * 16))
        if request == t.TCFLSH and arg in (t.TCOFLUSH, t.TCIOFLUSH):
            self._record("discard output", self.out_queue)
            self.out_queue = self.fifo = 0
            if arg == t.TCOFLUSH:
                return 0
        elif request == t.TCFLSH:
            self._record("discard input", None)
        if request in (t.TIOCGSERIAL, t.TIOCGRS485, t.TIOCSSERIAL, t.TIOCSRS485):
            return self._struct(request, arg)
        if not self.passthrough:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        return os_ioctl(fd, request, arg)

    def _struct(self, request: int | None, arg: int | bytes) -> bytes:
        t = _termios
        field = "serial_struct" if request in (t.TIOCGSERIAL, t.TIOCSSERIAL) else "rs485"
        current = getattr(self, field)
        if current is None:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        assert isinstance(arg, bytes)
        if request in (t.TIOCSSERIAL, t.TIOCSRS485):
            setattr(self, field, bytes(arg))
            self._record(field, bytes(arg))
            return bytes(arg)
        return bytes(current)
