"""ZMODEM, sans-IO (layer 0): a :class:`Sender` and a :class:`Receiver`.

The shape is ``_transfer_base.py``'s (``receive_data``/``tick``/
``data_to_send``/``next_event``); the frames are ``_zmodem_wire.py``'s. The
rules chosen where the protocol leaves room, and why, are in
``docs/zmodem.rst``; in short:

- the sender streams windows of :data:`WINDOW` bytes in 1024-byte ZCRCG
  subpackets, the last of each window ZCRCQ (answered by a ZACK), and keeps
  at most :data:`IN_FLIGHT` windows unacknowledged: the line never idles, a
  ZRPOS is read at the end of the window being sent, and a progress report
  means acknowledged data. A
  receiver that gives a buffer size in its ZRINIT gets ZCRCW windows of at
  most that size, one at a time;
- the receiver answers corruption, a header at the wrong position and
  silence with ZRPOS at the length it holds; the sender goes back there
  (:class:`~._transfer_base.Seek`) and the file is never restarted;
- resume is the receiver's ZRPOS at the length it holds; the sender asks
  for it with ZCRESUM; a receiver with the complete file answers ZSKIP.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final

from . import _zmodem_wire as w
from ._transfer_base import (
    FileInfo,
    MachineBase,
    NextFile,
    ReadData,
    Seek,
    TransferError,
    TransferProgress,
    TransferRetriesError,
    safe_name,
)
from ._xymodem import encode_header, parse_header

__all__ = ["Sender", "encode_file_info", "parse_file_info"]

#: Payload bytes per data subpacket (what lrzsz's ``sz`` sends without ``-8``).
BLOCK: Final = 1024
#: Bytes streamed between two ZCRCQ (acknowledged) subpackets.
WINDOW: Final = 32768
#: Windows sent before the first of them must be acknowledged.
IN_FLIGHT: Final = 4
#: Resends of one header (ZRQINIT, ZFILE, ZEOF, ZFIN) before giving up.
MAX_RETRIES: Final = 10
#: Errors (ZRPOS sent or received) at one position before giving up (lrzsz: 20).
MAX_ERRORS: Final = 20


def encode_file_info(info: FileInfo) -> bytes:
    """ZFILE's data: ``name NUL size mtime mode NUL`` (the YMODEM header's fields)."""
    return encode_header(info) + b"\x00"


def parse_file_info(data: bytes) -> FileInfo:
    """ZFILE's data from the wire. Raises :exc:`~._transfer_base.UnsafeFileNameError`."""
    info = parse_header(data)
    if info is None:
        safe_name(b"")  # raises: an empty name
        raise AssertionError  # pragma: no cover
    return info


class _Machine(MachineBase):
    """:class:`~._transfer_base.MachineBase` with ZMODEM's frame reader and clock-less answers.

    ZMODEM's driver answers (a file offered, data supplied) arrive without the
    time; the timers restart at the next call that knows it (:meth:`_rearm`),
    so a long file read never counts as the peer's silence.
    """

    CANCEL_SIGN = "CAN"
    # A streaming sender fills the line: read it in big pieces (one machine
    # call, one Payload and one progress report per read, not per 4 KiB).
    RECEIVE_SIZE = 65536
    # Five CANs abort even inside a subpacket: CANs padding a cut-off send (up to
    # a whole window of them) would only be left in the line for the next session.
    PAD_CUT_SEND = False

    def __init__(self, *, timeout: float, retry: float | None) -> None:
        super().__init__(timeout=timeout, retry=retry)
        self._reader = w.Reader(seen=self._seen)
        self._fresh = False
        self._fresh_nudge = False

    @property
    def deadline(self) -> float | None:
        """When to call :meth:`tick` if nothing arrives before; ``None`` when not waiting."""
        if self._fresh and not self.finished:
            return float("-inf")  # at once: to learn the time
        return super().deadline

    def _rearm(self, *, nudge: bool) -> None:
        """Restart the timers at the next call that knows the time.

        For answers and outputs given without a clock (a send that took long
        must not count as the peer's silence).
        """
        self._fresh = True
        self._fresh_nudge = nudge

    def _wake(self, now: float) -> bool:
        if not self._fresh:
            return False
        self._fresh = False
        self._alive(now)
        self._nudge = now + self.retry if self._fresh_nudge else None
        return True

    def _resend(self, now: float, what: str) -> None:
        self._tries += 1
        if self._tries > MAX_RETRIES:
            raise self._fail(
                TransferRetriesError(f"no answer to {what} after {MAX_RETRIES} tries", block=0)
            )
        self._nudge = now + self.retry


# ------------------------------------------------------------------ sender


class _S(enum.Enum):
    INIT = "the receiver to start (ZRINIT)"
    FILE = "the next file"  # NextFile asked
    OFFERED = "the receiver to accept the file (ZRPOS or ZSKIP)"
    STREAM = "the receiver to acknowledge data (ZACK)"
    EOF = "the receiver to confirm the end of the file (ZRINIT)"
    FIN = "the receiver to end the session (ZFIN)"


class Sender(_Machine):
    """The sending side. Call :meth:`start`, then follow the events.

    Events: :class:`NextFile` (answer :meth:`start_file`), :class:`Seek`
    (position the file), :class:`ReadData` (answer :meth:`supply`),
    :class:`TransferProgress`, :class:`Done`.

    Args:
      timeout: seconds the receiver may stay silent before the transfer fails.
      retry: seconds between resends of an unanswered header.
      resume: ask the receiver to resume files it holds part of (ZCRESUM).
      window: bytes between acknowledgements (see the module docstring).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: float | None = None,
        resume: bool = False,
        window: int = WINDOW,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry)
        if window < BLOCK or window % BLOCK:
            raise ValueError(f"window must be a multiple of {BLOCK} bytes, got {window!r}")
        self.resume = resume
        self.window = window
        self.crc32 = False
        self.control = False
        self._in_flight = IN_FLIGHT
        self._state = _S.INIT
        self._info: FileInfo | None = None
        self._offer = b""
        self._sent = 0  # the file position the next data has
        self._acked = 0  # the highest position the receiver acknowledged
        self._pending: deque[int] = deque()  # window ends sent, not yet acknowledged
        self._reading = False  # a ReadData is out
        self._last_rpos = -1
        self._errors = 0

    def start(self, now: float) -> None:
        self._alive(now)
        self._out += w.hex_header(w.ZRQINIT, w.flags())
        self._nudge = now + self.retry

    # ------------------------------------------------------ the driver's answers

    def start_file(self, info: FileInfo | None) -> None:
        """Answer :class:`NextFile`: the next file, or ``None`` to end the session."""
        assert self._state is _S.FILE, self._state
        self._tries = 0
        self._rearm(nudge=True)
        if info is None:
            self._state = _S.FIN
            self._out += w.hex_header(w.ZFIN, w.flags())
            return
        self._info = info
        self._last_rpos = -1
        self._errors = 0
        conversion = w.ZCRESUM if self.resume else w.ZCBIN
        self._offer = w.binary_header(
            w.ZFILE, w.flags(conversion), crc32=self.crc32, control=self.control
        ) + w.subpacket(encode_file_info(info), w.ZCRCW, crc32=self.crc32, control=self.control)
        self._out += self._offer
        self._state = _S.OFFERED

    def supply(self, data: bytes) -> None:
        """Answer :class:`ReadData`: the file's next bytes; fewer than asked means its end."""
        assert self._reading, self._state
        self._reading = False
        end_of_file = len(data) < self.window
        window_end = w.ZCRCW if self._in_flight == 1 else w.ZCRCQ
        last = w.ZCRCE if end_of_file else window_end
        self._out += w.subpackets(data, last, size=BLOCK, crc32=self.crc32, control=self.control)
        self._sent += len(data)
        self._rearm(nudge=end_of_file)
        if end_of_file:
            self._send_eof()
            return
        self._pending.append(self._sent)
        self._more()

    def _more(self) -> None:
        """Ask for the next window if fewer than the allowed number are unacknowledged."""
        if self._state is _S.STREAM and not self._reading and len(self._pending) < self._in_flight:
            if self._in_flight == 1:  # after ZCRCW, data needs a new header
                self._out += self._data_header(self._sent)
            self._reading = True
            self._events.append(ReadData(self.window))

    def _send_eof(self) -> None:
        self._state = _S.EOF
        self._tries = 0
        self._out += self._eof_header()

    def _eof_header(self) -> bytes:
        return w.binary_header(
            w.ZEOF, w.position(self._sent), crc32=self.crc32, control=self.control
        )

    def _data_header(self, pos: int) -> bytes:
        return w.binary_header(w.ZDATA, w.position(pos), crc32=self.crc32, control=self.control)

    # -------------------------------------------------------------- the wire

    def receive_data(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        self._wake(now)
        for item in self._reader.feed(data):
            if isinstance(item, w.Cancelled):
                raise self._cancelled("receiver", self._where())
            if isinstance(item, w.Header):
                self._header(item, now)
                if self.finished:
                    return

    def _where(self) -> str:
        if self._info is None or self._state in (_S.INIT, _S.FIN):
            return "between files"
        return f"at byte {self._acked} of {self._info.name!r}"

    def _header(self, header: w.Header, now: float) -> None:
        frame, state = header.frame, self._state
        if frame == w.ZABORT or frame == w.ZFERR:
            what = "aborted the session" if frame == w.ZABORT else "could not write the file"
            raise self._fail(TransferError(f"the receiver {what} ({self._where()})"))
        if frame == w.ZRINIT:
            self._alive(now)
            if state is _S.INIT:
                self._capabilities(header)
                self._next_file()
            # In OFFERED: an answer to our ZRQINIT that crossed our ZFILE (both sides
            # start at once); a lost ZFILE is sent again by the timer.
            elif state is _S.EOF:
                assert self._info is not None
                self._events.append(TransferProgress(self._info.name, self._sent, self._sent))
                self._next_file()
            elif state is _S.FIN:
                self._out += w.hex_header(w.ZFIN, w.flags())
        elif frame == w.ZCHALLENGE:
            self._alive(now)
            self._out += w.hex_header(w.ZACK, header.arg)
        elif frame == w.ZNAK and state is _S.OFFERED:
            self._alive(now)
            self._resend(now, "ZFILE")
            self._out += self._offer
        elif frame == w.ZSKIP and state in (_S.OFFERED, _S.STREAM, _S.EOF):
            self._alive(now)
            self._next_file()
        elif frame == w.ZRPOS and state in (_S.OFFERED, _S.STREAM, _S.EOF):
            self._alive(now)
            self._restart(header.position, now)
        elif frame == w.ZACK and state is _S.STREAM:
            self._alive(now)
            self._acknowledged(header.position, now)
        elif frame == w.ZFIN and state is _S.FIN:
            self._alive(now)
            self._out += b"OO"
            self._finish()
        elif frame == w.ZCRC and state is _S.OFFERED:
            raise self._fail(
                TransferError("the receiver asked for the file's CRC (ZCRC), which is not offered")
            )

    def _capabilities(self, header: w.Header) -> None:
        self.crc32 = bool(header.f0 & w.CANFC32)
        self.control = bool(header.f0 & w.ESCCTL)
        buffer = header.arg[0] | header.arg[1] << 8
        if buffer:
            self.window = max(BLOCK, min(self.window, buffer // BLOCK * BLOCK))
            self._in_flight = 1

    def _next_file(self) -> None:
        self._drop_reads()
        self._state = _S.FILE
        self._nudge = None
        self._events.append(NextFile())

    def _drop_reads(self) -> None:
        """Forget queued file reads: the position they were for is no longer wanted."""
        self._reading = False
        self._pending.clear()
        self._events = deque(e for e in self._events if not isinstance(e, (ReadData, Seek)))

    def _restart(self, pos: int, now: float) -> None:
        info = self._info
        assert info is not None
        if info.size is not None and pos > info.size:
            raise self._fail(
                TransferError(
                    f"the receiver asked for byte {pos} of {info.name!r}, "
                    f"which has {info.size} bytes"
                )
            )
        if pos == self._last_rpos:
            self._errors += 1
            if self._errors > MAX_ERRORS:
                raise self._fail(
                    TransferRetriesError(
                        f"the receiver asked for byte {pos} of {info.name!r} {MAX_ERRORS} times",
                        block=pos,
                    )
                )
        else:
            self._errors = 0
        first = self._state is _S.OFFERED
        if self._state is _S.STREAM and self._in_flight > 1:
            # Our last subpacket said "more data follows": end the frame first, or
            # the receiver reads the new header as data (lrzsz does the same).
            self._out += w.subpacket(b"", w.ZCRCE, crc32=self.crc32, control=self.control)
        self._last_rpos = pos
        self._drop_reads()
        self._state = _S.STREAM
        self._nudge = None
        self._acked = pos
        if first or pos != self._sent:
            self._events.append(Seek(pos))
        if first:
            self._events.append(TransferProgress(info.name, pos, info.size))
        self._sent = pos
        self._out += self._data_header(pos)
        self._reading = True
        self._events.append(ReadData(self.window))

    def _acknowledged(self, pos: int, now: float) -> None:
        if pos <= self._acked or pos > self._sent:
            return  # from before a ZRPOS, or nonsense
        if self._pending and pos < self._pending[0]:
            # Short of the window's end: data vanished without a CRC error.
            self._restart(pos, now)
            return
        while self._pending and self._pending[0] <= pos:
            self._pending.popleft()
        self._acked = pos
        assert self._info is not None
        self._events.append(TransferProgress(self._info.name, pos, self._info.size))
        self._more()

    def tick(self, now: float) -> None:
        if self.finished or self._state is _S.FILE or self._reading or self._wake(now):
            return
        if now >= self._silence:
            if self._state is _S.FIN:
                self._out += b"OO"  # every file is acknowledged: the session is over
                self._finish()
                return
            raise self._timed_out(self._state.value)
        if self._nudge is not None and now >= self._nudge:
            if self._state is _S.INIT:
                self._resend(now, "ZRQINIT")
                self._out += w.hex_header(w.ZRQINIT, w.flags())
            elif self._state is _S.OFFERED:
                self._resend(now, "ZFILE")
                self._out += self._offer
            elif self._state is _S.EOF:
                self._resend(now, "ZEOF")
                self._out += self._eof_header()
            elif self._state is _S.FIN:
                self._resend(now, "ZFIN")
                self._out += w.hex_header(w.ZFIN, w.flags())

    @property
    def deadline(self) -> float | None:
        if self._state is _S.FILE or self._reading:
            return None
        return super().deadline
