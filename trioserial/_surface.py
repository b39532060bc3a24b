"""What both front ends share: port metadata, counters, the sync control surface (layer 1).

Every method here is one non-blocking call on the core, so the same code
serves :class:`trioserial.AsyncSerial` (Trio) and
:class:`trioserial.anyio.AnyioSerialStream` (anyio). The only difference, the
"closed" exception class, is a class attribute each front end sets. No trio,
no anyio imports: the front ends never import each other, and both import this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

from ._core import PortCore, port_error
from ._settings import ModemLines, SerialSettings, SerialStatistics
from ._util import check_bool

__all__ = ["PortSurface"]


class PortSurface:
    """Mixin for a front end that owns ``self._core`` and the byte counters."""

    #: The front end's "resource is closed" exception class.
    _closed_error: type[Exception]
    _core: PortCore
    _bytes_sent: int
    _bytes_received: int
    _waiting_receive: int
    _waiting_send: int

    # ------------------------------------------------------------- the port

    @property
    def closed(self) -> bool:
        """Whether the port has been closed."""
        return self._core.closed

    @property
    def port(self) -> str:
        """The port as it was named when opened (a device path or URL)."""
        return self._core.name

    @property
    def transport(self) -> str:
        """The kind of transport carrying the bytes.

        ``"tty"`` (local devices and ptys, also behind ``alt://``, ``hwgrep://``
        and ``spy://``), ``"loop"``, ``"socket"`` or ``"rfc2217"``.
        """
        return self._core.transport

    @property
    def settings(self) -> SerialSettings:
        """The line settings in force."""
        return self._core.settings

    def fileno(self) -> int:
        """The fd being driven, or ``-1`` once closed. Do not read or write it."""
        return self._core.fileno()

    # -------------------------------------------------------------- control
    # Sync: each is one non-blocking ioctl on the live fd. On a port without
    # modem lines (a pty, socket://) they raise UnsupportedOperationError.

    def _raise_closed(self) -> NoReturn:
        raise self._closed_error("serial port was already closed")

    def _live_core(self) -> PortCore:
        if self._core.closed:
            self._raise_closed()
        return self._core

    def _control_error(self, exc: OSError) -> NoReturn:
        if self._core.is_closed_error(exc):
            raise self._closed_error("serial port was closed") from None
        raise port_error(self._core, exc)

    @contextlib.contextmanager
    def _controlling(self) -> Iterator[PortCore]:
        """The live core for one control call, its :exc:`OSError` translated.

        Closed before or during the call: the front end's "closed" error;
        any other :exc:`OSError`: the :exc:`~trioserial.SerialPortError` the
        core raised, or one made from it (:func:`port_error`).
        """
        core = self._live_core()
        try:
            yield core
        except OSError as exc:
            self._control_error(exc)

    def modem_lines(self) -> ModemLines:
        """Read all six modem lines at once (one ``TIOCMGET``).

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
          trioserial.UnsupportedOperationError: the port has no modem lines
            (a pty, a ``socket://`` port, some adapters).
          trioserial.SerialPortError: the OS reported another error (such as
            ``EIO`` after an unplug); the errno is kept.
        """
        with self._controlling() as core:
            return core.modem_lines()

    @property
    def cts(self) -> bool:
        """Clear To Send, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().cts

    @property
    def dsr(self) -> bool:
        """Data Set Ready, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().dsr

    @property
    def ri(self) -> bool:
        """Ring Indicator, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().ri

    @property
    def cd(self) -> bool:
        """Carrier Detect, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().cd

    @property
    def dtr(self) -> bool:
        """Data Terminal Ready (an output line). Read back from the driver, or set it.

        Setting it is one ``TIOCMBIS``/``TIOCMBIC`` that touches no other line
        (boards wired like an ESP32 or an Arduino reset on a DTR edge).
        Raises as :meth:`modem_lines`.
        """
        return self.modem_lines().dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        value = check_bool("dtr", value)
        with self._controlling() as core:
            core.set_dtr(value)

    @property
    def rts(self) -> bool:
        """Request To Send (an output line). Read back from the driver, or set it.

        With ``rtscts=True`` the kernel drives RTS itself for flow control.
        Raises as :meth:`modem_lines`.
        """
        return self.modem_lines().rts

    @rts.setter
    def rts(self, value: bool) -> None:
        value = check_bool("rts", value)
        with self._controlling() as core:
            core.set_rts(value)

    @property
    def break_condition(self) -> bool:
        """Whether the line is held in a break (``TIOCSBRK``), or start/end one.

        Reading it reports what this port last set (the kernel cannot be
        asked). For a timed break use ``send_break()``. A pty accepts a break
        and does nothing with it.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
          trioserial.UnsupportedOperationError: the port cannot send a break.
        """
        with self._controlling() as core:
            return core.break_condition

    @break_condition.setter
    def break_condition(self, value: bool) -> None:
        value = check_bool("break_condition", value)
        with self._controlling() as core:
            core.set_break(value)

    @property
    def in_waiting(self) -> int:
        """Bytes received by the OS and not read yet (``TIOCINQ``)."""
        with self._controlling() as core:
            return core.in_waiting()

    @property
    def out_waiting(self) -> int:
        """Bytes written and not yet on the wire, as far as the driver knows (``TIOCOUTQ``).

        Many USB adapters keep bytes in their own FIFO that the driver does
        not count, and a pty always says 0.
        """
        with self._controlling() as core:
            return core.out_waiting()

    def reset_input_buffer(self) -> None:
        """Discard input the OS has received and nobody has read (``TCIFLUSH``).

        A task blocked receiving keeps waiting for new bytes.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
        """
        with self._controlling() as core:
            core.reset_input_buffer()

    def reset_output_buffer(self) -> None:
        """Discard output written and not yet transmitted (``TCOFLUSH``).

        Bytes already counted in ``statistics().bytes_sent``
        may be among them: they never reach the wire.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
        """
        with self._controlling() as core:
            core.reset_output_buffer()

    def statistics(self) -> SerialStatistics:
        """Counters: bytes sent and received, tasks waiting."""
        return SerialStatistics(
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            tasks_waiting_receive=self._waiting_receive,
            tasks_waiting_send=self._waiting_send,
        )
