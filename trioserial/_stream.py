"""``AsyncSerial``: the Trio front end (layer 2).

Drives a :class:`~trioserial._core.PortCore` with ``trio.lowlevel``: try the
syscall first, wait only on ``EAGAIN``. Never imports :mod:`anyio`.
"""

from __future__ import annotations

import contextlib
import os
from typing import NoReturn, final

import trio

from ._control import (
    ModemChangeWatch,
    check_input_lines,
    check_seconds,
    close_drain_limit,
    drain_delay,
)
from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._netloop import wait_settings_applied
from ._open import check_url
from ._options import OpenOptions, RS485Settings
from ._settings import ModemLines, Parity, SerialSettings, SettingsChanges, StopBits, Unpack
from ._surface import PortSurface
from ._trio_loop import TRIO_LOOP, open_core_trio
from ._util import ConflictDetector

#: What ``send_all`` accepts, as in :mod:`trio`.
Buffer = bytes | bytearray | memoryview

__all__ = ["AsyncSerial", "open_serial_port"]


@final
class AsyncSerial(PortSurface, trio.abc.Stream):
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

    _closed_error = trio.ClosedResourceError

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
        # The scope of a receive's wait for the fd, cancelled (ending the wait,
        # not the receive) when the core has read input into its own buffer.
        self._receive_wait: trio.CancelScope | None = None
        core.on_input_buffered(self._look_again)
        self._bytes_sent = 0
        self._bytes_received = 0
        self._waiting_receive = 0
        self._waiting_send = 0
        self._break_conflict = ConflictDetector(
            "another task is sending a break on this serial port", trio.BusyResourceError
        )
        # Set by close(): wakes control methods that sleep (drain, break,
        # polls). Made on first use, so ports that never sleep stay small.
        self._closing: trio.Event | None = None

    # ---------------------------------------------------------------- errors

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
                            await self._wait_writable()
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
            try:
                await trio.lowlevel.wait_writable(self._core.fileno())
            except trio.ClosedResourceError:
                self._raise_closed_while_waiting()

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
                await self._wait_readable()
                # No checkpoint from here to the return: nothing read can be lost.
                try:
                    data = core.read_nowait(n)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._raise_for(exc)
                self._bytes_received += len(data)
                return data

    # Trio reports a close during the wait as "another task closed this fd";
    # say what was closed, as the anyio front end does. (try/except in each
    # wait rather than a context manager: this is the hot path.)

    @staticmethod
    def _raise_closed_while_waiting() -> NoReturn:
        raise trio.ClosedResourceError("serial port was closed") from None

    async def _wait_readable(self) -> None:
        fd = self._core.fileno()
        self._waiting_receive += 1
        try:
            if self._core.buffers_input:
                # _look_again cancels this scope when the core buffers input.
                with trio.CancelScope() as self._receive_wait:
                    await trio.lowlevel.wait_readable(fd)
            else:
                await trio.lowlevel.wait_readable(fd)
        except trio.ClosedResourceError:
            self._raise_closed_while_waiting()
        finally:
            self._receive_wait = None
            self._waiting_receive -= 1

    def _look_again(self) -> None:
        if self._receive_wait is not None:
            self._receive_wait.cancel()

    async def _wait_writable(self) -> None:
        self._waiting_send += 1
        try:
            await trio.lowlevel.wait_writable(self._core.fileno())
        except trio.ClosedResourceError:
            self._raise_closed_while_waiting()
        finally:
            self._waiting_send -= 1

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
        """Close the port now, abortively. Idempotent. Must run in the Trio thread.

        Tasks blocked in this port's methods wake with
        :exc:`trio.ClosedResourceError`. A tty's output still queued in the
        OS is discarded, so closing can never hang for the kernel's closing
        wait (up to 30 s on a UART whose flow control holds the line). Use
        :meth:`aclose` to let queued output go out first. (A network port's
        queue is the kernel's socket buffer, which it goes on sending after
        the close.)
        """
        fd = self._core.fileno()
        if fd == -1:
            return
        # Mark, notify, close: no checkpoint in between, so no task can start
        # a wait on a closed (and maybe reused) fd number.
        trio.lowlevel.notify_closing(fd)
        self._core.close()
        if self._closing is not None:
            self._closing.set()

    async def aclose(self) -> None:
        """Close the port gracefully: let queued output go out, then close.

        What is graceful on a serial line: output already handed to the OS is
        transmitted first (as :meth:`wait_drained`), the way closing a tty
        does, but without blocking the event loop, and for a bounded time:
        twice what the queue takes at the current rate, at least a second.
        Output still queued then (flow control holding the line) is
        discarded. There is nothing to tell the device (see the class docs).
        If another task is blocked sending, or the transport cannot report
        its output queue, the port closes at once (:meth:`close`); so does a
        network port, whose socket goes on sending its queue after the close.
        Idempotent; always a checkpoint.

        Cancellation: the port is closed anyway, abortively: output not yet
        transmitted is discarded (so :func:`trio.aclose_forcefully` never
        waits).
        """
        try:
            limit = None
            if self._core.fileno() != -1 and self._waiting_send == 0:
                with contextlib.suppress(OSError):
                    limit = close_drain_limit(self._core)
            if limit is not None:
                with (
                    trio.move_on_after(limit),
                    contextlib.suppress(
                        OSError, trio.ClosedResourceError, trio.BrokenResourceError
                    ),
                ):
                    await self.wait_drained()
        finally:
            self.close()
        await trio.lowlevel.checkpoint()

    # --------------------------------------------------------- control, async

    async def sleep_while_open(self, seconds: float) -> None:
        """Sleep for *seconds*, or until the port is closed, whichever comes first.

        For code that paces its own use of the port (the driver's ``cps``, a
        bootloader's timing): closing the port, from another task or with
        :meth:`close`, ends the sleep at once instead of when its time is up.
        Always a checkpoint. Cancellation leaves nothing behind.

        Raises:
          trio.ClosedResourceError: the port was closed before or during the sleep.
        """
        if self._closing is None:
            self._closing = trio.Event()
        if self._core.closed:  # closed before the event existed: close() could not set it
            self._closing.set()
        with trio.move_on_after(seconds):
            await self._closing.wait()
        if self._core.closed:
            raise trio.ClosedResourceError("serial port was closed")

    async def reconfigure(self, **changes: Unpack[SettingsChanges]) -> None:
        """Change line settings on the open port, keeping everything else.

        Accepts any of ``baudrate``, ``bytesize``, ``parity``, ``stopbits``,
        ``xonxoff``, ``rtscts``, ``dsrdtr`` and ``exclusive`` (see
        :class:`~trioserial.SerialSettings`). The new settings are validated
        before the device is touched, and only what changed is applied:

        - **buffered data is kept**: no flush of input or output, and no drain
          (bytes already queued go out at the new rate; await
          :meth:`wait_drained` first if they must go at the old one);
        - **DTR and RTS are not touched** (the rate never passes through
          ``B0``, the one rate that drops them), so a board wired for
          auto-reset keeps running;
        - VMIN=1/VTIME=0 stay in force (what lets reads tell "no data yet"
          from a hangup);
        - a non-standard ``baudrate`` goes through Linux ``termios2``
          (``BOTHER``), in the same single ioctl as the other flags;
        - ``exclusive`` takes or drops the ``flock``/``TIOCEXCL`` lock.

        Always a checkpoint. The change itself is one ``tcsetattr(TCSANOW)``
        (or ``TCSETS2``), which does not wait for output and is run on the
        event loop. (A USB adapter's driver sends it to the adapter with a
        short control transfer inside that call.)

        Cancellation: atomic. A cancellation is only delivered before the
        change starts (then nothing changed) or after it completed (then all
        of it is in force), never halfway.

        Raises:
          TypeError, ValueError: an unknown setting or a bad value (the
            message names it and what is allowed); nothing was changed.
          trio.ClosedResourceError: the port was closed.
          trioserial.PortBusyError: ``exclusive=True`` but another handle
            holds the lock; nothing was changed.
          trioserial.SerialPortError: the driver rejected the settings (such
            as a rate the hardware cannot make); the old settings stay in
            force.
          trioserial.UnsupportedOperationError: an RFC 2217 server answered
            another value (``settings`` then says what it answered); the
            call waits for the answer, at most the URL's ``timeout``.
        """
        new = self._core.settings.replace(**changes)
        core = self._live_core()
        await trio.lowlevel.checkpoint_if_cancelled()
        if new != core.settings:
            try:
                core.apply_settings(new)
                # A remote port answers later (bounded by its ?timeout).
                with trio.CancelScope(shield=True):
                    await wait_settings_applied(core, TRIO_LOOP)
            except OSError as exc:
                self._control_error(exc)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_drained(self) -> None:
        """Wait until the output queued so far has been transmitted.

        The replacement for ``tcdrain``/pyserial's ``flush()``, which block
        the calling thread. Strategy: read the driver's queue (``TIOCOUTQ``)
        and sleep for as long as that many characters take at the current
        rate (at least 1 ms, at most 100 ms, then look again), so a long
        queue costs a handful of ioctls and a short one returns within about
        a millisecond of draining. Once the queue is empty, a UART that
        reports its transmitter state (``TIOCSERGETLSR``, 8250-type UARTs)
        is polled until its FIFO and shift register are empty too: what
        RS-485 direction switching needs. Polling instead of ``tcdrain`` in a
        worker thread keeps it cancellable at once and costs no thread.

        What it cannot see: bytes already inside a USB adapter's own FIFO are
        invisible to the driver, and a pty has no queue (it returns at once).
        With flow control holding the line (``rtscts``/``xonxoff``), it waits
        as long as the peer does.

        Always a checkpoint. Cancellation: nothing is discarded or changed;
        the output keeps draining.

        Raises:
          trio.ClosedResourceError: the port was closed, before or during the wait.
          trioserial.UnsupportedOperationError: the transport cannot report
            its output queue.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            core = self._live_core()
            try:
                delay = drain_delay(core)
            except OSError as exc:
                self._control_error(exc)
            if delay is None:
                break
            await self.sleep_while_open(delay)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_break(self, duration: float = 0.25) -> None:
        """Hold the line in a break for *duration* seconds.

        Like ``tcsendbreak``, it first waits for queued output to be
        transmitted (:meth:`wait_drained`), so bytes sent before the break go
        out before it. Then: start the break, :func:`trio.sleep`, end it. No
        thread and no blocking call (``tcsendbreak`` sleeps in the kernel;
        pyserial's ``send_break`` runs it in the calling thread).

        Always a checkpoint. Cancellation: **the break is always ended** (a
        cancelled call never leaves the line held low); a cancellation while
        draining sends no break at all. Closing the port from another task
        ends the break too (closing a UART clears it) and wakes this call
        with :exc:`trio.ClosedResourceError`. On a pty the break is accepted
        and does nothing.

        Args:
          duration: seconds, a finite number > 0 (Linux's own default
            ``tcsendbreak`` break is 0.25 s).

        Raises:
          TypeError, ValueError: *duration* is not a positive finite number.
          trio.ClosedResourceError: the port was closed.
          trio.BusyResourceError: another task is sending a break.
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
                await self.sleep_while_open(duration)
            finally:
                if not core.closed:
                    try:
                        core.set_break(False)
                    except OSError as exc:
                        self._control_error(exc)

    async def wait_modem_change(self, *lines: str, poll_interval: float = 0.01) -> ModemLines:
        """Wait until one of the input lines *lines* changes; return all lines then.

        *lines* are names of input lines: ``"cts"``, ``"dsr"``, ``"ri"``,
        ``"cd"``; none means all four. A change is a level that differs from
        the level when the call started, or, where the driver counts
        transitions (``TIOCGICOUNT``: 8250-type UARTs and many USB adapters),
        any transition at all, so a ring pulse shorter than *poll_interval*
        is still seen (the returned snapshot then shows the level after it).
        Without counters, a pulse that starts and ends between two polls is
        missed.

        How: it polls ``TIOCMGET`` (and the counters) every *poll_interval*
        seconds with :func:`trio.sleep`, one or two non-blocking ioctls per
        poll. The alternative, ``TIOCMIWAIT``, blocks a thread inside the
        kernel, and nothing we can do wakes it: closing the fd from another
        thread neither interrupts the wait nor releases the port (the ioctl
        holds the open file, and with it the ``flock``), so a cancelled wait
        would leave a thread stuck until a line happens to move. Many USB
        adapters do not implement it at all. Polling is cancellable at once,
        costs no thread, and the counters give it ``TIOCMIWAIT``'s ability to
        see short pulses.

        Always a checkpoint. Cancellation: nothing is changed or consumed; a
        later call starts from the levels at that time.

        Args:
          *lines: the input lines to watch.
          poll_interval: seconds between polls, a finite number > 0.

        Returns:
          The :class:`~trioserial.ModemLines` read when the change was seen.

        Raises:
          TypeError, ValueError: a name is not an input line, or
            *poll_interval* is not a positive finite number.
          trio.ClosedResourceError: the port was closed, before or during the wait.
          trioserial.UnsupportedOperationError: the port has no modem lines.
        """
        watched = check_input_lines(lines)
        poll_interval = check_seconds("poll_interval", poll_interval)
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            watch = ModemChangeWatch(self._live_core(), watched)
            while True:
                await self.sleep_while_open(poll_interval)
                if (changed := watch.poll()) is not None:
                    return changed
        except OSError as exc:
            self._control_error(exc)

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
    dtr: bool | None = None,
    rts: bool | None = None,
    hupcl: bool | None = None,
    low_latency: bool | None = None,
    rs485: RS485Settings | None = None,
) -> AsyncSerial:
    """Open a serial port and return it as an :class:`AsyncSerial`.

    Settings are validated before anything is opened. A network port
    (``socket://``, ``rfc2217://``, also under ``spy://``) connects and
    negotiates on the event loop: a cancellation ends the open at once and
    closes its socket. Any other open (which can block in the driver) runs in
    a worker thread, so the event loop never stalls. That cannot be
    interrupted halfway: a cancellation that arrives meanwhile waits for it
    to finish, closes the port again, and is then raised. Either way, by the
    time a cancellation reaches the caller, no fd is left open and no lock
    held.

    Args:
      port: a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, a pty
        slave). URL schemes are listed in the "ports and URLs" docs; an
        unknown one raises :exc:`~trioserial.UnsupportedURLError`.
      baudrate, bytesize, parity, stopbits, xonxoff, rtscts, dsrdtr:
        see :class:`SerialSettings`.
      exclusive: lock the port with both ``flock`` and ``TIOCEXCL``, so a
        second opener (another process, or a second open in this one) gets
        :exc:`~trioserial.PortBusyError` naming the port. (``TIOCEXCL`` does
        not stop root; ``flock`` does, for programs that also use it.)
      dtr, rts: drive the line high (True) or low (False) right after
        opening; ``None`` (the default) leaves it as the driver has it. Note
        that Linux itself raises DTR and RTS when a port is opened: to keep a
        board wired for auto-reset (Arduino, ESP32) running across opens,
        also open with ``hupcl=False`` once, which stops the drop at close
        that causes the reset at the next open.
      hupcl: whether closing the port drops DTR and RTS (termios
        ``HUPCL``). ``False`` keeps such a board from resetting on close;
        ``None`` leaves the setting as it is.
      low_latency: set (True) or clear (False) the Linux driver's
        ``ASYNC_LOW_LATENCY`` flag (for FTDI adapters: a 1 ms latency timer
        instead of 16 ms). Drivers without it (ptys, some adapters) raise
        :exc:`~trioserial.UnsupportedOperationError`, and the port is not
        opened: ``None`` (the default) does not touch it.
      rs485: kernel RS-485 mode (:class:`RS485Settings`, ``TIOCSRS485``);
        drivers without it raise :exc:`~trioserial.UnsupportedOperationError`.

    Raises:
      TypeError, ValueError: a setting or *port* is malformed (the message
        names the value and what was expected).
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
    return AsyncSerial(await open_core_trio(check_url(port), settings, options))
