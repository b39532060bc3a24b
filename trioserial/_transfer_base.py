"""What every file-transfer protocol shares (layer 0): progress, errors, events, names.

The protocol machines (``_xymodem.py``, ``_zmodem.py``) are sans-IO in
``_telnet.py``'s shape: feed them what the peer sent with
``receive_data(data, now)``, tell them the time with ``tick(now)`` when
their ``deadline`` passes, send what ``data_to_send()`` returns, and take
events out with ``next_event()`` until it returns :data:`NEED_DATA`. They
ask the driver (``_transfer.py``) for file data with events and are
answered with a method call; they never read a clock or a file themselves.
"""

from __future__ import annotations

import os
from collections import deque
from typing import ClassVar, Final

import attrs

__all__ = [
    "CANCEL_SEQUENCE",
    "NEED_DATA",
    "Done",
    "Event",
    "FileEnd",
    "FileInfo",
    "FileOffer",
    "FileStart",
    "MachineBase",
    "NextFile",
    "Payload",
    "ReadData",
    "Seek",
    "TransferCancelledError",
    "TransferError",
    "TransferFileError",
    "TransferProgress",
    "TransferRetriesError",
    "TransferTimeoutError",
    "UnsafeFileNameError",
    "safe_name",
    "shown",
]

CAN: Final = 0x18
BS: Final = 0x08
#: What a cancelling side sends: 8 CAN then 8 backspaces, as lrzsz does. Two
#: CANs abort X/YMODEM, five abort ZMODEM; the backspaces erase the CANs from
#: a shell's input line should the peer already be back at its prompt.
CANCEL_SEQUENCE: Final = bytes([CAN] * 8 + [BS] * 8)
#: The most bytes of non-protocol input kept to explain a failure.
MAX_SEEN: Final = 64
#: The longest file name accepted from the wire, in bytes: Linux NAME_MAX (255)
#: less the ``.part`` suffix the file is received under.
MAX_NAME: Final = 255 - len(".part")


# ----------------------------------------------------------------- values


@attrs.frozen
class TransferProgress:
    """How far a transfer has got, given to the ``progress`` callback.

    Attributes:
      name: the file's name (for XMODEM, which sends no name: the path or
        ``""``).
      done: payload bytes acknowledged so far (sent and ACKed, or received,
        checked, handed to the file and ACKed).
      total: the file's size, or ``None`` when it is not known (XMODEM
        receive without ``size=``).
    """

    name: str
    done: int
    total: int | None


@attrs.frozen
class FileInfo:
    """What a YMODEM header block (or a ZMODEM ZFILE) says about a file."""

    name: str
    size: int | None = None
    mtime: int | None = None
    mode: int | None = None


# ----------------------------------------------------------------- errors


class TransferError(Exception):
    """A file transfer failed. The message says what happened to which file or block."""


class TransferTimeoutError(TransferError):
    """The peer said nothing useful for ``timeout`` seconds.

    Attributes:
      seen: the last bytes (at most 64) that arrived and were not protocol,
        such as a bootloader's message; ``b""`` if the line was silent.
    """

    def __init__(self, message: str, *, seen: bytes = b"") -> None:
        if seen:
            message = f"{message}; saw {seen!r} instead"
        super().__init__(message)
        self.seen = seen


class TransferRetriesError(TransferError):
    """One block failed too many times (NAKed, corrupted or lost).

    Attributes:
      block: the number of the block (1 is the first data block; 0 is a
        YMODEM header).
    """

    def __init__(self, message: str, *, block: int) -> None:
        super().__init__(message)
        self.block = block


class TransferCancelledError(TransferError):
    """The peer cancelled the transfer (it sent CAN CAN)."""


class TransferFileError(TransferError):
    """A file could not be read or written; the :exc:`OSError` is the ``__cause__``."""


class UnsafeFileNameError(TransferError):
    """A file name from the wire would write outside the target directory.

    Attributes:
      name: the name as it arrived.
    """

    def __init__(self, message: str, *, name: bytes) -> None:
        super().__init__(message)
        self.name = name


def shown(data: bytes | bytearray) -> bytes:
    """The tail of *data* that an error message quotes."""
    return bytes(data[-MAX_SEEN:])


def safe_name(raw: bytes) -> str:
    """The file name to write for *raw*, a name from the wire; or :exc:`UnsafeFileNameError`.

    Rejected: empty names, names containing NUL, absolute paths, and any
    ``..`` component. A relative path is cut to its last component
    (``sub/x`` writes ``x``), as lrzsz's ``rb`` does without ``-p``.
    """

    def bad(why: str) -> UnsafeFileNameError:
        return UnsafeFileNameError(f"refused file name {raw[:80]!r}: {why}", name=raw)

    if not raw:
        raise bad("it is empty")
    if b"\x00" in raw:
        raise bad("it contains a NUL byte")
    if raw.startswith(b"/"):
        raise bad("it is an absolute path")
    parts = raw.split(b"/")
    if b".." in parts:
        raise bad("it leads out of the target directory ('..')")
    base = parts[-1]
    if base in (b"", b"."):
        raise bad("it names a directory, not a file")
    if len(base) > MAX_NAME:
        raise bad(f"it is longer than {MAX_NAME} bytes")
    return os.fsdecode(base)


# ----------------------------------------------------------------- events


@attrs.frozen
class ReadData:
    """Sender: the machine needs up to ``size`` more bytes of the current file.

    Answer with ``supply(data)``; fewer bytes than asked (``b""`` included)
    means the file ended.
    """

    size: int


@attrs.frozen
class NextFile:
    """Sender (batch): the receiver is ready for another file.

    Answer with ``start_file(info)``, or ``start_file(None)`` to end the batch.
    """


@attrs.frozen
class FileStart:
    """Receiver: a file begins (``name`` already checked by :func:`safe_name`)."""

    info: FileInfo


@attrs.frozen
class Payload:
    """Receiver: checked file data to write, in order, before the ACK goes out."""

    data: bytes


@attrs.frozen
class FileEnd:
    """Receiver: the current file is complete."""


@attrs.frozen
class Done:
    """The transfer is over; nothing more will be sent or expected."""


@attrs.frozen
class Seek:
    """Sender (ZMODEM): the next :class:`ReadData` reads from byte ``offset`` of the file.

    Sent when the receiver asks for a position (resume, or error recovery).
    """

    offset: int


@attrs.frozen
class FileOffer:
    """Receiver (ZMODEM): a file is offered (``name`` already checked by :func:`safe_name`).

    Answer with ``accept(offset)`` (receive from byte *offset*: 0, or the
    length already held when resuming) or ``skip()``. ``resume`` is whether
    the sender asked to resume (ZCRESUM).
    """

    info: FileInfo
    resume: bool = False


Event = (
    ReadData | NextFile | FileStart | Payload | FileEnd | TransferProgress | Done | Seek | FileOffer
)


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by ``next_event()`` when the machine waits for the peer or the clock.
NEED_DATA: Final = _NeedData()


# ---------------------------------------------------------------- machines


class MachineBase:
    """What every protocol machine shares: outgoing bytes, events, the peer's silence, failing."""

    #: How the peer's cancel looks, for the error message (ZMODEM: five CAN).
    CANCEL_SIGN: ClassVar[str] = "CAN CAN"
    #: The most bytes the driver reads for one :meth:`receive_data` call: the
    #: bound on the work of one call (a streaming protocol wants more).
    RECEIVE_SIZE: ClassVar[int] = 4096
    #: A send cut off by a cancellation is completed with CANs before the cancel
    #: sequence: an X/YMODEM receiver counts bytes into a block, and must read the
    #: CAN CAN as a new frame. (ZMODEM's receiver sees five CANs anywhere.)
    PAD_CUT_SEND: ClassVar[bool] = True

    def __init__(self, *, timeout: float, retry: float | None, quiet: float | None = None) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = timeout
        #: Seconds between protocol retries (start characters, NAKs, EOTs).
        self.retry = retry if retry is not None else min(3.0, timeout / 3)
        #: Seconds of silence after which a partly received block is dropped.
        self.quiet = quiet if quiet is not None else min(1.0, self.retry)
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._seen = bytearray()
        self._silence = 0.0
        self._nudge: float | None = None
        #: Resends of what is being sent now (the protocol says when to give up).
        self._tries = 0
        self.finished = False

    @property
    def deadline(self) -> float | None:
        """When to call :meth:`tick` if nothing arrives before; ``None`` when not waiting."""
        if self.finished:
            return None
        return self._silence if self._nudge is None else min(self._silence, self._nudge)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | _NeedData:
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def abort(self) -> bytes:
        """Stop here; returns the cancel sequence to send to the peer."""
        self.finished = True
        self._out.clear()
        return CANCEL_SEQUENCE

    def connection_lost(self) -> None:
        """The stream ended (the device hung up): the transfer cannot go on."""
        raise self._fail(TransferError("the port hung up during the transfer"), tell_peer=False)

    def _fail(self, error: TransferError, *, tell_peer: bool = True) -> TransferError:
        self.finished = True
        self._out.clear()
        self._events.clear()
        if tell_peer:
            self._out += CANCEL_SEQUENCE
        return error

    def _cancelled(self, who: str, where: str) -> TransferError:
        """The peer (*who*) cancelled, *where* in the transfer: fail without answering."""
        return self._fail(
            TransferCancelledError(
                f"the {who} cancelled the transfer ({self.CANCEL_SIGN}) {where}"
            ),
            tell_peer=False,
        )

    def _finish(self) -> None:
        """The transfer ended as the protocol says: nothing more to send or wait for."""
        self.finished = True
        self._nudge = None
        self._events.append(Done())

    def _junk(self, data: bytes | bytearray) -> None:
        self._seen += data
        del self._seen[:-MAX_SEEN]

    def _alive(self, now: float) -> None:
        self._silence = now + self.timeout
        self._seen.clear()

    def _timed_out(self, what: str) -> TransferError:
        return self._fail(
            TransferTimeoutError(
                f"timed out after {self.timeout:g} s waiting for {what}", seen=shown(self._seen)
            )
        )
