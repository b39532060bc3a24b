"""The anyio front end (layer 2): one serial stream for the asyncio and trio backends.

:func:`open_serial_port` returns an :class:`AnyioSerialStream`, an
:class:`anyio.abc.ByteStream` driving the same sync port core as
:class:`trioserial.AsyncSerial`, with anyio's own waits
(:func:`anyio.wait_readable`, :func:`anyio.wait_writable`,
:func:`anyio.notify_closing`): the syscall first, a wait only on ``EAGAIN``,
no threads on the data path on either backend. The behaviour is
``AsyncSerial``'s, with anyio's exception classes. Only the data path is
written here; the control surface is ``_surface.PortSurface``, run on anyio's
primitives (``_anyio_loop.ANYIO_PRIMITIVES``).

This module never imports :mod:`trio` or ``trioserial._stream``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, final

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio
from anyio.abc import ByteStream

from ._anyio_loop import ANYIO_PRIMITIVES
from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._lazy import lazy_attributes as _lazy_attributes
from ._open import open_request
from ._open_async import open_core_async
from ._options import RS485Settings
from ._settings import Parity, SerialSettings, StopBits
from ._surface import PortSurface

if TYPE_CHECKING:
    from ._anyio_expect import Expect as Expect
    from ._anyio_expect import ExpectEOFError as ExpectEOFError
    from ._anyio_expect import ExpectTimeoutError as ExpectTimeoutError
    from ._ports_anyio import list_ports as list_ports
    from ._ports_anyio import wait_for_port as wait_for_port
    from ._ports_anyio import watch_ports as watch_ports

__all__ = [
    "AnyioSerialStream",
    "Expect",
    "ExpectEOFError",
    "ExpectTimeoutError",
    "SerialAttribute",
    "list_ports",
    "open_serial_port",
    "wait_for_port",
    "watch_ports",
]

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

    The control surface (modem lines, break, :meth:`reconfigure`,
    :meth:`wait_drained`, closing) is :class:`trioserial.AsyncSerial`'s, the
    same code; where its docstrings name two exception classes, this class
    raises the ``anyio`` one.
    """

    _loop = ANYIO_PRIMITIVES
    _public_name = "trioserial.anyio.AnyioSerialStream"

    def __init__(self, core: PortCore) -> None:
        """Wrap an open *core*. Use :func:`open_serial_port` instead."""
        super().__init__(core)
        self._eof_sent = False
        # The scope of a receive's wait for the fd, cancelled (ending the wait,
        # not the receive) when the core has read input into its own buffer.
        self._receive_wait: anyio.CancelScope | None = None
        core.on_input_buffered(self._look_again)
        self._native_cancellation: bool | None = None  # see _yield_first

    # ------------------------------------------------------------------ send

    async def send(self, item: Buffer) -> None:
        """Send all of *item*, waiting for room as needed.

        The bytes go to the OS's output buffer (:meth:`wait_drained` waits
        until they have left the wire). Always a checkpoint.

        Args:
          item: the bytes to send.

        Raises:
          anyio.ClosedResourceError: the port was closed (before or during the
            call, also for ``b""``), or :meth:`send_eof` was called.
          anyio.BrokenResourceError: the OS reported an error, such as ``EIO``
            when the device hung up; the :exc:`OSError` is the ``__cause__``.
          anyio.BusyResourceError: another task is sending.
          TypeError: *item* is not bytes-like.

        Cancellation:
          A prefix of *item* was handed to the OS (possibly none, never all
          of a non-empty *item*: a send that wrote everything returns) and the
          rest was not; ``statistics().bytes_sent`` grew by exactly its
          length. This holds for asyncio's own cancellation
          (``task.cancel()``) too, so a caller that resends on cancellation
          never sends a byte twice.
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
        :exc:`anyio.ClosedResourceError`, and it does not close the port
        (what Jumpstarter's ``copy_stream`` needs when a client leaves).
        Idempotent; always a checkpoint.

        Raises:
          anyio.ClosedResourceError: the port was closed.
          anyio.BusyResourceError: another task is sending.

        Cancellation:
          Leaves nothing behind.
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

        Args:
          max_bytes: the most to return; default 65536.

        Raises:
          anyio.EndOfStream: the device hung up (USB unplugged, pty master
            closed).
          anyio.ClosedResourceError: the port was closed, before or during the call.
          anyio.BrokenResourceError: the OS reported an error; the
            :exc:`OSError` is the ``__cause__``.
          anyio.BusyResourceError: another task is receiving.
          TypeError, ValueError: *max_bytes* is not an int >= 1.

        Cancellation:
          **A cancelled receive has consumed nothing**, on asyncio's own
          cancellation too: the read happens after the last point where a
          cancellation can be delivered, so every byte is returned by exactly
          one call.
        """
        with self._receive_conflict:
            n = check_max_bytes(max_bytes)
            if self._core.closed:
                self._raise_closed()
            yield_first = self._yield_first()
            core = self._core
            if yield_first:
                if core.input_pending() is False:
                    # The wait below is then the one schedule point, and a
                    # cancellation delivered there has read nothing: the
                    # yield before the read is not needed (it is a whole
                    # loop iteration on asyncio; TIOCINQ is one ioctl).
                    return await self._receive_after_wait(n)
                await anyio.lowlevel.checkpoint()
            else:
                await anyio.lowlevel.checkpoint_if_cancelled()
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
            return await self._receive_after_wait(n)

    async def _receive_after_wait(self, n: int) -> bytes:
        core = self._core
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

    The anyio twin of :func:`trioserial.open_serial_port`: the same
    arguments, errors and cancellation contract (see there). On asyncio, a
    native cancellation such as ``task.cancel()`` is covered too: by the
    time it reaches the caller, no fd is left open and no lock held.
    """
    request = open_request(port, locals())  # every argument above, by name
    return AnyioSerialStream(await open_core_async(*request, ANYIO_PRIMITIVES))


#: Public name -> the private module that defines it, imported on first use
#: (PEP 562, as in ``trioserial``); the names above, for type checkers.
_LAZY = {
    "Expect": "_anyio_expect",
    "ExpectEOFError": "_anyio_expect",
    "ExpectTimeoutError": "_anyio_expect",
    "list_ports": "_ports_anyio",
    "wait_for_port": "_ports_anyio",
    "watch_ports": "_ports_anyio",
}


__getattr__, __dir__ = _lazy_attributes(globals(), _LAZY)
