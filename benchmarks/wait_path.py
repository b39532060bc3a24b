"""The cost of a receive or a send that has to wait, in one process, without a device process.

Usage::

    python benchmarks/wait_path.py [--bytes N] [--reps N] [--only receive|send]

**receive**: a receiver task blocks in ``receive``; a writer task in the same
run waits until every other task is blocked, then writes one byte into the
pty master. So every receive takes the waiting path (``EAGAIN``, wait for
readable, read); the figure is CPU µs per byte (the process's own, so the
writer's share is in it, the same for every contender; CPU rather than wall
time, which on a shared machine swings with the neighbours).

**send**: a sender sends 64 KiB blocks, more than the pty takes at once; a
drainer task in the same run waits until the sender is blocked, then empties
the master. So every block takes the send path's waits (``EAGAIN``, wait for
writable, write again); the figure is CPU µs per KiB sent (the drainer's
share is the same for every contender).

With no second process to wake, the numbers are far less noisy than the
round trips of ``run.py``, and they isolate what a front end adds to the wait
itself (cancel scopes, context managers, extra schedule points). The anyio
front end runs on both backends; on asyncio "every other task is blocked"
is read from the tasks' own futures, and the asyncio raw limit
(``loop.add_reader``/``add_writer`` on a bare future) is the baseline
beside Trio's. Ratios are to the Trio raw limit within the same repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import trio
import trio.testing

import trioserial
import trioserial.anyio

Receive = Callable[[int], Awaitable[bytes]]
Send = Callable[[bytes], Awaitable[None]]
BLOCK = 65536


async def all_blocked(backend: str) -> None:
    """Return once every other task of this run waits on something."""
    if backend == "trio":
        await trio.testing.wait_all_tasks_blocked()
        return
    this = asyncio.current_task()
    while True:
        await asyncio.sleep(0)
        others = [task for task in asyncio.all_tasks() if task is not this]
        if all(getattr(task, "_fut_waiter", None) is not None for task in others):
            return


async def receive_per_byte_us(receive: Receive, master: int, nbytes: int, backend: str) -> float:
    async def writer() -> None:
        for _ in range(nbytes):
            await all_blocked(backend)
            os.write(master, b"x")

    start = time.process_time()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer)
        got = 0
        while got < nbytes:  # count bytes: two may arrive in one read
            got += len(await receive(64))
    return (time.process_time() - start) / nbytes * 1e6


async def send_cpu_us_per_kib(send: Send, master: int, nbytes: int, backend: str) -> float:
    os.set_blocking(master, False)
    done = False

    async def drainer() -> None:
        while not done:
            await all_blocked(backend)
            try:
                while os.read(master, BLOCK):
                    pass
            except BlockingIOError:
                pass

    block = bytes(BLOCK)
    blocks = max(1, nbytes // 64)  # --bytes counts receive bytes; sends are 64x bigger
    start = time.process_time()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(drainer)
        for _ in range(blocks):
            await send(block)
        done = True
        tasks.cancel_scope.cancel()
    return (time.process_time() - start) / (blocks * BLOCK / 1024) * 1e6


@dataclass(frozen=True)
class Opened:
    receive: Receive
    send: Send
    close: Callable[[], Awaitable[None]]


def raw_trio(path: str) -> Opened:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)

    async def receive(n: int) -> bytes:
        while True:
            try:
                return os.read(fd, n)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)

    async def send(data: bytes) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                try:
                    sent += os.write(fd, view[sent:])
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(fd)

    async def close() -> None:
        os.close(fd)

    return Opened(receive, send, close)


def raw_asyncio(path: str) -> Opened:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)

    async def wait(add: Callable[..., None], remove: Callable[[int], object]) -> None:
        future = asyncio.get_running_loop().create_future()
        add(fd, future.set_result, None)
        try:
            await future
        finally:
            remove(fd)

    async def receive(n: int) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(fd, n)
            except BlockingIOError:
                await wait(loop.add_reader, loop.remove_reader)

    async def send(data: bytes) -> None:
        loop = asyncio.get_running_loop()
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                try:
                    sent += os.write(fd, view[sent:])
                except BlockingIOError:
                    await wait(loop.add_writer, loop.remove_writer)

    async def close() -> None:
        os.close(fd)

    return Opened(receive, send, close)


async def async_serial(path: str) -> Opened:
    port = await trioserial.open_serial_port(path)
    return Opened(port.receive_some, port.send_all, port.aclose)


async def anyio_stream(path: str) -> Opened:
    stream = await trioserial.anyio.open_serial_port(path)
    return Opened(stream.receive, stream.send, stream.aclose)


async def sync_opener(opener: Callable[[str], Opened], path: str) -> Opened:
    return opener(path)


#: name -> (backend, opener)
CONTENDERS: dict[str, tuple[str, Callable[[str], Awaitable[Opened]]]] = {
    "raw limit": ("trio", lambda path: sync_opener(raw_trio, path)),
    "trioserial": ("trio", async_serial),
    "trioserial.anyio/trio": ("trio", anyio_stream),
    "raw limit/asyncio": ("asyncio", lambda path: sync_opener(raw_asyncio, path)),
    "trioserial.anyio/asyncio": ("asyncio", anyio_stream),
}
PATHS = {
    "receive": "receive that waits, CPU µs per byte",
    "send": "send that waits, CPU µs per KiB",
}


def one(name: str, path_kind: str, nbytes: int) -> float:
    backend, opener = CONTENDERS[name]

    async def main() -> float:
        master, slave = os.openpty()
        try:
            tty.setraw(master)
            port = await opener(os.ttyname(slave))
            try:
                if path_kind == "receive":
                    return await receive_per_byte_us(port.receive, master, nbytes, backend)
                return await send_cpu_us_per_kib(port.send, master, nbytes, backend)
            finally:
                await port.close()
        finally:
            os.close(slave)
            os.close(master)

    return anyio.run(main, backend=backend)


def main(nbytes: int, reps: int, kinds: list[str]) -> None:
    for kind in kinds:
        results: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        ratios: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for rep in range(reps):
            names = list(CONTENDERS)
            names = names[rep % len(names) :] + names[: rep % len(names)]
            this_rep = {name: one(name, kind, nbytes) for name in names}
            for name, value in this_rep.items():
                results[name].append(value)
                ratios[name].append(value / this_rep["raw limit"])
        print(f"{PATHS[kind]} ({nbytes} bytes, {reps} repetitions)")
        for name in CONTENDERS:
            values, ratio = results[name], ratios[name]
            print(
                f"  {name:<26} median {statistics.median(values):6.2f}"
                f"  min {min(values):6.2f}  max {max(values):6.2f}"
                f"  {statistics.median(ratio):5.2f}x raw ({min(ratio):.2f}-{max(ratio):.2f})"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=sorted(PATHS))
    args = parser.parse_args()
    main(args.bytes, args.reps, [args.only] if args.only else list(PATHS))
