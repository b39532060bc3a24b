"""``PySerial.connect()``'s streams, their pacing, and the registry that shares one open (layer 3).

:class:`DriverStream` is one connection; :class:`Connections` is the set of
a driver's live connections: on a tty they share one open of the device
through :meth:`TtyPort.share <trioserial._port.TtyPort.share>`, and the
driver's ``close()`` ends them all. Everything here runs in the Trio thread;
the driver hops there first.
"""

from __future__ import annotations

from typing import final

import trio

from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view
from ._open import UnopenedCore
from ._pacing import Pacer
from ._port import TtyPort
from ._settings import SerialSettings, SerialStatistics
from ._stream import AsyncSerial, Buffer
from ._util import ConflictDetector

__all__ = ["Connections", "DriverStream", "paced_send"]


async def paced_send(serial: AsyncSerial, view: memoryview, pacer: Pacer) -> None:
    """Send *view* through *serial* no faster than *pacer* allows (always a checkpoint).

    The waits are :meth:`AsyncSerial.sleep_while_open`, so closing *serial*
    wakes a sender whose next slot is far away. Cancellation: a prefix went
    out, and ``serial.statistics().bytes_sent`` grew by its length.
    """
    if not view:
        await serial.send_all(view)  # the closed/EOF checks and the checkpoint
        return
    sent = 0
    while sent < len(view):
        n = pacer.take(len(view) - sent, trio.current_time())
        if not n:
            await serial.sleep_while_open(pacer.delay())
            continue
        await serial.send_all(view[sent : sent + n])
        sent += n


@final
class DriverStream(trio.abc.Stream):
    """One connection from :meth:`PySerial.connect`.

    A :class:`trio.abc.Stream` with the contract of
    :class:`~trioserial.AsyncSerial` (which it wraps; see :attr:`serial`), with
    two differences:

    * **Closed by the driver = end of stream.** When :meth:`PySerial.close`
      takes the port back, a task blocked in (or later calling)
      :meth:`receive_some` gets ``b""`` and :meth:`receive` raises
      :exc:`trio.EndOfChannel`, exactly as at a hangup: the conversation is
      over, nothing went wrong. Sending then raises
      :exc:`trio.ClosedResourceError`. Closing the stream yourself
      (:meth:`aclose`) gives the usual :exc:`trio.ClosedResourceError`.
    * **Throttling.** With the driver's ``cps`` set, :meth:`send_all` hands
      the characters to the OS no faster than ``cps`` per second (timed on
      Trio's clock; see :doc:`driver`).
    """

    def __init__(self, core: PortCore, cps: float | None) -> None:
        self._core = core
        self._serial = AsyncSerial(core)
        self._pacer = Pacer(cps) if cps else None
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", trio.BusyResourceError
        )
        self._forced = False

    @property
    def serial(self) -> AsyncSerial:
        """The underlying port, for the control surface (settings, modem lines, drain)."""
        return self._serial

    @property
    def closed_by_driver(self) -> bool:
        """Whether :meth:`PySerial.close` ended this connection."""
        return self._forced

    async def send_all(self, data: Buffer) -> None:
        """Send all of *data* (throttled when the driver has ``cps``).

        Cancellation: a prefix went out, and ``statistics().bytes_sent`` says
        how long it was.

        Raises:
          trio.ClosedResourceError: the stream was closed (by you or by the
            driver) or :meth:`send_eof` was called.
          trio.BrokenResourceError: the OS reported an error (hangup: ``EIO``).
          trio.BusyResourceError: another task is sending.
          TypeError: *data* is not bytes-like.
        """
        with self._send_conflict:
            try:
                if self._pacer is None:
                    await self._serial.send_all(data)
                else:
                    with byte_view(data) as view:
                        await paced_send(self._serial, view, self._pacer)
            except trio.ClosedResourceError:
                if self._forced:
                    raise trio.ClosedResourceError("serial port was closed by the driver") from None
                raise

    async def send(self, data: Buffer) -> None:
        """The same as :meth:`send_all` (the name Jumpstarter's streams use)."""
        await self.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """As :meth:`AsyncSerial.wait_send_all_might_not_block` (throttling aside).

        Cancellation leaves nothing behind.
        """
        with self._send_conflict:
            await self._serial.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Stop sending from this side; the device is not told (:meth:`AsyncSerial.send_eof`).

        Cancellation: a cancelled call changed nothing.
        """
        with self._send_conflict:
            await self._serial.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """As :meth:`AsyncSerial.receive_some`; ``b""`` also once the driver closed the port.

        Cancellation: a cancelled receive has consumed nothing.
        """
        try:
            return await self._serial.receive_some(max_bytes)
        except trio.ClosedResourceError:
            if not self._forced:
                raise
        await trio.lowlevel.checkpoint()
        return b""

    async def receive(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> bytes:
        """Like :meth:`receive_some`, raising :exc:`trio.EndOfChannel` instead of ``b""``.

        Cancellation: a cancelled receive has consumed nothing.
        """
        data = await self.receive_some(max_bytes)
        if not data:
            why = "was closed by the driver" if self._forced else "hung up"
            raise trio.EndOfChannel(f"serial port {self._serial.port!r} {why}")
        return data

    async def aclose(self) -> None:
        """Close this connection gracefully, as :meth:`AsyncSerial.aclose`. Others stay open.

        Idempotent. Cancellation: it still closes, discarding output not yet sent.
        """
        await self._serial.aclose()

    def statistics(self) -> SerialStatistics:
        """The wrapped port's counters (``bytes_sent`` is exact after a cancelled send)."""
        return self._serial.statistics()

    def fileno(self) -> int:
        """This connection's fd, or ``-1`` once closed."""
        return self._serial.fileno()

    def __repr__(self) -> str:
        cps = f" cps={self._pacer.cps:g}" if self._pacer else ""
        return f"<trioserial.DriverStream {self._serial!r}{cps}>"


class Connections:
    """A driver's live ``connect()`` streams. Trio thread only, no checkpoints.

    A tty is opened once, by the first connection: that core is the *line*,
    and each connection gets a share of it (its own fd on the one open file
    description), so closing one connection, or losing it to GC, never
    touches the others or the line. The line is closed with its last
    connection. A URL transport without a file to share opens anew for each
    connection.
    """

    def __init__(self, cps: float | None) -> None:
        self._cps = cps
        self._line: TtyPort | None = None
        self._on_line: set[DriverStream] = set()
        self._others: set[DriverStream] = set()

    def __bool__(self) -> bool:
        return self._line is not None or bool(self._others)

    def share_line(self) -> DriverStream | None:
        """A new connection on the open line, or ``None`` if there is none."""
        if self._line is None:
            return None
        stream = DriverStream(self._line.share(), self._cps)
        self._on_line.add(stream)
        return stream

    def adopt(self, core: PortCore) -> DriverStream:
        """A new connection on the freshly opened *core* (a tty becomes the line)."""
        if isinstance(core, TtyPort) and self._line is None:
            self._line = core
            stream = self.share_line()
            assert stream is not None
            return stream
        stream = DriverStream(core, self._cps)
        self._others.add(stream)
        return stream

    def unopened(self, name: str, settings: SerialSettings) -> DriverStream:
        """A connection to *name* that the driver's ``close()`` ended before its
        open made anything: at end of stream, no fd, not registered."""
        stream = DriverStream(UnopenedCore(name, settings), self._cps)
        stream._forced = True
        return stream

    def release(self, stream: DriverStream) -> None:
        """Close *stream* and, with the last connection on the line, the line."""
        stream.serial.close()
        self._others.discard(stream)
        if stream in self._on_line:
            self._on_line.discard(stream)
            if not self._on_line and self._line is not None:
                line, self._line = self._line, None
                line.close()

    def end(self, stream: DriverStream) -> None:
        """End *stream* for the driver: its receivers see end of stream, then release it."""
        stream._forced = True
        self.release(stream)  # wakes blocked tasks (notify_closing) and closes the fd

    def end_all(self) -> None:
        """:meth:`end` every connection (the driver's ``close()``)."""
        for stream in [*self._others, *self._on_line]:
            self.end(stream)

    def abandon_all(self) -> None:
        """Close every fd without the event loop: its ``trio.run()`` has ended,
        so nobody can be blocked on them."""
        for stream in [*self._others, *self._on_line]:
            stream._forced = True
            stream._core.close()
        self._others.clear()
        self._on_line.clear()
        line, self._line = self._line, None
        if line is not None:
            line.close()

    def cores(self) -> list[PortCore]:
        """The open handles to act on for DTR/RTS: the line, and each other connection."""
        cores: list[PortCore] = [] if self._line is None else [self._line]
        return cores + [s._core for s in self._others if not s._core.closed]
