"""Our RFC 2217 server (``trioserial serve``) against ser2net, on the same pty, same client.

Usage::

    python benchmarks/server.py [--quick] [--json OUT]

For each server and each workload: a fresh pty pair, the server (its own
process) serving the pty's port side, the device process of
:mod:`benchmarks.device` on the master, and one client, trioserial's own
``rfc2217://`` (``?ign_set_control``, which ser2net on a pty needs), in this
process. Workloads: bulk client-to-device and device-to-client (every byte
value, so ``IAC`` escaping is part of the cost; checksummed), and 1-byte
round trips through the device's echo. Besides wall-clock rates it reports
the server process's own CPU per MB (from ``/proc``), the steadier figure
on a shared machine. One run, both servers interleaved per workload; the
last column is ours / ser2net's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import trio

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trioserial
from benchmarks.device import CHUNK, pattern

ROOT = Path(__file__).resolve().parent.parent
MB = 1e6
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of *pid* so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def start_ours(path: str, number: int, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "trioserial", "serve", path, "--listen", f"127.0.0.1:{number}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def start_ser2net(
    path: str, number: int, workdir: Path, *, chardelay: bool = False
) -> subprocess.Popen[bytes]:
    config = workdir / f"ser2net-{number}.yaml"
    config.write_text(
        "%YAML 1.1\n---\n"
        "connection: &bench\n"
        f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{number}\n"
        "  enable: on\n"
        "  options:\n"
        # By default ser2net waits for a quiet line (a few character times, at
        # least 1 ms) before it forwards serial data to the network; anyone
        # tuning for latency turns that off.
        f"    chardelay: {'true' if chardelay else 'false'}\n"
        f"  connector: serialdev,{path},115200n81,local\n"
    )
    return subprocess.Popen(
        ["ser2net", "-n", "-u", "-c", str(config), "-P", str(workdir / f"ser2net-{number}.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


#: The servers compared, each started on a pty path and a TCP port.
SERVERS: dict[str, Callable[[str, int, Path], subprocess.Popen[bytes]]] = {
    "trioserial": start_ours,
    "ser2net": start_ser2net,
    "ser2net defaults": functools.partial(start_ser2net, chardelay=True),
}


def start_device(mode: str, master: int, args: tuple[object, ...]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.device", mode, str(master), *map(str, args)],
        pass_fds=[master],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@contextlib.asynccontextmanager
async def setup(
    kind: str, mode: str, args: tuple[object, ...], workdir: Path
) -> AsyncIterator[tuple[trioserial.AsyncSerial, subprocess.Popen[str], int]]:
    """A pty, the *kind* server on it, the device in *mode*, a connected client."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    number = free_port()
    server = SERVERS[kind](path, number, workdir)
    device = start_device(mode, master, args)
    os.close(master)
    try:
        with trio.fail_after(20):
            while True:
                try:
                    port = await trioserial.open_serial_port(
                        f"rfc2217://127.0.0.1:{number}?ign_set_control"
                    )
                    break
                except trioserial.SerialPortError:
                    await trio.sleep(0.05)  # bounded poll: the server is starting
        os.close(slave)  # only now: the server has the pty open
        slave = -1
        async with port:
            yield port, device, server.pid
    finally:
        if slave != -1:
            os.close(slave)
        server.kill()
        server.wait()
        device.kill()
        device.wait()
        if device.stdout is not None:
            device.stdout.close()


async def device_line(device: subprocess.Popen[str]) -> list[str]:
    assert device.stdout is not None
    await trio.lowlevel.wait_readable(device.stdout.fileno())
    return device.stdout.readline().split()


async def bulk_tx(kind: str, nbytes: int, workdir: Path) -> dict[str, float]:
    data = pattern(nbytes)
    async with setup(kind, "sink", (nbytes, 0), workdir) as (port, device, pid):
        cpu0 = process_cpu(pid)
        t0 = time.monotonic()
        for i in range(0, nbytes, CHUNK):
            await port.send_all(data[i : i + CHUNK])
        _, got, crc, t_end = await device_line(device)
        cpu = process_cpu(pid) - cpu0
    if int(got) != nbytes or int(crc) != zlib.crc32(data):
        raise RuntimeError(f"{kind} bulk tx: the device got {got} bytes, crc {crc}")
    return {
        "tx_MBps": nbytes / MB / (float(t_end) - t0),
        "tx_cpu_ms_per_MB": cpu * 1e3 / (nbytes / MB),
    }


async def bulk_rx(kind: str, nbytes: int, workdir: Path) -> dict[str, float]:
    got = bytearray()
    async with setup(kind, "source", (nbytes,), workdir) as (port, _device, pid):
        cpu0 = process_cpu(pid)
        t0 = time.monotonic()
        await port.send_all(b"g")
        while len(got) < nbytes:
            got += await port.receive_some(CHUNK)
        elapsed = time.monotonic() - t0
        cpu = process_cpu(pid) - cpu0
    if bytes(got) != pattern(nbytes):
        raise RuntimeError(f"{kind} bulk rx: {len(got)} bytes received, not the ones sent")
    return {"rx_MBps": nbytes / MB / elapsed, "rx_cpu_ms_per_MB": cpu * 1e3 / (nbytes / MB)}


async def echo1(kind: str, count: int, workdir: Path) -> dict[str, float]:
    samples = []
    async with setup(kind, "echo", (), workdir) as (port, _device, _pid):
        for i in range(count + count // 10):
            t0 = time.perf_counter_ns()
            await port.send_all(b"a")
            reply = await port.receive_some()
            t1 = time.perf_counter_ns()
            if reply != b"a":
                raise RuntimeError(f"{kind} echo: got {reply!r}")
            if i >= count // 10:
                samples.append((t1 - t0) / 1e3)
    return {"echo1_p50_us": statistics.median(samples)}


#: (key, label, unit, higher is better)
ROWS = [
    ("tx_MBps", "bulk client -> device", "MB/s", True),
    ("rx_MBps", "bulk device -> client", "MB/s", True),
    ("echo1_p50_us", "1 B round trip p50", "µs", False),
    ("tx_cpu_ms_per_MB", "server CPU, client -> device", "ms/MB", False),
    ("rx_cpu_ms_per_MB", "server CPU, device -> client", "ms/MB", False),
]


async def run(quick: bool) -> dict[str, dict[str, float]]:
    nbytes = 1_000_000 if quick else 16_000_000
    count = 200 if quick else 3000
    results: dict[str, dict[str, float]] = {kind: {} for kind in SERVERS}
    workloads: list[Callable[[str, Path], Awaitable[dict[str, float]]]] = [
        lambda kind, d: bulk_tx(kind, nbytes, d),
        lambda kind, d: bulk_rx(kind, nbytes, d),
        lambda kind, d: echo1(kind, count, d),
    ]
    with tempfile.TemporaryDirectory(prefix="trioserial-server-bench-") as tmp:
        for workload in workloads:
            for kind in SERVERS:  # interleaved: a noisy neighbour hurts both alike
                results[kind].update(await workload(kind, Path(tmp)))
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    """One row per measure; the ratio is ours / ser2net's (chardelay off, its fastest)."""
    names = list(SERVERS)
    lines = [f"{'':32}" + "".join(f"{name:>19}" for name in names) + f"{'ratio':>8}"]
    for key, label, unit, _higher in ROWS:
        ours, theirs = results["trioserial"][key], results["ser2net"][key]
        ratio = ours / theirs if theirs else float("nan")
        cells = "".join(f"{results[name][key]:19.1f}" for name in names)
        lines.append(f"{label + ' (' + unit + ')':32}{cells}{ratio:7.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 MB and 200 round trips")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args()
    if shutil.which("ser2net") is None:
        raise SystemExit("ser2net is not installed (apt-get install ser2net)")
    results = trio.run(run, args.quick)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
