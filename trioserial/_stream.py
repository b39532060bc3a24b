"""``AsyncSerial``: the Trio front end (layer 2).

Drives a :class:`~trioserial._core.PortCore` with ``trio.lowlevel``: try the
syscall first, wait only on ``EAGAIN``. Only the data path is written here;
the control surface is ``_surface.PortSurface``, run on Trio's primitives
(``_trio_loop.TRIO_PRIMITIVES``). Never imports :mod:`anyio`.
"""

from __future__ import annotations

import os
from typing import NoReturn, final

import trio

from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._open import open_request
from ._open_async import open_core_async
from ._options import RS485Settings
from ._settings import Parity, StopBits
from ._surface import PortSurface
from ._trio_loop import TRIO_PRIMITIVES

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

    The control surface (modem lines, break, :meth:`reconfigure`,
    :meth:`wait_drained`, closing) is shared with
    :class:`trioserial.anyio.AnyioSerialStream`; where its docstrings name
    two exception classes, this class raises the ``trio`` one.
    """

    _loop = TRIO_PRIMITIVES
    _public_name = "trioserial.AsyncSerial"

    def __init__(self, core: PortCore) -> None:
        """Wrap an open *core*. Use :func:`open_serial_port` instead."""
        super().__init__(core)
        self._eof_sent = False
        # The scope of a receive's wait for the fd, cancelled (ending the wait,
        # not the receive) when the core has read input into its own buffer.
        self._receive_wait: trio.CancelScope | None = None
        core.on_input_buffered(self._look_again)

    # ------------------------------------------------------------------ send

    async def send_all(self, data: Buffer) -> None:
        """Send all of *data*, waiting for room as needed.

        The bytes go to the OS's output buffer (:meth:`wait_drained` waits
        until they have left the wire). Always a checkpoint.

        Args:
          data: the bytes to send.

        Raises:
          trio.ClosedResourceError: the port was closed (before or during the
            call, also for ``b""``), or :meth:`send_eof` was called.
          trio.BrokenResourceError: the OS reported an error, such as ``EIO``
            when the device hung up; the :exc:`OSError` is the ``__cause__``.
          trio.BusyResourceError: another task is sending.
          TypeError: *data* is not bytes-like.

        Cancellation:
          A prefix of *data* was handed to the OS (possibly none, possibly
          all) and the rest was not; ``statistics().bytes_sent`` grew by
          exactly its length, so a caller can resume without losing or
          duplicating a byte.
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

        Raises:
          trio.ClosedResourceError: the port was closed.
          trio.BusyResourceError: another task is sending.

        Cancellation:
          Leaves nothing behind.
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

        A serial line has no end-of-file, so **the device is not told**: this
        is a local half-close that makes later sends raise
        :exc:`trio.ClosedResourceError`, and it does not close the port (what
        Jumpstarter's ``copy_stream`` needs when a client leaves). Idempotent;
        always a checkpoint.

        Raises:
          trio.ClosedResourceError: the port was closed.
          trio.BusyResourceError: another task is sending.

        Cancellation:
          Leaves nothing behind.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            if self._core.closed:
                self._raise_closed()
            self._eof_sent = True

    # --------------------------------------------------------------- receive

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return between 1 and *max_bytes* bytes as soon as any arrive.

        Always a checkpoint.

        Args:
          max_bytes: the most to return; default 65536.

        Returns:
          The bytes, or ``b""`` only at end of stream: the device hung up (USB
          unplugged, pty master closed).

        Raises:
          trio.ClosedResourceError: the port was closed, before or during the call.
          trio.BrokenResourceError: the OS reported an error; the
            :exc:`OSError` is the ``__cause__``.
          trio.BusyResourceError: another task is receiving.
          TypeError, ValueError: *max_bytes* is not an int >= 1.

        Cancellation:
          **A cancelled receive has consumed nothing**: the read happens
          after the last point where a cancellation can be delivered, so
          every byte is returned by exactly one call.
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
    closes its socket. A pty slave under ``/dev`` opens on the event loop,
    in one step (its open never sleeps). Any other open (which can block in
    the driver) runs in a worker thread, so the event loop never stalls.
    That cannot be interrupted halfway: a cancellation that arrives
    meanwhile waits for it to finish, closes the port again, and is then
    raised. Either way, by the time a cancellation reaches the caller, no fd
    is left open and no lock held. Which opens can sleep: the "Opening"
    section of the performance page.

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
    request = open_request(port, locals())  # every argument above, by name
    return AsyncSerial(await open_core_async(*request, TRIO_PRIMITIVES))
