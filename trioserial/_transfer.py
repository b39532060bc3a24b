"""The one transfer driver, for both front ends (layer 2, imports neither trio nor anyio).

``transfer.py`` (Trio) and ``anyio_transfer.py`` each build a
:class:`Primitives` table bound to the caller's stream and call the
functions here, which run a sans-IO machine (``_xymodem.py``) against the
stream and the files. Files are read and written in 256 KiB pieces in a
worker thread, so a slow disk never stalls the event loop and a fast one
costs one thread hop per 256 KiB.
"""

from __future__ import annotations

import io
import math
import os
import pathlib
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import IO, ClassVar, Final, Protocol

from . import _xymodem, _zmodem
from ._transfer_base import (
    NEED_DATA,
    Done,
    Event,
    FileEnd,
    FileInfo,
    FileStart,
    NextFile,
    Payload,
    ReadData,
    Seek,
    TransferCancelledError,
    TransferError,
    TransferFileError,
    TransferProgress,
    _NeedData,
)
from ._transfer_primitives import Primitives

__all__ = [
    "Primitives",
    "ProgressCallback",
    "xmodem_receive",
    "xmodem_send",
    "ymodem_receive",
    "ymodem_send",
]

#: Bytes asked of the stream per receive: bounds the work of one machine call.
RECEIVE_SIZE: Final = 4096
#: File I/O happens in pieces of this size, each in the worker thread.
CHUNK: Final = 262144
#: Suffix of a YMODEM file being received (renamed away once it is complete).
PART_SUFFIX: Final = ".part"

Buffer = bytes | bytearray | memoryview
ProgressCallback = Callable[[TransferProgress], object]
#: What a sender accepts as one file's data.
Data = Buffer | IO[bytes] | str | os.PathLike[str]


class _Machine(Protocol):
    finished: bool
    RECEIVE_SIZE: ClassVar[int]
    PAD_CUT_SEND: ClassVar[bool]

    @property
    def deadline(self) -> float | None: ...
    def start(self, now: float) -> None: ...
    def receive_data(self, data: bytes, now: float) -> None: ...
    def tick(self, now: float) -> None: ...
    def data_to_send(self) -> bytes: ...
    def next_event(self) -> Event | _NeedData: ...
    def abort(self) -> bytes: ...
    def connection_lost(self) -> None: ...


async def _drive(
    loop: Primitives, machine: _Machine, handle: Callable[[Event], Awaitable[None]]
) -> None:
    """Run *machine* against the stream until it is done; on any failure, tell the peer.

    Events are handled before the bytes the machine wants sent go out, so a
    receiver's ACK leaves only after the block's data reached the sink.
    """
    sending = 0
    try:
        machine.start(loop.now())
        while True:
            done = False
            while (event := machine.next_event()) is not NEED_DATA:
                assert not isinstance(event, _NeedData)
                if isinstance(event, Done):
                    done = True
                else:
                    await handle(event)
            if out := machine.data_to_send():
                sending = len(out) if machine.PAD_CUT_SEND else 0
                await loop.send(out)
                sending = 0
            if done:
                return
            deadline = machine.deadline
            timeout = None if deadline is None else max(0.0, deadline - loop.now())
            if deadline == -math.inf and out:
                # The machine only wants the time (ZMODEM, after a window): the send
                # was the checkpoint, and a receive that gives up at once costs a
                # cancel scope per window for nothing.
                data = None
            else:
                data = await loop.receive(machine.RECEIVE_SIZE, timeout)
            now = loop.now()
            if data == b"":
                machine.connection_lost()
            elif data is not None:
                machine.receive_data(data, now)
            machine.tick(now)
    except TransferCancelledError:
        await _swallow_cancel_tail(loop)
        raise
    except TransferError:
        # The machine queued what the peer must hear (CAN, or nothing when it
        # was the peer that cancelled); errors from the handler have not.
        out = machine.data_to_send() if machine.finished else machine.abort()
        if out:
            await loop.cancel_send(out)
        raise
    except BaseException:
        # Cancelled (or the stream failed): tell the peer. An X/YMODEM block cut
        # off mid-send is first completed with CANs, so that the receiver, counting
        # bytes into it, reads the CAN CAN that follows as a new frame.
        await loop.cancel_send(b"\x18" * sending + machine.abort())
        raise


async def _swallow_cancel_tail(loop: Primitives) -> None:
    """After the peer's CAN CAN, read the rest of its cancel sequence (CANs, backspaces).

    Otherwise the next transfer on the port would start by reading CAN CAN.
    Stops at the first read holding anything else (that read is lost), after
    a quiet quarter second, or after a second in all.
    """
    end = loop.now() + 1.0
    while (left := end - loop.now()) > 0:
        data = await loop.receive(RECEIVE_SIZE, min(0.25, left))
        if not data or data.strip(b"\x18\x08"):
            return


# ------------------------------------------------------------------ sources


class _Source:
    """One file to send, read in :data:`CHUNK` pieces off the event loop."""

    def __init__(self, info: FileInfo, data: Buffer | IO[bytes] | pathlib.Path) -> None:
        self.info = info
        self._data = data
        self._file: IO[bytes] | None = None
        self._owned = False
        self._buffer = memoryview(b"")
        self._view: memoryview | None = None
        self._pos = 0
        self._start: int | None = 0  # where the data begins in its file (None: cannot seek)

    async def open(self, loop: Primitives) -> None:
        data = self._data
        if isinstance(data, pathlib.Path):
            self._file = await loop.run_sync(_open_read, data)
            self._owned = True
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self._view = memoryview(data).cast("B")
        else:
            self._file = data
            self._start = await loop.run_sync(_tell, data)

    async def seek(self, loop: Primitives, offset: int) -> None:
        """Read from byte *offset* of the data next (ZMODEM's resume and error recovery)."""
        self._buffer = memoryview(b"")
        if self._view is not None:
            self._pos = offset
        else:
            await loop.run_sync(self._seek, offset)

    def _seek(self, offset: int) -> None:
        assert self._file is not None
        try:
            if self._start is None:
                raise io.UnsupportedOperation("the file object cannot seek")
            self._file.seek(self._start + offset)
        except (OSError, ValueError) as exc:
            why = _reason(exc) if isinstance(exc, OSError) else str(exc)
            raise TransferFileError(
                f"cannot read {self.info.name!r} from byte {offset}: {why}"
            ) from exc

    async def read(self, loop: Primitives, size: int) -> bytes:
        if self._view is not None:
            piece = self._view[self._pos : self._pos + size]
            self._pos += len(piece)
            return bytes(piece)
        if len(self._buffer) >= size:  # the usual case: no joining
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
            return bytes(piece)
        out = bytearray()
        while len(out) < size:
            if not self._buffer:
                chunk = await loop.run_sync(self._read_chunk)
                if not chunk:
                    break
                self._buffer = memoryview(chunk)
            take = self._buffer[: size - len(out)]
            out += take
            self._buffer = self._buffer[len(take) :]
        return bytes(out)

    def _read_chunk(self) -> bytes:
        assert self._file is not None
        try:
            return self._file.read(CHUNK) or b""
        except OSError as exc:
            raise TransferFileError(f"cannot read {self.info.name!r}: {_reason(exc)}") from exc

    async def close(self, loop: Primitives) -> None:
        if self._owned and self._file is not None:
            file, self._file = self._file, None
            await loop.run_sync(file.close, shield=True)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _tell(file: IO[bytes]) -> int | None:
    try:
        return file.tell() if file.seekable() else None
    except (OSError, ValueError, AttributeError):
        return None


def _open_read(path: pathlib.Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise TransferFileError(f"cannot read {str(path)!r}: {_reason(exc)}") from exc


def _size_of(data: Buffer | IO[bytes] | pathlib.Path) -> tuple[int | None, int | None, int | None]:
    """(size, mtime, mode) of a file to send, where they can be known without reading it."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return memoryview(data).nbytes, None, None
    if isinstance(data, pathlib.Path):
        try:
            st = data.stat()
        except OSError as exc:
            raise TransferFileError(f"cannot read {str(data)!r}: {_reason(exc)}") from exc
        return st.st_size, int(st.st_mtime), st.st_mode & 0o7777
    try:
        st = os.fstat(data.fileno())
        if stat.S_ISREG(st.st_mode):
            return st.st_size - data.tell(), None, None
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
    if isinstance(data, io.BytesIO):  # in memory: its size is known without reading
        return len(data.getbuffer()) - data.tell(), None, None
    return None, None, None


def _as_data(value: object, what: str) -> Buffer | IO[bytes] | pathlib.Path:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return value
    if isinstance(value, (str, os.PathLike)):
        return pathlib.Path(value)
    if callable(getattr(value, "read", None)):
        return value  # type: ignore[return-value]
    raise TypeError(
        f"{what} must be bytes-like, a binary file object or a path, got {type(value).__name__}"
    )


def _sources(files: Iterable[object]) -> list[_Source]:
    if isinstance(files, (str, bytes, os.PathLike)):
        raise TypeError(f"files must be a list of paths or (name, data) pairs, got {files!r}")
    found = []
    for item in files:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise TypeError(f"a file must be a path or a (name, data) pair, got {item!r}")
            name, data = item[0], _as_data(item[1], f"the data of {item[0]!r}")
        else:
            path = _as_data(item, "a file")
            if not isinstance(path, pathlib.Path):
                raise TypeError(f"a file must be a path or a (name, data) pair, got {item!r}")
            name, data = path.name, path
        if not name or "\x00" in name or len(name.encode("utf-8", "surrogateescape")) > 900:
            raise ValueError(f"cannot send a file named {name!r} (empty, NUL or too long)")
        size, mtime, mode = _size_of(data)
        if mtime is None:  # lrzsz's rb reads garbage for fields left out: say "now"
            mtime, mode = int(time.time()), 0o100644
        found.append(_Source(FileInfo(name, size, mtime, mode), data))
    return found


# -------------------------------------------------------------------- sinks


class _Sink:
    """Where received data goes: written in :data:`CHUNK` pieces off the event loop."""

    def __init__(self, file: IO[bytes], name: str, *, owned: bool) -> None:
        self.file = file
        self.name = name
        self.owned = owned
        self.written = 0
        self._pending = bytearray()

    async def write(self, loop: Primitives, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= CHUNK:
            await self.flush(loop)

    async def flush(self, loop: Primitives, *, shield: bool = False) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            await loop.run_sync(self._write, data, shield=shield)

    def _write(self, data: bytes) -> None:
        try:
            self.file.write(data)
            self.written += len(data)
            if self.owned:
                self.file.flush()
        except OSError as exc:
            raise TransferFileError(f"cannot write {self.name!r}: {_reason(exc)}") from exc

    async def close(self, loop: Primitives) -> None:
        """Flush, then close if we opened it; shielded, so a cancelled transfer keeps its data."""
        await self.flush(loop, shield=True)
        if self.owned:
            await loop.run_sync(self.file.close, shield=True)


def _open_write(path: pathlib.Path) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as exc:
        raise TransferFileError(f"cannot write {str(path)!r}: {_reason(exc)}") from exc


def _reporter(progress: ProgressCallback | None) -> ProgressCallback:
    if progress is None:
        return lambda _: None
    if not callable(progress):
        raise TypeError(f"progress must be a callable or None, got {progress!r}")
    return progress


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


# ---------------------------------------------------------------- transfers


async def _send(
    loop: Primitives,
    machine: _xymodem.Sender | _zmodem.Sender,
    sources: list[_Source],
    report: ProgressCallback,
) -> int:
    pending = list(sources)
    current: _Source | None = None
    acknowledged = 0

    async def handle(event: Event) -> None:
        nonlocal current, acknowledged
        if isinstance(event, NextFile):
            if current is not None:
                await current.close(loop)
                current = None
            if not pending:
                machine.start_file(None)
                return
            current = pending.pop(0)
            await current.open(loop)
            machine.start_file(current.info)
        elif isinstance(event, Seek):
            assert current is not None
            await current.seek(loop, event.offset)
        elif isinstance(event, ReadData):
            assert current is not None
            machine.supply(await current.read(loop, event.size))
        elif isinstance(event, TransferProgress):
            acknowledged = event.done
            report(event)

    try:
        await _drive(loop, machine, handle)
    finally:
        if current is not None:
            await current.close(loop)
    return acknowledged


async def xmodem_send(
    loop: Primitives,
    data: object,
    *,
    block_size: int,
    progress: ProgressCallback | None,
    timeout: float,
) -> int:
    source = _as_data(data, "data")
    report = _reporter(progress)
    name = str(source) if isinstance(source, pathlib.Path) else ""
    size, _, _ = _size_of(source)
    machine = _xymodem.Sender(batch=False, block_size=block_size, timeout=_check_timeout(timeout))
    return await _send(loop, machine, [_Source(FileInfo(name, size), source)], report)


async def ymodem_send(
    loop: Primitives, files: Iterable[object], *, progress: ProgressCallback | None, timeout: float
) -> None:
    sources = _sources(files)
    report = _reporter(progress)
    machine = _xymodem.Sender(batch=True, timeout=_check_timeout(timeout))
    await _send(loop, machine, sources, report)


async def xmodem_receive(
    loop: Primitives,
    sink: object,
    *,
    crc: bool,
    size: int | None,
    progress: ProgressCallback | None,
    timeout: float,
) -> int:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"size must be a number of bytes (0 or more) or None, got {size!r}")
    report = _reporter(progress)
    machine = _xymodem.Receiver(batch=False, crc=crc, size=size, timeout=_check_timeout(timeout))
    target = _as_data(sink, "sink")
    if isinstance(target, pathlib.Path):
        out = _Sink(await loop.run_sync(_open_write, target), str(target), owned=True)
    elif isinstance(target, (bytes, bytearray, memoryview)) or not callable(
        getattr(target, "write", None)
    ):
        raise TypeError(f"sink must be a binary file object or a path, got {type(sink).__name__}")
    else:
        out = _Sink(target, getattr(target, "name", "sink"), owned=False)

    async def handle(event: Event) -> None:
        if isinstance(event, Payload):
            await out.write(loop, event.data)
        elif isinstance(event, TransferProgress):
            report(event)

    try:
        await _drive(loop, machine, handle)
    finally:
        await out.close(loop)
    return out.written


async def ymodem_receive(
    loop: Primitives,
    directory: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None,
    timeout: float,
) -> list[pathlib.Path]:
    target = await _directory(loop, directory)
    machine = _xymodem.Receiver(batch=True, timeout=_check_timeout(timeout))

    async def start(event: Event) -> tuple[_Sink, FileInfo] | None:
        assert isinstance(event, FileStart), event
        part = target / (event.info.name + PART_SUFFIX)
        return _Sink(await loop.run_sync(_open_write, part), str(part), owned=True), event.info

    return await _receive_files(loop, machine, target, _reporter(progress), start)


async def _directory(loop: Primitives, directory: object) -> pathlib.Path:
    """*directory*, checked: the argument of the batch receivers."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path, got {directory!r}")
    target = pathlib.Path(directory)
    if not await loop.run_sync(target.is_dir):
        raise TransferFileError(f"cannot receive into {str(target)!r}: not a directory")
    return target


#: A batch receiver's answer to a file's first event (YMODEM's FileStart,
#: ZMODEM's FileOffer): the ``NAME.part`` sink to write, or ``None`` (skipped).
StartFile = Callable[[Event], Awaitable[tuple[_Sink, FileInfo] | None]]


async def _receive_files(
    loop: Primitives,
    machine: _Machine,
    target: pathlib.Path,
    report: ProgressCallback,
    start: StartFile,
) -> list[pathlib.Path]:
    """Run a batch receiver: each file into ``NAME.part``, renamed to ``NAME`` at its end.

    Returns the files completed, in order. Events other than data, file ends
    and progress go to *start*.
    """
    received: list[pathlib.Path] = []
    current: tuple[_Sink, FileInfo] | None = None

    async def handle(event: Event) -> None:
        nonlocal current
        if isinstance(event, Payload):
            assert current is not None
            await current[0].write(loop, event.data)
        elif isinstance(event, FileEnd):
            assert current is not None
            sink, info = current
            current = None
            await sink.close(loop)
            final = target / info.name
            await loop.run_sync(_complete, pathlib.Path(sink.name), final, info)
            received.append(final)
        elif isinstance(event, TransferProgress):
            report(event)
        else:
            current = await start(event)

    try:
        await _drive(loop, machine, handle)
    finally:
        if current is not None:
            await current[0].close(loop)
    return received


def _complete(part: pathlib.Path, final: pathlib.Path, info: FileInfo) -> None:
    try:
        if info.mtime is not None:
            os.utime(part, (info.mtime, info.mtime))
        os.replace(part, final)
    except OSError as exc:
        raise TransferFileError(f"cannot write {str(final)!r}: {_reason(exc)}") from exc
