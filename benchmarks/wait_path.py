"""The cost of a receive that has to wait, in one process, without a device process.

Usage::

    python benchmarks/wait_path.py [--bytes N] [--reps N]

A receiver task blocks in ``receive``; a writer task in the same Trio run
waits until every task is blocked, then writes one byte into the pty master.
So every receive takes the waiting path (``EAGAIN``, wait for readable, read)
and the time per byte is that path plus the tty layer's delivery, the same for
every contender. With no second process to wake, the numbers are far less
noisy than the round trips of ``run.py``, and they isolate what a front end
adds to the wait itself (cancel scopes, context managers, extra schedule
points). Ratios are to the raw limit within the same repetition.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tty
from collections.abc import Awaitable, Callable

import trio
import trio.testing

import trioserial
import trioserial.anyio

Receive = Callable[[int], Awaitable[bytes]]


async def per_byte_us(receive: Receive, master: int, nbytes: int) -> float:
    async def writer() -> None:
        for _ in range(nbytes):
            await trio.testing.wait_all_tasks_blocked()
            os.write(master, b"x")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        got = 0
        while got < nbytes:  # count bytes: two may arrive in one read
            got += len(await receive(64))
    return (time.perf_counter() - start) / nbytes * 1e6


async def raw(path: str, master: int, nbytes: int) -> float:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)

        async def receive(n: int) -> bytes:
            while True:
                try:
                    return os.read(fd, n)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(fd)

        return await per_byte_us(receive, master, nbytes)
    finally:
        os.close(fd)


async def async_serial(path: str, master: int, nbytes: int) -> float:
    async with await trioserial.open_serial_port(path) as port:
        return await per_byte_us(port.receive_some, master, nbytes)


async def anyio_on_trio(path: str, master: int, nbytes: int) -> float:
    async with await trioserial.anyio.open_serial_port(path) as port:
        return await per_byte_us(port.receive, master, nbytes)


CONTENDERS = {"raw limit": raw, "trioserial": async_serial, "trioserial.anyio/trio": anyio_on_trio}


async def main(nbytes: int, reps: int) -> None:
    results: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    ratios: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(reps):
        this_rep = {}
        for name, run in CONTENDERS.items():
            master, slave = os.openpty()
            try:
                tty.setraw(master)
                this_rep[name] = await run(os.ttyname(slave), master, nbytes)
            finally:
                os.close(slave)
                os.close(master)
        for name, value in this_rep.items():
            results[name].append(value)
            ratios[name].append(value / this_rep["raw limit"])
    print(f"receive that waits, µs per byte ({nbytes} bytes, {reps} repetitions)")
    for name in CONTENDERS:
        values, ratio = results[name], ratios[name]
        print(
            f"  {name:<24} median {statistics.median(values):6.1f}"
            f"  min {min(values):6.1f}  max {max(values):6.1f}"
            f"  {statistics.median(ratio):5.2f}x raw ({min(ratio):.2f}-{max(ratio):.2f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    trio.run(main, args.bytes, args.reps)
