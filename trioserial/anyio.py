"""The anyio front end (layer 2): one serial stream for the asyncio and trio backends.

:func:`open_serial_port` returns an :class:`AnyioSerialStream`, an
:class:`anyio.abc.ByteStream` driving the same sync port core as
:class:`trioserial.AsyncSerial`, with anyio's own waits
(:func:`anyio.wait_readable`, :func:`anyio.wait_writable`,
:func:`anyio.notify_closing`): the syscall first, a wait only on ``EAGAIN``,
no threads on the data path on either backend. The behaviour is
``AsyncSerial``'s, with anyio's exception classes.

This module never imports :mod:`trio` or ``trioserial._stream``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, final

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio
from anyio.abc import ByteStream

from ._control import (
    ModemChangeWatch,
    check_input_lines,
    check_seconds,
    close_drain_limit,
    drain_delay,
)
from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._open import check_url, open_core
from ._options import OpenOptions, RS485Settings
from ._ports_anyio import list_ports as list_ports
from ._ports_anyio import wait_for_port as wait_for_port
from ._ports_anyio import watch_ports as watch_ports
from ._settings import ModemLines, Parity, SerialSettings, StopBits
from ._surface import PortSurface
from ._util import ConflictDetector

__all__ = ["AnyioSerialStream", "SerialAttribute", "open_serial_port"]
__all__ += ["list_ports", "wait_for_port", "watch_ports"]

#: What ``send`` accepts.
Buffer = bytes | bytearray | memoryview


class SerialAttribute(anyio.TypedAttributeSet):
    """Typed attributes of an :class:`AnyioSerialStream`, read with ``stream.extra(...)``.

    Attributes:
      port: the port as it was named when opened (a device path or URL).
      fd: the file descriptor being driven, or ``-1`` once closed.
      settings: the :class:`~trioserial.SerialSettings` in force.
      transport: the kind of transport (``"tty"`` for local devices and ptys).
    """

    port: str = anyio.typed_attribute()
    fd: int = anyio.typed_attribute()
    settings: SerialSettings = anyio.typed_attribute()
    transport: str = anyio.typed_attribute()


@final
class AnyioSerialStream(PortSurface, ByteStream):
    """An open serial port as an :class:`anyio.abc.ByteStream`, on asyncio or trio.

    Get one from :func:`open_serial_port`; it owns the port and closes it on
    :meth:`aclose` (or ``async with``) or, as a last resort, when garbage
    collected. Framing on top of it is anyio's
    :class:`~anyio.streams.buffered.BufferedByteReceiveStream`
    (``receive_until(b"\\n", ...)``, ``receive_exactly(n)``).

    **What a serial line cannot do.** A serial line has no end-of-file: the
    wire just goes quiet. :meth:`send_eof` only stops *this* side from
    sending and the device is not told. :meth:`receive` raises
    :exc:`anyio.EndOfStream` only when the OS reports a hangup (USB adapter
    unplugged, pty master closed), and at a hangup the kernel discards input
    that nobody had read yet.

    **Cancellation.** A cancelled :meth:`receive` has consumed nothing; a
    cancelled :meth:`send` has sent exactly a prefix of its data, whose length
    :meth:`statistics` tells; a cancelled :meth:`aclose` still closes.
    """

    _closed_error = anyio.ClosedResourceError

    def __init__(self, core: PortCore) -> None:
        """Wrap an open *core*. Use :func:`open_serial_port` instead."""
        self._core = core
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", anyio.BusyResourceError
        )
        self._receive_conflict = ConflictDetector(
            "another task is using this serial port for receive", anyio.BusyResourceError
        )
        self._break_conflict = ConflictDetector(
            "another task is sending a break on this serial port", anyio.BusyResourceError
        )
        # Set by close(): wakes control methods that sleep (drain, break, polls).
        # Made on first use, so a stream can be built outside an event loop.
        self._closing: anyio.Event | None = None
        self._eof_sent = False
        # The scope of a receive's wait for the fd, cancelled (ending the wait,
        # not the receive) when the core has read input into its own buffer.
        self._receive_wait: anyio.CancelScope | None = None
        core.on_input_buffered(self._look_again)
        self._native_cancellation: bool | None = None  # see _yield_first
        self._bytes_sent = 0
        self._bytes_received = 0
        self._waiting_receive = 0
        self._waiting_send = 0

    # ---------------------------------------------------------------- errors

    def _raise_for(self, exc: OSError) -> NoReturn:
        if self._core.is_closed_error(exc):
            raise anyio.ClosedResourceError("serial port was closed") from None
        raise anyio.BrokenResourceError(
            f"serial port {self._core.name!r} failed: {exc.strerror or exc}"
        ) from exc

    # ------------------------------------------------------------------ send

    async def send(self, item: Buffer) -> None:
        """Send all of *item*, waiting for room as needed.

        Always a checkpoint. Bytes go to the OS's output buffer; use
        :meth:`wait_drained` to wait until they have left the wire.

        Cancellation: a prefix of *item* was handed to the OS (possibly none,
        never all of a non-empty *item*: a send that wrote everything returns)
        and the rest was not; ``statistics().bytes_sent`` grew by exactly that
        prefix's length. This holds for asyncio's own cancellation
        (``task.cancel()``) too, so a caller that resends on cancellation
        never sends a byte twice.

        Raises:
          anyio.ClosedResourceError: the port was closed (before or during the
            call, also for ``b""``), or :meth:`send_eof` was called.
          anyio.BrokenResourceError: the OS reported an error, such as ``EIO``
            when the device hung up; the :exc:`OSError` is the ``__cause__``.
          anyio.BusyResourceError: another task is sending.
          TypeError: *item* is not bytes-like.
        """
        with self._send_conflict:
            if self._core.closed:
                self._raise_closed()
            if self._eof_sent:
                raise anyio.ClosedResourceError("can't send data after sending EOF")
            yield_first = self._yield_first()
            if yield_first:
                await anyio.lowlevel.checkpoint()
            else:
                await anyio.lowlevel.checkpoint_if_cancelled()
            core = self._core
            waited = False
            with byte_view(item) as view:
                sent = 0
                total = len(view)
                while sent < total:
                    with view[sent:] as remaining:
                        try:
                            n = core.write_nowait(remaining)
                        except BlockingIOError:
                            waited = True
                            await self._wait_writable()
                            continue
                        except OSError as exc:
                            self._raise_for(exc)
                    sent += n
                    self._bytes_sent += n
            if not waited and not yield_first:
                await anyio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        """Stop sending from this side; receiving goes on.

        A serial line has no end-of-file, so **the device is not told**: this
        is a local half-close that makes later sends raise
        :exc:`anyio.ClosedResourceError`. It does not close the port (which
        is what Jumpstarter's ``copy_stream`` needs when a client leaves).
        Idempotent; always a checkpoint; a cancellation leaves nothing behind.

        Raises:
          anyio.ClosedResourceError: the port was closed.
          anyio.BusyResourceError: another task is sending.
        """
        with self._send_conflict:
            await anyio.lowlevel.checkpoint()
            if self._core.closed:
                self._raise_closed()
            self._eof_sent = True

    # --------------------------------------------------------------- receive

    async def receive(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> bytes:
        """Return between 1 and *max_bytes* bytes as soon as any arrive.

        Never returns ``b""``. Always a checkpoint.

        Cancellation: **a cancelled receive has consumed nothing**. The read
        happens after the last point where a cancellation can be delivered,
        so every byte is returned by exactly one call.

        Raises:
          anyio.EndOfStream: the device hung up (USB unplugged, pty master
            closed).
          anyio.ClosedResourceError: the port was closed, before or during the call.
          anyio.BrokenResourceError: the OS reported an error; the
            :exc:`OSError` is the ``__cause__``.
          anyio.BusyResourceError: another task is receiving.
          TypeError, ValueError: *max_bytes* is not an int >= 1.
        """
        with self._receive_conflict:
            n = check_max_bytes(max_bytes)
            if self._core.closed:
                self._raise_closed()
            yield_first = self._yield_first()
            if yield_first:
                await anyio.lowlevel.checkpoint()
            else:
                await anyio.lowlevel.checkpoint_if_cancelled()
            core = self._core
            try:
                data = core.read_nowait(n)
            except BlockingIOError:
                pass
            except OSError as exc:
                self._raise_for(exc)
            else:
                if not yield_first:
                    # Trio: a schedule point no cancellation can interrupt.
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                return self._received(data)
            while True:
                await self._wait_readable()
                # No checkpoint from here to the return: nothing read can be lost.
                try:
                    data = core.read_nowait(n)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._raise_for(exc)
                return self._received(data)

    def _yield_first(self) -> bool:
        """Whether a call's schedule point must come before its first syscall.

        On asyncio, a native cancellation (``task.cancel()``,
        ``asyncio.timeout``, grpc.aio ending a handler) goes through anyio's
        shielded scopes: landing on a shielded checkpoint after a read or a
        complete write, it would lose the bytes read or report a finished
        send as cancelled. So there the one schedule point comes first, and
        a receive that then has to wait yields twice. On Trio nothing gets
        through a shield, so the cheaper order of Trio's own streams holds
        (cancellation check, syscall, shielded schedule point only if the
        syscall did not have to wait). Decided on first use, in the loop the
        stream runs in.
        """
        if self._native_cancellation is None:
            self._native_cancellation = sniffio.current_async_library() != "trio"
        return self._native_cancellation

    def _received(self, data: bytes) -> bytes:
        if not data:
            raise anyio.EndOfStream(f"serial port {self._core.name!r} hung up")
        self._bytes_received += len(data)
        return data

    # anyio reports a close during the wait as a bare ClosedResourceError; say what closed.

    async def _wait_readable(self) -> None:
        fd = self._core.fileno()
        self._waiting_receive += 1
        try:
            if self._core.buffers_input:
                # _look_again cancels this scope when the core buffers input;
                # only then is it worth its cost.
                with anyio.CancelScope() as self._receive_wait:
                    await anyio.wait_readable(fd)
            else:
                await anyio.wait_readable(fd)
        except anyio.ClosedResourceError:
            raise anyio.ClosedResourceError("serial port was closed") from None
        finally:
            self._receive_wait = None
            self._waiting_receive -= 1

    def _look_again(self) -> None:
        if self._receive_wait is not None:
            self._receive_wait.cancel()

    async def _wait_writable(self) -> None:
        self._waiting_send += 1
        try:
            await anyio.wait_writable(self._core.fileno())
        except anyio.ClosedResourceError:
            raise anyio.ClosedResourceError("serial port was closed") from None
        finally:
            self._waiting_send -= 1

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Close the port now, abortively. Idempotent. Must run in the event loop's thread.

        Tasks blocked in this port's methods wake with
        :exc:`anyio.ClosedResourceError`. Output still queued in the OS is
        discarded (so closing never hangs for the kernel's closing wait):
        :meth:`aclose` lets it go out first.
        """
        fd = self._core.fileno()
        if fd == -1:
            return
        # Notify, close: no checkpoint in between, so no task can start a wait
        # on a closed (and maybe reused) fd number.
        anyio.notify_closing(fd)
        self._core.close()
        if self._closing is not None:
            self._closing.set()

    async def aclose(self) -> None:
        """Close the port gracefully: let queued output go out, then close.

        As :meth:`trioserial.AsyncSerial.aclose`: queued output is given twice
        the time it takes at the line rate (at least a second) to go out, then
        discarded; with a task blocked sending, a transport that cannot
        report its queue, or a network port (whose socket goes on sending
        after the close), the port closes at once. Idempotent; always a
        checkpoint.

        Cancellation: the port is closed anyway, abortively.
        """
        try:
            limit = None
            if self._core.fileno() != -1 and self._waiting_send == 0:
                with contextlib.suppress(OSError):
                    limit = close_drain_limit(self._core)
            if limit is not None:
                with (
                    anyio.move_on_after(limit),
                    contextlib.suppress(
                        OSError, anyio.ClosedResourceError, anyio.BrokenResourceError
                    ),
                ):
                    await self.wait_drained()
        finally:
            self.close()
        await anyio.lowlevel.checkpoint()

    # ------------------------------------------------------------- the port

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """:class:`SerialAttribute` values, for :meth:`~anyio.TypedAttributeProvider.extra`."""
        core = self._core
        return {
            SerialAttribute.port: lambda: core.name,
            SerialAttribute.fd: core.fileno,
            SerialAttribute.settings: lambda: core.settings,
            SerialAttribute.transport: lambda: core.transport,
        }

    # --------------------------------------------------------- control (async)
    # The same strategies as AsyncSerial's (its docstrings say why: polling
    # with sleeps instead of tcdrain/TIOCMIWAIT in a thread), on anyio's sleeps.

    async def _sleep_while_open(self, seconds: float) -> None:
        """Sleep, but wake with ClosedResourceError as soon as the port is closed."""
        if self._closing is None:
            self._closing = anyio.Event()
        if self._core.closed:  # closed before the event existed: close() could not set it
            self._closing.set()
        with anyio.move_on_after(seconds):
            await self._closing.wait()
        if self._core.closed:
            raise anyio.ClosedResourceError("serial port was closed")

    async def reconfigure(self, **changes: Any) -> None:
        """Change line settings on the open port, keeping everything else.

        Accepts any of ``baudrate``, ``bytesize``, ``parity``, ``stopbits``,
        ``xonxoff``, ``rtscts``, ``dsrdtr`` and ``exclusive`` (see
        :class:`~trioserial.SerialSettings`). Validated before the device is
        touched; only what changed is applied; buffered data is kept, DTR and
        RTS are not touched and VMIN=1/VTIME=0 stay in force, as
        :meth:`trioserial.AsyncSerial.reconfigure` does.

        Always a checkpoint. Cancellation: atomic, delivered before the change
        starts (nothing changed) or after it completed (all of it in force).

        Raises:
          TypeError, ValueError: an unknown setting or a bad value; nothing changed.
          anyio.ClosedResourceError: the port was closed.
          trioserial.PortBusyError: ``exclusive=True`` but another handle holds the lock.
          trioserial.SerialPortError: the driver rejected the settings; the old
            ones stay in force.
        """
        new = self._core.settings.replace(**changes)
        core = self._live_core()
        await anyio.lowlevel.checkpoint_if_cancelled()
        if new != core.settings:
            try:
                core.apply_settings(new)
            except OSError as exc:
                self._control_error(exc)
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def wait_drained(self) -> None:
        """Wait until the output queued so far has been transmitted.

        Reads the driver's queue (``TIOCOUTQ``) and sleeps for as long as that
        many characters take at the current rate (1 ms to 100 ms, then looks
        again); then, on UARTs that report it (``TIOCSERGETLSR``), waits for
        the FIFO and shift register to empty. A pty has no queue: it returns
        at once. Always a checkpoint. Cancellation: nothing is discarded; the
        output keeps draining.

        Raises:
          anyio.ClosedResourceError: the port was closed, before or during the wait.
          trioserial.UnsupportedOperationError: the transport cannot report its queue.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        while True:
            core = self._live_core()
            try:
                delay = drain_delay(core)
            except OSError as exc:
                self._control_error(exc)
            if delay is None:
                break
            await self._sleep_while_open(delay)
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def send_break(self, duration: float = 0.25) -> None:
        """Hold the line in a break for *duration* seconds.

        Like ``tcsendbreak``, it first waits for queued output to be sent
        (:meth:`wait_drained`); then: start the break, :func:`anyio.sleep`,
        end it. No thread and no blocking call.

        Always a checkpoint. Cancellation: **the break is always ended**; a
        cancellation while draining sends no break at all. Closing the port
        from another task ends it too and wakes this call with
        :exc:`anyio.ClosedResourceError`. On a pty the break does nothing.

        Args:
          duration: seconds, a finite number > 0.

        Raises:
          TypeError, ValueError: *duration* is not a positive finite number.
          anyio.ClosedResourceError: the port was closed.
          anyio.BusyResourceError: another task is sending a break.
          trioserial.UnsupportedOperationError: the port cannot send a break.
        """
        duration = check_seconds("duration", duration)
        with self._break_conflict:
            await self.wait_drained()
            core = self._live_core()
            try:
                core.set_break(True)
            except OSError as exc:
                self._control_error(exc)
            try:
                await self._sleep_while_open(duration)
            finally:
                if not core.closed:
                    try:
                        core.set_break(False)
                    except OSError as exc:
                        self._control_error(exc)

    async def wait_modem_change(self, *lines: str, poll_interval: float = 0.01) -> ModemLines:
        """Wait until one of the input lines *lines* changes; return all lines then.

        *lines* are among ``"cts"``, ``"dsr"``, ``"ri"``, ``"cd"``; none means
        all four. A change is a level different from the one when the call
        started or, where the driver counts transitions (``TIOCGICOUNT``), any
        transition, so a pulse shorter than *poll_interval* is still seen.
        The lines are polled every *poll_interval* seconds (``TIOCMIWAIT``
        would block a thread that closing the port cannot wake).

        Always a checkpoint. Cancellation: nothing is changed or consumed.

        Raises:
          TypeError, ValueError: a name is not an input line, or
            *poll_interval* is not a positive finite number.
          anyio.ClosedResourceError: the port was closed, before or during the wait.
          trioserial.UnsupportedOperationError: the port has no modem lines.
        """
        watched = check_input_lines(lines)
        poll_interval = check_seconds("poll_interval", poll_interval)
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            watch = ModemChangeWatch(self._live_core(), watched)
            while True:
                await self._sleep_while_open(poll_interval)
                if (changed := watch.poll()) is not None:
                    return changed
        except OSError as exc:
            self._control_error(exc)

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._core.settings.framing
        return f"<trioserial.anyio.AnyioSerialStream {self._core.name!r} {state}>"


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
    dtr: bool | None = None,
    rts: bool | None = None,
    hupcl: bool | None = None,
    low_latency: bool | None = None,
    rs485: RS485Settings | None = None,
) -> AnyioSerialStream:
    """Open a serial port and return it as an :class:`AnyioSerialStream`.

    The anyio twin of :func:`trioserial.open_serial_port`, with the same
    arguments (``dtr``, ``rts``, ``hupcl``, ``low_latency``, ``rs485``: see
    there) and errors. Settings are validated before anything is opened;
    the open itself runs in a worker thread (:func:`anyio.to_thread.run_sync`),
    so the event loop never stalls. The open cannot be interrupted halfway: a
    cancellation that arrives meanwhile is delivered at the caller's next
    checkpoint, and the returned port (or, if the caller drops it, the garbage
    collector) closes the fd, so nothing leaks.

    Raises:
      TypeError, ValueError: a setting or *port* is malformed.
      trioserial.UnsupportedURLError: unknown URL scheme.
      trioserial.PortNotFoundError: no such device.
      trioserial.PortPermissionError: the OS denied access.
      trioserial.PortBusyError: another process holds the port's lock.
      trioserial.NotASerialPortError: the path is not a terminal device.
      trioserial.UnsupportedOperationError: the port cannot do what *dtr*,
        *rts*, *low_latency* or *rs485* ask for.
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
    options = OpenOptions(dtr=dtr, rts=rts, hupcl=hupcl, low_latency=low_latency, rs485=rs485)
    url = check_url(port)
    # Through a box, not the thread's return value: a worker thread can keep
    # its last result alive, and a dropped port must be closable by the GC.
    box: list[PortCore] = []
    await anyio.to_thread.run_sync(lambda: box.append(open_core(url, settings, options)))
    return AnyioSerialStream(box.pop())
