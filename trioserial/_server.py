"""``serve_rfc2217``: share a port over TCP with RFC 2217 (or raw) clients (layer 3).

The Trio driver of the sans-IO :class:`._telnet_server.RFC2217Server`. One
task reads the port and hands every chunk to every client's queue without
ever waiting on a client; one task per client reads its socket and applies
what it asks (data, settings, modem lines, purges) to the port, in order;
one task per client sends its queue. Sockets are driven like the port:
the syscall first, :func:`trio.lowlevel.wait_readable`/``wait_writable``
only on ``EAGAIN``. See ``docs/server.rst`` for the why.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import itertools
import logging
import os
import socket
from collections import deque
from typing import Any, Final, NoReturn

import trio

from ._errors import SerialPortError, UnsupportedOperationError
from ._stream import AsyncSerial, open_serial_port
from ._telnet_server import (
    ControlState,
    LineStateRequest,
    ModemStateRequest,
    PurgeRequest,
    RFC2217Server,
    SetControl,
    SetSetting,
    modem_bits,
)
from ._telnet_wire import Closed, Data, FlowControl, Malformed, OptionChanged, TelnetCommand
from ._util import check_bool

__all__ = ["serve_rfc2217"]

logger: Final = logging.getLogger("trioserial.server")

#: The TCP port of ``serve_rfc2217`` and ``trioserial serve`` unless told otherwise.
DEFAULT_PORT_NUMBER: Final = 2217
#: Bytes waiting for one client before it counts as too slow and is disconnected.
DEFAULT_CLIENT_BUFFER: Final = 1 << 20
#: Bytes from the port kept while no controlling client is connected.
DEFAULT_BACKLOG: Final = 1 << 16
CHUNK: Final = 65536
#: Queued chunks handed to one ``sendmsg`` (Linux takes up to 1024).
MAX_GATHER: Final = 64
#: Seconds between modem-line polls (``wait_modem_change``).
MODEM_POLL: Final = 0.02
#: Line state we can know on Linux: transmitter holding register and shift register empty.
_LINE_IDLE: Final = 0x60


class _Client:
    """One connection: its socket, protocol, role and bounded output queue."""

    def __init__(self, sock: socket.socket, name: str, *, telnet: bool, limit: int) -> None:
        self.sock = sock
        self.name = name
        self.proto = RFC2217Server() if telnet else None
        self.controller = False
        self.limit = limit
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.ready = trio.Event()
        self.scope = trio.CancelScope()
        self.reason = "closed by the client"
        self.closed = False
        self.dropped = 0  # bytes an observer sent, thrown away
        self.announced = False  # the first NOTIFY-MODEMSTATE went out

    @property
    def suspended(self) -> bool:
        return self.proto is not None and self.proto.flow_suspended

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.reason = reason
            self.scope.cancel()

    def push(self, framed: bytes) -> None:
        """Queue *framed* (already on-the-wire bytes), trying the socket first."""
        if not framed or self.closed:
            return
        if self.queued + len(framed) > self.limit:
            self.close(f"too slow ({self.queued} bytes waiting, the limit is {self.limit})")
            return
        if not self.queue and not self.suspended:
            try:
                sent = self.sock.send(framed)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.close(f"send failed: {exc.strerror or exc}")
                return
            framed = framed[sent:]
            if not framed:
                return
        self.queue.append(framed)
        self.queued += len(framed)
        self.ready.set()

    def flush(self) -> None:
        """Send from the queue what the socket takes now (one gathering ``sendmsg``)."""
        try:
            sent = self.sock.sendmsg(list(itertools.islice(self.queue, MAX_GATHER)))
        except BlockingIOError:
            return
        self.queued -= sent
        while sent:
            head = self.queue[0]
            if sent < len(head):
                self.queue[0] = head[sent:]
                return
            sent -= len(head)
            self.queue.popleft()

    def discard(self) -> None:
        self.queue.clear()
        self.queued = 0


class _Server:
    def __init__(
        self, port: AsyncSerial, *, raw: bool, observers: int, client_buffer: int, backlog: int
    ) -> None:
        self.port = port
        self.raw = raw
        self.observers = observers
        self.client_buffer = client_buffer
        self.backlog_limit = backlog
        self.clients: list[_Client] = []
        self.controller: _Client | None = None
        self.backlog: deque[bytes] = deque()
        self.backlog_size = 0
        self.room = trio.Event()
        self.modem: int | None = None  # input lines, None while unknown (a pty has none)
        # Output lines of a port without them (a pty): kept as asked, so
        # every request is answered with a consistent state.
        self.dtr = True
        self.rts = True
        self.break_condition = False

    # -------------------------------------------------------------- device

    async def device_loop(self) -> None:
        """Read the port and hand what it sends to the clients, until it hangs up."""
        port = self.port
        while True:
            room = self.backlog_limit - self.backlog_size
            if self.controller is None and room <= 0:
                self.room = trio.Event()
                await self.room.wait()
                continue
            data = await port.receive_some(CHUNK if self.controller else min(CHUNK, room))
            if not data:
                return
            escaped = None
            for client in self.clients:
                if client.proto is None:
                    client.push(data)
                else:
                    if escaped is None:
                        escaped = client.proto.send_data(data)
                    client.push(escaped)
            if self.controller is None:
                self.backlog.append(data)
                self.backlog_size += len(data)

    async def modem_loop(self) -> None:
        try:
            self.modem = modem_bits(self.port.modem_lines())
        except UnsupportedOperationError:
            logger.info("%s has no modem lines: reporting them as off", self.port.port)
            return
        except SerialPortError as exc:  # EIO: hung up; the device loop ends the server
            logger.warning("%s: %s", self.port.port, exc)
            return
        while True:
            try:
                lines = await self.port.wait_modem_change(poll_interval=MODEM_POLL)
            except SerialPortError as exc:
                logger.warning("%s: %s; modem lines no longer reported", self.port.port, exc)
                return
            self.modem_changed(modem_bits(lines))

    def modem_changed(self, bits: int) -> None:
        self.modem = bits
        for client in self.clients:
            if client.proto is not None and client.announced:
                client.push(client.proto.notify_modem(bits))

    def check_modem(self) -> None:
        """Read the input lines now (after DTR/RTS changed: loop-backs follow at once)."""
        if self.modem is None:
            return
        with contextlib.suppress(UnsupportedOperationError):
            bits = modem_bits(self.port.modem_lines())
            if bits != self.modem:
                self.modem_changed(bits)

    def control_state(self) -> ControlState:
        port = self.port
        with contextlib.suppress(UnsupportedOperationError):
            lines = port.modem_lines()
            self.dtr, self.rts = lines.dtr, lines.rts
        with contextlib.suppress(UnsupportedOperationError):
            self.break_condition = port.break_condition
        return ControlState(port.settings, self.dtr, self.rts, self.break_condition)

    def line_state(self) -> int:
        try:
            return _LINE_IDLE if self.port.out_waiting == 0 else 0
        except UnsupportedOperationError:
            return _LINE_IDLE

    # ------------------------------------------------------------- clients

    async def accept_loop(self, listener: socket.socket, nursery: trio.Nursery) -> NoReturn:
        while True:
            try:
                sock, address = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            except OSError as exc:  # out of fds, a connection reset before accept
                logger.warning("accept failed: %s", exc.strerror or exc)
                await trio.sleep(0.1)
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            name = f"{address[0]}:{address[1]}"
            watching = len(self.clients) - (self.controller is not None)
            if self.controller is not None and watching >= self.observers:
                logger.warning(
                    "%s refused: a controlling client and %d observer(s) are connected",
                    name,
                    watching,
                )
                sock.close()
            else:
                # The role is decided here, in accept order, before any other accept.
                client = _Client(sock, name, telnet=not self.raw, limit=self.client_buffer)
                if self.controller is None:
                    client.controller = True
                    self.controller = client
                self.clients.append(client)
                nursery.start_soon(self.run_client, client)
            await trio.lowlevel.checkpoint()

    async def run_client(self, client: _Client) -> None:
        role = "controlling" if client.controller else "observing (read-only)"
        logger.info("%s connected, %s", client.name, role)
        try:
            with client.scope:
                if client.proto is not None:
                    client.push(client.proto.initiate())
                if client.controller and self.backlog:
                    logger.info("%s: sending %d buffered bytes", client.name, self.backlog_size)
                    for data in self.backlog:
                        client.push(data if client.proto is None else client.proto.send_data(data))
                    self.drop_backlog()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.write_loop, client)
                    await self.read_loop(client)
                    nursery.cancel_scope.cancel()
        finally:
            self.clients.remove(client)
            if self.controller is client:
                self.controller = None
            trio.lowlevel.notify_closing(client.sock)
            client.sock.close()
            logger.info("%s disconnected: %s", client.name, client.reason)

    def drop_backlog(self) -> None:
        self.backlog.clear()
        self.backlog_size = 0
        self.room.set()

    async def write_loop(self, client: _Client) -> None:
        while True:
            while not client.queue or client.suspended:
                client.ready = trio.Event()
                await client.ready.wait()
            await trio.lowlevel.wait_writable(client.sock)
            try:
                client.flush()
            except OSError as exc:
                client.close(f"send failed: {exc.strerror or exc}")
                return

    async def read_loop(self, client: _Client) -> None:
        sock = client.sock
        while True:
            try:
                data = sock.recv(CHUNK)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError as exc:
                client.close(f"receive failed: {exc.strerror or exc}")
                return
            if not data:
                return
            if client.proto is None:
                await self.from_client(client, data)
                continue
            client.proto.receive_data(data)
            await self.handle_events(client, client.proto)
            if client.closed:
                return

    async def from_client(self, client: _Client, data: bytes) -> None:
        if client.controller:
            await self.port.send_all(data)
            return
        if not client.dropped:
            logger.info("%s is observing: what it sends is dropped", client.name)
        client.dropped += len(data)
        await trio.lowlevel.checkpoint()

    async def handle_events(self, client: _Client, proto: RFC2217Server) -> None:
        """Apply what the client's last chunk asked for; at least one checkpoint."""
        data_sent = False
        while True:
            client.push(proto.data_to_send())
            event = proto.next_event()
            if isinstance(event, Data):
                # send_all writes first and checkpoints after: the hot path waits for nothing.
                await self.from_client(client, event.data)
                data_sent = True
            elif isinstance(event, SetSetting):
                await self.apply_setting(client, event)
                client.push(proto.answer_setting(event, self.port.settings))
            elif isinstance(event, SetControl):
                await self.apply_control(client, event)
                client.push(proto.answer_control(event, self.control_state()))
            elif isinstance(event, PurgeRequest):
                self.purge(client, event)
                client.push(proto.answer_purge(event))
            elif isinstance(event, ModemStateRequest):
                client.announced = True
                client.push(proto.notify_modem(self.modem or 0, force=True))
            elif isinstance(event, LineStateRequest):
                client.push(proto.notify_line(self.line_state(), force=True))
            elif isinstance(event, OptionChanged):
                if proto.rfc2217 and not client.announced:
                    client.announced = True  # the modem lines at once, as ser2net does
                    client.push(proto.notify_modem(self.modem or 0, force=True))
            elif isinstance(event, FlowControl):
                client.ready.set()
            elif isinstance(event, Malformed):
                client.close(f"malformed Telnet: {event.reason}")
                return
            elif isinstance(event, TelnetCommand | Closed):
                logger.debug("%s: %r", client.name, event)
            else:  # NEED_DATA
                if not data_sent:
                    await trio.lowlevel.checkpoint()  # a client sending only requests
                return

    async def apply_setting(self, client: _Client, request: SetSetting) -> None:
        try:
            changes = request.changes()
            if changes and client.controller:
                await self.port.reconfigure(**changes)
        except (TypeError, ValueError, SerialPortError) as exc:
            logger.warning("%s: rejected: %s", client.name, exc)

    async def apply_control(self, client: _Client, request: SetControl) -> None:
        if not client.controller:
            await trio.lowlevel.checkpoint()
            return
        port = self.port
        try:
            if request.flow is not None:
                xonxoff, rtscts = request.flow
                await port.reconfigure(xonxoff=xonxoff, rtscts=rtscts)
            # A port without the line (a pty) keeps the level as asked.
            if request.dtr is not None:
                try:
                    port.dtr = request.dtr
                except UnsupportedOperationError:
                    self.dtr = request.dtr
            if request.rts is not None:
                try:
                    port.rts = request.rts
                except UnsupportedOperationError:
                    self.rts = request.rts
            if request.break_ is not None:
                try:
                    port.break_condition = request.break_
                except UnsupportedOperationError:
                    self.break_condition = request.break_
            self.check_modem()
        except (TypeError, ValueError, SerialPortError) as exc:
            logger.warning("%s: rejected: %s", client.name, exc)
        await trio.lowlevel.checkpoint()

    def purge(self, client: _Client, request: PurgeRequest) -> None:
        try:
            if request.receive:
                client.discard()
                if client.controller:
                    self.drop_backlog()
                    self.port.reset_input_buffer()
            if request.transmit and client.controller:
                self.port.reset_output_buffer()
        except SerialPortError as exc:  # UnsupportedOperationError among them
            logger.warning("%s: purge failed: %s", client.name, exc)


# ------------------------------------------------------------------ public


def _listen(host: str, port_number: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port_number))
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


async def serve_rfc2217(
    port: AsyncSerial | str | os.PathLike[str] | Any,
    *,
    host: str = "127.0.0.1",
    port_number: int = DEFAULT_PORT_NUMBER,
    raw: bool = False,
    observers: int = 0,
    client_buffer: int = DEFAULT_CLIENT_BUFFER,
    backlog: int = DEFAULT_BACKLOG,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Share *port* over TCP as an RFC 2217 server, until cancelled.

    Start it in a nursery: ``host, number = await nursery.start(serve_rfc2217, url)``.
    One client at a time **controls** the port: its data goes to the port,
    and its RFC 2217 requests (baud rate, data size, parity, stop size, flow
    control, DTR, RTS, break, purge) are applied and answered with what is
    then in force, so a rejected change is answered with the old value. Up
    to *observers* more clients are **read-only**: they receive everything
    the port sends, what they send is dropped, and their requests are
    answered with the settings in force and not applied. Further
    connections are refused. The first client to connect while nobody
    controls the port takes control. See :doc:`server` for what is
    buffered, and how to share a port beyond this machine safely.

    Args:
      port: an open :class:`AsyncSerial` (served as it is; the caller keeps
        it and closes it), a device path or URL (opened with
        :func:`open_serial_port` defaults, closed when the server ends), or a
        :class:`trioserial.testing.FakeDevice` (served on a new pty).
      host: the address to listen on. Anything but a loopback address logs
        a warning: RFC 2217 has no authentication.
      port_number: the TCP port; 0 picks a free one (``task_status`` reports it).
      raw: plain TCP without Telnet (what ``socket://`` clients and ``nc``
        expect): bytes pass as they are, and there are no settings.
      observers: how many read-only clients may watch beside the controlling one.
      client_buffer: bytes that may wait for one client; a client that
        falls further behind is disconnected, so it never holds up the port
        or the others.
      backlog: bytes from the port kept while no client controls it; the
        next controlling client gets them first. When it is full, the port
        is not read (its own buffers, and flow control if on, take over).
      task_status: gets the bound ``(host, port_number)``.

    Raises:
      TypeError, ValueError: a bad argument (the message names it).
      OSError: the address cannot be bound.
      trioserial.SerialPortError: the port could not be opened, or it hung up
        (raised as it is, not inside an exception group). Another failure of
        the port while serving (:exc:`trio.BrokenResourceError`, a port
        closed by its owner) ends the server too.

    Cancellation: every client connection is closed; a port this function
    opened is closed too (abortively: output not yet sent is discarded);
    an :class:`AsyncSerial` passed in stays open, with no task using it.
    """
    raw = check_bool("raw", raw)
    observers = _check_count("observers", observers, 0)
    client_buffer = _check_count("client_buffer", client_buffer, CHUNK)
    backlog = _check_count("backlog", backlog, 0)
    port_number = _check_count("port_number", port_number, 0)
    if port_number > 65535:
        raise ValueError(f"port_number must be 0 to 65535, got {port_number!r}")
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {host!r}")
    if not isinstance(port, AsyncSerial | str | os.PathLike) and not callable(
        getattr(port, "run", None)
    ):
        raise TypeError(
            f"port must be an AsyncSerial, a path or URL, or a fake device, got {port!r}"
        )
    listener = _listen(host, port_number)
    try:
        bound = listener.getsockname()[:2]
        async with contextlib.AsyncExitStack() as stack:
            device = None
            if isinstance(port, AsyncSerial):
                serial = port
            elif isinstance(port, str | os.PathLike):
                serial = await stack.enter_async_context(await open_serial_port(port))
            else:
                from .testing import open_pty_pair

                serial, pty = await open_pty_pair()
                stack.push_async_callback(pty.aclose)
                stack.push_async_callback(serial.aclose)
                device = functools.partial(port.run, pty)  # started in the nursery
            if not _is_loopback(bound[0]):
                logger.warning(
                    "listening on %s:%d, beyond this machine: RFC 2217 has no authentication, "
                    "anyone who can connect controls %s (see the docs for SSH forwarding)",
                    *bound,
                    serial.port,
                )
            server = _Server(
                serial,
                raw=raw,
                observers=observers,
                client_buffer=client_buffer,
                backlog=backlog,
            )
            kind = "raw TCP" if raw else "RFC 2217"
            logger.info("serving %s on %s:%d (%s)", serial.port, *bound, kind)
            async with trio.open_nursery() as nursery:
                if device is not None:
                    nursery.start_soon(device)
                nursery.start_soon(server.modem_loop)
                nursery.start_soon(server.accept_loop, listener, nursery)
                task_status.started((bound[0], bound[1]))
                await server.device_loop()  # returns when the port hangs up
                nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.notify_closing(listener)
        listener.close()
    # Raised here, outside the nursery: a plain exception, not a group.
    raise SerialPortError(f"the served port {serial.port!r} hung up", port=serial.port)
