"""XMODEM, XMODEM-1K and YMODEM batch, sans-IO (layer 0).

Two machines, :class:`Sender` and :class:`Receiver`, each for both
protocols (``batch=False``: XMODEM; ``batch=True``: YMODEM, which is
XMODEM-1K with a header block 0 before each file and an empty header after
the last). The shape is described in ``_transfer_base.py``; the times they
are given are any monotonic clock in seconds.

The rules chosen where the protocol descriptions leave room (and why) are
in ``docs/transfer.rst``; in short: the receiver drives retries (it NAKs
after a quiet line), the sender resends on NAK and only after half the
timeout on its own, so one block is not acknowledged twice; a first EOT is
NAKed, and taken only alone, so line noise cannot end a file.
"""

from __future__ import annotations

import binascii
import enum
import re
from typing import Final

from ._transfer_base import (
    FileEnd,
    FileInfo,
    FileStart,
    MachineBase,
    NextFile,
    Payload,
    ReadData,
    TransferError,
    TransferProgress,
    TransferRetriesError,
    safe_name,
)

__all__ = ["Receiver", "Sender", "build_block", "crc16", "encode_header", "parse_header"]

SOH: Final = 0x01
STX: Final = 0x02
EOT: Final = 0x04
ACK: Final = 0x06
NAK: Final = 0x15
CAN: Final = 0x18
SUB: Final = 0x1A
CRC: Final = 0x43  # "C"

#: NAKs (or start characters) for one block before giving up.
MAX_RETRIES: Final = 10
#: Start characters sent as "C" before a CRC-capable XMODEM receiver falls back to NAK.
CRC_TRIES: Final = 3
#: The largest file size a header may claim (anything larger is not a file size).
MAX_SIZE: Final = 2**63 - 1
_FRAME_START = re.compile(b"[\x01\x02\x04\x18]")


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial value 0)."""
    return binascii.crc_hqx(data, 0)


def _check(data: bytes | bytearray | memoryview, crc: bool) -> bytes:
    if crc:
        return crc16(data).to_bytes(2, "big")
    return bytes((sum(data) & 0xFF,))


def build_block(number: int, payload: bytes, *, size: int, crc: bool, pad: int = SUB) -> bytes:
    """One block on the wire: SOH (128) or STX (1024), number, its complement, data, check."""
    data = payload.ljust(size, bytes((pad,)))
    number &= 0xFF
    head = bytes((SOH if size == 128 else STX, number, 0xFF - number))
    return head + data + _check(data, crc)


def encode_header(info: FileInfo | None) -> bytes:
    """YMODEM block 0's payload: ``name NUL size mtime mode``, or the empty batch end."""
    if info is None:
        return b""
    name = info.name.encode("utf-8", "surrogateescape") + b"\x00"
    if info.size is None:
        # The fields are positional and split on spaces: an empty size would
        # make the mtime read as the size. Without a size, send the name alone.
        return name
    fields = [str(info.size)]
    if info.mtime is not None:
        fields.append(f"{info.mtime:o}")
        if info.mode is not None:
            fields.append(f"{info.mode:o}")
    return name + " ".join(fields).encode()


def parse_header(payload: bytes) -> FileInfo | None:
    """YMODEM block 0 from the wire; ``None`` for the batch end. Raises for unsafe names."""
    raw, _, rest = payload.partition(b"\x00")
    if not raw:
        return None
    name = safe_name(raw)
    fields = rest.split(b"\x00", 1)[0].split()
    numbers: list[int | None] = []
    for i, field in enumerate(fields[:3]):
        try:
            numbers.append(int(field, 10 if i == 0 else 8))
        except ValueError:
            numbers.append(None)
    numbers += [None] * (3 - len(numbers))
    size, mtime, mode = numbers
    if size is not None and not 0 <= size <= MAX_SIZE:
        raise TransferError(f"header of {name!r} claims an impossible size of {fields[0]!r} bytes")
    if mtime is not None and not 0 <= mtime <= MAX_SIZE:
        mtime = None
    if mode is not None and not 0 <= mode <= 0o7777777:
        mode = None
    return FileInfo(name, size, mtime, mode)


class _S(enum.Enum):
    START = "the receiver to start"  # waiting for C or NAK
    FILE = "the next file"  # NextFile asked
    DATA = "file data"  # ReadData asked
    ACK = "the receiver to acknowledge a block"
    READY = "the receiver to ask for the file's data"  # YMODEM: ACK of block 0 seen, wait for C
    EOT = "the receiver to acknowledge the end of the file"
    FINAL = "the receiver to acknowledge the end of the batch"
    DONE = "nothing"


class Sender(MachineBase):
    """The sending side. Call :meth:`start`, then follow the events.

    Args:
      batch: YMODEM (header blocks, several files) instead of XMODEM.
      block_size: 128 or 1024, the size of full data blocks (YMODEM: 1024).
      timeout: seconds the receiver may stay silent before the transfer fails.
    """

    def __init__(
        self,
        *,
        batch: bool,
        block_size: int = 1024,
        timeout: float = 10.0,
        retry: float | None = None,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry)
        if block_size not in (128, 1024):
            raise ValueError(f"block_size must be 128 or 1024, got {block_size!r}")
        self.batch = batch
        self.block_size = block_size
        self.crc = True
        self._state = _S.START
        self._first_start = True
        self._block = 0  # absolute number of the block in flight
        self._frame = b""
        self._sent = 0  # payload bytes in the block in flight
        self._can = False
        self._info: FileInfo | None = None
        self._done = 0

    def start(self, now: float) -> None:
        self._alive(now)

    # -------------------------------------------------------- the driver's answers

    def start_file(self, info: FileInfo | None) -> None:
        """Answer :class:`NextFile`: the next file, or ``None`` when there is none."""
        assert self._state is _S.FILE, self._state
        self._info = info
        self._done = 0
        if not self.batch:
            assert info is not None
            self._block = 1
            self._state = _S.DATA
            self._events.append(ReadData(self.block_size))
            return
        header = encode_header(info)
        size = 128 if len(header) <= 128 else 1024
        if len(header) > 1024:
            raise ValueError(f"file name too long for a YMODEM header: {info!r}")
        self._block = 0
        self._send_frame(build_block(0, header, size=size, crc=self.crc, pad=0), 0)
        self._state = _S.ACK if info is not None else _S.FINAL
        # The batch end: every file is acknowledged already, so its ACK is not
        # waited for long (lrzsz's rb can lose it as it exits): one repeat after
        # the retry interval, then done.
        self._nudge = (
            self._silence - self.timeout + (self.timeout / 2 if info is not None else self.retry)
        )

    def supply(self, data: bytes) -> None:
        """Answer :class:`ReadData`: the file's next bytes; fewer than asked means its end."""
        assert self._state is _S.DATA, self._state
        if not data:
            self._frame = bytes((EOT,))
            self._out += self._frame
            self._tries = 0
            self._state = _S.EOT
            self._nudge = self._silence - self.timeout / 2
            return
        size = 128 if len(data) <= 128 else self.block_size
        if len(data) > size:
            raise ValueError(f"supplied {len(data)} bytes for a {size}-byte block")
        self._send_frame(build_block(self._block, data, size=size, crc=self.crc), len(data))
        self._state = _S.ACK
        # Repeat the block if the receiver says nothing for half the timeout: its
        # ACK and NAKs may all be lost, and some receivers (lrzsz's rx, rb) flush
        # their input right after a start character, so a first block can vanish.
        # Half the timeout, so that a slow receiver's ACK does not cross the
        # repeat (it would be taken for the next block's).
        self._nudge = self._silence - self.timeout / 2

    def _send_frame(self, frame: bytes, payload: int) -> None:
        self._frame = frame
        self._sent = payload
        self._tries = 0
        self._out += frame

    # -------------------------------------------------------------- the wire

    def receive_data(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        for i, byte in enumerate(data):
            # Before the receiver has started, CANs are the tail of an earlier
            # transfer's cancel, not a cancel of this one: they are ignored.
            if byte == CAN and self._state is not _S.START:
                if self._can:
                    raise self._cancelled("receiver", f"at block {self._block}")
                self._can = True
                continue
            self._can = False
            self._byte(byte, i == len(data) - 1, now)
            if self.finished:
                return

    def _byte(self, byte: int, last: bool, now: float) -> None:
        state = self._state
        if state is _S.START or state is _S.READY:
            if byte == CRC and state is _S.START and self._first_start and not last:
                self._junk(bytes((byte,)))  # a "C" inside text (a banner), not a request
            elif byte in (CRC, NAK):
                if state is _S.START:
                    self.crc = byte == CRC
                    self._first_start = False
                    self._state = _S.FILE
                    self._events.append(NextFile())
                else:
                    self._block = 1
                    self._state = _S.DATA
                    self._events.append(ReadData(self.block_size))
                self._alive(now)
            else:
                self._junk(bytes((byte,)))
        elif state is _S.ACK:
            if byte == ACK:
                self._nudge = None
                self._alive(now)
                self._acknowledged()
            elif byte == NAK or (byte == CRC and self._block == (0 if self.batch else 1)):
                # "C" again means the receiver missed the block it asked for; after
                # YMODEM's header its "C" has been answered, so a repeat is stale.
                self._alive(now)  # an answer, if not the one hoped for
                self._resend(now)
            else:
                self._junk(bytes((byte,)))
        elif state is _S.EOT or state is _S.FINAL:
            if byte == ACK:
                self._alive(now)
                self._nudge = None
                if state is _S.FINAL:
                    self._finish()
                    return
                assert self._info is not None
                self._events.append(TransferProgress(self._info.name, self._done, self._done))
                if self.batch:
                    self._state = _S.START
                else:
                    self._finish()
            elif byte in (NAK, CRC):  # "C": our receiver's answer to an EOT before any block
                self._alive(now)
                self._resend(now)
            else:
                self._junk(bytes((byte,)))
        else:
            self._junk(bytes((byte,)))  # nothing is expected from the receiver now

    def _first_block(self) -> bool:
        # The block right after a start character: YMODEM's header and its
        # first data block, XMODEM's block 1.
        return self._block <= 1

    def _acknowledged(self) -> None:
        info = self._info
        assert info is not None
        if self._block == 0:
            self._state = _S.READY
            return
        self._done += self._sent
        self._events.append(TransferProgress(info.name, self._done, info.size))
        self._block += 1
        self._state = _S.DATA
        self._events.append(ReadData(self.block_size))

    def _resend(self, now: float) -> None:
        self._tries += 1
        if self._tries > MAX_RETRIES:
            what = "the end of the file (EOT)" if self._state is _S.EOT else f"block {self._block}"
            raise self._fail(
                TransferRetriesError(
                    f"the receiver rejected {what} {MAX_RETRIES} times", block=self._block
                )
            )
        self._out += self._frame
        if self._nudge is not None:
            # Our own repeat waits again: two repeats in a row (one on a timer that
            # happens to match the receiver's NAK interval) would draw two ACKs.
            self._nudge = now + self.timeout / 2

    def tick(self, now: float) -> None:
        if self.finished:
            return
        if self._state in (_S.FILE, _S.DATA):
            return  # the driver's turn, not the receiver's
        if now >= self._silence:
            if self._state is _S.FINAL:
                # Every file is acknowledged: a receiver that does not ACK the batch end
                # (some bootloaders) has all it needs.
                self._finish()
                return
            raise self._timed_out(self._state.value)
        if self._state is _S.FINAL and self._nudge is not None and now >= self._nudge:
            if self._tries:
                self._finish()
                return
            self._tries = 1
            self._out += self._frame
            self._nudge = now + self.retry
            return
        if self._nudge is not None and now >= self._nudge:
            # A repeat on our own timer is not a rejection: the silence limit bounds it.
            # Half the timeout, never the receiver's NAK interval (a third at most).
            self._out += self._frame
            self._nudge = now + self.timeout / 2

    def connection_lost(self) -> None:
        if self._state is _S.FINAL:
            self._finish()  # every file was acknowledged; the batch end's ACK is a formality
            return
        super().connection_lost()

    @property
    def deadline(self) -> float | None:
        if self._state in (_S.FILE, _S.DATA):
            return None
        return super().deadline

    def _finish(self) -> None:
        self._state = _S.DONE
        super()._finish()


class _R(enum.Enum):
    START = "the sender's first block"
    DATA = "the next block"
    DONE = "nothing"


class Receiver(MachineBase):
    """The receiving side. Call :meth:`start`, then follow the events.

    Args:
      batch: YMODEM (header blocks, several files) instead of XMODEM.
      crc: ask for CRC-16 ("C"); an XMODEM receiver falls back to the
        checksum (NAK) after three unanswered "C". YMODEM always asks for CRC.
      size: XMODEM only: the file's real size, to cut the padding off.
      name: XMODEM only: the name reported in progress.
      timeout: seconds the sender may stay silent before the transfer fails.
    """

    def __init__(
        self,
        *,
        batch: bool,
        crc: bool = True,
        size: int | None = None,
        name: str = "",
        timeout: float = 10.0,
        retry: float | None = None,
        quiet: float | None = None,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry, quiet=quiet)
        self.batch = batch
        self.crc = crc or batch
        self._state = _R.START
        self._buffer = bytearray()
        self._expected = 0 if batch else 1
        self._starts = 0
        self._eot = False
        self._after_file = False
        self._in_file = not batch
        self._info: FileInfo | None = None if batch else FileInfo(name, size)
        self._written = 0

    def start(self, now: float) -> None:
        self._alive(now)
        self._send_start(now)

    def _send_start(self, now: float) -> None:
        if not self.batch and self.crc and self._starts >= CRC_TRIES and self._expected == 1:
            self.crc = False  # nobody answered "C": try the checksum
        self._starts += 1
        self._out.append(CRC if self.crc else NAK)
        self._nudge = now + self.retry

    # -------------------------------------------------------------- the wire

    def receive_data(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        buf = self._buffer
        buf += data
        # Bounded: a sender waits for our answer after each block, so more than two
        # blocks' worth can only be noise; keep the newest.
        if len(buf) > 2 * 1030:
            self._junk(buf[: len(buf) - 2 * 1030])
            del buf[: len(buf) - 2 * 1030]
        i = 0
        # An EOT counts only alone: the last byte that arrived, right after a
        # block or a pause (a sender sends it by itself and waits). Inside the
        # remains of a corrupted block, 0x04 is just a byte.
        clean = len(buf) == len(data)
        while i < len(buf) and not self.finished:
            match = _FRAME_START.search(buf, i)
            if match is None:
                self._junk(buf[i:])
                i = len(buf)
                break
            if match.start() > i:
                clean = False
                self._junk(buf[i : match.start()])
            i = match.start()
            kind = buf[i]
            if kind == EOT:
                i += 1
                if clean and i == len(buf):
                    self._end_of_file(now)
                else:
                    clean = False
                    self._junk(bytes((EOT,)))
            elif kind == CAN and self._state is _R.START:
                # Before the first block, CANs are the tail of an earlier
                # transfer's cancel, not a cancel of this one.
                clean = False
                self._junk(buf[i : i + 1])
                i += 1
            elif kind == CAN:
                if i + 1 >= len(buf):
                    break  # wait for the next byte
                if buf[i + 1] == CAN:
                    raise self._cancelled("sender", f"at block {self._expected}")
                clean = False
                self._junk(buf[i : i + 1])
                i += 1
            else:
                size = 128 if kind == SOH else 1024
                need = 3 + size + (2 if self.crc else 1)
                avail = len(buf) - i
                # Cheap checks first (number, complement), so noise costs no CRCs.
                plausible = (avail < 2 or buf[i + 1] in self._plausible()) and (
                    avail < 3 or (buf[i + 1] + buf[i + 2]) & 0xFF == 0xFF
                )
                if plausible and avail < need:
                    break  # a block still arriving
                number = buf[i + 1] if plausible else 0
                data = bytes(buf[i + 3 : i + 3 + size]) if plausible else b""
                if not plausible or bytes(buf[i + 3 + size : i + need]) != _check(data, self.crc):
                    clean = False
                    self._junk(buf[i : i + 1])
                    i += 1
                    continue
                i += need
                clean = True
                self._block(number, data, size, now)
        del buf[:i]
        if buf:
            self._nudge = now + self.quiet

    def _plausible(self) -> tuple[int, ...]:
        expected = self._expected & 0xFF
        return (expected, (expected - 1) & 0xFF)

    def _block(self, number: int, data: bytes, size: int, now: float) -> None:
        expected = self._expected
        if self._eot:  # a block after a first EOT: that EOT was noise
            self._eot = False
        if number == (expected - 1) & 0xFF and (expected > 1 or (self.batch and expected == 1)):
            # A repeat: our ACK was lost. ACK it again, keep nothing. The sender
            # is alive (the retry count still bounds how long this may go on).
            self._alive(now)
            self._out.append(ACK)
            if self.batch and expected == 1:
                self._out.append(CRC)
            self._nudge = now + self.retry
            return
        if number != expected & 0xFF:
            # Sequence broken beyond repair (XMODEM has no way to resynchronise).
            raise self._fail(
                TransferError(f"block {number} arrived where block {expected & 0xFF} was expected")
            )
        if self._state is _R.START:
            self._state = _R.DATA
        self._alive(now)
        self._tries = 0
        self._nudge = now + self.retry
        if self.batch and not self._in_file:
            self._header(data, now)
            return
        info = self._info
        assert info is not None
        if info.size == 0 and self._written == 0:
            # Data after a size of 0: what stat() says of /proc and sysfs files,
            # which lrzsz's sb sends. The size is unknown; the padding stays.
            info = self._info = FileInfo(info.name, None, info.mtime, info.mode)
        if info.size is not None:
            data = data[: max(0, info.size - self._written)]
        self._written += len(data)
        self._expected += 1
        if data:
            self._events.append(Payload(data))
        self._events.append(TransferProgress(info.name, self._written, info.size))
        self._out.append(ACK)

    def _header(self, data: bytes, now: float) -> None:
        try:
            info = parse_header(data)
        except TransferError as exc:
            raise self._fail(exc) from None
        self._out.append(ACK)
        if info is None:
            self._finish()
            return
        self._info = info
        self._in_file = True
        self._after_file = False
        self._written = 0
        self._expected = 1
        self._events.append(FileStart(info))
        self._events.append(TransferProgress(info.name, 0, info.size))
        self._out.append(CRC)

    def _end_of_file(self, now: float) -> None:
        if self.batch and not self._in_file:
            if self._after_file:  # the last file's EOT again: our ACK was lost
                self._out.append(ACK)
                self._out.append(CRC)
            return
        if not self._eot:
            # NAK the first EOT: noise must not end a file. Before any block, answer
            # with the start character instead: a stray 0x04 in a banner must not
            # reach a waiting sender as a NAK (which asks for checksum mode).
            self._eot = True
            start = self._state is _R.START and self.crc
            self._out.append(CRC if start else NAK)
            self._nudge = now + self.retry
            return
        info = self._info
        assert info is not None
        self._eot = False
        self._out.append(ACK)
        self._alive(now)
        if info.size is not None and self._written < info.size and self.batch:
            raise self._fail(
                TransferError(
                    f"the sender ended {info.name!r} after {self._written} of its {info.size} bytes"
                ),
                tell_peer=False,
            )
        self._events.append(TransferProgress(info.name, self._written, self._written))
        self._events.append(FileEnd())
        if not self.batch:
            self._finish()
            return
        self._in_file = False
        self._after_file = True
        self._info = None
        self._expected = 0
        self._starts = 0
        self._out.append(CRC)
        self._nudge = now + self.retry

    def tick(self, now: float) -> None:
        if self.finished:
            return
        if now >= self._silence:
            what = _R.START.value if self._expected <= 1 and not self._written else "the next block"
            raise self._timed_out(what)
        if self._nudge is not None and now >= self._nudge:
            self._buffer.clear()
            # In a YMODEM file before block 1 the sender has our "C" already, or
            # still waits for the header's ACK: a NAK serves both, where a stale
            # "C" could make it repeat the header while our ACK is on its way.
            if not self._in_file or (self._expected == 1 and self._state is _R.START):
                self._send_start(now)
                return
            self._tries += 1
            if self._tries > MAX_RETRIES:
                raise self._fail(
                    TransferRetriesError(
                        f"block {self._expected} failed {MAX_RETRIES} times", block=self._expected
                    )
                )
            self._out.append(NAK)
            self._nudge = now + self.retry

    def _finish(self) -> None:
        self._state = _R.DONE
        super()._finish()
