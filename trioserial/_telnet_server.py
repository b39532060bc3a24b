"""The server side of Telnet with RFC 2217 (Com Port Control), sans-IO (layer 0).

In h11's shape, like the client in :mod:`._telnet`: feed what the client
sent with :meth:`RFC2217Server.receive_data`, take events out with
:meth:`RFC2217Server.next_event` until :data:`~._telnet_wire.NEED_DATA`, and send
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

from typing import Any, Final

import attrs

from ._settings import ModemLines, SerialSettings
from ._telnet_wire import (
    FLOWCONTROL_RESUME,
    FLOWCONTROL_SUSPEND,
    MODEM_CD,
    MODEM_CTS,
    MODEM_DSR,
    MODEM_RI,
    NOTIFY_LINESTATE,
    NOTIFY_MODEMSTATE,
    PARITY,
    PARITY_OF,
    PURGE_DATA,
    SERVER_OFFSET,
    SET_BAUDRATE,
    SET_CONTROL,
    SET_DATASIZE,
    SET_LINESTATE_MASK,
    SET_MODEMSTATE_MASK,
    SET_PARITY,
    SET_STOPSIZE,
    STOPBITS_OF,
    STOPSIZE,
    Closed,
    Control,
    Data,
    FlowControl,
    Malformed,
    OptionChanged,
    Purge,
    TelnetCommand,
    TelnetMachine,
    decode_baudrate,
    encode_baudrate,
    escape,
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

#: Modem-state delta bits, by the line they follow (RI reports a trailing edge).
_DELTAS: Final = ((MODEM_CTS, 0x01), (MODEM_DSR, 0x02), (MODEM_RI, 0x04), (MODEM_CD, 0x08))
#: SET-CONTROL's flow control values, by ``(xonxoff, rtscts)``, both ways.
_FLOW_CODE: Final = {
    (False, False): Control.NO_FLOW_CONTROL,
    (True, False): Control.SW_FLOW_CONTROL,
    (False, True): Control.HW_FLOW_CONTROL,
}
_FLOW_OF: Final[dict[int, tuple[bool, bool]]] = {code: flow for flow, code in _FLOW_CODE.items()}


def _switch(value: int, on: Control, off: Control) -> bool | None:
    """What a SET-CONTROL *value* asks of one switch (DTR, RTS, break), or None."""
    return True if value == on else False if value == off else None


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
            if value not in PARITY_OF:
                raise ValueError(f"parity must be 1 to 5, got {value}")
            return {"parity": PARITY_OF[value]}
        if value not in STOPBITS_OF:
            raise ValueError(f"stop size must be 1 to 3, got {value}")
        return {"stopbits": STOPBITS_OF[value]}


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
        return _FLOW_OF.get(self.value)

    @property
    def break_(self) -> bool | None:
        return _switch(self.value, Control.BREAK_ON, Control.BREAK_OFF)

    @property
    def dtr(self) -> bool | None:
        return _switch(self.value, Control.DTR_ON, Control.DTR_OFF)

    @property
    def rts(self) -> bool | None:
        return _switch(self.value, Control.RTS_ON, Control.RTS_OFF)


@attrs.frozen
class PurgeRequest:
    """PURGE-DATA: 1 the server's receive buffer, 2 its transmit buffer, 3 both."""

    value: int

    @property
    def receive(self) -> bool:
        return self.value in (Purge.RECEIVE, Purge.BOTH)

    @property
    def transmit(self) -> bool:
        return self.value in (Purge.TRANSMIT, Purge.BOTH)


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


class RFC2217Server(TelnetMachine[ServerEvent]):
    """The server's Telnet/RFC 2217 state machine for one client. No I/O.

    The Telnet layer (reading, negotiation, escaping) is
    :class:`._telnet_wire.TelnetMachine`'s, reading the client strictly:
    what RFC 854/855 do not allow ends the stream with one
    :class:`~._telnet_wire.Malformed` event.
    """

    def __init__(self) -> None:
        super().__init__(
            requested=("we-ECHO", "we-SGA", "we-BINARY", "they-BINARY"),
            inactive=("they-SGA", "we-RFC2217", "they-RFC2217"),
            strict=True,
        )
        #: The client's masks (RFC 2217's initial values).
        self.modemstate_mask = 0xFF
        self.linestate_mask = 0
        #: Whether the client asked us to stop sending it data (FLOWCONTROL-SUSPEND).
        self.flow_suspended = False
        self._modem: int | None = None  # the lines last reported (upper bits)
        self._line: int | None = None
        self._after_cr = False  # text mode: the last data byte was a CR

    @property
    def rfc2217(self) -> bool:
        """The client agreed to COM-PORT-OPTION (either direction)."""
        return any(self.is_active(n) for n in ("we-RFC2217", "they-RFC2217"))

    # ---------------------------------------------------------- receiving

    def _data(self, data: bytes) -> None:
        """Telnet's text mode (RFC 854): a CR is sent as CR NUL or CR LF; the NUL is not data."""
        if self.is_active("they-BINARY"):
            self._events.append(Data(data))
            return
        if self._after_cr and data[:1] == b"\0":
            data = data[1:]
        self._after_cr = data[-1:] == b"\r"
        data = data.replace(b"\r\0", b"\r")
        if data:
            self._events.append(Data(data))

    def _com_port(self, code: int, value: bytes) -> None:
        first = value[0] if value else 0
        if code == SET_BAUDRATE:
            try:
                rate = decode_baudrate(value)
            except ValueError as exc:
                self._events.append(Malformed(str(exc)))
                return
            self._events.append(SetSetting(code, rate))
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
            value = encode_baudrate(settings.baudrate)
        elif command == SET_DATASIZE:
            value = bytes((settings.bytesize,))
        elif command == SET_PARITY:
            value = bytes((PARITY[settings.parity],))
        else:
            value = bytes((STOPSIZE[settings.stopbits],))
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
