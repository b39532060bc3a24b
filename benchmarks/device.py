"""The device side of every benchmark: a plain process on the pty masters.

Run as ``python -m benchmarks.device MODE ...`` with the master fds passed in
(``pass_fds``). It uses only blocking ``os`` calls and ``poll``, no event loop
and no library under test, so every contender talks to the same device, and
the device's CPU time is not charged to the contender. It exits when the port
side of every pty has been closed (a master read fails with ``EIO``).

Modes:

* ``sink FD N DELAY``: after DELAY seconds read N bytes, print
  ``done N CRC32 T_END`` (``T_END`` from :func:`time.monotonic`, which is
  system-wide), then read on until the port closes.
* ``source FD N``: wait for one start byte from the port, write N bytes of
  :func:`pattern`, then wait for the port to close.
* ``echo FD [FD ...]``: write back every byte read on each fd.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time
import zlib

CHUNK = 65536


def pattern(n: int) -> bytes:
    """N bytes that are not all alike: every byte value, in a shuffled order."""
    block = bytes((i * 167 + 13) % 256 for i in range(256)) * (CHUNK // 256)
    whole, rest = divmod(n, CHUNK)
    return block * whole + block[:rest]


def read_or_eof(fd: int, n: int) -> bytes:
    try:
        return os.read(fd, n)
    except OSError as exc:
        if exc.errno == errno.EIO:  # the port side was closed
            return b""
        raise


def wait_for_close(fd: int) -> None:
    while read_or_eof(fd, CHUNK):
        pass


def sink(fd: int, n: int, delay: float) -> None:
    if delay:
        time.sleep(delay)
    crc = 0
    got = 0
    while got < n:
        data = read_or_eof(fd, CHUNK)
        if not data:
            break
        crc = zlib.crc32(data, crc)
        got += len(data)
    print(f"done {got} {crc} {time.monotonic()!r}", flush=True)
    wait_for_close(fd)


def source(fd: int, n: int) -> None:
    if not read_or_eof(fd, 1):
        return
    view = memoryview(pattern(n))
    sent = 0
    while sent < n:
        sent += os.write(fd, view[sent : sent + CHUNK])
    wait_for_close(fd)


def echo(fds: list[int]) -> None:
    if len(fds) == 1:
        fd = fds[0]
        while data := read_or_eof(fd, CHUNK):
            os.write(fd, data)
        return
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    live = set(fds)
    while live:
        for fd, _events in poller.poll():
            data = read_or_eof(fd, CHUNK)
            if data:
                os.write(fd, data)
            else:
                poller.unregister(fd)
                live.discard(fd)


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "sink":
        sink(int(args[0]), int(args[1]), float(args[2]))
    elif mode == "source":
        source(int(args[0]), int(args[1]))
    elif mode == "echo":
        echo([int(a) for a in args])
    else:
        raise SystemExit(f"unknown device mode {mode!r}: expected sink, source or echo")


if __name__ == "__main__":
    main(sys.argv[1:])
