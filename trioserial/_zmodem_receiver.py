"""ZMODEM's receiving side, sans-IO (layer 0); see ``_zmodem.py`` for the shape and rules."""

from __future__ import annotations

import enum
from typing import Final

import attrs

from . import _zmodem_wire as w
from ._transfer_base import (
    FileEnd,
    FileInfo,
    FileOffer,
    Payload,
    TransferError,
    TransferProgress,
    TransferRetriesError,
)
from ._zmodem import MAX_ERRORS, _Machine, parse_file_info

__all__ = ["RECEIVER_FLAGS", "Receiver"]

#: The attention string a ZSINIT may set is at most this long (lrzsz: 32).
MAX_ATTN: Final = 32
#: Seconds a receiver waits for the sender's "OO" after the last ZFIN.
OO_WAIT: Final = 0.5
#: Our ZRINIT: full duplex, receives while writing, CRC-32, no buffer limit.
RECEIVER_FLAGS: Final = w.CANFDX | w.CANOVIO | w.CANFC32


class _R(enum.Enum):
    INIT = "the sender to offer a file (ZFILE)"
    SINIT = "the sender's ZSINIT data"
    FILEINFO = "the sender's ZFILE data"
    OFFER = "nothing"  # FileOffer out: the driver's turn
    DATA = "file data"
    FIN = "the sender's OO"


class Receiver(_Machine):
    """The receiving side. Call :meth:`start`, then follow the events.

    Events: :class:`FileOffer` (answer :meth:`accept` or :meth:`skip`),
    :class:`Payload`, :class:`TransferProgress`, :class:`FileEnd`, :class:`Done`.

    Args:
      timeout: seconds the sender may stay silent before the transfer fails.
      retry: seconds of silence before a ZRINIT or ZRPOS is sent again.
    """

    def __init__(self, *, timeout: float = 10.0, retry: float | None = None) -> None:
        super().__init__(timeout=timeout, retry=retry)
        self._state = _R.INIT
        self._info: FileInfo | None = None
        self._resume = False
        self._pos = 0
        self._synced = False  # data at self._pos is being received
        self._swallow = False  # data subpackets of a repeated ZFILE: ignore
        self._errors = 0
        self._attn = b""
        self._payload = bytearray()
        self._oo = 0

    def start(self, now: float) -> None:
        self._alive(now)
        self._send_rinit(now)

    def _send_rinit(self, now: float) -> None:
        self._out += w.hex_header(w.ZRINIT, w.flags(RECEIVER_FLAGS))
        self._nudge = now + self.retry

    # ------------------------------------------------------ the driver's answers

    def accept(self, offset: int) -> None:
        """Answer :class:`FileOffer`: receive the file from byte *offset*."""
        assert self._info is not None, self._state
        assert self._state is _R.OFFER, self._state
        self._state = _R.DATA
        self._pos = offset
        self._errors = 0
        self._tries = 0
        self._events.append(TransferProgress(self._info.name, offset, self._info.size))
        self._out += self._attn + w.hex_header(w.ZRPOS, w.position(offset))
        self._synced = False
        self._rearm(nudge=True)

    def skip(self) -> None:
        """Answer :class:`FileOffer`: do not receive this file (ZSKIP)."""
        assert self._state is _R.OFFER, self._state
        self._state = _R.INIT
        self._info = None
        self._tries = 0
        self._out += w.hex_header(w.ZSKIP, w.flags())
        self._rearm(nudge=True)

    def _send_rpos(self, now: float) -> None:
        self._synced = False
        self._out += self._attn + w.hex_header(w.ZRPOS, w.position(self._pos))
        self._nudge = now + self.retry

    # -------------------------------------------------------------- the wire

    def receive_data(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        self._wake(now)
        if self._state is _R.FIN:
            self._oo += data.count(b"O")
            if self._oo >= 2:
                self._finish()
                return
        for item in self._reader.feed(data):
            if isinstance(item, w.Subpacket):  # first: nearly every item is one
                self._subpacket(item, now)
            elif isinstance(item, w.Cancelled):
                raise self._cancelled("sender", self._where())
            elif isinstance(item, w.Header):
                self._header(item, now)
            elif isinstance(item, w.DataError):
                self._data_error(item.why, now)
            elif self._state is _R.DATA and self._synced:  # a header failed its CRC
                self._data_error("a corrupt header", now)
            if self.finished:
                return
        self._flush()

    def _where(self) -> str:
        if self._info is None:
            return "between files"
        return f"at byte {self._pos} of {self._info.name!r}"

    def _flush(self) -> None:
        if self._payload:
            assert self._info is not None
            self._events.append(Payload(bytes(self._payload)))
            self._events.append(TransferProgress(self._info.name, self._pos, self._info.size))
            self._payload.clear()

    def _header(self, header: w.Header, now: float) -> None:
        frame, state = header.frame, self._state
        self._swallow = False
        if frame == w.ZCOMMAND:
            raise self._fail(TransferError("the sender asked to run a command (ZCOMMAND): refused"))
        if state is _R.FIN:
            if frame == w.ZFIN:
                self._out += w.hex_header(w.ZFIN, w.flags())
            return
        if frame == w.ZFIN and state is not _R.OFFER:
            self._alive(now)
            if state is _R.DATA:
                raise self._fail(
                    TransferError(f"the sender ended the session {self._where()}"),
                    tell_peer=False,
                )
            self._out += w.hex_header(w.ZFIN, w.flags())
            self._state = _R.FIN
            self._nudge = now + min(OO_WAIT, self.retry)
            return
        if state in (_R.INIT, _R.SINIT, _R.FILEINFO):
            if frame == w.ZRQINIT or frame == w.ZEOF:
                # A sender that missed our ZRINIT (or the last file's): answered, but
                # counted as a retry and not as progress, so that a peer repeating it
                # for ever ends the receive like silence would.
                self._resend(now, "ZRINIT")
                self._send_rinit(now)
                return
            self._alive(now)
            if frame == w.ZSINIT:
                self._state = _R.SINIT
            elif frame == w.ZFILE:
                self._state = _R.FILEINFO
                self._resume = header.f0 == w.ZCRESUM
            elif frame == w.ZFREECNT:
                self._out += w.hex_header(w.ZACK, w.position(0))
            elif frame == w.ZCHALLENGE:
                self._out += w.hex_header(w.ZACK, header.arg)
            return
        if state is _R.DATA:
            if frame == w.ZDATA:
                if header.position == self._pos:
                    self._alive(now)
                    self._synced = True
                    self._nudge = now + self.retry
                elif self._synced:
                    self._data_error(f"data for byte {header.position}", now)
            elif frame == w.ZEOF:
                if header.position == self._pos:
                    self._alive(now)
                    self._end_of_file()
                    self._send_rinit(now)
                elif self._synced:
                    self._data_error(f"the end of the file at byte {header.position}", now)
            elif frame == w.ZFILE:
                self._swallow = True  # our ZRPOS was lost: its data is the same offer
                self._send_rpos(now)

    def _subpacket(self, sub: w.Subpacket, now: float) -> None:
        state = self._state
        if state is _R.SINIT:
            self._attn = sub.data.split(b"\x00", 1)[0][:MAX_ATTN].translate(None, b"\xdd\xde")
            self._out += w.hex_header(w.ZACK, w.position(1))
            self._state = _R.INIT
        elif state is _R.FILEINFO:
            try:
                info = parse_file_info(sub.data)
            except TransferError as exc:
                raise self._fail(exc) from None
            self._info = info
            self._state = _R.OFFER
            self._nudge = None
            self._events.append(FileOffer(info, self._resume))
        elif state is _R.DATA and self._synced and not self._swallow:
            current = self._info
            assert current is not None
            if current.size == 0 and sub.data:
                # lrzsz's sz announces what stat() says: 0 for /proc and sysfs files,
                # whose length nobody knows beforehand. Such a size is no limit.
                current = self._info = attrs.evolve(current, size=None)
            if current.size is not None and self._pos + len(sub.data) > current.size:
                raise self._fail(
                    TransferError(
                        f"the sender sent more than the {current.size} bytes it announced"
                        f" for {current.name!r} (data for byte {self._pos + len(sub.data)})"
                    )
                )
            self._alive(now)
            self._errors = 0
            self._payload += sub.data
            self._pos += len(sub.data)
            if sub.end in (w.ZCRCQ, w.ZCRCW):
                self._flush()  # the data reaches the file before the ZACK leaves
                self._out += w.hex_header(w.ZACK, w.position(self._pos))
            self._nudge = now + self.retry

    def _data_error(self, why: str, now: float) -> None:
        if self._state is _R.FILEINFO or self._state is _R.SINIT:
            self._resend(now, "ZNAK")  # a peer whose ZFILE never arrives intact ends too
            self._out += w.hex_header(w.ZNAK, w.flags())
            self._state = _R.INIT
            return
        if self._state is not _R.DATA or not self._synced:
            return  # already asked for a position: the rest of the stream is skipped
        self._error(why, now)

    def _error(self, why: str, now: float) -> None:
        self._errors += 1
        if self._errors > MAX_ERRORS:
            raise self._fail(
                TransferRetriesError(
                    f"{MAX_ERRORS} errors {self._where()} (the last: {why})", block=self._pos
                )
            )
        self._flush()
        self._send_rpos(now)

    def _end_of_file(self) -> None:
        info = self._info
        assert info is not None
        self._flush()
        if info.size is not None and self._pos < info.size:
            # NAME.part keeps a prefix of the file, for a resume to finish; the sender hears
            # the abort (it would otherwise take our ZRINIT as the file's success).
            raise self._fail(
                TransferError(
                    f"the sender ended {info.name!r} after {self._pos} of its {info.size} bytes"
                )
            )
        self._events.append(TransferProgress(info.name, self._pos, self._pos))
        self._events.append(FileEnd())
        self._info = None
        self._state = _R.INIT
        self._synced = False
        self._tries = 0

    def tick(self, now: float) -> None:
        if self.finished or self._state is _R.OFFER or self._wake(now):
            return
        if self._state is _R.FIN:
            if self._nudge is not None and now >= self._nudge:
                self._finish()  # no "OO": the session is over all the same
            return
        if now >= self._silence:
            raise self._timed_out(self._state.value if self._info is None else "file data")
        if self._nudge is not None and now >= self._nudge:
            if self._state is _R.DATA:
                self._error("silence", now)
            else:
                self._resend(now, "ZRINIT")
                self._send_rinit(now)

    @property
    def deadline(self) -> float | None:
        if self._state is _R.OFFER:
            return None
        return super().deadline
