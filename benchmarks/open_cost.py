"""What opening a port costs: the first open in a fresh process, and each open after it.

Usage::

    python benchmarks/open_cost.py [--reps N] [--ports N]

**first open**: a fresh interpreter per repetition imports trio and starts
``trio.run`` (what every Trio program pays, the raw limit too), then times
``import`` of the library plus one open of a pty slave (anyio itself is
imported before, as the program that runs the anyio front end has), in CPU (the
process's own) and wall time. Bytecode is cached in a temporary
``PYTHONPYCACHEPREFIX`` and warmed first, as it is for an installed package
(``PYTHONDONTWRITEBYTECODE``, set on some machines, would otherwise make
every run compile the package again). The raw limit's first open is
``import tty`` + ``os.open`` + ``tty.setraw``.

**per open**: *ports* pty pairs made in one process, then each contender
opens every slave in turn (after one untimed open), the raw limit's pass
and the contender's back to back, CPU per open (the close is not counted).
The ratio is to the raw limit's pass of the same round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Run in a fresh interpreter: trio (and anyio for its front end) and the first
#: run, then the timed import and open.
FIRST_OPEN = """
import os, sys, time, trio
{preamble}
master, slave = os.openpty()
path = os.ttyname(slave)

async def main():
    c0, w0 = time.process_time(), time.perf_counter()
    {body}
    c1, w1 = time.process_time(), time.perf_counter()
    print(c1 - c0, w1 - w0)

trio.run(main)
"""

BODIES = {
    "raw limit": (
        "import tty; fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC); "
        "tty.setraw(fd)"
    ),
    "trioserial": "import trioserial; port = await trioserial.open_serial_port(path)",
    "trioserial.anyio/trio": (
        "import trioserial.anyio; port = await trioserial.anyio.open_serial_port(path)"
    ),
}


def first_open(reps: int) -> dict[str, list[tuple[float, float]]]:
    """(CPU s, wall s) per repetition and contender, in fresh interpreters, interleaved."""
    with tempfile.TemporaryDirectory(prefix="open-cost-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"PYTHONPYCACHEPREFIX": cache, "PYTHONPATH": str(ROOT)}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in BODIES}
        for rep in range(reps + 1):  # the first round writes the bytecode cache
            for name, body in BODIES.items():
                preamble = "import anyio" if "anyio" in name else ""
                code = FIRST_OPEN.format(body=body, preamble=preamble)
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                if rep:
                    results[name].append((float(out[0]), float(out[1])))
        return results


def per_open(nports: int, rounds: int) -> dict[str, list[float]]:
    """CPU µs per open, per round, for the raw limit and each front end."""
    import tty

    import anyio

    import trioserial
    import trioserial.anyio

    pairs = [os.openpty() for _ in range(nports)]
    names = [os.ttyname(slave) for _, slave in pairs]
    flags = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    results: dict[str, list[float]] = {
        "raw limit": [],
        "trioserial": [],
        "trioserial.anyio/trio": [],
    }

    async def raw() -> float:
        t = time.process_time()
        fds = []
        for name in names:
            fd = os.open(name, flags)
            tty.setraw(fd)
            fds.append(fd)
        cpu = time.process_time() - t
        for fd in fds:
            os.close(fd)
        return cpu

    async def front_end(module: object) -> float:
        open_serial_port = module.open_serial_port  # type: ignore[attr-defined]
        await (await open_serial_port(names[0])).aclose()
        t = time.process_time()
        ports = [await open_serial_port(name) for name in names]
        cpu = time.process_time() - t
        for port in ports:
            await port.aclose()
        return cpu

    async def main() -> None:
        for _ in range(rounds):
            for name, module in (
                ("trioserial", trioserial),
                ("trioserial.anyio/trio", trioserial.anyio),
            ):
                results["raw limit"].append(await raw())
                results[name].append(await front_end(module))

    try:
        anyio.run(main, backend="trio")
    finally:
        for master, slave in pairs:
            os.close(master)
            os.close(slave)
    return {name: [cpu / nports * 1e6 for cpu in cpus] for name, cpus in results.items()}


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    values = sorted(v * scale for v in values)
    return (
        f"{statistics.median(values):.{digits}f} ({values[0]:.{digits}f}-{values[-1]:.{digits}f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="fresh processes per contender")
    parser.add_argument(
        "--ports", type=int, default=1000, help="ports per round of the per-open pass"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("first open in a fresh process (import + open), ms, median (range):")
    first = first_open(args.reps)
    for name, runs in first.items():
        cpu, wall = spread([c for c, _ in runs], 1e3), spread([w for _, w in runs], 1e3)
        print(f"  {name:24} CPU {cpu}  wall {wall}")
    print(f"per open, {args.ports} ptys, CPU µs, median (range); ratio to the raw limit's pass:")
    per = per_open(args.ports, max(3, args.reps // 2))
    raw = per["raw limit"]
    for name, cpus in per.items():
        pairs = raw[1::2] if name == "trioserial.anyio/trio" else raw[0::2]
        ratios = [c / r for c, r in zip(cpus, pairs, strict=True)] if name != "raw limit" else [1.0]
        print(f"  {name:24} {spread(cpus, digits=1)} µs  ratio {spread(ratios)}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
