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

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn, final

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import ByteStream

from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._open import check_url, open_core
from ._settings import ModemLines, Parity, SerialSettings, SerialStatistics, StopBits
from ._util import ConflictDetector

__all__ = ["AnyioSerialStream", "SerialAttribute", "open_serial_port"]

#: What ``send`` accepts.
Buffer = bytes | bytearray | memoryview

_INPUT_LINES: Final = ("cts", "dsr", "ri", "cd")
#: How often :meth:`AnyioSerialStream.wait_modem_change` looks at the lines.
MODEM_POLL_INTERVAL: Final = 0.01


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
class AnyioSerialStream(ByteStream):
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

    def __init__(self, core: PortCore) -> None:
        """Wrap an open *core*. Use :func:`open_serial_port` instead."""
        self._core = core
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", anyio.BusyResourceError
        )
        self._receive_conflict = ConflictDetector(
            "another task is using this serial port for receive", anyio.BusyResourceError
        )
        self._eof_sent = False
        self._break = False
        self._bytes_sent = 0
        self._bytes_received = 0
        self._waiting_receive = 0
        self._waiting_send = 0

    # ---------------------------------------------------------------- errors

    def _raise_closed(self) -> NoReturn:
        raise anyio.ClosedResourceError("serial port was already closed")

    def _raise_for(self, exc: OSError) -> NoReturn:
        if self._core.is_closed_error(exc):
            raise anyio.ClosedResourceError("serial port was closed") from None
        raise anyio.BrokenResourceError(
            f"serial port {self._core.name!r} failed: {exc.strerror or exc}"
        ) from exc

    def _live_core(self) -> PortCore:
        if self._core.closed:
            self._raise_closed()
        return self._core

    # ------------------------------------------------------------------ send

    async def send(self, item: Buffer) -> None:
        """Send all of *item*, waiting for room as needed.

        Always a checkpoint. Bytes go to the OS's output buffer; use
        :meth:`wait_drained` to wait until they have left the wire.

        Cancellation: a prefix of *item* was handed to the OS (possibly none,
        possibly all) and the rest was not; ``statistics().bytes_sent`` grew
        by exactly that prefix's length.

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
                            await self._wait(anyio.wait_writable, "_waiting_send")
                            continue
                        except OSError as exc:
                            self._raise_for(exc)
                    sent += n
                    self._bytes_sent += n
            if not waited:
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
            await anyio.lowlevel.checkpoint_if_cancelled()
            core = self._core
            try:
                data = core.read_nowait(n)
            except BlockingIOError:
                pass
            except OSError as exc:
                self._raise_for(exc)
            else:
                # A schedule point that no cancellation can interrupt: the data
                # is ours now, and must reach the caller.
                await anyio.lowlevel.cancel_shielded_checkpoint()
                return self._received(data)
            while True:
                await self._wait(anyio.wait_readable, "_waiting_receive")
                # No checkpoint from here to the return: nothing read can be lost.
                try:
                    data = core.read_nowait(n)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._raise_for(exc)
                return self._received(data)

    def _received(self, data: bytes) -> bytes:
        if not data:
            raise anyio.EndOfStream(f"serial port {self._core.name!r} hung up")
        self._bytes_received += len(data)
        return data

    async def _wait(self, wait: Callable[[int], Any], counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        try:
            await wait(self._core.fileno())
        except anyio.ClosedResourceError:
            raise anyio.ClosedResourceError("serial port was closed") from None
        finally:
            setattr(self, counter, getattr(self, counter) - 1)

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Close the port now. Idempotent. Must run in the event loop's thread.

        Tasks blocked in this port's methods wake with
        :exc:`anyio.ClosedResourceError`. Output still queued in the OS is
        discarded (so closing never hangs for the kernel's closing wait):
        await :meth:`wait_drained` first when those bytes matter.
        """
        fd = self._core.fileno()
        if fd == -1:
            return
        # Notify, close: no checkpoint in between, so no task can start a wait
        # on a closed (and maybe reused) fd number.
        anyio.notify_closing(fd)
        self._core.close()

    async def aclose(self) -> None:
        """Close the port (see :meth:`close`), then checkpoint.

        Idempotent; always a checkpoint. Cancellation: the port is closed
        anyway (the close happens before the checkpoint).
        """
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

    @property
    def closed(self) -> bool:
        """Whether the port has been closed."""
        return self._core.closed

    @property
    def port(self) -> str:
        """The port as it was named when opened (a device path or URL)."""
        return self._core.name

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

    # ---------------------------------------------------------- control (sync)
    # Each of these is one non-blocking ioctl on the live port. A transport
    # without the feature (a pty has no modem lines) raises
    # trioserial.UnsupportedOperationError; a closed port raises
    # anyio.ClosedResourceError.

    @property
    def cts(self) -> bool:
        """Clear To Send (input line)."""
        return self._live_core().modem_lines().cts

    @property
    def dsr(self) -> bool:
        """Data Set Ready (input line)."""
        return self._live_core().modem_lines().dsr

    @property
    def ri(self) -> bool:
        """Ring Indicator (input line)."""
        return self._live_core().modem_lines().ri

    @property
    def cd(self) -> bool:
        """Carrier Detect (input line)."""
        return self._live_core().modem_lines().cd

    @property
    def dtr(self) -> bool:
        """Data Terminal Ready (output line): read back, or set."""
        return self._live_core().modem_lines().dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._live_core().set_dtr(_check_bool("dtr", value))

    @property
    def rts(self) -> bool:
        """Request To Send (output line): read back, or set."""
        return self._live_core().modem_lines().rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._live_core().set_rts(_check_bool("rts", value))

    @property
    def break_condition(self) -> bool:
        """Whether this port is sending a break (the line held at space): read, or set."""
        return self._break

    @break_condition.setter
    def break_condition(self, value: bool) -> None:
        self._live_core().set_break(_check_bool("break_condition", value))
        self._break = value

    @property
    def in_waiting(self) -> int:
        """Bytes received by the OS and not read yet."""
        return self._live_core().in_waiting()

    @property
    def out_waiting(self) -> int:
        """Bytes written and not yet transmitted."""
        return self._live_core().out_waiting()

    def reset_input_buffer(self) -> None:
        """Discard input received and not read yet."""
        self._live_core().reset_input_buffer()

    def reset_output_buffer(self) -> None:
        """Discard output written and not yet transmitted."""
        self._live_core().reset_output_buffer()

    # --------------------------------------------------------- control (async)

    async def reconfigure(
        self,
        *,
        baudrate: int | None = None,
        bytesize: int | None = None,
        parity: Parity | str | None = None,
        stopbits: StopBits | float | None = None,
        xonxoff: bool | None = None,
        rtscts: bool | None = None,
        dsrdtr: bool | None = None,
    ) -> None:
        """Change line settings now; ``None`` keeps a setting as it is.

        Buffered input and output are kept, and DTR/RTS are not touched. The
        new settings are validated before anything touches the device, so a
        rejected value leaves the old settings in force. Always a checkpoint;
        a cancellation is delivered after the change, which stays applied.

        Raises:
          TypeError, ValueError: a setting is malformed (the message names it).
          anyio.ClosedResourceError: the port was closed.
          trioserial.SerialPortError: the device refused the settings.
        """
        given = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
            "xonxoff": xonxoff,
            "rtscts": rtscts,
            "dsrdtr": dsrdtr,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        core = self._live_core()
        new = core.settings.replace(**changes)
        if new != core.settings:
            core.apply_settings(new)
        await anyio.lowlevel.checkpoint()

    async def wait_drained(self) -> None:
        """Wait until all output has left the wire (``tcdrain`` without blocking the loop).

        Looks at the OS output queue (``out_waiting``) and sleeps for about
        the time the bytes still queued need at the current baud rate, until
        the queue is empty. Always a checkpoint; a cancellation leaves
        nothing behind (the bytes go on draining).

        Raises:
          anyio.ClosedResourceError: the port was closed.
          trioserial.UnsupportedOperationError: the transport cannot tell.
        """
        await anyio.lowlevel.checkpoint()
        while True:
            core = self._live_core()
            queued = core.out_waiting()
            if queued == 0:
                return
            await anyio.sleep(min(max(queued * _char_time(core.settings), 0.001), 0.5))

    async def send_break(self, duration: float = 0.25) -> None:
        """Send a break: hold the line at space for *duration* seconds, then release it.

        Cancellation ends the break at once: the line is never left in break.

        Raises:
          TypeError, ValueError: *duration* is not a number >= 0.
          anyio.ClosedResourceError: the port was closed.
          trioserial.UnsupportedOperationError: the transport cannot send a break.
        """
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise TypeError(f"duration must be a number of seconds >= 0, got {duration!r}")
        if not (duration >= 0 and math.isfinite(duration)):
            raise ValueError(f"duration must be a number of seconds >= 0, got {duration!r}")
        self.break_condition = True
        try:
            await anyio.sleep(duration)
        finally:
            if not self._core.closed:
                self.break_condition = False

    async def wait_modem_change(self, *lines: str) -> ModemLines:
        """Wait until one of the input *lines* changes, and return the new state.

        *lines* are among ``"cts"``, ``"dsr"``, ``"ri"``, ``"cd"``; none means
        all four. The lines are read every 10 ms (``TIOCMIWAIT`` would need a
        worker thread that a close cannot interrupt), so a pulse shorter than
        that can be missed. Always a checkpoint; a cancellation leaves nothing
        behind.

        Raises:
          ValueError: a name is not one of the four input lines.
          anyio.ClosedResourceError: the port was closed.
          trioserial.UnsupportedOperationError: the transport has no modem lines.
        """
        for name in lines:
            if name not in _INPUT_LINES:
                raise ValueError(f"modem line must be one of {_INPUT_LINES}, got {name!r}")
        watched = lines or _INPUT_LINES
        before = self._live_core().modem_lines()
        while True:
            await anyio.sleep(MODEM_POLL_INTERVAL)
            now = self._live_core().modem_lines()
            if any(getattr(now, name) != getattr(before, name) for name in watched):
                return now

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._core.settings.framing
        return f"<trioserial.anyio.AnyioSerialStream {self._core.name!r} {state}>"


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _char_time(settings: SerialSettings) -> float:
    """Seconds one character takes on the wire."""
    parity_bits = 0 if settings.parity is Parity.NONE else 1
    bits = 1 + settings.bytesize + parity_bits + float(settings.stopbits.value)
    return bits / settings.baudrate


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
) -> AnyioSerialStream:
    """Open a serial port and return it as an :class:`AnyioSerialStream`.

    The anyio twin of :func:`trioserial.open_serial_port`, with the same
    arguments and errors. Settings are validated before anything is opened;
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
    core = await anyio.to_thread.run_sync(open_core, url, settings)
    return AnyioSerialStream(core)
