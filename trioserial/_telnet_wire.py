"""Telnet and RFC 2217, shared by the client and the server, sans-IO (layer 0).

One protocol layer under both ends: the constants and value codecs of
RFC 854/855 and RFC 2217, :class:`TelnetReader` (a byte stream split into
data, commands, option negotiations and sub-negotiations), :func:`negotiate`
(one ``DO``/``DONT``/``WILL``/``WONT`` applied to a table of options, RFC
1143's Q method simplified as pyserial does), :func:`subnegotiation` (an
RFC 2217 message framed), and :class:`TelnetMachine`, the h11-shaped
machine both :class:`._telnet.RFC2217Client` and
:class:`._telnet_server.RFC2217Server` are thin over: bytes in with
``receive_data``, events out with ``next_event``, replies out with
``data_to_send``. Each end adds only what RFC 2217 asks of its side.

Everything here reads untrusted input. The work per call is linear in the
bytes fed; nothing is kept between calls but a partial sub-negotiation of
at most :data:`MAX_SUBNEGOTIATION` bytes; an unknown option is refused once,
so a repeating peer cannot make the replies pile up. The reader is strict
for the server (what RFC 854/855 do not allow ends the stream with one
:class:`Malformed`) and lenient for the client (which must talk to the
access servers that exist: a long sub-negotiation is cut, a stray command
is reported and otherwise ignored).
"""

from __future__ import annotations

import abc
import enum
import struct
from collections import deque
from typing import Final, Generic, TypeVar, cast

import attrs

from ._settings import Parity, StopBits

__all__ = [
    "NEED_DATA",
    "Closed",
    "Control",
    "Data",
    "FlowControl",
    "Malformed",
    "NeedData",
    "Negotiation",
    "Option",
    "OptionChanged",
    "Purge",
    "State",
    "Subnegotiation",
    "TelnetCommand",
    "TelnetMachine",
    "TelnetReader",
    "Token",
    "decode_baudrate",
    "encode_baudrate",
    "escape",
    "negotiate",
    "subnegotiation",
]

# Telnet (RFC 854/855) bytes.
IAC: Final = 255
DONT: Final = 254
DO: Final = 253
WONT: Final = 252
WILL: Final = 251
SB: Final = 250
SE: Final = 240
#: The lowest byte that may follow an ``IAC`` (EOF, RFC 1184; 240-255 are RFC 854's).
FIRST_COMMAND: Final = 236

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
SET_LINESTATE_MASK: Final = 10
SET_MODEMSTATE_MASK: Final = 11
PURGE_DATA: Final = 12
SERVER_OFFSET: Final = 100

#: The options either end knows, by the name used in ``options``.
OPTION_CODES: Final = {"BINARY": BINARY, "ECHO": ECHO, "SGA": SGA, "RFC2217": COM_PORT_OPTION}

#: The longest sub-negotiation kept; longer ones (never RFC 2217) are cut or refused.
MAX_SUBNEGOTIATION: Final = 256

#: SET-PARITY and SET-STOPSIZE values, both ways.
PARITY: Final = {Parity.NONE: 1, Parity.ODD: 2, Parity.EVEN: 3, Parity.MARK: 4, Parity.SPACE: 5}
STOPSIZE: Final = {StopBits.ONE: 1, StopBits.TWO: 2, StopBits.ONE_POINT_FIVE: 3}
PARITY_OF: Final = {code: parity for parity, code in PARITY.items()}
STOPBITS_OF: Final = {code: stopbits for stopbits, code in STOPSIZE.items()}


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


# Modem state bits (NOTIFY-MODEMSTATE); the low four are their deltas.
MODEM_CD: Final = 0x80
MODEM_RI: Final = 0x40
MODEM_DSR: Final = 0x20
MODEM_CTS: Final = 0x10


def escape(data: bytes | bytearray | memoryview) -> bytes:
    """Double every ``IAC`` (0xFF) so the peer reads it as data."""
    return bytes(data).replace(b"\xff", b"\xff\xff")


def encode_baudrate(rate: int) -> bytes:
    """SET-BAUDRATE's value: four bytes, network order."""
    return struct.pack("!I", rate)


def decode_baudrate(value: bytes) -> int:
    """The rate in a SET-BAUDRATE value; :exc:`ValueError` unless it is four bytes."""
    if len(value) != 4:
        raise ValueError(f"SET-BAUDRATE with {len(value)} bytes")
    rate: int = struct.unpack("!I", value)[0]
    return rate


def subnegotiation(command: int, value: bytes) -> bytes:
    """``IAC SB COM-PORT-OPTION command value IAC SE``, the value escaped."""
    return bytes((IAC, SB, COM_PORT_OPTION, command)) + escape(value) + bytes((IAC, SE))


# ----------------------------------------------------------------- events


@attrs.frozen
class Data:
    """Bytes of the serial line, unescaped."""

    data: bytes


@attrs.frozen
class TelnetCommand:
    """Another Telnet command (NOP, BRK, AYT, ...), reported and otherwise ignored."""

    code: int


@attrs.frozen
class OptionChanged:
    """A Telnet option was switched on or off (``name`` as in ``options``)."""

    name: str
    active: bool


@attrs.frozen
class FlowControl:
    """The peer asks us to stop (``suspended=True``) or resume sending."""

    suspended: bool


@attrs.frozen
class Closed:
    """The peer closed the connection (``receive_data(b"")``)."""


@attrs.frozen
class Negotiation:
    """``IAC DO|DONT|WILL|WONT option``."""

    command: int
    option: int


@attrs.frozen
class Subnegotiation:
    """``IAC SB payload IAC SE``, the payload unescaped (its first byte is the option)."""

    payload: bytes


@attrs.frozen
class Malformed:
    """The peer broke the Telnet framing (or RFC 2217's); nothing after this is parsed."""

    reason: str


Token = Data | TelnetCommand | Negotiation | Subnegotiation | Malformed


class NeedData:
    """The type of :data:`NEED_DATA`."""

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by ``next_event`` when it has no more events.
NEED_DATA: Final = NeedData()


# ------------------------------------------------------------- the reader


class _Mode(enum.Enum):
    NORMAL = 0
    IAC = 1
    NEGOTIATE = 2


class TelnetReader:
    """Split a Telnet byte stream into tokens. No I/O.

    Args:
      max_subnegotiation: the longest sub-negotiation payload kept.
      strict: end the stream with one :class:`Malformed` at what RFC 854/855
        do not allow (the server's reading of its clients). Lenient
        (``False``, the client's reading of access servers) cuts a long
        sub-negotiation to *max_subnegotiation* bytes, ignores a stray
        ``SE`` and reports any other byte after ``IAC`` as a
        :class:`TelnetCommand`, also inside a sub-negotiation.
    """

    def __init__(
        self, *, max_subnegotiation: int = MAX_SUBNEGOTIATION, strict: bool = True
    ) -> None:
        self.max_subnegotiation = max_subnegotiation
        self.strict = strict
        self.broken = False
        self._mode = _Mode.NORMAL
        self._command = 0
        self._sub: bytearray | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Token]:
        """Parse *data* (any split of the stream is fine); return its tokens in order."""
        if self.broken or not data:
            return []
        buf = bytes(data)
        if self._mode is _Mode.NORMAL and self._sub is None and IAC not in buf:
            return [Data(buf)]  # the fast path: plain data
        tokens: list[Token] = []
        plain = bytearray()
        i, end = 0, len(buf)
        mode = self._mode
        strict = self.strict
        while i < end:
            if mode is _Mode.NORMAL:
                j = buf.find(b"\xff", i)
                stop = end if j == -1 else j
                if self._sub is not None:
                    room = self.max_subnegotiation - len(self._sub)
                    if strict and stop - i > room:
                        return self._fail(tokens, plain, "sub-negotiation too long")
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
                    if self._sub is None:
                        plain.append(IAC)
                    elif len(self._sub) < self.max_subnegotiation:
                        self._sub.append(IAC)
                    elif strict:
                        return self._fail(tokens, plain, "sub-negotiation too long")
                elif byte == SE and self._sub is not None:
                    payload, self._sub = bytes(self._sub), None
                    _flush(tokens, plain)
                    tokens.append(Subnegotiation(payload))
                elif strict and self._sub is not None:
                    return self._fail(tokens, plain, f"command {byte} inside a sub-negotiation")
                elif byte == SB:
                    _flush(tokens, plain)
                    self._sub = bytearray()
                elif byte in (DO, DONT, WILL, WONT):
                    self._command = byte
                    mode = _Mode.NEGOTIATE
                elif strict and (byte == SE or byte < FIRST_COMMAND):
                    return self._fail(tokens, plain, f"IAC followed by {byte}, not a command")
                elif byte != SE:
                    _flush(tokens, plain)
                    tokens.append(TelnetCommand(byte))
            else:  # NEGOTIATE: the option byte after DO/DONT/WILL/WONT
                _flush(tokens, plain)
                tokens.append(Negotiation(self._command, buf[i]))
                i += 1
                mode = _Mode.NORMAL
        self._mode = mode
        _flush(tokens, plain)
        return tokens

    def _fail(self, tokens: list[Token], plain: bytearray, reason: str) -> list[Token]:
        self.broken = True
        self._sub = None
        _flush(tokens, plain)
        tokens.append(Malformed(reason))
        return tokens


def _flush(tokens: list[Token], plain: bytearray) -> None:
    if plain:
        tokens.append(Data(bytes(plain)))
        plain.clear()


# ---------------------------------------------------------------- options


class State(enum.Enum):
    """Where one side of one option stands."""

    REQUESTED = "requested"
    ACTIVE = "active"
    INACTIVE = "inactive"


@attrs.define
class Option:
    """One side of one Telnet option (RFC 1143's Q method, simplified as pyserial does).

    "we-X" is ours (we send ``WILL``/``WONT``, the peer answers ``DO``/``DONT``),
    "they-X" the peer's (the other way round).
    """

    name: str
    code: int
    send_yes: int
    send_no: int
    ack_yes: int
    ack_no: int
    state: State

    @classmethod
    def named(cls, name: str, state: State) -> Option:
        """The option called *name*: "we-" or "they-" and a key of :data:`OPTION_CODES`."""
        side, _, option = name.partition("-")
        code = OPTION_CODES[option]
        if side == "we":
            return cls(name, code, WILL, WONT, DO, DONT, state)
        if side == "they":
            return cls(name, code, DO, DONT, WILL, WONT, state)
        raise ValueError(f"option name must start with 'we-' or 'they-', got {name!r}")


def negotiate(
    options: dict[str, Option], command: int, code: int, refused: set[tuple[int, int]]
) -> tuple[bytes, list[str]]:
    """Apply one ``command`` for option ``code``; return the answer and the options that changed.

    Known options move between inactive and active, answering only what
    needs an answer (so two peers never loop); only the side the command is
    about moves (a ``DO ECHO`` to a client that has only "they-ECHO" is
    unknown). Unknown ones are refused (RFC 855: ``DONT`` for ``WILL``,
    ``WONT`` for ``DO``), once each: the pairs already refused are kept in
    *refused*, so a peer that repeats a request does not make the answers
    pile up (asked again, the option is still off: RFC 1143 answers a
    change of state, and "no" is no change).
    """
    answer = bytearray()
    changed: list[str] = []
    known = False
    for option in options.values():
        if option.code != code or command not in (option.ack_yes, option.ack_no):
            continue
        known = True
        if command == option.ack_yes:
            if option.state is State.INACTIVE:
                answer += bytes((IAC, option.send_yes, code))
            if option.state is not State.ACTIVE:
                option.state = State.ACTIVE
                changed.append(option.name)
        else:
            if option.state is State.ACTIVE:
                answer += bytes((IAC, option.send_no, code))
                changed.append(option.name)
            option.state = State.INACTIVE
    if not known and command in (WILL, DO) and (command, code) not in refused:
        refused.add((command, code))
        answer += bytes((IAC, DONT if command == WILL else WONT, code))
    return bytes(answer), changed


# ---------------------------------------------------------------- machine

#: The events a machine's ``next_event`` returns (a union of classes).
EventT = TypeVar("EventT")
_Shared = Data | TelnetCommand | OptionChanged | Closed | Malformed


class TelnetMachine(abc.ABC, Generic[EventT]):
    """What the RFC 2217 client and server have in common. No I/O.

    A subclass lists its options, and handles RFC 2217 messages in
    :meth:`_com_port` (``code`` and unescaped ``value`` of one
    ``IAC SB COM-PORT-OPTION ... IAC SE``); sub-negotiations of other
    options are ignored, as RFC 855 says. ``EventT`` must include
    :class:`Data`, :class:`TelnetCommand`, :class:`OptionChanged` and
    :class:`Closed` (and :class:`Malformed` when *strict*).

    Args:
      requested: the options asked for by :meth:`initiate`, in that order
        (names as in :meth:`Option.named`).
      inactive: the options accepted when the peer asks for them.
      strict: how to read the peer (see :class:`TelnetReader`).
    """

    def __init__(
        self, *, requested: tuple[str, ...], inactive: tuple[str, ...], strict: bool
    ) -> None:
        #: Telnet options by name: "we-X" is ours (WILL/WONT), "they-X" the peer's (DO/DONT).
        self.options: dict[str, Option] = {
            name: Option.named(name, state)
            for names, state in ((requested, State.REQUESTED), (inactive, State.INACTIVE))
            for name in names
        }
        #: Whether the peer closed the connection.
        self.closed = False
        self._reader = TelnetReader(strict=strict)
        self._events: deque[EventT] = deque()
        self._outgoing = bytearray()
        self._refused: set[tuple[int, int]] = set()  # unknown options, refused once

    def initiate(self) -> bytes:
        """The opening requests (``WILL``/``DO`` for the options we want)."""
        return b"".join(
            bytes((IAC, o.send_yes, o.code))
            for o in self.options.values()
            if o.state is State.REQUESTED
        )

    def is_active(self, name: str) -> bool:
        return self.options[name].state is State.ACTIVE

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed the connection."""
        if not data:
            if not self.closed:
                self.closed = True
                self._emit(Closed())
            return
        for token in self._reader.feed(data):
            if isinstance(token, Data):
                self._data(token.data)
            elif isinstance(token, Negotiation):
                self._negotiation(token.command, token.option)
            elif isinstance(token, Subnegotiation):
                sub = token.payload
                if len(sub) >= 2 and sub[0] == COM_PORT_OPTION:
                    self._com_port(sub[1], sub[2:])
            else:
                self._emit(token)

    def next_event(self) -> EventT | NeedData:
        """The next event, or :data:`NEED_DATA` when everything fed so far is processed."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def data_to_send(self) -> bytes:
        """Replies the protocol owes the peer (negotiation answers and the like); clears them."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def _emit(self, event: _Shared) -> None:
        # EventT includes the shared events (the class docstring's rule).
        self._events.append(cast(EventT, event))

    def _data(self, data: bytes) -> None:
        self._emit(Data(data))

    def _negotiation(self, command: int, code: int) -> None:
        answer, changed = negotiate(self.options, command, code, self._refused)
        self._outgoing += answer
        for name in changed:
            self._emit(OptionChanged(name, self.is_active(name)))

    @abc.abstractmethod
    def _com_port(self, code: int, value: bytes) -> None:
        """One RFC 2217 message from the peer: its command ``code`` and ``value``."""
