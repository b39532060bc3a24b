"""The client side of Telnet with RFC 2217 (Com Port Control), sans-IO (layer 0).

In h11's shape: the protocol never touches a socket. Feed it what the server
sent with :meth:`RFC2217Client.receive_data`, take events out with
:meth:`RFC2217Client.next_event` until it returns :data:`NEED_DATA`, and
send whatever :meth:`RFC2217Client.data_to_send` and the ``send_*``/``set_*``
methods return. The I/O layer (``_rfc2217.py``) and the tests drive it the
same way.

What it does: option negotiation (BINARY, SGA, ECHO, COM-PORT-OPTION, as
pyserial's client requests them, refusing everything else), ``IAC``
escaping both ways (also inside sub-negotiations), the RFC 2217 commands
SET-BAUDRATE / -DATASIZE / -PARITY / -STOPSIZE / -CONTROL and PURGE-DATA
with their acknowledgements matched against what was asked, and the
server's NOTIFY-MODEMSTATE / NOTIFY-LINESTATE / FLOWCONTROL-SUSPEND/RESUME.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from typing import Final

import attrs

from ._settings import Parity, SerialSettings, StopBits

__all__ = [
    "NEED_DATA",
    "Acknowledged",
    "Closed",
    "Control",
    "Data",
    "Event",
    "FlowControl",
    "LineState",
    "ModemState",
    "OptionChanged",
    "Purge",
    "RFC2217Client",
    "Rejected",
    "TelnetCommand",
    "escape",
]

# Telnet (RFC 854/855) bytes.
IAC: Final = 255
DONT: Final = 254
DO: Final = 253
WONT: Final = 252
WILL: Final = 251
SB: Final = 250
SE: Final = 240

BINARY: Final = 0
ECHO: Final = 1
SGA: Final = 3
COM_PORT_OPTION: Final = 44

# RFC 2217 commands, client to server; the server answers with the value + 100.
SET_BAUDRATE: Final = 1
SET_DATASIZE: Final = 2
SET_PARITY: Final = 3
SET_STOPSIZE: Final = 4
SET_CONTROL: Final = 5
NOTIFY_LINESTATE: Final = 6
NOTIFY_MODEMSTATE: Final = 7
FLOWCONTROL_SUSPEND: Final = 8
FLOWCONTROL_RESUME: Final = 9
PURGE_DATA: Final = 12
SERVER_OFFSET: Final = 100

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
#: The longest sub-negotiation kept; longer ones (never RFC 2217) are cut.
MAX_SUBNEGOTIATION: Final = 256

_PARITY: Final = {Parity.NONE: 1, Parity.ODD: 2, Parity.EVEN: 3, Parity.MARK: 4, Parity.SPACE: 5}
_STOPSIZE: Final = {StopBits.ONE: 1, StopBits.TWO: 2, StopBits.ONE_POINT_FIVE: 3}


class Control(enum.IntEnum):
    """SET-CONTROL values (RFC 2217 section 3)."""

    NO_FLOW_CONTROL = 1
    SW_FLOW_CONTROL = 2
    HW_FLOW_CONTROL = 3
    BREAK_ON = 5
    BREAK_OFF = 6
    DTR_ON = 8
    DTR_OFF = 9
    RTS_ON = 11
    RTS_OFF = 12


class Purge(enum.IntEnum):
    """PURGE-DATA values: which of the access server's buffers to discard."""

    RECEIVE = 1
    TRANSMIT = 2
    BOTH = 3


# Modem state bits (NOTIFY-MODEMSTATE).
MODEM_CD: Final = 0x80
MODEM_RI: Final = 0x40
MODEM_DSR: Final = 0x20
MODEM_CTS: Final = 0x10


def escape(data: bytes | bytearray | memoryview) -> bytes:
    """Double every ``IAC`` (0xFF) so the server reads it as data."""
    return bytes(data).replace(b"\xff", b"\xff\xff")


# ----------------------------------------------------------------- events


@attrs.frozen
class Data:
    """Bytes of the serial line, unescaped."""

    data: bytes


@attrs.frozen
class OptionChanged:
    """A Telnet option was switched on or off (``name`` as in :attr:`RFC2217Client.options`)."""

    name: str
    active: bool


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


@attrs.frozen
class FlowControl:
    """The server asks us to stop (``suspended=True``) or resume sending."""

    suspended: bool


@attrs.frozen
class TelnetCommand:
    """Another Telnet command (NOP, BRK, AYT, ...), reported and otherwise ignored."""

    code: int


@attrs.frozen
class Closed:
    """The server closed the connection (``receive_data(b"")``)."""


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


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`RFC2217Client.next_event` when it has no more events.
NEED_DATA: Final = _NeedData()


# ---------------------------------------------------------------- options


class _State(enum.Enum):
    REQUESTED = "requested"
    ACTIVE = "active"
    INACTIVE = "inactive"


@attrs.define
class _Option:
    """One side of one Telnet option (RFC 1143's Q method, simplified as pyserial does)."""

    name: str
    code: int
    send_yes: int
    send_no: int
    ack_yes: int
    ack_no: int
    state: _State


class _Mode(enum.Enum):
    NORMAL = 0
    IAC = 1
    NEGOTIATE = 2


class RFC2217Client:
    """The client's Telnet/RFC 2217 state machine. No I/O.

    Args:
      check_control: match SET-CONTROL answers against requests (DTR, RTS,
        break, flow control). Off for servers that answer wrongly or not at
        all (pyserial's ``ign_set_control``): then control requests are not
        tracked and never pending.
    """

    def __init__(self, *, check_control: bool = True) -> None:
        self.check_control = check_control
        #: Telnet options by name: "we-X" is ours (WILL/WONT), "they-X" the server's (DO/DONT).
        self.options: dict[str, _Option] = {
            o.name: o
            for o in (
                _Option("they-ECHO", ECHO, DO, DONT, WILL, WONT, _State.REQUESTED),
                _Option("we-SGA", SGA, WILL, WONT, DO, DONT, _State.REQUESTED),
                _Option("they-SGA", SGA, DO, DONT, WILL, WONT, _State.REQUESTED),
                _Option("they-BINARY", BINARY, DO, DONT, WILL, WONT, _State.INACTIVE),
                _Option("we-BINARY", BINARY, WILL, WONT, DO, DONT, _State.INACTIVE),
                _Option("they-RFC2217", COM_PORT_OPTION, DO, DONT, WILL, WONT, _State.REQUESTED),
                _Option("we-RFC2217", COM_PORT_OPTION, WILL, WONT, DO, DONT, _State.REQUESTED),
            )
        }
        #: The last NOTIFY-MODEMSTATE value, ``None`` until the server sends one.
        self.modem_state: int | None = None
        #: The last NOTIFY-LINESTATE value, ``None`` until the server sends one.
        self.line_state: int | None = None
        #: Whether the server asked us to stop sending (FLOWCONTROL-SUSPEND).
        self.flow_suspended = False
        #: Whether the server closed the connection.
        self.closed = False
        # Bounded: a server that never answers must not make them grow forever.
        self._pending: dict[int, deque[bytes]] = {
            code: deque(maxlen=MAX_PENDING) for code in SETTING_NAMES
        }
        self._events: deque[Event] = deque()
        self._outgoing = bytearray()
        self._mode = _Mode.NORMAL
        self._command = 0
        self._sub: bytearray | None = None
        self._com_port_answered = False
        # Options refused so far, as (command, code): refused once, not at every
        # request (RFC 1143 answers a change of state, and "no" is no change).
        self._refused: set[tuple[int, int]] = set()
        #: Bytes received since the last data byte or answer to one of our
        #: requests: what a server that only ever negotiates makes grow.
        self.bytes_without_data = 0
        self._progress = False

    # -------------------------------------------------------- negotiation

    def initiate(self) -> bytes:
        """The opening requests (``DO``/``WILL`` for the options we want)."""
        out = bytearray()
        for option in self.options.values():
            if option.state is _State.REQUESTED:
                out += bytes((IAC, option.send_yes, option.code))
        return bytes(out)

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
        return ours.state is _State.ACTIVE and binary.state is not _State.REQUESTED

    def is_active(self, name: str) -> bool:
        return self.options[name].state is _State.ACTIVE

    # ---------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the server; ``b""`` means the server closed the connection."""
        if not data:
            if not self.closed:
                self.closed = True
                self._events.append(Closed())
            return
        buf = bytes(data)
        mode = self._mode
        if mode is _Mode.NORMAL and self._sub is None and IAC not in buf:
            self._events.append(Data(buf))  # the fast path: plain data
            self.bytes_without_data = 0
            return
        self._progress = False
        i = 0
        end = len(buf)
        plain = bytearray()
        while i < end:
            if mode is _Mode.NORMAL:
                j = buf.find(b"\xff", i)
                stop = end if j == -1 else j
                if self._sub is not None:
                    room = MAX_SUBNEGOTIATION - len(self._sub)
                    self._sub += buf[i : min(stop, i + max(room, 0))]
                else:
                    plain += buf[i:stop]
                if j == -1:
                    break
                mode = _Mode.IAC
                i = j + 1
            elif mode is _Mode.IAC:
                byte = buf[i]
                i += 1
                mode = _Mode.NORMAL
                if byte == IAC:
                    if self._sub is not None:
                        if len(self._sub) < MAX_SUBNEGOTIATION:
                            self._sub.append(IAC)
                    else:
                        plain.append(IAC)
                elif byte == SB:
                    self._sub = bytearray()
                elif byte == SE:
                    sub, self._sub = self._sub, None
                    if sub is not None:
                        plain = self._flush_plain(plain)
                        self._subnegotiation(bytes(sub))
                elif byte in (DO, DONT, WILL, WONT):
                    self._command = byte
                    mode = _Mode.NEGOTIATE
                else:
                    plain = self._flush_plain(plain)
                    self._events.append(TelnetCommand(byte))
            else:  # NEGOTIATE: the option byte after DO/DONT/WILL/WONT
                byte = buf[i]
                i += 1
                mode = _Mode.NORMAL
                plain = self._flush_plain(plain)
                self._negotiate(self._command, byte)
        self._mode = mode
        self._flush_plain(plain)
        if self._progress:
            self.bytes_without_data = 0
        else:
            self.bytes_without_data += end

    def _flush_plain(self, plain: bytearray) -> bytearray:
        if plain:
            self._events.append(Data(bytes(plain)))
            self._progress = True
            return bytearray()
        return plain

    def next_event(self) -> Event | _NeedData:
        """The next event, or :data:`NEED_DATA` when everything fed so far is processed."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def data_to_send(self) -> bytes:
        """Replies the protocol owes the server (answers to its negotiation); clears them."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def _negotiate(self, command: int, code: int) -> None:
        known = False
        for option in self.options.values():
            if option.code != code or command not in (option.ack_yes, option.ack_no):
                continue
            # Only the side the command is about: ECHO is "they-ECHO" alone, so
            # a DO ECHO (the server asking us to echo) is refused below.
            known = True
            if option.name == "we-RFC2217" and command in (DO, DONT):
                self._com_port_answered = True
            if command == option.ack_yes:
                if option.state is _State.INACTIVE:
                    self._outgoing += bytes((IAC, option.send_yes, code))
                if option.state is not _State.ACTIVE:
                    option.state = _State.ACTIVE
                    self._events.append(OptionChanged(option.name, True))
            elif command == option.ack_no:
                if option.state is _State.ACTIVE:
                    self._outgoing += bytes((IAC, option.send_no, code))
                    self._events.append(OptionChanged(option.name, False))
                option.state = _State.INACTIVE
        if not known and command in (WILL, DO) and (command, code) not in self._refused:
            # Refuse what we do not know (RFC 855): DONT for WILL, WONT for DO.
            # Once: asked again, the option is still off, and a server that
            # repeats the request must not make our answers pile up.
            self._refused.add((command, code))
            self._outgoing += bytes((IAC, DONT if command == WILL else WONT, code))

    def _subnegotiation(self, sub: bytes) -> None:
        if len(sub) < 2 or sub[0] != COM_PORT_OPTION:
            return  # not ours; RFC 855 says ignore
        code, value = sub[1], sub[2:]
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
        return _subnegotiation(command, value)

    def set_baudrate(self, rate: int) -> bytes:
        if not 0 < rate < 2**32:
            raise ValueError(f"baudrate must be between 1 and {2**32 - 1}, got {rate!r}")
        return self._request(SET_BAUDRATE, struct.pack("!I", rate))

    def set_datasize(self, bits: int) -> bytes:
        return self._request(SET_DATASIZE, bytes((bits,)))

    def set_parity(self, parity: Parity) -> bytes:
        return self._request(SET_PARITY, bytes((_PARITY[parity],)))

    def set_stopsize(self, stopbits: StopBits) -> bytes:
        return self._request(SET_STOPSIZE, bytes((_STOPSIZE[stopbits],)))

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
        return _subnegotiation(NOTIFY_MODEMSTATE, b"")


def _subnegotiation(command: int, value: bytes) -> bytes:
    return bytes((IAC, SB, COM_PORT_OPTION, command)) + escape(value) + bytes((IAC, SE))
