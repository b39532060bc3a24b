"""Telnet framing shared by the RFC 2217 client and server, sans-IO (layer 0).

:class:`TelnetReader` splits a byte stream into data, commands, option
negotiations and sub-negotiations; :func:`negotiate` applies one
``DO``/``DONT``/``WILL``/``WONT`` to a table of options (RFC 1143's Q method,
simplified as pyserial does) and says what to answer; :func:`subnegotiation`
frames an RFC 2217 message. The constants and the option type are those of
:mod:`._telnet`, whose client still has its own copy of the parsing loop (to
be moved onto this module once both have merged).

The reader is strict, for input from untrusted peers: what RFC 854/855 do
not allow (an ``IAC`` followed by a non-command, ``SE`` outside a
sub-negotiation, a command inside one, a sub-negotiation longer than
:data:`MAX_SUBNEGOTIATION`) ends the stream with one :class:`Malformed`
token, after which the reader ignores everything. The work per call is
linear in the bytes fed, and nothing is kept between calls but a partial
sub-negotiation of bounded size.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from ._telnet import (
    COM_PORT_OPTION,
    DO,
    DONT,
    IAC,
    MAX_SUBNEGOTIATION,
    SB,
    SE,
    WILL,
    WONT,
    Data,
    TelnetCommand,
    _Option,
    _State,
    escape,
)

__all__ = [
    "Malformed",
    "Negotiation",
    "Subnegotiation",
    "TelnetReader",
    "Token",
    "negotiate",
    "subnegotiation",
]

#: The lowest byte that may follow an ``IAC`` (EOF, RFC 1184; 240-255 are RFC 854's).
FIRST_COMMAND: Final = 236


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
    """The peer broke the Telnet framing; nothing after this is parsed."""

    reason: str


Token = Data | TelnetCommand | Negotiation | Subnegotiation | Malformed


class _Mode(enum.Enum):
    NORMAL = 0
    IAC = 1
    NEGOTIATE = 2


class TelnetReader:
    """Split a Telnet byte stream into tokens. No I/O.

    Args:
      max_subnegotiation: the longest sub-negotiation payload accepted.
    """

    def __init__(self, *, max_subnegotiation: int = MAX_SUBNEGOTIATION) -> None:
        self.max_subnegotiation = max_subnegotiation
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
        while i < end:
            if mode is _Mode.NORMAL:
                j = buf.find(b"\xff", i)
                stop = end if j == -1 else j
                if self._sub is not None:
                    self._sub += buf[i:stop]
                    if len(self._sub) > self.max_subnegotiation:
                        return self._fail(tokens, plain, "sub-negotiation too long")
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
                    else:
                        return self._fail(tokens, plain, "sub-negotiation too long")
                elif self._sub is not None:
                    if byte != SE:
                        return self._fail(tokens, plain, f"command {byte} inside a sub-negotiation")
                    payload, self._sub = bytes(self._sub), None
                    _flush(tokens, plain)
                    tokens.append(Subnegotiation(payload))
                elif byte == SB:
                    _flush(tokens, plain)
                    self._sub = bytearray()
                elif byte in (DO, DONT, WILL, WONT):
                    self._command = byte
                    mode = _Mode.NEGOTIATE
                elif byte == SE or byte < FIRST_COMMAND:
                    return self._fail(tokens, plain, f"IAC followed by {byte}, not a command")
                else:
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


def negotiate(
    options: dict[str, _Option], command: int, code: int, refused: set[tuple[int, int]]
) -> tuple[bytes, list[str]]:
    """Apply one ``command`` for option ``code``; return the answer and the options that changed.

    Known options move between inactive and active, answering only what
    needs an answer (so two peers never loop); unknown ones are refused
    (RFC 855: ``DONT`` for ``WILL``, ``WONT`` for ``DO``), once each: the
    pairs already refused are kept in *refused*, so a peer that repeats a
    request does not make the answers pile up (as the client in
    :mod:`._telnet` does).
    """
    answer = bytearray()
    changed: list[str] = []
    known = False
    for option in options.values():
        if option.code != code or command not in (option.ack_yes, option.ack_no):
            continue
        known = True
        if command == option.ack_yes:
            if option.state is _State.INACTIVE:
                answer += bytes((IAC, option.send_yes, code))
            if option.state is not _State.ACTIVE:
                option.state = _State.ACTIVE
                changed.append(option.name)
        else:
            if option.state is _State.ACTIVE:
                answer += bytes((IAC, option.send_no, code))
                changed.append(option.name)
            option.state = _State.INACTIVE
    if not known and command in (WILL, DO) and (command, code) not in refused:
        refused.add((command, code))
        answer += bytes((IAC, DONT if command == WILL else WONT, code))
    return bytes(answer), changed


def subnegotiation(command: int, value: bytes) -> bytes:
    """``IAC SB COM-PORT-OPTION command value IAC SE``, the value escaped."""
    return bytes((IAC, SB, COM_PORT_OPTION, command)) + escape(value) + bytes((IAC, SE))
