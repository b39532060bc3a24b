"""Two sans-IO transfer machines joined on a fake clock: the machine tests' line.

:func:`pump` runs a Sender and a Receiver (X/YMODEM's or ZMODEM's) to the
end, answering their events as the driver would; fault hooks on each
direction corrupt, drop, duplicate or delay what crosses, as a noisy line
would. No event loop anywhere.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from trioserial import _transfer_base as b
from trioserial import _xymodem as x
from trioserial import _zmodem as z
from trioserial import _zmodem_receiver as zr

Fault = Callable[[bytes], bytes]


def clean(data: bytes) -> bytes:
    return data


def corrupt_every(n: int, seed: int = 1) -> Fault:
    """Flip one bit in every *n*-th byte that crosses."""
    rng = random.Random(seed)
    count = 0

    def fault(data: bytes) -> bytes:
        nonlocal count
        out = bytearray(data)
        for i in range(len(out)):
            count += 1
            if count % n == 0:
                out[i] ^= 1 << rng.randrange(8)
        return bytes(out)

    return fault


@attrs.define
class Result:
    files: dict[str | None, bytes] = attrs.Factory(dict)  # XMODEM's one file is None
    progress_s: list[b.TransferProgress] = attrs.Factory(list)
    progress_r: list[b.TransferProgress] = attrs.Factory(list)
    wire_s: bytearray = attrs.Factory(bytearray)
    wire_r: bytearray = attrs.Factory(bytearray)
    seeks: list[int] = attrs.Factory(list)  # ZMODEM: where the sender was sent back to
    skipped: list[str] = attrs.Factory(list)  # ZMODEM: files the receiver had complete
    now: float = 0.0


def pump(
    sender: x.Sender | z.Sender,
    receiver: x.Receiver | zr.Receiver,
    files: list[tuple[str, bytes]],
    *,
    s2r: Fault = clean,
    r2s: Fault = clean,
    have: dict[str, bytes] | None = None,
    max_steps: int = 200_000,
) -> Result:
    """Run both machines to the end; a TransferError from either propagates.

    *have* (ZMODEM): files the receiver already holds (it resumes from their
    length, and skips those as long as the offered size).
    """
    have = dict(have or {})
    now = 0.0
    sender.start(now)
    receiver.start(now)
    pending = list(files)
    current = b""
    pos = 0
    result = Result()
    name: str | None = None
    out = bytearray()
    for _ in range(max_steps):
        progressed = False
        while (e := sender.next_event()) is not b.NEED_DATA:
            progressed = True
            if isinstance(e, b.NextFile):
                if pending:
                    fname, current = pending.pop(0)
                    pos = 0
                    sender.start_file(b.FileInfo(fname, len(current)))
                else:
                    sender.start_file(None)
            elif isinstance(e, b.Seek):
                result.seeks.append(e.offset)
                pos = e.offset
            elif isinstance(e, b.ReadData):
                sender.supply(current[pos : pos + e.size])
                pos += e.size
            elif isinstance(e, b.TransferProgress):
                result.progress_s.append(e)
        while (e := receiver.next_event()) is not b.NEED_DATA:
            progressed = True
            if isinstance(e, b.FileStart):
                name, out = e.info.name, bytearray()
            elif isinstance(e, b.FileOffer):
                assert isinstance(receiver, zr.Receiver)
                name = e.info.name
                old = have.get(name, b"")
                if name in have and len(old) == e.info.size:
                    result.skipped.append(name)
                    receiver.skip()
                else:
                    out = bytearray(old)
                    receiver.accept(len(old))
            elif isinstance(e, b.Payload):
                out += e.data
            elif isinstance(e, b.FileEnd):
                result.files[name] = bytes(out)
            elif isinstance(e, b.TransferProgress):
                result.progress_r.append(e)
        if sender.finished and receiver.finished:
            result.now = now
            return result
        a = sender.data_to_send()
        c = receiver.data_to_send()
        result.wire_s += a
        result.wire_r += c
        if a and (a := s2r(a)):
            receiver.receive_data(a, now)
        if c and (c := r2s(c)):
            sender.receive_data(c, now)
        if a or c:
            progressed = True
        if not progressed:
            deadlines = [d for d in (sender.deadline, receiver.deadline) if d is not None]
            assert deadlines, "both machines wait for nothing: deadlock"
            now = max(now, min(deadlines))
            sender.tick(now)
            receiver.tick(now)
    raise AssertionError("the transfer did not end")
