"""``rfc2217://HOST:PORT[?options]``: a native RFC 2217 client core (layer 1).

No threads: the Telnet/RFC 2217 logic is the sans-IO :mod:`._telnet`
protocol, driven here over a non-blocking TCP socket with the same
non-blocking attempts as every core, so both front ends wait on the socket
like on a tty.

The opener connects, negotiates Telnet options, sets the line and waits for
the server's acknowledgements, each step bounded by ``?timeout``; it is an
async function that waits through a :class:`~._netloop.Loop`, so it runs
on the event loop (cancellable at once) or, with blocking waits, in a
thread. After that nothing ever waits, except for the answer to a settings
change (:meth:`RFC2217Port.settings_pending`): DTR/RTS, break and purge are
sent (in order with the data around them, so the server applies them before
it forwards data written later) and their acknowledgements are checked as
they arrive; a rejection of those is logged.

A hostile server is bounded: each call reads at most :data:`PUMP_BUDGET`
bytes, answers it does not read are bounded by :data:`MAX_PENDING`, and
after :data:`MAX_NEGOTIATION_WITHOUT_DATA` bytes of negotiation with no data
the connection is dropped (every later call raises the same error).

URL options, as pyserial's:

* ``ign_set_control``: do not wait for (or check) answers to SET-CONTROL
  (DTR, RTS, break, flow control). ser2net on a pty and sredird need it.
* ``poll_modem``: ask for NOTIFY-MODEMSTATE when the modem lines are read,
  for servers that do not send changes on their own.
* ``timeout=SECONDS``: how long to wait for the connection, for each
  negotiation step while opening and for the answer to a settings change
  (default 3, at most an hour).
* ``logging=debug|info|warning|error``: the level of the
  ``trioserial.rfc2217`` logger.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Final, NoReturn

from . import _telnet as telnet
from ._core import SocketCore
from ._errors import SerialPortError, UnsupportedOperationError
from ._netloop import Loop, recv_some, send_all
from ._settings import ModemLines, SerialSettings
from ._socket import closed_on_failure, connect_tcp, parse_timeout, unsent_bytes
from ._url import parse_host_port, parse_log_level, parse_options, split_url

__all__ = ["RFC2217Port", "open_rfc2217"]

logger: Final = logging.getLogger("trioserial.rfc2217")

DEFAULT_TIMEOUT: Final = 3.0
#: The most user bytes escaped and handed to the socket per attempt.
CHUNK: Final = 65536
#: How much received data the control methods buffer while pumping the
#: socket for protocol messages; the data path itself reads on demand.
MAX_BUFFERED: Final = 1 << 20
#: How much protocol output may wait for room in the socket before control
#: methods give up (the server has stopped reading).
MAX_PENDING: Final = 65536
#: The acknowledgements that make up the line settings (``telnet.Rejected.what``).
LINE_SETTINGS: Final = ("baudrate", "datasize", "parity", "stopsize")
#: ``poll_modem``: a modem state younger than this is fresh enough.
MODEM_POLL_INTERVAL: Final = 0.3
#: The most bytes one call (a read attempt, a control call) takes from the
#: socket. Then it returns, and the front end waits for the socket again:
#: a server that floods Telnet commands cannot keep the event loop busy.
PUMP_BUDGET: Final = 16384
#: A server that sends this many bytes of Telnet negotiation (commands,
#: notifications) with no data byte and no answer to a request of ours
#: between them is dropped: 1 MiB is about 150,000 modem-state reports.
MAX_NEGOTIATION_WITHOUT_DATA: Final = 1 << 20


class Options:
    """The options of an ``rfc2217://`` URL."""

    def __init__(self, url: str) -> None:
        _, target, query = split_url(url)
        self.host, self.port = parse_host_port(url, target)
        found = parse_options(
            url, query, flags=("ign_set_control", "poll_modem"), values=("timeout", "logging")
        )
        self.ign_set_control = "ign_set_control" in found
        self.poll_modem = "poll_modem" in found
        self.timeout = parse_timeout(url, found.get("timeout"), DEFAULT_TIMEOUT)
        self.logging = parse_log_level(url, found.get("logging"))


class RFC2217Port(SocketCore):
    """An RFC 2217 (Telnet Com Port Control) client over a non-blocking socket.

    Data bytes are escaped on the way out and unescaped on the way in;
    protocol messages between them are handled and never returned as data.
    Modem lines come from the server's NOTIFY-MODEMSTATE messages (and
    ``dtr``/``rts`` from what we last asked for). ``in_waiting`` counts bytes
    that reached this client and were not read yet; ``out_waiting`` bytes
    not yet sent to the server. The server's own buffers are invisible, but
    ``reset_input_buffer``/``reset_output_buffer`` ask it to purge them.

    Protocol output (control requests, answers to the server's negotiation)
    that finds the socket full waits in a small buffer and goes out first,
    before any later data, on the next read, write or control call.
    """

    transport = "rfc2217"
    # The kernel goes on sending a closed TCP socket's queue; close() hands it
    # whatever protocol output is still waiting here.
    close_keeps_output = True
    # Control calls read past data to find the server's answers (input_buffered).
    buffers_input = True

    def __init__(
        self,
        sock: socket.socket,
        name: str,
        settings: SerialSettings,
        protocol: telnet.RFC2217Client,
        options: Options,
        received: bytes = b"",
    ) -> None:
        """Take over the negotiated connection. Use :func:`open_rfc2217` instead."""
        self._own(sock)
        self._protocol = protocol
        self._options = options
        self._rx = bytearray(received)
        self._eof = False
        self._pending = bytearray()  # protocol bytes owed to the socket, in order
        # A 0xFF data byte whose first IAC went out but not its second one: the
        # byte is not reported as written until the second one is sent.
        self._split_iac = False
        self._dtr = not settings.dsrdtr
        self._rts = not settings.rtscts
        self._break = False
        self._modem_time = -1.0
        self._poll_time = -1.0
        self._broken: SerialPortError | None = None
        # The settings in force before an apply_settings the server has not
        # answered yet (None: all answered), and its rejection, if it came.
        self._unconfirmed: SerialSettings | None = None
        self._rejection: UnsupportedOperationError | None = None
        self._settings_deadline = 0.0
        self.name = name
        self.settings = settings

    # ---------------------------------------------------------- data path

    def read_nowait(self, max_bytes: int) -> bytes:
        sock = self._socket()
        if self._pending:
            self._flush(sock)
        if not self._rx and not self._eof:
            self._pump(sock, MAX_BUFFERED, for_data=True)
        if self._rx:
            if len(self._rx) <= max_bytes:
                data = bytes(self._rx)
                self._rx.clear()
            else:
                data = bytes(self._rx[:max_bytes])
                del self._rx[:max_bytes]
            return data
        if self._eof:
            return b""
        raise BlockingIOError(errno.EAGAIN, "only protocol messages so far, no data")

    def write_nowait(self, data: memoryview) -> int:
        sock = self._socket()
        if self._pending:
            self._flush(sock)
            if self._pending:
                raise BlockingIOError(errno.EAGAIN, "protocol output still waiting for room")
        if self._split_iac:
            # The second IAC of an escaped 0xFF has just gone out. The caller
            # retries from that byte (as the front ends do), so report it now.
            self._split_iac = False
            if data[0] == 0xFF:
                return 1
        chunk = data[:CHUNK]
        escaped = telnet.escape(chunk)
        if len(escaped) == len(chunk):
            return sock.send(chunk)  # the fast path: no 0xFF in the data
        sent = sock.send(escaped)
        iacs = escaped.count(b"\xff", 0, sent)
        if iacs % 2:
            # The kernel took half of an escaped 0xFF: the other half must
            # follow before anything else, or the server misreads the stream.
            self._pending += b"\xff"
            self._split_iac = True
            self._flush(sock)
        written = sent - iacs // 2 - iacs % 2
        if not written:  # only half of the first byte: report it once it is whole
            raise BlockingIOError(errno.EAGAIN, "socket buffer full mid-escape")
        return written

    def _pump(self, sock: socket.socket, limit: int, *, for_data: bool = False) -> None:
        """Read what the socket has and feed the protocol, until EAGAIN, *limit*
        buffered bytes or :data:`PUMP_BUDGET` bytes read."""
        got_any = False
        budget = PUMP_BUDGET
        protocol = self._protocol
        while len(self._rx) < limit and not self._eof and budget > 0:
            try:
                chunk = sock.recv(budget)
            except BlockingIOError:
                if for_data and not got_any:
                    raise
                break
            got_any = True
            budget -= len(chunk)
            protocol.receive_data(chunk)
            self._handle_events()
            if for_data and self._rx:
                break
        if protocol.closed:
            self._eof = True
        if got_any and not for_data and (self._rx or self._eof):
            self.input_buffered()  # a control call read past data: wake the receiver
        reply = protocol.data_to_send()
        if reply:
            if len(self._pending) + len(reply) > MAX_PENDING:
                self._drop(
                    f"the server negotiates without reading the answers "
                    f"({len(self._pending)} bytes of them are waiting)"
                )
            self._pending += reply
            self._flush(sock)
        if protocol.bytes_without_data > MAX_NEGOTIATION_WITHOUT_DATA:
            self._drop(
                f"the server sent {protocol.bytes_without_data} bytes of Telnet negotiation "
                f"and no data"
            )

    def _drop(self, why: str) -> NoReturn:
        """Give up on a hostile or broken server: every later call raises the same error."""
        self._broken = SerialPortError(
            f"dropped the connection to {self.name!r}: {why}", port=self.name, errno=errno.EPROTO
        )
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._rx.clear()
        raise self._broken

    def _socket(self) -> socket.socket:
        if self._broken is not None and self._sock is not None:
            raise self._broken
        return super()._socket()

    def _handle_events(self) -> None:
        protocol = self._protocol
        while True:
            event = protocol.next_event()
            if isinstance(event, telnet.Data):
                self._rx += event.data
            elif isinstance(event, telnet.ModemState):
                self._modem_time = time.monotonic()
                logger.debug("%s: modem state 0x%02x", self.name, event.value)
            elif isinstance(event, telnet.Rejected):
                if event.what in LINE_SETTINGS and self._unconfirmed is not None:
                    self.settings = in_force(self._unconfirmed, self.settings, event)
                    self._rejection = self._rejection or UnsupportedOperationError(
                        f"{self.name!r} (rfc2217): the server rejected {describe(event)}; "
                        f"in force: {self.settings.framing}",
                        port=self.name,
                    )
                else:
                    logger.warning("%s: the server rejected %s", self.name, describe(event))
            elif isinstance(event, telnet.Closed):
                self._eof = True
            elif event is telnet.NEED_DATA:
                return
            else:
                logger.debug("%s: %r", self.name, event)

    def _flush(self, sock: socket.socket) -> None:
        """Send pending protocol output, as much as the socket takes now."""
        try:
            n = sock.send(self._pending)
        except BlockingIOError:
            return
        del self._pending[:n]

    def _send(self, message: bytes) -> None:
        """Queue a protocol message behind everything already sent, and flush."""
        sock = self._socket()
        if len(self._pending) > MAX_PENDING:
            raise SerialPortError(
                f"cannot control {self.name!r}: the server has stopped reading "
                f"({len(self._pending)} bytes of requests are waiting)",
                port=self.name,
            )
        self._pending += message
        self._flush(sock)

    # ------------------------------------------------------------ control

    def apply_settings(self, settings: SerialSettings) -> None:
        if settings.rtscts and settings.xonxoff:
            raise ValueError(
                f"cannot configure {self.name!r}: RFC 2217 cannot ask for rtscts and "
                f"xonxoff flow control together"
            )
        message = self._protocol.set_line(settings)
        if (settings.rtscts, settings.xonxoff) != (self.settings.rtscts, self.settings.xonxoff):
            message += self._protocol.set_flow_control(settings)
        self._send(message)
        if self._unconfirmed is None:
            self._unconfirmed = self.settings
        self._rejection = None
        self._settings_deadline = time.monotonic() + self._options.timeout
        self.settings = settings

    def settings_pending(self) -> float | None:
        """Wait for the server's answer to the line settings (see :class:`PortCore`).

        Raises:
          UnsupportedOperationError: the server answered another value (a
            baud rate it cannot make): the settings from before are kept.
          SerialPortError: no answer within ``?timeout`` (``ETIMEDOUT``).
        """
        self._pump(self._socket(), MAX_BUFFERED)
        if self._rejection is not None:
            rejection, self._rejection, self._unconfirmed = self._rejection, None, None
            raise rejection
        if self._unconfirmed is None or not any(
            self._protocol.pending(what) for what in LINE_SETTINGS
        ):
            self._unconfirmed = None
            return None
        left = self._settings_deadline - time.monotonic()
        if left <= 0:
            self._unconfirmed = None
            raise SerialPortError(
                f"no answer from the server of {self.name!r} to the settings "
                f"{self.settings.framing} within {self._options.timeout:g} s",
                port=self.name,
                errno=errno.ETIMEDOUT,
            )
        return left

    def modem_lines(self) -> ModemLines:
        sock = self._socket()
        self._pump(sock, MAX_BUFFERED)
        now = time.monotonic()
        if (
            self._options.poll_modem
            and now - self._modem_time > MODEM_POLL_INTERVAL
            and now - self._poll_time > MODEM_POLL_INTERVAL
        ):
            self._poll_time = now
            self._send(self._protocol.request_modem_state())
        state = self._protocol.modem_state
        if state is None:
            hint = "" if self._options.poll_modem else "; try ?poll_modem"
            raise self.unsupported(f"modem lines (the server has not reported them yet{hint})")
        return ModemLines(
            cts=bool(state & telnet.MODEM_CTS),
            dsr=bool(state & telnet.MODEM_DSR),
            ri=bool(state & telnet.MODEM_RI),
            cd=bool(state & telnet.MODEM_CD),
            dtr=self._dtr,
            rts=self._rts,
        )

    def set_dtr(self, value: bool) -> None:
        on, off = telnet.Control.DTR_ON, telnet.Control.DTR_OFF
        self._send(self._protocol.set_control(on if value else off))
        self._dtr = bool(value)

    def set_rts(self, value: bool) -> None:
        on, off = telnet.Control.RTS_ON, telnet.Control.RTS_OFF
        self._send(self._protocol.set_control(on if value else off))
        self._rts = bool(value)

    def set_break(self, value: bool) -> None:
        on, off = telnet.Control.BREAK_ON, telnet.Control.BREAK_OFF
        self._send(self._protocol.set_control(on if value else off))
        self._break = bool(value)

    @property
    def break_condition(self) -> bool:
        """The break state as last requested (servers do not report it back)."""
        return self._break

    def in_waiting(self) -> int:
        self._pump(self._socket(), MAX_BUFFERED)
        return len(self._rx)

    def out_waiting(self) -> int:
        sock = self._socket()
        if self._pending:
            # Requests that found the socket full go out now if there is room:
            # a drain polls this, and nothing else may come along to send them.
            self._flush(sock)
        return len(self._pending) + unsent_bytes(sock)

    def reset_input_buffer(self) -> None:
        sock = self._socket()
        self._send(self._protocol.purge(telnet.Purge.RECEIVE))
        self._pump(sock, MAX_BUFFERED)
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        self._send(self._protocol.purge(telnet.Purge.TRANSMIT))

    def pending_acknowledgements(self) -> int:
        """Requests sent and not answered yet (after reading what has arrived)."""
        self._pump(self._socket(), MAX_BUFFERED)
        return self._protocol.pending()

    def close(self) -> None:
        sock = self._sock
        if sock is not None and self._pending:
            # Requests queued behind data (a purge, DTR): whatever the socket
            # takes now still reaches the server after the close.
            with contextlib.suppress(OSError):
                self._flush(sock)
        super().close()

    def _forget(self) -> None:
        self._rx.clear()


def in_force(
    before: SerialSettings, after: SerialSettings, rejection: telnet.Rejected
) -> SerialSettings:
    """The settings in force once the server rejected one part of a change from *before* to *after*.

    The answer to SET-BAUDRATE is the rate the server uses (RFC 2217), which
    may differ from the one before (sredird falls back to 9600): believe it.
    Another rejected part keeps its value from before; parts the server
    acknowledged are in force.
    """
    if rejection.what == "baudrate" and len(rejection.answer) >= 4:
        rate = int(struct.unpack("!I", rejection.answer[:4])[0])
        if rate > 0:
            return after.replace(baudrate=rate)
    field = _SETTING_FIELDS[rejection.what]
    return after.replace(**{field: getattr(before, field)})


_SETTING_FIELDS: Final = {
    "baudrate": "baudrate",
    "datasize": "bytesize",
    "parity": "parity",
    "stopsize": "stopbits",
}


def describe(rejection: telnet.Rejected) -> str:
    """``"baudrate 921600 (it answered 9600)"``: a rejection in the request's own units."""
    requested, answer = rejection.requested, rejection.answer
    if rejection.what == "baudrate":
        # The first four bytes (sredird sends eight: the rate, then zeros).
        shown = [
            f"{struct.unpack('!I', value[:4])[0]} baud"
            if len(value) >= 4
            else value.hex() or "nothing"
            for value in (requested, answer)
        ]
    else:
        shown = [value.hex() or "nothing" for value in (requested, answer)]
    return f"{rejection.what} {shown[0]} (it answered {shown[1]})"


# ------------------------------------------------------------------ opening


async def _exchange(
    sock: socket.socket,
    protocol: telnet.RFC2217Client,
    url: str,
    timeout: float,
    loop: Loop,
    done: Callable[[], bool],
    waiting_for: str,
    received: bytearray,
    hint: Callable[[], str],
) -> None:
    """Send what the protocol owes and read until *done()*, for at most *timeout* s.

    *hint* says, at the deadline, what might help. Data that arrives
    meanwhile goes to *received*, of which the newest :data:`MAX_BUFFERED`
    bytes are kept (data before the server's purge is dropped anyway).
    """
    deadline = loop.current_time() + timeout

    def too_slow() -> SerialPortError:
        return SerialPortError(
            f"cannot open {url!r}: no answer from the server {waiting_for} within "
            f"{timeout:g} s ({hint()})",
            port=url,
            errno=errno.ETIMEDOUT,
        )

    while True:
        out = protocol.data_to_send()
        if out and not await send_all(sock, out, loop, deadline):
            raise too_slow()
        if done():
            return
        chunk = await recv_some(sock, PUMP_BUDGET, loop, deadline)
        if chunk is None:
            raise too_slow()
        if not chunk:
            raise SerialPortError(
                f"cannot open {url!r}: the server closed the connection {waiting_for}",
                port=url,
                errno=errno.ECONNRESET,
            )
        protocol.receive_data(chunk)
        while True:
            event = protocol.next_event()
            if event is telnet.NEED_DATA:
                break
            if isinstance(event, telnet.Data):
                received += event.data
                if len(received) > MAX_BUFFERED:
                    del received[:-MAX_BUFFERED]
            elif isinstance(event, telnet.Acknowledged) and event.what == "purge":
                # The server has purged: what came before is stale, what
                # follows (in this very segment, maybe) is the device's.
                received.clear()
            elif isinstance(event, telnet.Rejected):
                raise SerialPortError(
                    f"cannot open {url!r}: the server rejected {describe(event)}",
                    port=url,
                )
            else:
                logger.debug("%s: %r", url, event)


async def open_rfc2217(url: str, settings: SerialSettings, loop: Loop) -> RFC2217Port:
    """Connect to *url*, negotiate RFC 2217 and set the line, waiting through *loop*."""
    options = Options(url)
    if settings.rtscts and settings.xonxoff:
        raise ValueError(
            f"cannot open {url!r}: RFC 2217 cannot ask for rtscts and xonxoff flow control together"
        )
    if options.logging is not None:
        logger.setLevel(options.logging)
    sock = await connect_tcp(url, options.host, options.port, options.timeout, loop)
    with closed_on_failure(sock, url, "during negotiation"):
        protocol = telnet.RFC2217Client(check_control=not options.ign_set_control)
        received = bytearray()

        async def step(
            message: bytes, done: Callable[[], bool], waiting_for: str, hint: Callable[[], str]
        ) -> None:
            protocol_output = message + protocol.data_to_send()
            if protocol_output and not await send_all(
                sock, protocol_output, loop, loop.current_time() + options.timeout
            ):
                raise SerialPortError(
                    f"cannot open {url!r}: the server does not read what is sent to it "
                    f"{waiting_for}",
                    port=url,
                    errno=errno.ETIMEDOUT,
                )
            await _exchange(
                sock, protocol, url, options.timeout, loop, done, waiting_for, received, hint
            )

        def unanswered() -> str:
            if protocol.pending("control"):
                return "add ?ign_set_control if it never answers DTR/RTS/break, or ?timeout=SECONDS"
            return "add ?timeout=SECONDS if it is slow"

        def negotiated() -> bool:
            if protocol.refused:
                raise SerialPortError(
                    f"cannot open {url!r}: the server does not speak RFC 2217 "
                    f"(it refused COM-PORT-OPTION); for a raw TCP server use socket://",
                    port=url,
                )
            return protocol.negotiated

        await step(
            protocol.initiate(),
            negotiated,
            "to the RFC 2217 negotiation",
            lambda: (
                "is it an RFC 2217 server? a raw TCP server is socket://; "
                "a slow one needs ?timeout=SECONDS"
            ),
        )
        logger.info(
            "%s: negotiated %s",
            url,
            ", ".join(name for name in protocol.options if protocol.is_active(name)),
        )
        line = protocol.set_line(settings) + protocol.set_flow_control(settings)
        if not settings.dsrdtr:
            line += protocol.set_control(telnet.Control.DTR_ON)
        if not settings.rtscts:
            line += protocol.set_control(telnet.Control.RTS_ON)
        await step(
            line, lambda: not protocol.pending(), f"to the settings {settings.framing}", unanswered
        )
        # A clean start, as pyserial makes one: whatever the server buffered
        # (a banner, stale input) is dropped with the local copy, when the
        # acknowledgement arrives (_exchange); data behind it is kept.
        await step(
            protocol.purge(telnet.Purge.BOTH),
            lambda: not protocol.pending(),
            "to PURGE-DATA",
            unanswered,
        )
        return RFC2217Port(sock, url, settings, protocol, options, bytes(received))
