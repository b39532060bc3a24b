"""ZMODEM over a pty pair: our sender and receiver against lrzsz's, as rate ratios in one run.

Usage::

    python benchmarks/zmodem.py [--size-mb N] [--reps N]

socat joins two raw ptys (a null-modem cable with no baud-rate limit, so
the protocols' own costs show). Three rows, each the best of ``--reps``:

- ``sz -> rz``: lrzsz both ends, the reference;
- ``zmodem_send -> rz``: our sender into lrzsz's receiver;
- ``sz -> zmodem_receive``: lrzsz's sender into our receiver.

A ratio is our rate over the reference's (1.0: as fast as lrzsz; the
issue's target is 0.9 or better). Every run checks the received file. A
row's time ends when the sender is done (it has the receiver's ZFIN, sent
once the file is complete), not when the receiver gives up waiting for an
"OO" that lrzsz's exit can discard on a pty (see :func:`reap_rz`).

Beside each rate, the CPU time each end used per MiB (lrzsz's from
``wait4``, ours from ``getrusage`` of this process, worker threads
included), the best of the repetitions. Wall-clock rates on a shared
machine swing widely between runs; the CPU figures much less, and they show
which end is the bottleneck.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import trio

from trioserial import open_serial_port
from trioserial.transfer import zmodem_receive, zmodem_send


@contextlib.contextmanager
def cable(workdir: Path) -> Iterator[tuple[str, str]]:
    """Two raw ptys joined by socat, linked as ``workdir/a`` and ``workdir/b``."""
    a, b = workdir / "a", workdir / "b"
    process = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if b"starting data transfer loop" in line:
                break
        else:
            raise RuntimeError("socat did not start")
        # Both ends stay open here too, as a terminal keeps its tty open: when the
        # last holder of a pty end closes it, socat reads EIO and may drop what was
        # written last (sz's "OO"; rz then waits 3 x 10 s for it, ours 0.5 s).
        held = [os.open(end, os.O_RDWR | os.O_NOCTTY) for end in (a, b)]
        try:
            yield str(a), str(b)
        finally:
            for fd in held:
                os.close(fd)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert process.stderr is not None
        process.stderr.close()


def lrzsz(tty: str, args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    fd = os.open(tty, os.O_RDWR | os.O_NOCTTY)
    try:
        return subprocess.Popen(
            args, stdin=fd, stdout=fd, stderr=subprocess.DEVNULL, cwd=cwd, start_new_session=True
        )
    finally:
        os.close(fd)


def fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def check(received: Path, digest: str) -> None:
    got = hashlib.sha256(received.read_bytes()).hexdigest()
    if got != digest:
        raise RuntimeError(f"{received} arrived corrupted")


@attrs.frozen
class Run:
    """One transfer: wall seconds, and CPU seconds of the sending and receiving ends."""

    seconds: float
    sender_cpu: float
    receiver_cpu: float


def reap(
    process: subprocess.Popen[bytes], timeout: float = 600, *, stopped_ok: bool = False
) -> tuple[float, float]:
    """Wait for an lrzsz *process*: (its CPU seconds, when it ended).

    Raises if it failed, or if it was still running after *timeout* seconds
    (then stopped), unless *stopped_ok*.
    """
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    ended = time.perf_counter()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode and not (stopped_ok and process.returncode == -signal.SIGKILL):
        raise RuntimeError(f"{process.args!r} failed with status {process.returncode}")
    return usage.ru_utime + usage.ru_stime, ended


def reap_rz(rz: subprocess.Popen[bytes]) -> float:
    """rz's CPU seconds, once the sender is done: rz may wait 30 s for an "OO" that is gone.

    lrzsz flushes its tty's queues as it exits, and on a pty that discards
    what ``sz`` wrote last if socat had not read it yet: its "OO". ``rz``
    then sends ZFIN three times, 10 s apart. The file is complete before
    (and checked), so an ``rz`` still waiting after a second is stopped.
    """
    return reap(rz, timeout=1.0, stopped_ok=True)[0]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sz_to_rz(src: Path, work: Path) -> Run:
    dst = fresh(work / "dst")
    with cable(work) as (a, b):
        start = time.perf_counter()
        # sz first: started second, it flushes rz's first ZRINIT from its input.
        sz = lrzsz(a, ["sz", "-b", src.name], src.parent)
        rz = lrzsz(b, ["rz", "-b"], dst)
        sender, ended = reap(sz)
        return Run(ended - start, sender, reap_rz(rz))


def ours_to_rz(src: Path, work: Path) -> Run:
    dst = fresh(work / "dst")

    async def main(a: str, b: str) -> Run:
        async with await open_serial_port(a) as port:
            start, cpu = time.perf_counter(), own_cpu()
            rz = lrzsz(b, ["rz", "-b"], dst)
            await zmodem_send(port, [src])
            ended, sender = time.perf_counter(), own_cpu() - cpu
            receiver, _ = await trio.to_thread.run_sync(reap, rz)
            return Run(ended - start, sender, receiver)

    with cable(work) as (a, b):
        return trio.run(main, a, b)


def sz_to_ours(src: Path, work: Path) -> Run:
    dst = fresh(work / "dst")

    async def main(a: str, b: str) -> Run:
        async with await open_serial_port(a) as port:
            start, cpu = time.perf_counter(), own_cpu()
            sz = lrzsz(b, ["sz", "-b", src.name], src.parent)
            result: list[tuple[float, float]] = []

            async def wait_sz() -> None:
                result.append(await trio.to_thread.run_sync(reap, sz))

            async with trio.open_nursery() as nursery:
                # Reaped meanwhile: its end is the row's end (our receiver may then
                # wait up to half a second for an "OO" that lrzsz's exit discarded).
                nursery.start_soon(wait_sz)
                await zmodem_receive(port, dst)
                receiver = own_cpu() - cpu
            sender, ended = result[0]
            return Run(ended - start, sender, receiver)

    with cable(work) as (a, b):
        return trio.run(main, a, b)


ROWS = {
    "sz -> rz": sz_to_rz,
    "zmodem_send -> rz": ours_to_rz,
    "sz -> zmodem_receive": sz_to_ours,
}


def measure(size: int, reps: int) -> dict[str, Run]:
    """Per row, the best of *reps* runs with a *size*-byte random file (each figure's own best)."""
    runs: dict[str, list[Run]] = {name: [] for name in ROWS}
    with tempfile.TemporaryDirectory(prefix="trioserial-zmodem-bench-") as tmp:
        work = Path(tmp)
        src = fresh(work / "src") / "payload.bin"
        data = random.Random(17).randbytes(size)
        src.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        for _ in range(reps):
            for name, row in ROWS.items():  # interleaved: drift hits every row alike
                runs[name].append(row(src, work))
                check(work / "dst" / src.name, digest)
    return {
        name: Run(
            min(r.seconds for r in done),
            min(r.sender_cpu for r in done),
            min(r.receiver_cpu for r in done),
        )
        for name, done in runs.items()
    }


def main(argv: list[str] | None = None) -> dict[str, Run]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=16.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    size = int(args.size_mb * (1 << 20))
    best = measure(size, args.reps)
    reference = best["sz -> rz"].seconds
    mib = size / (1 << 20)
    print(f"ZMODEM, {mib:g} MiB over a socat pty pair, best of {args.reps}")
    print(f"  {'':22} {'wall':>9} {'rate':>11} {'ratio':>6}   CPU ms/MiB: sender receiver")
    for name, run in best.items():
        rate = size / run.seconds / 1e6
        print(
            f"  {name:22} {run.seconds:7.3f} s {rate:6.2f} MB/s {reference / run.seconds:6.2f}"
            f"   {run.sender_cpu / mib * 1e3:19.1f} {run.receiver_cpu / mib * 1e3:8.1f}"
        )
    return best


if __name__ == "__main__":
    main()
