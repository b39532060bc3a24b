"""ZMODEM over a pty pair: our sender and receiver against lrzsz's, as rate ratios in one run.

Usage::

    python benchmarks/zmodem.py [--size-mb N] [--reps N]

socat joins two raw ptys (a null-modem cable with no baud-rate limit, so
the protocols' own costs show). Three rows, each the best of ``--reps``:

- ``sz -> rz``: lrzsz both ends, the reference;
- ``zmodem_send -> rz``: our sender into lrzsz's receiver;
- ``sz -> zmodem_receive``: lrzsz's sender into our receiver.

A ratio is our rate over the reference's (1.0: as fast as lrzsz; the
issue's target is 0.9 or better). Every run checks the received file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

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
        yield str(a), str(b)
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


def sz_to_rz(src: Path, work: Path) -> float:
    dst = fresh(work / "dst")
    with cable(work) as (a, b):
        start = time.perf_counter()
        # sz first: started second, it flushes rz's first ZRINIT from its input
        # and (seen here) the pair can then sit out lrzsz's 30 s timeout.
        sz = lrzsz(a, ["sz", "-b", src.name], src.parent)
        rz = lrzsz(b, ["rz", "-b"], dst)
        if sz.wait(600) or rz.wait(600):
            raise RuntimeError("sz -> rz failed")
        return time.perf_counter() - start


def ours_to_rz(src: Path, work: Path) -> float:
    dst = fresh(work / "dst")

    async def main(a: str, b: str) -> float:
        async with await open_serial_port(a) as port:
            start = time.perf_counter()
            rz = lrzsz(b, ["rz", "-b"], dst)
            await zmodem_send(port, [src])
            if await trio.to_thread.run_sync(rz.wait, 600):
                raise RuntimeError("zmodem_send -> rz failed")
            return time.perf_counter() - start

    with cable(work) as (a, b):
        return trio.run(main, a, b)


def sz_to_ours(src: Path, work: Path) -> float:
    dst = fresh(work / "dst")

    async def main(a: str, b: str) -> float:
        async with await open_serial_port(a) as port:
            start = time.perf_counter()
            sz = lrzsz(b, ["sz", "-b", src.name], src.parent)
            await zmodem_receive(port, dst)
            if await trio.to_thread.run_sync(sz.wait, 600):
                raise RuntimeError("sz -> zmodem_receive failed")
            return time.perf_counter() - start

    with cable(work) as (a, b):
        return trio.run(main, a, b)


def measure(size: int, reps: int) -> dict[str, float]:
    """Best seconds per row for a *size*-byte random file."""
    rows = {
        "sz -> rz": sz_to_rz,
        "zmodem_send -> rz": ours_to_rz,
        "sz -> zmodem_receive": sz_to_ours,
    }
    best = dict.fromkeys(rows, float("inf"))
    with tempfile.TemporaryDirectory(prefix="trioserial-zmodem-bench-") as tmp:
        work = Path(tmp)
        src = fresh(work / "src") / "payload.bin"
        data = random.Random(17).randbytes(size)
        src.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        for _ in range(reps):
            for name, row in rows.items():  # interleaved: drift hits every row alike
                best[name] = min(best[name], row(src, work))
                check(work / "dst" / src.name, digest)
    return best


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=16.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    size = int(args.size_mb * (1 << 20))
    best = measure(size, args.reps)
    reference = best["sz -> rz"]
    print(f"ZMODEM, {size / (1 << 20):g} MiB over a socat pty pair, best of {args.reps}")
    for name, seconds in best.items():
        rate = size / seconds / 1e6
        print(f"  {name:22} {seconds:7.3f} s  {rate:7.2f} MB/s  ratio {reference / seconds:5.2f}")
    return best


if __name__ == "__main__":
    main()
