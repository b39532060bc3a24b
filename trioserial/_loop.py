"""``loop://``: an in-memory echo port with a real fd to wait on (layer 1).

What is sent is received, one chunk per send, as pyserial's ``loop://`` and
Jumpstarter expect. The buffer is an ``AF_UNIX`` datagram socket connected
to itself: each write is one datagram, the kernel bounds the queue by the
socket's send buffer (about 200 KiB), and the socket is writable again only
once the reader has made room, so a writer gets real backpressure and both
front ends wait on it like on any other fd.
"""

from __future__ import annotations

import logging
import socket
from typing import Final

from ._core import SocketCore
from ._errors import UnsupportedURLError
from ._settings import ModemLines, SerialSettings
from ._url import parse_log_level, parse_options, split_url

__all__ = ["LoopPort", "open_loop"]

#: The largest datagram: bigger writes are split, so one write is one
#: received chunk up to this size.
CHUNK: Final = 32768


logger: Final = logging.getLogger("trioserial.loop")


def check_loop_url(url: str) -> int | None:
    """Check ``loop://[?logging=LEVEL]``; return the logging level asked for."""
    _, target, query = split_url(url)
    if target:
        raise UnsupportedURLError(f"unexpected {target!r} in {url!r}: expected loop://", port=url)
    return parse_log_level(url, parse_options(url, query, values=("logging",)).get("logging"))


class LoopPort(SocketCore):
    """A loop-back port: every write comes back to the reader.

    Settings are accepted and kept. Modem lines are emulated as pyserial
    does: CTS follows RTS, DSR follows DTR, RI is off and CD is on. A break
    is accepted and changes nothing. Nothing is ever "in transit", so
    ``out_waiting`` is 0 and discarding output does nothing.
    """

    transport = "loop"

    def __init__(self, name: str, settings: SerialSettings) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind("")  # an autobound abstract address, nothing in the file system
            sock.connect(sock.getsockname())
        except BaseException:
            sock.close()
            raise
        self._own(sock)
        # A datagram cannot be read in part (the kernel drops the tail), so
        # one is always read whole and what the caller did not ask for waits here.
        self._rest = b""
        self._queued = 0  # bytes in datagrams not read yet
        self._dtr = True
        self._rts = True
        self._break = False
        self.name = name
        self.settings = settings

    def read_nowait(self, max_bytes: int) -> bytes:
        if not self._rest:
            sock = self._socket()
            self._rest = sock.recv(CHUNK)
            self._queued -= len(self._rest)
        data, self._rest = self._rest[:max_bytes], self._rest[max_bytes:]
        return data

    def write_nowait(self, data: memoryview) -> int:
        n = self._socket().send(data[:CHUNK])
        self._queued += n
        return n

    def apply_settings(self, settings: SerialSettings) -> None:
        logger.info("%s: settings %s (kept; nothing to configure)", self.name, settings.framing)
        self.settings = settings

    def modem_lines(self) -> ModemLines:
        self._socket()
        return ModemLines(
            cts=self._rts, dsr=self._dtr, ri=False, cd=True, dtr=self._dtr, rts=self._rts
        )

    def set_dtr(self, value: bool) -> None:
        self._socket()
        logger.info("%s: DTR %s -> DSR", self.name, "on" if value else "off")
        self._dtr = bool(value)

    def set_rts(self, value: bool) -> None:
        self._socket()
        logger.info("%s: RTS %s -> CTS", self.name, "on" if value else "off")
        self._rts = bool(value)

    @property
    def break_condition(self) -> bool:
        return self._break

    def set_break(self, value: bool) -> None:
        self._socket()
        logger.info("%s: break %s (accepted, no effect)", self.name, "on" if value else "off")
        self._break = bool(value)

    def in_waiting(self) -> int:
        self._socket()
        return len(self._rest) + self._queued

    def out_waiting(self) -> int:
        self._socket()
        return 0

    def reset_input_buffer(self) -> None:
        sock = self._socket()
        self._rest = b""
        try:
            while True:
                self._queued -= len(sock.recv(CHUNK))
        except BlockingIOError:
            pass

    def reset_output_buffer(self) -> None:
        self._socket()

    def _forget(self) -> None:
        self._rest = b""


def open_loop(url: str, settings: SerialSettings) -> LoopPort:
    """Open ``loop://``. Quick, but opened off the loop like every port."""
    level = check_loop_url(url)
    if level is not None:
        logger.setLevel(level)
    return LoopPort(url, settings)
