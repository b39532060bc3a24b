"""One control surface for both front ends, written once (layer 2, no event loop imported).

Everything off the data path is the same on Trio and on anyio: port metadata,
counters, the sync control members (one non-blocking call on the core each),
the control coroutines (:meth:`PortSurface.reconfigure`,
:meth:`~PortSurface.wait_drained`, :meth:`~PortSurface.send_break`,
:meth:`~PortSurface.wait_modem_change`, :meth:`~PortSurface.sleep_while_open`)
and closing. They are written here once, against a small table of loop
primitives (:class:`LoopPrimitives`) that each front end fills with its own
library's, the way anyio's ``AsyncBackend`` separates its backends. The data
path (send, receive, the fd waits) stays written out in each front end, where
the two libraries really differ and every schedule point is measured.

No trio, no anyio imports (``tests/test_layers.py`` checks it): the front ends
never import each other, and both import this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import ClassVar, NoReturn, Protocol

import attrs

from ._control import (
    ModemChangeWatch,
    check_input_lines,
    check_seconds,
    close_drain_limit,
    drain_delay,
)
from ._core import PortCore, port_error
from ._netloop import Loop, wait_settings_applied
from ._settings import ModemLines, SerialSettings, SerialStatistics, SettingsChanges, Unpack
from ._util import ConflictDetector, check_bool

__all__ = ["LoopPrimitives", "PortSurface", "Scope"]


class Scope(Protocol):
    """What a :class:`trio.CancelScope` and an :class:`anyio.CancelScope` both tell."""

    @property
    def cancelled_caught(self) -> bool: ...


class Event(Protocol):
    """What :class:`trio.Event` and :class:`anyio.Event` both offer."""

    def set(self) -> None: ...

    async def wait(self) -> None: ...


@attrs.frozen(kw_only=True)
class LoopPrimitives:
    """One event-loop library's primitives: the one table per library.

    ``_trio_loop.TRIO_PRIMITIVES`` and ``_anyio_loop.ANYIO_PRIMITIVES`` fill
    it. Each front end sets it as its class's ``_loop``; nothing else in
    :class:`PortSurface` knows which library runs. The Expect loop reads its
    clock, deadline scope, checkpoint and busy error from it too
    (:class:`~trioserial._expect_base.ExpectPrimitives` adds only what is
    about streams), and the network opens get :attr:`network`, kept a table
    of its own because blocking callers have one as well (``BLOCKING``).
    """

    #: The "closed" error: the port was closed before or during a call.
    closed_error: type[Exception]
    #: The "busy" error: another task is in a call that allows one task at a time.
    busy_error: type[Exception]
    #: The "broken" error: the OS reported an error on the data path.
    broken_error: type[Exception]
    checkpoint: Callable[[], Awaitable[None]]
    checkpoint_if_cancelled: Callable[[], Awaitable[None]]
    cancel_shielded_checkpoint: Callable[[], Awaitable[None]]
    #: Tell the loop that an fd is about to be closed (wakes its waiters).
    notify_closing: Callable[[int], None]
    move_on_after: Callable[[float], AbstractContextManager[object]]
    #: A cancel scope with a deadline on :attr:`current_time`'s clock.
    move_on_at: Callable[[float], AbstractContextManager[Scope]]
    #: The library's clock (raises :exc:`RuntimeError` outside its loop).
    current_time: Callable[[], float]
    event: Callable[[], Event]
    #: A cancel scope that shields its body (settings a server must answer).
    shielded: Callable[[], AbstractContextManager[object]]
    #: The same library's primitives for network waits (:mod:`._netloop`).
    network: Loop
    #: Run a blocking open in a worker thread to its end, whatever
    #: cancellation comes meanwhile; if one came, close the core it opened
    #: and raise the cancellation (see ``_open_async``).
    open_in_thread: Callable[[Callable[[], PortCore]], Awaitable[PortCore]]


class PortSurface:
    """Everything a front end offers besides moving bytes, written once.

    A front end subclasses it, sets :attr:`_loop`, calls ``__init__`` with its
    core, and writes the data path itself. Errors are the front end's own
    library's classes, so one class never mixes trio and anyio exceptions.
    """

    #: The front end's loop primitives and error classes.
    _loop: ClassVar[LoopPrimitives]
    #: How ``repr()`` names the class (its public path).
    _public_name: ClassVar[str]

    def __init__(self, core: PortCore) -> None:
        """Wrap an open *core*. Use the front end's ``open_serial_port`` instead."""
        self._core = core
        busy = self._loop.busy_error
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", busy
        )
        self._receive_conflict = ConflictDetector(
            "another task is using this serial port for receive", busy
        )
        self._break_conflict = ConflictDetector(
            "another task is sending a break on this serial port", busy
        )
        # Set by close(): wakes the control coroutines that sleep (drain,
        # break, polls). Made on first use, so ports that never sleep stay
        # small and a stream can be built outside an event loop.
        self._closing: Event | None = None
        self._bytes_sent = 0
        self._bytes_received = 0
        self._waiting_receive = 0
        self._waiting_send = 0

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
        """The kind of transport carrying the bytes.

        ``"tty"`` (local devices and ptys, also behind ``alt://``, ``hwgrep://``
        and ``spy://``), ``"loop"``, ``"socket"`` or ``"rfc2217"``.
        """
        return self._core.transport

    @property
    def settings(self) -> SerialSettings:
        """The line settings in force."""
        return self._core.settings

    def fileno(self) -> int:
        """The fd being driven, or ``-1`` once closed. Do not read or write it."""
        return self._core.fileno()

    # --------------------------------------------------------------- errors

    def _raise_closed(self) -> NoReturn:
        raise self._loop.closed_error("serial port was already closed")

    def _raise_for(self, exc: OSError) -> NoReturn:
        """*exc* from the data path as the front end's closed or broken error."""
        if self._core.is_closed_error(exc):
            raise self._loop.closed_error("serial port was closed") from None
        raise self._loop.broken_error(
            f"serial port {self._core.name!r} failed: {exc.strerror or exc}"
        ) from exc

    def _live_core(self) -> PortCore:
        if self._core.closed:
            self._raise_closed()
        return self._core

    @contextlib.contextmanager
    def _controlling(self) -> Iterator[PortCore]:
        """The live core for one control call, its :exc:`OSError` translated.

        Closed before or during the call: the front end's "closed" error;
        any other :exc:`OSError`: the :exc:`~trioserial.SerialPortError` the
        core raised, or one made from it (:func:`port_error`).
        """
        core = self._live_core()
        try:
            yield core
        except OSError as exc:
            self._control_error(exc)

    def _control_error(self, exc: OSError) -> NoReturn:
        if self._core.is_closed_error(exc):
            raise self._loop.closed_error("serial port was closed") from None
        raise port_error(self._core, exc)

    # ---------------------------------------------------------- control, sync
    # Each is one non-blocking ioctl on the live fd. On a port without modem
    # lines (a pty, socket://) they raise UnsupportedOperationError.

    def modem_lines(self) -> ModemLines:
        """Read all six modem lines at once (one ``TIOCMGET``).

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
          trioserial.UnsupportedOperationError: the port has no modem lines
            (a pty, a ``socket://`` port, some adapters).
          trioserial.SerialPortError: the OS reported another error (such as
            ``EIO`` after an unplug); the errno is kept.
        """
        with self._controlling() as core:
            return core.modem_lines()

    @property
    def cts(self) -> bool:
        """Clear To Send, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().cts

    @property
    def dsr(self) -> bool:
        """Data Set Ready, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().dsr

    @property
    def ri(self) -> bool:
        """Ring Indicator, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().ri

    @property
    def cd(self) -> bool:
        """Carrier Detect, an input line. Raises as :meth:`modem_lines`."""
        return self.modem_lines().cd

    @property
    def dtr(self) -> bool:
        """Data Terminal Ready (an output line). Read back from the driver, or set it.

        Setting it is one ``TIOCMBIS``/``TIOCMBIC`` that touches no other line
        (boards wired like an ESP32 or an Arduino reset on a DTR edge).
        Raises as :meth:`modem_lines`.
        """
        return self.modem_lines().dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        value = check_bool("dtr", value)
        with self._controlling() as core:
            core.set_dtr(value)

    @property
    def rts(self) -> bool:
        """Request To Send (an output line). Read back from the driver, or set it.

        With ``rtscts=True`` the kernel drives RTS itself for flow control.
        Raises as :meth:`modem_lines`.
        """
        return self.modem_lines().rts

    @rts.setter
    def rts(self, value: bool) -> None:
        value = check_bool("rts", value)
        with self._controlling() as core:
            core.set_rts(value)

    @property
    def break_condition(self) -> bool:
        """Whether the line is held in a break (``TIOCSBRK``), or start/end one.

        Reading it reports what this port last set (the kernel cannot be
        asked). For a timed break use ``send_break()``. A pty accepts a break
        and does nothing with it.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
          trioserial.UnsupportedOperationError: the port cannot send a break.
        """
        with self._controlling() as core:
            return core.break_condition

    @break_condition.setter
    def break_condition(self, value: bool) -> None:
        value = check_bool("break_condition", value)
        with self._controlling() as core:
            core.set_break(value)

    @property
    def in_waiting(self) -> int:
        """Bytes received by the OS and not read yet (``TIOCINQ``)."""
        with self._controlling() as core:
            return core.in_waiting()

    @property
    def out_waiting(self) -> int:
        """Bytes written and not yet on the wire, as far as the driver knows (``TIOCOUTQ``).

        Many USB adapters keep bytes in their own FIFO that the driver does
        not count, and a pty always says 0.
        """
        with self._controlling() as core:
            return core.out_waiting()

    def reset_input_buffer(self) -> None:
        """Discard input the OS has received and nobody has read (``TCIFLUSH``).

        A task blocked receiving keeps waiting for new bytes.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
        """
        with self._controlling() as core:
            core.reset_input_buffer()

    def reset_output_buffer(self) -> None:
        """Discard output written and not yet transmitted (``TCOFLUSH``).

        Bytes already counted in ``statistics().bytes_sent``
        may be among them: they never reach the wire.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
        """
        with self._controlling() as core:
            core.reset_output_buffer()

    def statistics(self) -> SerialStatistics:
        """Counters: bytes sent and received, tasks waiting."""
        return SerialStatistics(
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            tasks_waiting_receive=self._waiting_receive,
            tasks_waiting_send=self._waiting_send,
        )

    # --------------------------------------------------------- control, async
    # They poll non-blocking ioctls between close-aware sleeps instead of
    # blocking in the kernel; docs/design.rst ("Polling, not blocking in the
    # kernel") says why, once.

    async def sleep_while_open(self, seconds: float) -> None:
        """Sleep for *seconds*, or until the port is closed, whichever comes first.

        For code that paces its own use of the port (the driver's ``cps``, a
        bootloader's timing): closing the port, from another task or with
        :meth:`close`, ends the sleep at once. Always a checkpoint.

        Args:
          seconds: how long to sleep.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed before or during the sleep (the front end's own class).

        Cancellation:
          Leaves nothing behind.
        """
        if self._closing is None:
            self._closing = self._loop.event()
        if self._core.closed:  # closed before the event existed: close() could not set it
            self._closing.set()
        with self._loop.move_on_after(seconds):
            await self._closing.wait()
        if self._core.closed:
            raise self._loop.closed_error("serial port was closed")

    async def reconfigure(self, **changes: Unpack[SettingsChanges]) -> None:
        """Change line settings on the open port, keeping everything else.

        Validated before the device is touched; only what changed is applied,
        in one non-blocking ``tcsetattr(TCSANOW)`` (or ``TCSETS2`` for a
        non-standard rate). Buffered data is kept (no flush, no drain), DTR
        and RTS are not touched, VMIN=1/VTIME=0 stay in force, and what the
        driver left out is put back and reported: :doc:`control` lists the
        promises. Always a checkpoint.

        Args:
          **changes: any of ``baudrate``, ``bytesize``, ``parity``,
            ``stopbits``, ``xonxoff``, ``rtscts``, ``dsrdtr``, ``exclusive``
            (see :class:`~trioserial.SerialSettings`).

        Raises:
          TypeError, ValueError: an unknown setting or a bad value (the
            message names it and what is allowed); nothing was changed.
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed (the front end's own class).
          trioserial.PortBusyError: ``exclusive=True`` but another handle
            holds the lock; nothing was changed.
          trioserial.UnsupportedOperationError: the driver left out part of
            the change (the old settings were put back), or an RFC 2217
            server answered another value (``settings`` then says what it
            answered; the call waits for the answer, at most the URL's
            ``timeout``).
          trioserial.SerialPortError: the driver rejected the settings; the
            old ones stay in force.

        Cancellation:
          Atomic: delivered before the change starts (nothing changed) or
          after it completed (all of it in force), never halfway.
        """
        new = self._core.settings.replace(**changes)
        with self._controlling() as core:
            await self._loop.checkpoint_if_cancelled()
            if new != core.settings:
                core.apply_settings(new)
                # A remote port answers later (bounded by its ?timeout).
                with self._loop.shielded():
                    await wait_settings_applied(core, self._loop.network)
        await self._loop.cancel_shielded_checkpoint()

    async def wait_drained(self) -> None:
        """Wait until the output queued so far has been transmitted.

        The replacement for ``tcdrain`` (pyserial's ``flush()``): it reads the
        driver's queue (``TIOCOUTQ``) and sleeps for as long as that many
        characters take at the current rate (1 ms to 100 ms, then it looks
        again); then, on a UART that reports its transmitter
        (``TIOCSERGETLSR``), it waits for the FIFO and shift register to empty
        too. It cannot see bytes inside a USB adapter's own FIFO; a pty has
        no queue, so there it returns at once; with flow control holding the
        line it waits as long as the peer does. Always a checkpoint.

        Raises:
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed, before or during the wait (the front end's own class).
          trioserial.UnsupportedOperationError: the transport cannot report
            its output queue.

        Cancellation:
          Nothing is discarded or changed; the output keeps draining.
        """
        await self._loop.checkpoint_if_cancelled()
        while True:
            with self._controlling() as core:
                delay = drain_delay(core)
            if delay is None:
                break
            await self.sleep_while_open(delay)
        await self._loop.cancel_shielded_checkpoint()

    async def send_break(self, duration: float = 0.25) -> None:
        """Hold the line in a break for *duration* seconds.

        Like ``tcsendbreak``, it first waits for queued output to be
        transmitted (:meth:`wait_drained`), so bytes sent before the break go
        out before it; then it starts the break, sleeps, and ends it, with no
        thread and no blocking call. On a pty the break is accepted and does
        nothing. Always a checkpoint.

        Args:
          duration: seconds, a finite number > 0 (Linux's own
            ``tcsendbreak`` break is 0.25 s).

        Raises:
          TypeError, ValueError: *duration* is not a positive finite number.
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed, before or during the break (closing a UART ends a break);
            the front end's own class.
          trio.BusyResourceError or anyio.BusyResourceError: another task is
            sending a break.
          trioserial.UnsupportedOperationError: the port cannot send a break.

        Cancellation:
          **The break is always ended**: a cancelled call never leaves the
          line held low. A cancellation while draining sends no break at all.
        """
        duration = check_seconds("duration", duration)
        with self._break_conflict:
            await self.wait_drained()
            with self._controlling() as core:
                core.set_break(True)
            try:
                await self.sleep_while_open(duration)
            finally:
                if not core.closed:
                    with self._controlling():
                        core.set_break(False)

    async def wait_modem_change(self, *lines: str, poll_interval: float = 0.01) -> ModemLines:
        """Wait until one of the input lines *lines* changes; return all lines then.

        A change is a level that differs from the level when the call
        started or, where the driver counts transitions (``TIOCGICOUNT``:
        8250-type UARTs and many USB adapters), any transition at all, so a
        pulse shorter than *poll_interval* is still seen (the result then
        shows the level after it). Without counters, a pulse that starts and
        ends between two polls is missed. The lines are polled (``TIOCMGET``,
        one or two non-blocking ioctls) every *poll_interval* seconds; why
        not ``TIOCMIWAIT``: :ref:`why-polling`. Always a checkpoint.

        Args:
          *lines: the input lines to watch, among ``"cts"``, ``"dsr"``,
            ``"ri"``, ``"cd"``; none means all four.
          poll_interval: seconds between polls, a finite number > 0.

        Returns:
          The :class:`~trioserial.ModemLines` read when the change was seen.

        Raises:
          TypeError, ValueError: a name is not an input line, or
            *poll_interval* is not a positive finite number.
          trio.ClosedResourceError or anyio.ClosedResourceError: the port was
            closed, before or during the wait (the front end's own class).
          trioserial.UnsupportedOperationError: the port has no modem lines.

        Cancellation:
          Nothing is changed or consumed; a later call starts from the
          levels at that time.
        """
        watched = check_input_lines(lines)
        poll_interval = check_seconds("poll_interval", poll_interval)
        await self._loop.checkpoint_if_cancelled()
        with self._controlling() as core:
            watch = ModemChangeWatch(core, watched)
            while True:
                await self.sleep_while_open(poll_interval)
                if (changed := watch.poll()) is not None:
                    return changed

    # ------------------------------------------------------------------ close

    def close(self) -> None:
        """Close the port now, abortively. Idempotent. Must run in the event loop's thread.

        Tasks blocked in this port's methods wake with the front end's
        ``ClosedResourceError``. A tty's output still queued in the OS is
        discarded, so closing never waits out the kernel's ``closing_wait``
        (up to 30 s on a UART whose flow control holds the line); use
        :meth:`aclose` to let queued output go out first. (A network port's
        queue is the kernel's socket buffer, which goes on sending after the
        close.)
        """
        fd = self._core.fileno()
        if fd == -1:
            return
        # Notify, close: no checkpoint in between, so no task can start a
        # wait on a closed (and maybe reused) fd number.
        self._loop.notify_closing(fd)
        self._core.close()
        if self._closing is not None:
            self._closing.set()

    async def aclose(self) -> None:
        """Close the port gracefully: let queued output go out, then close.

        Output already handed to the OS is transmitted first (as
        :meth:`wait_drained`), for at most twice what the queue takes at the
        current rate and at least a second; what is still queued then (flow
        control holding the line) is discarded. If another task is blocked
        sending, the transport cannot report its queue, or it is a network
        port (whose socket goes on sending after the close), the port closes
        at once (:meth:`close`). There is nothing to tell the device: a
        serial line has no end-of-file. Idempotent; always a checkpoint.

        Cancellation:
          The port is closed anyway, abortively: output not yet transmitted
          is discarded (so ``aclose_forcefully`` never waits).
        """
        loop = self._loop
        try:
            limit = None
            if self._core.fileno() != -1 and self._waiting_send == 0:
                with contextlib.suppress(OSError):
                    limit = close_drain_limit(self._core)
            if limit is not None:
                with (
                    loop.move_on_after(limit),
                    contextlib.suppress(OSError, loop.closed_error, loop.broken_error),
                ):
                    await self.wait_drained()
        finally:
            self.close()
        await loop.checkpoint()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._core.settings.framing
        return f"<{self._public_name} {self._core.name!r} {state}>"
