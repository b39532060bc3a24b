"""The server side of Telnet with RFC 2217 (Com Port Control), sans-IO (layer 0).

In h11's shape, like the client in :mod:`._telnet`: feed what the client
sent with :meth:`RFC2217Server.receive_data`, take events out with
:meth:`RFC2217Server.next_event` until :data:`~._telnet.NEED_DATA`, and send
what :meth:`RFC2217Server.data_to_send` and the ``answer_*``/``notify_*``
methods return. The protocol never touches the port: a request is an event,
the I/O layer applies it (or not) and answers with what is then in force,
so a rejected setting is answered with the old value, as RFC 2217 says.

Handled here: option negotiation (the server offers ECHO, SGA and BINARY,
accepts COM-PORT-OPTION, refuses the rest), ``IAC`` escaping both ways, the
line-state and modem-state masks (answered at once), and when a
NOTIFY-MODEMSTATE / NOTIFY-LINESTATE is due, with its delta bits, under the
client's masks.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any, Final

import attrs

from ._settings import ModemLines, SerialSettings
from ._telnet import (
    _PARITY,
    _STOPSIZE,
    BINARY,
    COM_PORT_OPTION,
    DO,
    DONT,
    ECHO,
    FLOWCONTROL_RESUME,
    FLOWCONTROL_SUSPEND,
    IAC,
    MODEM_CD,
    MODEM_CTS,
    MODEM_DSR,
    MODEM_RI,
    NEED_DATA,
    NOTIFY_LINESTATE,
    NOTIFY_MODEMSTATE,
    PURGE_DATA,
    SERVER_OFFSET,
    SET_BAUDRATE,
    SET_CONTROL,
    SET_DATASIZE,
    SET_PARITY,
    SET_STOPSIZE,
    SGA,
    WILL,
    WONT,
    Closed,
    Data,
    FlowControl,
    OptionChanged,
    TelnetCommand,
    _NeedData,
    _Option,
    _State,
    escape,
)
from ._telnet_wire import (
    Malformed,
    Negotiation,
    Subnegotiation,
    TelnetReader,
    negotiate,
    subnegotiation,
)

__all__ = [
    "ControlState",
    "LineStateRequest",
    "ModemStateRequest",
    "PurgeRequest",
    "RFC2217Server",
    "ServerEvent",
    "SetControl",
    "SetSetting",
    "modem_bits",
]

SET_LINESTATE_MASK: Final = 10
SET_MODEMSTATE_MASK: Final = 11

#: Modem-state delta bits, by the line they follow (RI reports a trailing edge).
_DELTAS: Final = ((MODEM_CTS, 0x01), (MODEM_DSR, 0x02), (MODEM_RI, 0x04), (MODEM_CD, 0x08))
_PARITY_OF: Final = {code: parity for parity, code in _PARITY.items()}
_STOPBITS_OF: Final = {code: stopbits for stopbits, code in _STOPSIZE.items()}
_FLOW_CODE: Final = {(False, False): 1, (True, False): 2, (False, True): 3}


def modem_bits(lines: ModemLines) -> int:
    """The four input lines as NOTIFY-MODEMSTATE's upper bits."""
    return (
        (MODEM_CTS if lines.cts else 0)
        | (MODEM_DSR if lines.dsr else 0)
        | (MODEM_RI if lines.ri else 0)
        | (MODEM_CD if lines.cd else 0)
    )


# ----------------------------------------------------------------- events


@attrs.frozen
class SetSetting:
    """SET-BAUDRATE, -DATASIZE, -PARITY or -STOPSIZE (``value`` 0 only asks)."""

    command: int
    value: int

    def changes(self) -> dict[str, Any]:
        """The :meth:`~trioserial.AsyncSerial.reconfigure` arguments asked for.

        Empty for a query. Raises :exc:`ValueError` for a value RFC 2217 does
        not define (then answer with what is in force: the request is rejected).
        """
        value = self.value
        if value == 0:
            return {}
        if self.command == SET_BAUDRATE:
            return {"baudrate": value}
        if self.command == SET_DATASIZE:
            if not 5 <= value <= 8:
                raise ValueError(f"data size must be 5 to 8, got {value}")
            return {"bytesize": value}
        if self.command == SET_PARITY:
            if value not in _PARITY_OF:
                raise ValueError(f"parity must be 1 to 5, got {value}")
            return {"parity": _PARITY_OF[value]}
        if value not in _STOPBITS_OF:
            raise ValueError(f"stop size must be 1 to 3, got {value}")
        return {"stopbits": _STOPBITS_OF[value]}


@attrs.frozen
class SetControl:
    """SET-CONTROL with its RFC 2217 value (0-19; queries are 0, 4, 7, 10 and 13).

    ``flow``, ``dtr``, ``rts`` and ``break_`` say what to change, or ``None``.
    Inbound flow control and the DCD/DTR/DSR flow modes are not separate
    settings on Linux: they are answered with what is in force.
    """

    value: int

    @property
    def flow(self) -> tuple[bool, bool] | None:
        """``(xonxoff, rtscts)`` to set, or None."""
        return {1: (False, False), 2: (True, False), 3: (False, True)}.get(self.value)

    @property
    def break_(self) -> bool | None:
        return {5: True, 6: False}.get(self.value)

    @property
    def dtr(self) -> bool | None:
        return {8: True, 9: False}.get(self.value)

    @property
    def rts(self) -> bool | None:
        return {11: True, 12: False}.get(self.value)


@attrs.frozen
class PurgeRequest:
    """PURGE-DATA: 1 the server's receive buffer, 2 its transmit buffer, 3 both."""

    value: int

    @property
    def receive(self) -> bool:
        return self.value in (1, 3)

    @property
    def transmit(self) -> bool:
        return self.value in (2, 3)


@attrs.frozen
class ModemStateRequest:
    """The client asks for a NOTIFY-MODEMSTATE now."""


@attrs.frozen
class LineStateRequest:
    """The client asks for a NOTIFY-LINESTATE now."""


@attrs.frozen
class ControlState:
    """What is in force, for answering SET-CONTROL."""

    settings: SerialSettings
    dtr: bool
    rts: bool
    break_condition: bool


ServerEvent = (
    Data
    | OptionChanged
    | SetSetting
    | SetControl
    | PurgeRequest
    | ModemStateRequest
    | LineStateRequest
    | FlowControl
    | TelnetCommand
    | Malformed
    | Closed
)


class RFC2217Server:
    """The server's Telnet/RFC 2217 state machine for one client. No I/O."""

    def __init__(self) -> None:
        #: Telnet options by name: "we-X" is ours (WILL/WONT), "they-X" the client's (DO/DONT).
        self.options: dict[str, _Option] = {
            o.name: o
            for o in (
                _Option("we-ECHO", ECHO, WILL, WONT, DO, DONT, _State.REQUESTED),
                _Option("we-SGA", SGA, WILL, WONT, DO, DONT, _State.REQUESTED),
                _Option("they-SGA", SGA, DO, DONT, WILL, WONT, _State.INACTIVE),
                _Option("we-BINARY", BINARY, WILL, WONT, DO, DONT, _State.REQUESTED),
                _Option("they-BINARY", BINARY, DO, DONT, WILL, WONT, _State.REQUESTED),
                _Option("we-RFC2217", COM_PORT_OPTION, WILL, WONT, DO, DONT, _State.INACTIVE),
                _Option("they-RFC2217", COM_PORT_OPTION, DO, DONT, WILL, WONT, _State.INACTIVE),
            )
        }
        #: The client's masks (RFC 2217's initial values).
        self.modemstate_mask = 0xFF
        self.linestate_mask = 0
        #: Whether the client asked us to stop sending it data (FLOWCONTROL-SUSPEND).
        self.flow_suspended = False
        self.closed = False
        self._reader = TelnetReader()
        self._events: deque[ServerEvent] = deque()
        self._outgoing = bytearray()
        self._modem: int | None = None  # the lines last reported (upper bits)
        self._line: int | None = None
        self._after_cr = False  # text mode: the last data byte was a CR
        self._refused: set[tuple[int, int]] = set()  # unknown options, refused once

    def initiate(self) -> bytes:
        """The opening offers (``WILL``/``DO`` for the options we want)."""
        return b"".join(
            bytes((IAC, o.send_yes, o.code))
            for o in self.options.values()
            if o.state is _State.REQUESTED
        )

    @property
    def rfc2217(self) -> bool:
        """The client agreed to COM-PORT-OPTION (either direction)."""
        return any(self.is_active(n) for n in ("we-RFC2217", "they-RFC2217"))

    def is_active(self, name: str) -> bool:
        return self.options[name].state is _State.ACTIVE

    # ---------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the client; ``b""`` means it closed the connection."""
        if not data:
            if not self.closed:
                self.closed = True
                self._events.append(Closed())
            return
        for token in self._reader.feed(data):
            if isinstance(token, Negotiation):
                answer, changed = negotiate(
                    self.options, token.command, token.option, self._refused
                )
                self._outgoing += answer
                self._events.extend(OptionChanged(n, self.is_active(n)) for n in changed)
            elif isinstance(token, Subnegotiation):
                self._subnegotiation(token.payload)
            elif isinstance(token, Data) and not self.is_active("they-BINARY"):
                self._text_data(token.data)
            else:
                self._events.append(token)

    def _text_data(self, data: bytes) -> None:
        """Telnet's text mode (RFC 854): a CR is sent as CR NUL or CR LF; the NUL is not data."""
        if self._after_cr and data[:1] == b"\0":
            data = data[1:]
        self._after_cr = data[-1:] == b"\r"
        data = data.replace(b"\r\0", b"\r")
        if data:
            self._events.append(Data(data))

    def next_event(self) -> ServerEvent | _NeedData:
        """The next event, or :data:`NEED_DATA` when everything fed so far is processed."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def data_to_send(self) -> bytes:
        """Replies owed to the client (negotiation, mask answers); clears them."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def _subnegotiation(self, sub: bytes) -> None:
        if len(sub) < 2 or sub[0] != COM_PORT_OPTION:
            return  # not ours: RFC 855 says ignore
        code, value = sub[1], sub[2:]
        first = value[0] if value else 0
        if code == SET_BAUDRATE:
            if len(value) != 4:
                self._events.append(Malformed(f"SET-BAUDRATE with {len(value)} bytes"))
                return
            self._events.append(SetSetting(code, struct.unpack("!I", value)[0]))
        elif code in (SET_DATASIZE, SET_PARITY, SET_STOPSIZE):
            self._events.append(SetSetting(code, first))
        elif code == SET_CONTROL:
            self._events.append(SetControl(first))
        elif code == PURGE_DATA:
            self._events.append(PurgeRequest(first))
        elif code == NOTIFY_MODEMSTATE:
            self._events.append(ModemStateRequest())
        elif code == NOTIFY_LINESTATE:
            self._events.append(LineStateRequest())
        elif code == SET_MODEMSTATE_MASK:
            self.modemstate_mask = first
            self._outgoing += subnegotiation(SERVER_OFFSET + code, bytes((first,)))
        elif code == SET_LINESTATE_MASK:
            self.linestate_mask = first
            self._outgoing += subnegotiation(SERVER_OFFSET + code, bytes((first,)))
        elif code in (FLOWCONTROL_SUSPEND, FLOWCONTROL_RESUME):
            self.flow_suspended = code == FLOWCONTROL_SUSPEND
            self._events.append(FlowControl(self.flow_suspended))
        # Anything else (SIGNATURE, server-to-client codes) is ignored.

    # ------------------------------------------------------------ sending

    def send_data(self, data: bytes | bytearray | memoryview) -> bytes:
        """Device bytes framed for the client (every ``IAC`` doubled)."""
        return escape(data)

    def answer_setting(self, request: SetSetting, settings: SerialSettings) -> bytes:
        """Answer *request* with the value in force in *settings*."""
        command = request.command
        if command == SET_BAUDRATE:
            value = struct.pack("!I", settings.baudrate)
        elif command == SET_DATASIZE:
            value = bytes((settings.bytesize,))
        elif command == SET_PARITY:
            value = bytes((_PARITY[settings.parity],))
        else:
            value = bytes((_STOPSIZE[settings.stopbits],))
        return subnegotiation(SERVER_OFFSET + command, value)

    def answer_control(self, request: SetControl, state: ControlState) -> bytes:
        """Answer *request* with the state in force (for every value, queries too)."""
        flow = _FLOW_CODE.get((state.settings.xonxoff, state.settings.rtscts), 1)
        value = request.value
        if 4 <= value <= 6:
            answer = 5 if state.break_condition else 6
        elif 7 <= value <= 9:
            answer = 8 if state.dtr else 9
        elif 10 <= value <= 12:
            answer = 11 if state.rts else 12
        elif 13 <= value <= 16:
            answer = flow + 13  # inbound: 14 none, 15 XON/XOFF, 16 hardware
        else:
            answer = flow
        return subnegotiation(SERVER_OFFSET + SET_CONTROL, bytes((answer,)))

    def answer_purge(self, request: PurgeRequest) -> bytes:
        return subnegotiation(SERVER_OFFSET + PURGE_DATA, bytes((request.value,)))

    def notify_modem(self, lines: int, *, force: bool = False) -> bytes:
        """NOTIFY-MODEMSTATE for the input lines *lines* (``modem_bits``), if due.

        Due when a line changed since the last report and the masked value
        (lines and delta bits) is not zero, as RFC 2217 says, or when
        *force* (the client asked, or it just agreed to RFC 2217).
        """
        lines &= 0xF0
        last = self._modem
        deltas = 0
        for line, delta in _DELTAS:
            changed = last is not None and (lines ^ last) & line
            if changed and (line != MODEM_RI or not lines & MODEM_RI):  # RI: the trailing edge
                deltas |= delta
        self._modem = lines
        value = (lines | deltas) & self.modemstate_mask
        if force or ((last is None or last != lines) and value):
            return subnegotiation(SERVER_OFFSET + NOTIFY_MODEMSTATE, bytes((value,)))
        return b""

    def notify_line(self, state: int, *, force: bool = False) -> bytes:
        """NOTIFY-LINESTATE for *state*, if due (as :meth:`notify_modem`)."""
        last, self._line = self._line, state
        value = state & self.linestate_mask
        if force or (last != state and value):
            return subnegotiation(SERVER_OFFSET + NOTIFY_LINESTATE, bytes((value,)))
        return b""
