"""``AsyncSerial``: the Trio front end (layer 2).

Drives a :class:`~trioserial._core.PortCore` with ``trio.lowlevel``: try the
syscall first, wait only on ``EAGAIN``. Never imports :mod:`anyio`.
"""

from __future__ import annotations

import os
from typing import NoReturn, final

import trio

from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._open import check_url, open_core
from ._settings import Parity, SerialSettings, SerialStatistics, StopBits
from ._util import ConflictDetector

#: What ``send_all`` accepts, as in :mod:`trio`.
Buffer = bytes | bytearray | memoryview

__all__ = ["AsyncSerial", "open_serial_port"]


@final
class AsyncSerial(trio.abc.Stream):
    """An open serial port as a Trio :class:`~trio.abc.Stream`.

    Get one from :func:`open_serial_port` (or
    :func:`trioserial.testing.open_pty_pair` in tests); it owns the port and
    closes it on :meth:`aclose` (or ``async with``) or, as a last resort, when
    garbage collected.

    **What a serial line cannot do.** A serial line has no end-of-file and no
    "peer closed" signal: the wire just goes quiet. So this is a
    :class:`~trio.abc.Stream`, not a :class:`~trio.abc.HalfCloseableStream`:
    :meth:`send_eof` only stops *this* side from sending, and the device is
    not told. :meth:`receive_some` returns ``b""`` only when the OS reports a
    hangup (USB adapter unplugged, pty master closed); and at a hangup the
    kernel discards input that nobody had read yet, so bytes still in the
    kernel buffer at that moment are lost whatever any library does.

    **Cancellation.** Every method documents what a cancellation leaves
    behind. In short: a cancelled receive has consumed nothing; a cancelled
    send has sent exactly a prefix of its data, whose length
    :meth:`statistics` tells; a cancelled :meth:`aclose` still closes.
    """

    def __init__(self, core: PortCore) -> None:
        """Wrap an open *core*. Use :func:`open_serial_port` instead."""
        self._core = core
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", trio.BusyResourceError
        )
        self._receive_conflict = ConflictDetector(
            "another task is using this serial port for receive", trio.BusyResourceError
        )
        self._eof_sent = False
        self._bytes_sent = 0
        self._bytes_received = 0
        self._waiting_receive = 0
        self._waiting_send = 0

    # ---------------------------------------------------------------- errors

    def _raise_closed(self) -> NoReturn:
        raise trio.ClosedResourceError("serial port was already closed")

    def _raise_for(self, exc: OSError) -> NoReturn:
        if self._core.is_closed_error(exc):
            raise trio.ClosedResourceError("serial port was closed") from None
        raise trio.BrokenResourceError(
            f"serial port {self._core.name!r} failed: {exc.strerror or exc}"
        ) from exc

    # ------------------------------------------------------------------ send

    async def send_all(self, data: Buffer) -> None:
        """Send all of *data*, waiting for room as needed.

        Always a checkpoint. Bytes go to the OS's output buffer; use
        ``wait_drained()`` to wait until they have left the wire.

        Cancellation: a prefix of *data* was handed to the OS (possibly none,
        possibly all) and the rest was not; ``statistics().bytes_sent`` grew
        by exactly that prefix's length, so a caller can resume without losing
        or duplicating a byte.

        Raises:
          trio.ClosedResourceError: the port was closed (before or during the
            call, also for ``b""``), or :meth:`send_eof` was called.
          trio.BrokenResourceError: the OS reported an error, such as ``EIO``
            when the device hung up; the :exc:`OSError` is the ``__cause__``.
          trio.BusyResourceError: another task is sending.
          TypeError: *data* is not bytes-like.
        """
        with self._send_conflict:
            if self._core.closed:
                self._raise_closed()
            if self._eof_sent:
                raise trio.ClosedResourceError("can't send data after sending EOF")
            await trio.lowlevel.checkpoint_if_cancelled()
            core = self._core
            waited = False
            with byte_view(data) as view:
                sent = 0
                total = len(view)
                while sent < total:
                    with view[sent:] as remaining:
                        try:
                            n = core.write_nowait(remaining)
                        except BlockingIOError:
                            waited = True
                            self._waiting_send += 1
                            try:
                                await trio.lowlevel.wait_writable(core.fileno())
                            finally:
                                self._waiting_send -= 1
                            continue
                        except OSError as exc:
                            self._raise_for(exc)
                    sent += n
                    self._bytes_sent += n
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()

    async def send(self, data: Buffer) -> None:
        """The same as :meth:`send_all` (the name Jumpstarter's driver uses)."""
        await self.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the OS output buffer has room.

        Cancellation leaves nothing behind.

        Raises:
          trio.ClosedResourceError: the port was closed.
          trio.BusyResourceError: another task is sending.
        """
        with self._send_conflict:
            if self._core.closed:
                self._raise_closed()
            await trio.lowlevel.wait_writable(self._core.fileno())

    async def send_eof(self) -> None:
        """Stop sending from this side; receiving goes on.

        A serial line has no end-of-file, so **the device is not told**:
        this is a local half-close that makes later sends raise
        :exc:`trio.ClosedResourceError`. It is what Jumpstarter's
        ``copy_stream`` calls when a client leaves, and it must not (and does
        not) close the port. Idempotent; always a checkpoint.

        Raises:
          trio.ClosedResourceError: the port was closed.
          trio.BusyResourceError: another task is sending.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            if self._core.closed:
                self._raise_closed()
            self._eof_sent = True

    # --------------------------------------------------------------- receive

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return between 1 and *max_bytes* bytes as soon as any arrive.

        Returns ``b""`` only at end of stream: the device hung up (USB
        unplugged, pty master closed). Always a checkpoint.

        Cancellation: **a cancelled receive has consumed nothing**. The read
        happens after the last point where a cancellation can be delivered,
        so every byte is returned by exactly one call.

        Args:
          max_bytes: the most to return; default 65536.

        Raises:
          trio.ClosedResourceError: the port was closed, before or during the call.
          trio.BrokenResourceError: the OS reported an error; the
            :exc:`OSError` is the ``__cause__``.
          trio.BusyResourceError: another task is receiving.
          TypeError, ValueError: *max_bytes* is not an int >= 1.
        """
        with self._receive_conflict:
            n = check_max_bytes(max_bytes)
            if self._core.closed:
                self._raise_closed()
            await trio.lowlevel.checkpoint_if_cancelled()
            core = self._core
            try:
                data = core.read_nowait(n)
            except BlockingIOError:
                pass
            except OSError as exc:
                self._raise_for(exc)
            else:
                self._bytes_received += len(data)
                # A schedule point that no cancellation can interrupt: the data
                # is ours now, and must reach the caller.
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
            while True:
                self._waiting_receive += 1
                try:
                    await trio.lowlevel.wait_readable(core.fileno())
                finally:
                    self._waiting_receive -= 1
                # No checkpoint from here to the return: nothing read can be lost.
                try:
                    data = core.read_nowait(n)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._raise_for(exc)
                self._bytes_received += len(data)
                return data

    async def receive(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> bytes:
        """Like :meth:`receive_some`, but never returns ``b""``.

        Raises:
          trio.EndOfChannel: the device hung up.
          trio.ClosedResourceError, trio.BrokenResourceError,
            trio.BusyResourceError: as :meth:`receive_some`.
        """
        data = await self.receive_some(max_bytes)
        if not data:
            raise trio.EndOfChannel(f"serial port {self._core.name!r} hung up")
        return data

    def __aiter__(self) -> AsyncSerial:
        return self

    async def __anext__(self) -> bytes:
        """``async for chunk in port``: chunks until the device hangs up."""
        data = await self.receive_some()
        if not data:
            raise StopAsyncIteration
        return data

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Close the port now. Idempotent. Must run in the Trio thread.

        Tasks blocked in this port's methods wake with
        :exc:`trio.ClosedResourceError`. Output still queued in the OS is
        discarded (so closing can never hang for the kernel's closing wait):
        await ``wait_drained()`` first when those bytes matter.
        """
        fd = self._core.fileno()
        if fd == -1:
            return
        # Mark, notify, close: no checkpoint in between, so no task can start
        # a wait on a closed (and maybe reused) fd number.
        trio.lowlevel.notify_closing(fd)
        self._core.close()

    async def aclose(self) -> None:
        """Close the port (see :meth:`close`), then checkpoint.

        Idempotent; always a checkpoint. Cancellation: the port is closed
        anyway (the close happens before the checkpoint).
        """
        self.close()
        await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------- the port

    @property
    def closed(self) -> bool:
        """Whether the port has been closed."""
        return self._core.closed

    @property
    def port(self) -> str:
        """The port as it was named when opened (a device path or URL)."""
        return self._core.name

    @property
    def transport(self) -> str:
        """The kind of transport carrying the bytes (``"tty"`` for local devices and ptys)."""
        return self._core.transport

    @property
    def settings(self) -> SerialSettings:
        """The line settings in force."""
        return self._core.settings

    def fileno(self) -> int:
        """The fd being driven, or ``-1`` once closed. Do not read or write it."""
        return self._core.fileno()

    def statistics(self) -> SerialStatistics:
        """Counters: bytes sent and received, tasks waiting."""
        return SerialStatistics(
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            tasks_waiting_receive=self._waiting_receive,
            tasks_waiting_send=self._waiting_send,
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._core.settings.framing
        return f"<trioserial.AsyncSerial {self._core.name!r} {state}>"


async def open_serial_port(
    port: str | os.PathLike[str],
    *,
    baudrate: int = 115200,
    bytesize: int = 8,
    parity: Parity | str = Parity.NONE,
    stopbits: StopBits | float = StopBits.ONE,
    xonxoff: bool = False,
    rtscts: bool = False,
    dsrdtr: bool = False,
    exclusive: bool = True,
) -> AsyncSerial:
    """Open a serial port and return it as an :class:`AsyncSerial`.

    Settings are validated before anything is opened. The open itself (which
    can block in the driver) runs in a worker thread, so the event loop never
    stalls; it cannot be interrupted halfway, so a cancellation that arrives
    meanwhile is delivered at the caller's next checkpoint, and the returned
    port (or, if the caller drops it, the garbage collector) closes the fd:
    nothing leaks.

    Args:
      port: a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, a pty
        slave). URL schemes are listed in the "ports and URLs" docs; an
        unknown one raises :exc:`~trioserial.UnsupportedURLError`.
      baudrate, bytesize, parity, stopbits, xonxoff, rtscts, dsrdtr, exclusive:
        see :class:`SerialSettings`.

    Raises:
      TypeError, ValueError: a setting or *port* is malformed (the message
        names the value and what was expected).
      trioserial.UnsupportedURLError: unknown URL scheme.
      trioserial.PortNotFoundError: no such device.
      trioserial.PortPermissionError: the OS denied access.
      trioserial.PortBusyError: another process holds the port's lock.
      trioserial.NotASerialPortError: the path is not a terminal device.
      trioserial.SerialPortError: any other failure to open or configure.
    """
    settings = SerialSettings(
        baudrate=baudrate,
        bytesize=bytesize,
        parity=parity,  # converted and validated by attrs
        stopbits=stopbits,
        xonxoff=xonxoff,
        rtscts=rtscts,
        dsrdtr=dsrdtr,
        exclusive=exclusive,
    )
    url = check_url(port)
    core = await trio.to_thread.run_sync(open_core, url, settings)
    return AsyncSerial(core)
