"""``PySerial.run()``: a supervised port that outlives its device (layer 3).

:class:`Supervisor` is the engine, which the driver holds: it opens the
device (following a renumbered USB adapter through its by-id link or its USB
identity), reads it into a bounded buffer, and when it goes away reconnects as
soon as a device event (``_portwatch``) says it may be back, with the backoff
as the longest wait. :class:`SupervisedStream` is what the user holds: a
:class:`trio.abc.Stream` over that buffer that survives reconnects. The two
share one state (:class:`trio_util.AsyncValue`): where the device is, and how
much input is buffered.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, final

import attrs
import trio
import trio_util

from . import _usb
from ._connection import paced_send
from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._errors import PortNotFoundError, SerialPortError, UnsupportedOperationError
from ._pacing import Pacer
from ._ports import TRIO
from ._portwatch import PortWatch, WatchConfig, _closing, wait_change
from ._resolve import BY_ID_DIR, stable_path
from ._settings import ModemLines, SerialStatistics
from ._stream import AsyncSerial, Buffer
from ._usb import UsbIdentity
from ._util import ConflictDetector

__all__ = ["DeviceDisconnectedError", "Opener", "SupervisedStream", "Supervisor"]

logger: Final = logging.getLogger("trioserial.driver")

#: How the supervisor opens the device: ``(path, identity) -> (core, path, identity)``
#: (see :func:`trioserial._usb.open_following`).
Opener = Callable[[str, UsbIdentity | None], Awaitable[tuple[PortCore, str, UsbIdentity | None]]]


class DeviceDisconnectedError(SerialPortError):
    """A :class:`SupervisedStream` send was cut off because the device went away.

    Unlike :exc:`trio.BrokenResourceError`, this does not mean that the
    stream is dead: a prefix of the data went out (``statistics().bytes_sent``
    says how much), the rest did not, and the next send waits for the next
    connection. A :class:`~trioserial.SerialPortError` (so an
    :exc:`OSError`), with the errno of the failure when there was one.
    """


class _Phase(enum.Enum):
    AWAY = "away"  # supervised, the device is not open (yet, or again)
    CONNECTED = "connected"
    ENDED = "ended"  # supervision stopped: receivers get the buffer, then b""
    CLOSED = "closed"  # aclose(): ClosedResourceError for everyone


@attrs.frozen
class _State:
    phase: _Phase
    buffered: int

    @property
    def over(self) -> bool:
        return self.phase in (_Phase.ENDED, _Phase.CLOSED)


def _readable(state: _State) -> bool:
    return state.buffered > 0 or state.over


def _sendable(state: _State) -> bool:
    return state.phase is not _Phase.AWAY


@final
class SupervisedStream(trio.abc.Stream):
    """The port as :meth:`PySerial.run` supervises it: a stream that survives reconnects.

    One task (the supervisor) reads the device into a buffer of at most
    ``buffer_size`` bytes; when the buffer is full it stops reading, so the
    OS (and, with flow control, the device) is held back instead of memory
    growing. While the buffer is full and nobody reads, a hangup is only
    noticed once reading resumes.

    **While the device is away** (:doc:`driver` says more):
    :meth:`receive_some` returns what was buffered, then waits for the next
    connection; :meth:`send_all` waits for the next connection; a send cut
    off by a hangup raises :exc:`DeviceDisconnectedError` and the stream
    stays usable. Input still in the kernel at a hangup is lost, so a
    reconnect is a gap in the data: ``connected`` and ``connect_count`` say
    where.

    **End of stream.** When supervision stops (:meth:`PySerial.close`, the
    nursery is cancelled), receivers get the buffered data, then ``b""``;
    after :meth:`aclose` they get :exc:`trio.ClosedResourceError`.

    Attributes:
      connected: ``trio_util.AsyncBool``, true while the device is open.
      modem_lines: ``trio_util.AsyncValue`` of the last
        :class:`~trioserial.ModemLines` read (``None`` where the transport has
        none, such as a pty).
      last_error: ``trio_util.AsyncValue`` of the last failure (an
        :exc:`OSError`: hangup or open error), or ``None``. Every failure is a
        new value, so ``wait_transition()`` sees each one.
      connect_count: how many times the device has been opened so far.
      path: the device path or URL being opened (a ``/dev/serial/by-id``
        link when one was found); for a driver given a USB identity, the
        device node last opened, or the identity until the first open.
    """

    def __init__(
        self, stop: Callable[[], None], url: str, cps: float | None, buffer_size: int
    ) -> None:
        """Made by :meth:`PySerial.run`; *stop* ends the supervision."""
        self._stop_supervision = stop
        self._buffer_size = buffer_size
        self._buffer = bytearray()
        self._state = trio_util.AsyncValue(_State(_Phase.AWAY, 0))
        self._serial: AsyncSerial | None = None
        self._eof_sent = False
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", trio.BusyResourceError
        )
        self._receive_conflict = ConflictDetector(
            "another task is using this serial port for receive", trio.BusyResourceError
        )
        self._pacer = Pacer(cps) if cps else None
        self._bytes_sent = 0
        self._bytes_received = 0
        self._waiting_receive = 0
        self._waiting_send = 0
        self.connect_count = 0
        self.path = url
        self.connected = trio_util.AsyncBool(False)  # type: ignore[no-untyped-call]
        self.modem_lines: trio_util.AsyncValue[ModemLines | None] = trio_util.AsyncValue(None)
        self.last_error: trio_util.AsyncValue[OSError | None] = trio_util.AsyncValue(None)

    def _set_phase(self, phase: _Phase) -> None:
        if self._state.value.phase is not _Phase.CLOSED:  # closed is for good
            self._state.value = _State(phase, len(self._buffer))

    def _buffer_changed(self) -> None:
        self._state.value = attrs.evolve(self._state.value, buffered=len(self._buffer))

    # ------------------------------------------------------------- receive

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return 1 to *max_bytes* bytes of input, waiting across reconnects.

        Returns ``b""`` only once supervision has stopped and the buffer is
        empty. Always a checkpoint.

        Cancellation: a cancelled receive has consumed nothing.

        Raises:
          trio.ClosedResourceError: :meth:`aclose` was called.
          trio.BusyResourceError: another task is receiving.
          TypeError, ValueError: *max_bytes* is not an int >= 1.
        """
        with self._receive_conflict:
            n = check_max_bytes(max_bytes)
            await trio.lowlevel.checkpoint_if_cancelled()
            waited = False
            if not _readable(self._state.value):
                waited = True
                self._waiting_receive += 1
                try:
                    await self._state.wait_value(_readable)
                finally:
                    self._waiting_receive -= 1
            if self._state.value.phase is _Phase.CLOSED:
                raise trio.ClosedResourceError("serial port was closed")
            # No checkpoint from the last wait to the return: nothing taken is lost.
            data = bytes(self._buffer[:n])
            del self._buffer[:n]
            self._bytes_received += len(data)
            self._buffer_changed()
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def receive(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> bytes:
        """Like :meth:`receive_some`, raising :exc:`trio.EndOfChannel` instead of ``b""``.

        Cancellation: a cancelled receive has consumed nothing.
        """
        data = await self.receive_some(max_bytes)
        if not data:
            raise trio.EndOfChannel(f"supervision of {self.path!r} has stopped")
        return data

    # ---------------------------------------------------------------- send

    def _check_can_send(self) -> None:
        if self._state.value.over:
            raise trio.ClosedResourceError("serial port was already closed")
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")

    async def _wait_serial(self) -> AsyncSerial:
        while True:
            self._check_can_send()
            if self._serial is not None:
                return self._serial
            self._waiting_send += 1
            try:
                await self._state.wait_value(_sendable)
            finally:
                self._waiting_send -= 1

    async def send_all(self, data: Buffer) -> None:
        """Send all of *data* to the device, waiting while it is disconnected.

        Throttled when the driver has ``cps``. Always a checkpoint.

        Cancellation: a prefix of *data* went out, and
        ``statistics().bytes_sent`` grew by exactly its length.

        Raises:
          DeviceDisconnectedError: the device went away during the send (a
            prefix may have gone out); the stream stays usable, and the next
            send waits for the next connection.
          trio.ClosedResourceError: supervision stopped, :meth:`aclose` or
            :meth:`send_eof` was called.
          trio.BusyResourceError: another task is sending.
          TypeError: *data* is not bytes-like.
        """
        with self._send_conflict, byte_view(data) as view:
            await trio.lowlevel.checkpoint_if_cancelled()
            serial = await self._wait_serial()
            before = serial.statistics().bytes_sent
            try:
                if self._pacer is None:
                    await serial.send_all(view)
                else:
                    await paced_send(serial, view, self._pacer)
            except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                self._check_can_send()
                cause = exc.__cause__
                raise DeviceDisconnectedError(
                    f"serial port {self.path!r} went away during the send",
                    port=self.path,
                    errno=cause.errno if isinstance(cause, OSError) else None,
                ) from exc
            finally:
                self._bytes_sent += serial.statistics().bytes_sent - before

    async def send(self, data: Buffer) -> None:
        """The same as :meth:`send_all`."""
        await self.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until connected and the OS output buffer has room.

        Cancellation leaves nothing behind.
        """
        with self._send_conflict:
            serial = await self._wait_serial()
            try:
                await serial.wait_send_all_might_not_block()
            except trio.ClosedResourceError:
                self._check_can_send()  # else: it went away; a send will wait

    async def send_eof(self) -> None:
        """Stop sending from this side; receiving goes on. The device is not told.

        Idempotent; always a checkpoint. Cancellation: a cancelled call changed nothing.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            if self._state.value.phase is _Phase.CLOSED:
                raise trio.ClosedResourceError("serial port was already closed")
            self._eof_sent = True

    async def aclose(self) -> None:
        """Stop supervising and close the port. Idempotent; closes even if cancelled.

        Receivers then get :exc:`trio.ClosedResourceError`; ``run()`` returns.
        """
        self._set_phase(_Phase.CLOSED)
        self._stop_supervision()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> SerialStatistics:
        """Counters over all connections of this supervision."""
        return SerialStatistics(
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            tasks_waiting_receive=self._waiting_receive,
            tasks_waiting_send=self._waiting_send,
        )

    @property
    def serial(self) -> AsyncSerial | None:
        """The current connection's port (for the control surface), or ``None`` while down.

        Do not read from it: the supervisor does. Closing it ends this
        connection like a hangup: the supervisor opens the port again after
        *initial_backoff*.
        """
        return self._serial

    @property
    def buffered(self) -> int:
        """Bytes received from the device and not read yet (at most ``buffer_size``)."""
        return len(self._buffer)

    def __repr__(self) -> str:
        state = "connected" if self.connected.value else "disconnected"
        return f"<trioserial.SupervisedStream {self.path!r} {state}>"


class Supervisor:
    """The engine behind one :meth:`PySerial.run`; the driver holds it. Trio thread only."""

    def __init__(
        self,
        url: str,
        cps: float | None,
        buffer_size: int,
        opener: Opener,
        *,
        by_identity: bool = False,
    ) -> None:
        self.port = SupervisedStream(self.stop, url, cps, buffer_size)
        self._url = url
        #: *url* only describes a USB identity; the opener finds the device.
        self._by_identity = by_identity
        self._opener = opener
        self._scope = trio.CancelScope()
        self._started = False  # task_status.started() was called
        #: Where device events come from (tests point it at a fixture tree).
        self.watch_config: WatchConfig = _usb.USB_CONFIG
        #: The open handle, or ``None`` while the device is away.
        self.core: PortCore | None = None

    async def run(
        self,
        initial_backoff: float,
        max_backoff: float,
        modem_poll_interval: float | None,
        task_status: trio.TaskStatus[SupervisedStream],
    ) -> None:
        """Supervise until :meth:`stop` (or a cancellation); see :meth:`PySerial.run`."""
        try:
            with self._scope:
                await self._supervise(
                    initial_backoff, max_backoff, modem_poll_interval, task_status
                )
            if not self._started:  # stop() came during the first open: an ended port
                task_status.started(self.port)
        finally:
            self._shut_down()

    def stop(self) -> None:
        """Stop supervising now: close the fd, wake everyone, end :meth:`run`."""
        self._shut_down()
        self._scope.cancel()

    def publish_modem_lines(self) -> None:
        """Read the modem lines into ``port.modem_lines`` (after a change of DTR/RTS)."""
        core = self.core
        if core is None:
            return
        try:
            self.port.modem_lines.value = core.modem_lines()
        except (UnsupportedOperationError, OSError):
            self.port.modem_lines.value = None

    async def _supervise(
        self,
        initial_backoff: float,
        max_backoff: float,
        modem_poll_interval: float | None,
        task_status: trio.TaskStatus[SupervisedStream],
    ) -> None:
        port = self.port
        if not self._by_identity:
            port.path = await trio.to_thread.run_sync(stable_path, self._url, BY_ID_DIR)
        identity: UsbIdentity | None = None
        delay: float | None = None  # None: try at once
        async with self._device_events(None if self._by_identity else port.path) as watch:
            while True:
                if delay is not None:
                    await self._wait_away(watch, delay)
                if watch is not None:
                    watch.dirty = False  # from here on, a change means: try again
                try:
                    core, port.path, identity = await self._opener(port.path, identity)
                except SerialPortError as exc:
                    if not self._started and not isinstance(exc, PortNotFoundError):
                        raise
                    port.last_error.value = exc
                    if not self._started:
                        self._started = True
                        task_status.started(port)
                    delay = initial_backoff if delay is None else min(delay * 2, max_backoff)
                    continue
                if port._state.value.over:  # stopped while the open ran: hand the fd back
                    core.close()
                    if not self._started:
                        self._started = True
                        task_status.started(port)
                    return
                self._attach(core)
                if not self._started:
                    self._started = True
                    task_status.started(port)
                async with trio.open_nursery() as nursery:
                    if modem_poll_interval is not None and port.modem_lines.value is not None:
                        nursery.start_soon(self._watch_modem_lines, modem_poll_interval)
                    error = await self._pump()
                    nursery.cancel_scope.cancel()
                self._detach()
                logger.warning("serial port %r went away: %s", port.path, error)
                port.last_error.value = error
                # A device that has just gone away is not back yet: wait for the
                # next change (its sysfs entry lingers until the kernel removes
                # it), not for what was queued while it was connected.
                if watch is not None:
                    watch.drain()
                    watch.dirty = False
                delay = initial_backoff

    @contextlib.asynccontextmanager
    async def _device_events(self, path: str | None) -> AsyncIterator[PortWatch | None]:
        """The device events that say *path* (any port, for ``None``) may be back.

        ``None`` instead of a watch for a URL, which has no device events.

        One watch for the whole supervision, so that no change falls between
        a failed open and the next wait.
        """
        if path is not None and "://" in path:
            yield None
            return
        try:
            watch = PortWatch(self.watch_config, paths=[] if path is None else [path])
        except OSError as exc:  # out of inotify instances, say: poll as before
            logger.warning("cannot watch for %r to come back, polling: %s", path, exc)
            yield None
            return
        async with _closing(TRIO, watch):
            yield watch

    @staticmethod
    async def _wait_away(watch: PortWatch | None, backoff: float) -> None:
        """Wait while the device is away: for the next device event, at most *backoff*."""
        if watch is None:
            await trio.sleep(backoff)
            return
        with trio.move_on_after(backoff):
            await wait_change(TRIO, watch)

    def _attach(self, core: PortCore) -> None:
        port = self.port
        self.core = core
        port._serial = AsyncSerial(core)
        port.connect_count += 1
        self.publish_modem_lines()
        port.connected.value = True
        port._set_phase(_Phase.CONNECTED)

    def _detach(self) -> None:
        port = self.port
        serial, port._serial, self.core = port._serial, None, None
        if serial is not None:
            serial.close()
        port.connected.value = False
        if not port._state.value.over:
            port._set_phase(_Phase.AWAY)

    async def _watch_modem_lines(self, interval: float) -> None:
        serial = self.port._serial
        assert serial is not None
        while True:
            try:
                # Publish the levels the wait starts from (read in the same task
                # step as the wait's own first read), so no change falls between.
                self.port.modem_lines.value = serial.modem_lines()
                await serial.wait_modem_change(poll_interval=interval)
            except (trio.ClosedResourceError, SerialPortError):
                return  # gone: the pump notices and reconnects

    async def _pump(self) -> OSError:
        """Move input into the buffer until the device goes away; return why it did."""
        port = self.port
        serial = port._serial
        assert serial is not None
        size = port._buffer_size
        while True:
            if len(port._buffer) >= size:
                await port._state.wait_value(lambda state: state.buffered < size)
            try:
                data = await serial.receive_some(size - len(port._buffer))
            except trio.ClosedResourceError:
                if port._state.value.over:
                    await trio.sleep_forever()  # stop() cancelled us: this raises Cancelled
                # Someone closed port.serial: a disconnect like any other.
                return SerialPortError(
                    f"serial port {port.path!r} was closed outside the supervisor",
                    port=port.path,
                    errno=errno.EBADF,
                )
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                if isinstance(cause, OSError):
                    return cause
                return SerialPortError(str(exc), port=port.path)
            if not data:
                return SerialPortError(
                    f"serial port {port.path!r} hung up", port=port.path, errno=errno.EIO
                )
            port._buffer += data
            port._buffer_changed()

    def _shut_down(self) -> None:
        port = self.port
        port._set_phase(_Phase.ENDED)
        if port._serial is not None:
            self._detach()
