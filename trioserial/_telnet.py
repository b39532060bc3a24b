"""The client side of Telnet with RFC 2217 (Com Port Control), sans-IO (layer 0).

In h11's shape: the protocol never touches a socket. Feed it what the server
sent with :meth:`RFC2217Client.receive_data`, take events out with
:meth:`RFC2217Client.next_event` until it returns :data:`NEED_DATA`, and
send whatever :meth:`RFC2217Client.data_to_send` and the ``send_*``/``set_*``
methods return. The I/O layer (``_rfc2217.py``) and the tests drive it the
same way.

The Telnet layer it shares with the server (reading, option negotiation,
``IAC`` escaping both ways, the RFC 2217 constants and value codecs) is
:mod:`._telnet_wire`; this module re-exports the names its users need.
What the client adds: the options pyserial's client requests (BINARY, SGA,
ECHO, COM-PORT-OPTION; everything else is refused), the RFC 2217 commands
SET-BAUDRATE / -DATASIZE / -PARITY / -STOPSIZE / -CONTROL and PURGE-DATA
with their acknowledgements matched against what was asked, and the
server's NOTIFY-MODEMSTATE / NOTIFY-LINESTATE / FLOWCONTROL-SUSPEND/RESUME.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import attrs

from ._settings import Parity, SerialSettings, StopBits
from ._telnet_wire import (
    COM_PORT_OPTION,
    DO,
    DONT,
    FLOWCONTROL_RESUME,
    FLOWCONTROL_SUSPEND,
    MAX_SUBNEGOTIATION,
    MODEM_CD,
    MODEM_CTS,
    MODEM_DSR,
    MODEM_RI,
    NEED_DATA,
    NOTIFY_LINESTATE,
    NOTIFY_MODEMSTATE,
    PARITY,
    PURGE_DATA,
    SERVER_OFFSET,
    SET_BAUDRATE,
    SET_CONTROL,
    SET_DATASIZE,
    SET_PARITY,
    SET_STOPSIZE,
    STOPSIZE,
    Closed,
    Control,
    Data,
    FlowControl,
    NeedData,
    OptionChanged,
    Purge,
    State,
    TelnetCommand,
    TelnetMachine,
    encode_baudrate,
    escape,
    subnegotiation,
)

__all__ = [
    "MAX_PENDING",
    "MAX_SUBNEGOTIATION",
    "MODEM_CD",
    "MODEM_CTS",
    "MODEM_DSR",
    "MODEM_RI",
    "NEED_DATA",
    "Acknowledged",
    "Closed",
    "Control",
    "Data",
    "Event",
    "FlowControl",
    "LineState",
    "ModemState",
    "NeedData",
    "OptionChanged",
    "Purge",
    "RFC2217Client",
    "Rejected",
    "TelnetCommand",
    "escape",
]

#: The ``what`` of acknowledgements, by command.
SETTING_NAMES: Final = {
    SET_BAUDRATE: "baudrate",
    SET_DATASIZE: "datasize",
    SET_PARITY: "parity",
    SET_STOPSIZE: "stopsize",
    SET_CONTROL: "control",
    PURGE_DATA: "purge",
}

#: Requests of one kind remembered while waiting for answers.
MAX_PENDING: Final = 64


# ----------------------------------------------------------------- events


@attrs.frozen
class Acknowledged:
    """The server confirmed a request with the value that was asked for."""

    what: str
    value: bytes


@attrs.frozen
class Rejected:
    """The server answered a request with another value than was asked for."""

    what: str
    requested: bytes
    answer: bytes


@attrs.frozen
class ModemState:
    """NOTIFY-MODEMSTATE: the server's modem lines (``MODEM_*`` bits and their deltas)."""

    value: int


@attrs.frozen
class LineState:
    """NOTIFY-LINESTATE: the server's line state bits (errors, break detect, ...)."""

    value: int


Event = (
    Data
    | OptionChanged
    | Acknowledged
    | Rejected
    | ModemState
    | LineState
    | FlowControl
    | TelnetCommand
    | Closed
)


class RFC2217Client(TelnetMachine[Event]):
    """The client's Telnet/RFC 2217 state machine. No I/O.

    The Telnet layer (reading, negotiation, escaping) is
    :class:`._telnet_wire.TelnetMachine`'s, reading the server leniently:
    a sub-negotiation longer than :data:`MAX_SUBNEGOTIATION` is cut, not
    buffered. Added here: the requests, their answers matched against what
    was asked (at most :data:`MAX_PENDING` of a kind remembered), the
    server's notifications, and :attr:`bytes_without_data`.

    Args:
      check_control: match SET-CONTROL answers against requests (DTR, RTS,
        break, flow control). Off for servers that answer wrongly or not at
        all (pyserial's ``ign_set_control``): then control requests are not
        tracked and never pending.
    """

    def __init__(self, *, check_control: bool = True) -> None:
        super().__init__(
            requested=("they-ECHO", "we-SGA", "they-SGA", "they-RFC2217", "we-RFC2217"),
            inactive=("they-BINARY", "we-BINARY"),
            strict=False,
        )
        self.check_control = check_control
        #: The last NOTIFY-MODEMSTATE value, ``None`` until the server sends one.
        self.modem_state: int | None = None
        #: The last NOTIFY-LINESTATE value, ``None`` until the server sends one.
        self.line_state: int | None = None
        #: Whether the server asked us to stop sending (FLOWCONTROL-SUSPEND).
        self.flow_suspended = False
        # Bounded: a server that never answers must not make them grow forever.
        self._pending: dict[int, deque[bytes]] = {
            code: deque(maxlen=MAX_PENDING) for code in SETTING_NAMES
        }
        self._com_port_answered = False
        #: Bytes received since the last data byte or answer to one of our
        #: requests: what a server that only ever negotiates makes grow.
        self.bytes_without_data = 0
        self._progress = False

    # -------------------------------------------------------- negotiation

    @property
    def refused(self) -> bool:
        """The server refused COM-PORT-OPTION (``DONT``): it does not speak RFC 2217."""
        return self._com_port_answered and not self.is_active("we-RFC2217")

    @property
    def negotiated(self) -> bool:
        """The server agreed to RFC 2217, and no option we need is still being negotiated.

        That is pyserial's rule: "we-RFC2217" active (the server said ``DO
        COM-PORT-OPTION``) and "we-BINARY" not half-way.
        """
        ours = self.options["we-RFC2217"]
        binary = self.options["we-BINARY"]
        return ours.state is State.ACTIVE and binary.state is not State.REQUESTED

    # ---------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the server; ``b""`` means the server closed the connection."""
        self._progress = False
        super().receive_data(data)
        if self._progress:
            self.bytes_without_data = 0
        else:
            self.bytes_without_data += len(data)

    def _data(self, data: bytes) -> None:
        self._progress = True
        self._events.append(Data(data))

    def _negotiation(self, command: int, code: int) -> None:
        if code == COM_PORT_OPTION and command in (DO, DONT):
            self._com_port_answered = True  # the answer about "we-RFC2217"
        super()._negotiation(command, code)

    def _com_port(self, code: int, value: bytes) -> None:
        if code == SERVER_OFFSET + NOTIFY_MODEMSTATE and value:
            self.modem_state = value[0]
            self._events.append(ModemState(value[0]))
        elif code == SERVER_OFFSET + NOTIFY_LINESTATE and value:
            self.line_state = value[0]
            self._events.append(LineState(value[0]))
        elif code in (FLOWCONTROL_SUSPEND, SERVER_OFFSET + FLOWCONTROL_SUSPEND):
            self.flow_suspended = True
            self._events.append(FlowControl(True))
        elif code in (FLOWCONTROL_RESUME, SERVER_OFFSET + FLOWCONTROL_RESUME):
            self.flow_suspended = False
            self._events.append(FlowControl(False))
        elif code - SERVER_OFFSET in SETTING_NAMES:
            self._answer(code - SERVER_OFFSET, value)

    def _answer(self, command: int, value: bytes) -> None:
        pending = self._pending[command]
        what = SETTING_NAMES[command]
        if not pending:
            return  # unsolicited (or a late answer to an untracked control request)
        self._progress = True
        if command == SET_CONTROL:
            # Several control requests may be in flight; answers carry the value.
            for requested in pending:
                if value[: len(requested)] == requested:
                    pending.remove(requested)
                    self._events.append(Acknowledged(what, requested))
                    return
            requested = pending.popleft()
        else:
            requested = pending.popleft()
            if value[: len(requested)] == requested:
                self._events.append(Acknowledged(what, requested))
                return
        self._events.append(Rejected(what, requested, value))

    # ------------------------------------------------------------ sending

    def pending(self, what: str | None = None) -> int:
        """How many requests (of kind *what*, or of any kind) await their answer."""
        if what is None:
            return sum(len(p) for p in self._pending.values())
        (command,) = (c for c, name in SETTING_NAMES.items() if name == what)
        return len(self._pending[command])

    def forget_pending(self) -> None:
        """Stop waiting for answers (for servers that never send them)."""
        for pending in self._pending.values():
            pending.clear()

    def _request(self, command: int, value: bytes, *, track: bool = True) -> bytes:
        if track:
            self._pending[command].append(value)
        return subnegotiation(command, value)

    def set_baudrate(self, rate: int) -> bytes:
        if not 0 < rate < 2**32:
            raise ValueError(f"baudrate must be between 1 and {2**32 - 1}, got {rate!r}")
        return self._request(SET_BAUDRATE, encode_baudrate(rate))

    def set_datasize(self, bits: int) -> bytes:
        return self._request(SET_DATASIZE, bytes((bits,)))

    def set_parity(self, parity: Parity) -> bytes:
        return self._request(SET_PARITY, bytes((PARITY[parity],)))

    def set_stopsize(self, stopbits: StopBits) -> bytes:
        return self._request(SET_STOPSIZE, bytes((STOPSIZE[stopbits],)))

    def set_control(self, value: Control) -> bytes:
        return self._request(SET_CONTROL, bytes((value,)), track=self.check_control)

    def set_flow_control(self, settings: SerialSettings) -> bytes:
        """SET-CONTROL for *settings*' flow control (``rtscts`` or ``xonxoff``, not both)."""
        if settings.rtscts and settings.xonxoff:
            raise ValueError("RFC 2217 cannot ask for rtscts and xonxoff flow control together")
        if settings.rtscts:
            return self.set_control(Control.HW_FLOW_CONTROL)
        if settings.xonxoff:
            return self.set_control(Control.SW_FLOW_CONTROL)
        return self.set_control(Control.NO_FLOW_CONTROL)

    def set_line(self, settings: SerialSettings) -> bytes:
        """Baud rate, data size, parity and stop size of *settings*, in one go."""
        return (
            self.set_baudrate(settings.baudrate)
            + self.set_datasize(settings.bytesize)
            + self.set_parity(settings.parity)
            + self.set_stopsize(settings.stopbits)
        )

    def purge(self, which: Purge) -> bytes:
        return self._request(PURGE_DATA, bytes((which,)))

    def request_modem_state(self) -> bytes:
        """Ask for a NOTIFY-MODEMSTATE now (pyserial's ``poll_modem``)."""
        return subnegotiation(NOTIFY_MODEMSTATE, b"")
