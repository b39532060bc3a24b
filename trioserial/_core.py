"""The sync port core interface (layer 1).

A *core* owns one transport (a tty fd, a socket, ...) and offers
non-blocking attempts: :meth:`PortCore.read_nowait` and
:meth:`PortCore.write_nowait` either make progress at once or raise
:exc:`BlockingIOError`, and :meth:`PortCore.fileno` is what a front end
waits on. Cores never import trio or anyio, never sleep and never block, so
both front ends (:mod:`trioserial` on Trio, :mod:`trioserial.anyio`) drive
the same code and the whole layer is tested without an event loop.
"""

from __future__ import annotations

import abc
import errno
import socket
import weakref
from collections.abc import Callable
from typing import Final

from ._errors import SerialPortError, UnsupportedOperationError
from ._options import OpenOptions
from ._settings import ModemLines, SerialSettings

__all__ = [
    "DEFAULT_RECEIVE_SIZE",
    "PortCore",
    "SocketCore",
    "byte_view",
    "check_max_bytes",
    "port_error",
]

#: What ``receive_some()`` asks for when the caller does not say.
DEFAULT_RECEIVE_SIZE: Final = 65536


# Argument checks shared by both front ends (they never import each other).


def check_max_bytes(max_bytes: int | None) -> int:
    if max_bytes is None:
        return DEFAULT_RECEIVE_SIZE
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise TypeError(f"max_bytes must be an int >= 1 or None, got {max_bytes!r}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be an int >= 1 or None, got {max_bytes!r}")
    return max_bytes


def byte_view(data: object) -> memoryview:
    """A flat byte view of *data*, or a :exc:`TypeError` that names what was passed."""
    if isinstance(data, str):
        raise TypeError(
            "data must be bytes-like (bytes, bytearray, memoryview), got str: encode it"
        )
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"data must be bytes-like (bytes, bytearray, memoryview), got {type(data).__name__}"
        ) from None
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def port_error(core: PortCore, exc: OSError) -> SerialPortError:
    """*exc*, from a control call on *core*, as the :exc:`~trioserial.SerialPortError` documented.

    Cores raise :exc:`~trioserial.SerialPortError` for what they expect
    (``TtyPort`` maps every ioctl's errno), and that is returned as it is.
    Anything else (a ``socket://`` peer's reset met by ``recv`` while
    discarding input, say) becomes one that names the port and keeps the
    errno, with *exc* as its ``__cause__``. "Closed" errors are the front
    end's to report first (:meth:`PortCore.is_closed_error`).
    """
    if isinstance(exc, SerialPortError):
        return exc
    error = SerialPortError(
        f"serial port {core.name!r} failed: {exc.strerror or exc}", port=core.name, errno=exc.errno
    )
    error.__cause__ = exc
    return error


class PortCore(abc.ABC):
    """One open transport, driven by non-blocking attempts.

    Subclasses set :attr:`name` (the port as the user named it),
    :attr:`transport` (``"tty"``, ``"socket"``, ...) and :attr:`settings`.
    Once :meth:`close` has run, :meth:`fileno` returns ``-1`` and every
    attempt fails with ``EBADF``, so a stale handle can never touch an fd
    number the OS has since handed to someone else.
    """

    name: str
    transport: str
    settings: SerialSettings
    #: Whether output the OS accepted still goes out after :meth:`close`
    #: (a TCP socket's does; a tty's close discards it). A graceful close
    #: need not wait for such a transport's queue.
    close_keeps_output: bool = False
    #: Whether this core reads input past what :meth:`read_nowait` asked for
    #: and holds it (then it calls :meth:`input_buffered`). Front ends make a
    #: receive's wait interruptible for such a core only: the cancel scope
    #: that takes costs more than the rest of a wait (about 9 µs on Trio).
    buffers_input: bool = False

    @abc.abstractmethod
    def fileno(self) -> int:
        """The fd to wait on, or ``-1`` once closed."""

    @property
    def closed(self) -> bool:
        return self.fileno() == -1

    def input_pending(self) -> bool | None:
        """Whether input waits to be read, or ``None`` if this core cannot tell cheaply.

        For a front end that must yield before a read (anyio on asyncio):
        ``False`` lets it skip that yield and go straight to the wait. Never
        raises, never consumes input, leaves no trace (``spy://`` stays silent).
        """
        return None

    @abc.abstractmethod
    def read_nowait(self, max_bytes: int) -> bytes:
        """Read 1 to *max_bytes* bytes now.

        Returns ``b""`` only at end of stream (the device hung up), and
        always then: a hangup is never reported as an error. Raises
        :exc:`BlockingIOError` when there is nothing to read yet, and
        :exc:`OSError` otherwise (see :meth:`is_closed_error`).
        """

    @abc.abstractmethod
    def write_nowait(self, data: memoryview) -> int:
        """Write a prefix of *data* now and return its length (at least 1).

        Raises :exc:`BlockingIOError` when nothing can be written yet.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the transport. Idempotent; never blocks for long.

        The front end calls its library's ``notify_closing(fd)`` first, so
        tasks waiting on the fd wake with a "closed" error.
        """

    def on_input_buffered(self, callback: Callable[[], None]) -> None:
        """Have *callback* (a bound method, kept by weak reference) called when
        this core reads input from its fd outside :meth:`read_nowait`.

        A core that must read past data to find a control answer (RFC 2217
        carries modem-state notifications in the data stream) holds that data
        itself, and the fd is no longer readable: a receiver waiting for it
        must be woken to look again. Cores that never do this never call it,
        and keep no callback (the weak reference costs a few µs per open).
        """
        if self.buffers_input:
            self._input_buffered = weakref.WeakMethod(callback)

    def input_buffered(self) -> None:
        """Tell the front end that input is waiting in this core, not in the fd."""
        ref = getattr(self, "_input_buffered", None)
        callback = ref() if ref is not None else None
        if callback is not None:
            callback()

    def is_closed_error(self, exc: OSError) -> bool:
        """Whether *exc* means "closed by us" (as opposed to "broken")."""
        return self.closed or exc.errno == errno.EBADF

    def apply_settings(self, settings: SerialSettings) -> None:
        """Apply *settings* (already validated) to the line, keeping buffered data."""
        raise self.unsupported("changing settings")

    def settings_pending(self) -> float | None:
        """After :meth:`apply_settings`: ``None`` once the change is in force,
        else the seconds left to wait for the transport's answer (call again
        within them: the answer arrives on :meth:`fileno`, and any call that
        reads it, this one or a receive, hands it to the core).

        Local transports apply settings at once: this default says so. A
        remote one (RFC 2217) raises a rejection here, with :attr:`settings`
        already saying what is in force.
        """
        return None

    # ------------------------------------------------------------ control
    # Non-blocking primitives of the control surface. The defaults say the
    # transport cannot do it; cores that can override them. Anything that
    # waits (drain, timed break, modem-line changes) is built by each front
    # end on top of these with its own library's sleeps and waits.

    def modem_lines(self) -> ModemLines:
        """Read all modem lines now (``TIOCMGET`` on a tty)."""
        raise self.unsupported("modem lines")

    def set_dtr(self, value: bool) -> None:
        """Drive DTR."""
        raise self.unsupported("modem lines")

    def set_rts(self, value: bool) -> None:
        """Drive RTS."""
        raise self.unsupported("modem lines")

    def set_break(self, value: bool) -> None:
        """Start (True) or end (False) a break condition."""
        raise self.unsupported("break")

    @property
    def break_condition(self) -> bool:
        """Whether a break is being held (as set by :meth:`set_break`)."""
        raise self.unsupported("break")

    def modem_change_counts(self) -> tuple[int, int, int, int] | None:
        """Transitions seen so far on CTS, DSR, RI and CD (``TIOCGICOUNT``).

        ``None`` when the transport keeps no counters: then only levels can be
        compared, and a pulse between two polls goes unseen.
        """
        return None

    def transmitter_empty(self) -> bool | None:
        """Whether the UART's own FIFO and shift register are empty.

        ``None`` when the transport cannot tell (then :meth:`out_waiting`
        reaching 0 is all that is known).
        """
        return None

    def apply_open_options(self, options: OpenOptions) -> None:
        """Apply open-time *options* right after opening (blocking is fine here).

        This default drives DTR/RTS through :meth:`set_dtr`/:meth:`set_rts`
        and refuses the tty-only options.
        """
        for name in ("hupcl", "low_latency", "rs485"):
            if getattr(options, name) is not None:
                raise self.unsupported(name)
        if options.dtr is not None:
            self.set_dtr(options.dtr)
        if options.rts is not None:
            self.set_rts(options.rts)

    def in_waiting(self) -> int:
        """Bytes received and not read yet."""
        raise self.unsupported("in_waiting")

    def out_waiting(self) -> int:
        """Bytes written and not yet transmitted."""
        raise self.unsupported("out_waiting")

    def reset_input_buffer(self) -> None:
        """Discard input received and not read yet."""
        raise self.unsupported("discarding input")

    def reset_output_buffer(self) -> None:
        """Discard output written and not yet transmitted."""
        raise self.unsupported("discarding output")

    def unsupported(self, what: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"{self.name!r} ({self.transport}) does not support {what}", port=self.name
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fileno()}"
        return f"<{type(self).__name__} {self.name!r} {state}>"


class SocketCore(PortCore):
    """A core that owns one socket (``loop://``, ``socket://``, ``rfc2217://``).

    Owning, closing, closing on garbage collection and the "closed" check
    live here once; a subclass calls :meth:`_own` in its constructor and
    drops what it buffered in :meth:`_forget`.
    """

    _sock: socket.socket | None = None
    _fd: int = -1

    def _own(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._fd = -1
        self._forget()
        if sock is not None:
            sock.close()

    def _forget(self) -> None:
        """Drop data buffered in user space (called by :meth:`close`)."""

    def __del__(self) -> None:
        # GC closes a forgotten port (quietly: no ResourceWarning from the socket).
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def _socket(self) -> socket.socket:
        """The socket, or ``EBADF`` once closed (reported as "closed" by the front ends)."""
        if self._sock is None:
            raise OSError(errno.EBADF, f"{self.transport} port is closed")
        return self._sock
