"""``socket://HOST:PORT``: a serial line carried raw over TCP (layer 1).

The other end is typically a terminal server or ``socat`` in front of a
device. TCP carries bytes only: like pyserial's ``socket://``, settings
changes are accepted, kept in :attr:`~PortCore.settings` and **not sent
anywhere** (the server's line settings stay whatever it configured), and
there are no modem lines and no break. Use ``rfc2217://`` when the server
speaks RFC 2217 and the line settings matter.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import struct
import termios
from collections.abc import Iterator
from typing import Final

from ._core import SocketCore
from ._errors import PortNotFoundError, SerialPortError, UnsupportedURLError
from ._netloop import Loop
from ._settings import SerialSettings
from ._url import parse_host_port, parse_log_level, parse_options, split_url

__all__ = ["SocketPort", "connect_tcp", "open_socket"]

#: Seconds to wait for the TCP connection, unless the URL says ``?timeout=``.
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
#: The longest ``?timeout=`` accepted: an hour. Longer waits are better
#: written as a retry loop around the open, which a cancellation can end.
MAX_TIMEOUT: Final = 3600.0
logger: Final = logging.getLogger("trioserial.socket")
_SIOCOUTQ: Final = termios.TIOCOUTQ  # the same ioctl number for sockets: unsent bytes
_DRAIN_CHUNK: Final = 65536


def parse_timeout(url: str, value: str | None, default: float) -> float:
    """``?timeout=SECONDS``: a number of seconds, more than 0 and at most :data:`MAX_TIMEOUT`."""
    if value is None:
        return default
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= MAX_TIMEOUT:
        raise UnsupportedURLError(
            f"malformed timeout {value!r} in {url!r}: expected seconds, a number > 0 "
            f"and at most {MAX_TIMEOUT:g}",
            port=url,
        )
    return timeout


def parse_socket_url(url: str) -> tuple[str, int, float, int | None]:
    """``socket://HOST:PORT[?timeout=SECONDS][&logging=LEVEL]`` -> host, port, timeout, level."""
    _, target, query = split_url(url)
    host, port = parse_host_port(url, target)
    options = parse_options(url, query, values=("timeout", "logging"))
    timeout = parse_timeout(url, options.get("timeout"), DEFAULT_CONNECT_TIMEOUT)
    return host, port, timeout, parse_log_level(url, options.get("logging"))


async def connect_tcp(url: str, host: str, port: int, timeout: float, loop: Loop) -> socket.socket:
    """Connect to *host*:*port* within *timeout* seconds; a non-blocking socket, ``TCP_NODELAY`` on.

    Waits through *loop* (see :mod:`._netloop`): on an event loop, a
    cancellation ends the connect at once and closes the socket.

    Raises a :class:`~trioserial.SerialPortError` whose message names the
    URL and says what went wrong (unknown host, refused, unreachable, timed out).
    """
    where = f"{host}:{port}"
    try:
        # The host as socket.getaddrinfo itself would encode it (IDNA 2003),
        # whichever library resolves it; parse_host_port has checked it.
        addresses = await loop.getaddrinfo(host.encode("idna").decode("ascii"), port)
    except socket.gaierror as exc:
        raise PortNotFoundError(
            f"cannot open {url!r}: unknown host {host!r} ({exc.strerror})", port=url
        ) from exc
    deadline = loop.current_time() + timeout
    error: OSError = OSError(errno.EADDRNOTAVAIL, "no address to connect to")
    for family, _, proto, _, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, proto)
        try:
            try:
                sock.connect(address)
            except BlockingIOError:  # EINPROGRESS: wait for the outcome
                if not await loop.wait_writable(sock.fileno(), deadline):
                    raise SerialPortError(
                        f"cannot open {url!r}: no answer from {where} within {timeout:g} s",
                        port=url,
                        errno=errno.ETIMEDOUT,
                    ) from None
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code)) from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except SerialPortError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc  # try the next address, as socket.create_connection does
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    if isinstance(error, ConnectionRefusedError):
        raise PortNotFoundError(
            f"cannot open {url!r}: connection refused by {where} (is the server running?)",
            port=url,
            errno=error.errno,
        ) from error
    raise SerialPortError(
        f"cannot open {url!r}: cannot connect to {where}: {error.strerror or error}",
        port=url,
        errno=error.errno,
    ) from error


@contextlib.contextmanager
def closed_on_failure(sock: socket.socket, url: str, during: str) -> Iterator[None]:
    """Close *sock* if the block fails; an :exc:`OSError` becomes a
    :class:`~trioserial.SerialPortError` that names *url* and says it
    happened *during* (what the open was doing)."""
    try:
        yield
    except SerialPortError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise SerialPortError(
            f"cannot open {url!r}: the connection failed {during}: {exc.strerror or exc}",
            port=url,
            errno=exc.errno,
        ) from exc
    except BaseException:
        sock.close()
        raise


def unsent_bytes(sock: socket.socket) -> int:
    """Bytes the kernel still holds for sending (``SIOCOUTQ``)."""
    buf = bytearray(4)
    fcntl.ioctl(sock.fileno(), _SIOCOUTQ, buf)
    return int(struct.unpack("i", buf)[0])


def unread_bytes(sock: socket.socket) -> int:
    """Bytes received by the kernel and not read yet (``FIONREAD``)."""
    buf = bytearray(4)
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return int(struct.unpack("i", buf)[0])


class SocketPort(SocketCore):
    """A connected TCP socket, non-blocking.

    The server closing the connection is end of stream (``b""``); a reset
    (``ECONNRESET``) or a write after the server went away (``EPIPE``) is an
    :exc:`OSError` that the front ends report as a broken resource.
    """

    transport = "socket"
    # The kernel goes on sending a closed TCP socket's queue (no SO_LINGER 0).
    close_keeps_output = True

    def __init__(self, sock: socket.socket, name: str, settings: SerialSettings) -> None:
        """Take ownership of the connected *sock*. Use :func:`open_socket` instead."""
        self._own(sock)
        self.name = name
        self.settings = settings

    def read_nowait(self, max_bytes: int) -> bytes:
        return self._socket().recv(max_bytes)

    def write_nowait(self, data: memoryview) -> int:
        return self._socket().send(data)

    def apply_settings(self, settings: SerialSettings) -> None:
        # Accepted and kept, not sent: raw TCP has no way to carry them.
        self._socket()
        logger.info("%s: settings %s kept, not sent (raw TCP)", self.name, settings.framing)
        self.settings = settings

    def in_waiting(self) -> int:
        return unread_bytes(self._socket())

    def out_waiting(self) -> int:
        return unsent_bytes(self._socket())

    def reset_input_buffer(self) -> None:
        sock = self._socket()
        # What has arrived by now, not what goes on arriving: a peer that
        # sends without pause would otherwise keep this loop, and the event
        # loop it runs on, busy for as long as it sends.
        # One read at least, so that a connection the server has reset says
        # so here, as every other call on it does.
        left = max(unread_bytes(sock), 1)
        try:
            while left > 0 and (chunk := sock.recv(min(left, _DRAIN_CHUNK))):
                left -= len(chunk)
        except BlockingIOError:
            pass

    def reset_output_buffer(self) -> None:
        # Bytes handed to the kernel cannot be taken back; pyserial ignores
        # this call for socket:// too.
        self._socket()


async def open_socket(url: str, settings: SerialSettings, loop: Loop) -> SocketPort:
    """Connect to ``socket://HOST:PORT[?timeout=SECONDS][&logging=LEVEL]``, waiting through *loop*.

    ``logging`` (pyserial's option) sets the level of the
    ``trioserial.socket`` logger.
    """
    host, port, timeout, level = parse_socket_url(url)
    if level is not None:
        logger.setLevel(level)
    sock = await connect_tcp(url, host, port, timeout, loop)
    # The server may have reset the connection already (ENOTCONN here).
    with closed_on_failure(sock, url, f"at once (to {host}:{port})"):
        peer = sock.getpeername()
        core = SocketPort(sock, url, settings)
    logger.info("%s: connected to %s", url, peer)
    return core
