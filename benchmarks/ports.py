"""How soon ``wait_for_port`` sees a device appear, beside polling, and its CPU while idle.

Usage::

    python benchmarks/ports.py [--reps N] [--idle SECONDS]

Latency: a waiter blocks; after a random 0.2-1.5 s "unplugged" spell the
device appears and the time until the waiter returns is taken. Two ways a
device appears, each waited for by every contender:

- ``uevent``: a USB adapter's tty shows up in sysfs (a copy of the recorded
  adapter tree of ``tests/usb_serial_tree.py``) and the kernel announces a tty
  uevent (a real one: ``change`` written to ``/sys/class/tty/ptmx/uevent``;
  needs root, else the row is skipped);
- ``symlink``: a link to a real pty appears (what udev's ``/dev/serial/by-id``
  link, or ``trioserial sim``, does); waited for with ``path=``.

Contenders: ``wait_for_port`` (netlink for ``uevent``, inotify for
``symlink``); a loop that looks every 0.1 s; and the supervised driver's
policy today, looking after 0.1 s, then doubling up to 5 s. The ``symlink``
row of ``wait_for_port`` includes closing its inotify fd (in a worker thread),
which waits for the kernel's RCU grace period: 0 to 25 ms, most of its spread.

Reconnect: the same appearances, timed until a supervised port
(``PySerial.run()``, default backoff 0.1-5 s) is connected: by identity
(``PySerial(vid=, pid=, serial_number=)``) for ``uevent``, by the link's path
for ``symlink``. A fresh ``run()`` starts with the device absent each time.
Beside it, the same supervisor with its device events switched off: what
``run()`` did before it waited on them (the backoff timer alone).

Idle CPU: the process's own user+system time while each waits for a port that
never comes, in ms of CPU per second of waiting, beside a task that only
sleeps (the floor: Trio's own run loop and the measuring task).

Wall-clock numbers on a shared 2-core VM swing with the other processes'
load: read medians, and rerun before believing a single slow row.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import trio
import trio.testing

import trioserial
import trioserial._usb
from trioserial._portwatch import PortWatch, WatchConfig, _open_netlink
from trioserial._supervised import Supervisor
from trioserial._sysfs import read_ports

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from usb_serial_tree import build

TRIGGER = "/sys/class/tty/ptmx/uevent"
FTDI = dict(vid=0x0403, pid=0x6001, serial_number="A10K1234")
Waiter = Callable[[], Awaitable[object]]


class Scene:
    """One kind of appearance: how to reset it, make it happen, and look for it."""

    def __init__(self, kind: str, root: Path, pty: str) -> None:
        self.kind, self.root, self.pty = kind, root, pty
        self.config = WatchConfig(
            sysfs=str(root / "sys"),
            dev=str(root / "dev"),
            backend="netlink" if kind == "uevent" else "inotify",
        )
        self.class_link = root / "sys/class/tty/ttyUSB0"
        self.target = "../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0"
        self.link = root / "board"

    def reset(self) -> None:
        self.class_link.unlink(missing_ok=True)
        self.link.unlink(missing_ok=True)

    def appear(self) -> None:
        if self.kind == "uevent":
            self.class_link.symlink_to(self.target)
            with open(TRIGGER, "w") as f:
                f.write("change")
        else:
            self.link.symlink_to(self.pty)

    def present(self) -> bool:
        """What a polling loop checks: a sysfs scan, or the path."""
        if self.kind == "uevent":
            return any(p.serial_number == FTDI["serial_number"] for p in read_ports(
                sysfs=self.config.sysfs, dev=self.config.dev))  # fmt: skip
        return os.path.exists(self.link)

    async def wait_for_port(self) -> object:
        if self.kind == "uevent":
            return await trioserial.wait_for_port(**FTDI, _config=self.config)  # type: ignore[arg-type]
        return await trioserial.wait_for_port(path=str(self.link), _config=self.config)

    async def poll_fixed(self) -> object:
        while not self.present():  # noqa: ASYNC110 - polling is what is measured here
            await trio.sleep(0.1)
        return True

    async def poll_backoff(self) -> object:
        delay = 0.1
        while True:
            await trio.sleep(delay)
            if self.present():
                return True
            delay = min(delay * 2, 5.0)


def driver(scene: Scene) -> trioserial.PySerial:
    if scene.kind == "uevent":
        return trioserial.PySerial(**FTDI, check_present=False)  # type: ignore[arg-type]
    return trioserial.PySerial(scene.link, check_present=False)


@contextlib.asynccontextmanager
async def timer_only(self: Supervisor, path: str | None) -> AsyncIterator[PortWatch | None]:
    yield None  # no device events: the supervisor sleeps out its backoff


async def reconnect(scene: Scene, rng: random.Random, *, events: bool) -> float:
    """From the device appearing to a fresh ``run()`` being connected, in seconds."""
    scene.reset()
    events_on = Supervisor._device_events
    if not events:
        Supervisor._device_events = timer_only  # type: ignore[method-assign]
    try:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(driver(scene).run)
            await trio.sleep(rng.uniform(0.2, 1.5))
            start = time.perf_counter()
            scene.appear()
            await port.connected.wait_value(True)
            elapsed = time.perf_counter() - start
            nursery.cancel_scope.cancel()
    finally:
        Supervisor._device_events = events_on  # type: ignore[method-assign]
    return elapsed


async def latency(scene: Scene, waiter: Waiter, rng: random.Random) -> float:
    scene.reset()
    done = 0.0

    async def wait() -> None:
        nonlocal done
        await waiter()
        done = time.perf_counter()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(rng.uniform(0.2, 1.5))
        start = time.perf_counter()
        scene.appear()
    return done - start


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def idle_cpu_ms_per_s(waiter: Waiter, seconds: float) -> float:
    """CPU while *waiter* waits, from once it is blocked (its setup not counted)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        before = cpu_seconds()
        await trio.sleep(seconds)
        used = cpu_seconds() - before
        nursery.cancel_scope.cancel()
    return used * 1e3 / seconds


async def main(reps: int, idle: float) -> None:
    rng = random.Random(18)
    controller, device = os.openpty()
    tmp = Path(tempfile.mkdtemp(prefix="trioserial-ports-bench-"))
    try:
        build(tmp / "tree")
        node = tmp / "tree/dev/ttyUSB0"  # the FT232R's node: a real tty to open
        node.unlink()
        node.symlink_to(os.ttyname(device))
        kinds = ["symlink"]
        sock = _open_netlink()
        if sock is not None:
            sock.close()
        if sock is not None and os.access(TRIGGER, os.W_OK):
            kinds.insert(0, "uevent")
        else:
            print("uevent rows skipped: no netlink socket, or cannot write", TRIGGER)
        print(f"{'appearance':<10} {'contender':<22} {'median ms':>10} {'max ms':>8}  "
              f"idle CPU ms/s")  # fmt: skip
        floor = await idle_cpu_ms_per_s(trio.sleep_forever, idle)
        print(f"{'-':<10} {'nothing (sleep_forever)':<22} {'':>10} {'':>8}  {floor:.3f}")
        for kind in kinds:
            scene = Scene(kind, tmp / "tree", os.ttyname(device))
            contenders = {
                "wait_for_port": scene.wait_for_port,
                "poll every 0.1 s": scene.poll_fixed,
                "driver backoff 0.1-5 s": scene.poll_backoff,
            }
            for name, waiter in contenders.items():
                times = [await latency(scene, waiter, rng) * 1e3 for _ in range(reps)]
                scene.reset()
                cpu = await idle_cpu_ms_per_s(waiter, idle)
                print(f"{kind:<10} {name:<22} {statistics.median(times):>10.2f} "
                      f"{max(times):>8.2f}  {cpu:.3f}")  # fmt: skip
            trioserial._usb.USB_CONFIG = scene.config  # where run() looks and listens
            for name, events in (("run() reconnect", True), ("run(), timer only", False)):
                times = [await reconnect(scene, rng, events=events) * 1e3 for _ in range(reps)]
                scene.reset()
                cpu = await idle_cpu_ms_per_s(driver(scene).run, idle) if events else math.nan
                print(f"{kind:<10} {name:<22} {statistics.median(times):>10.2f} "
                      f"{max(times):>8.2f}  {cpu:.3f}")  # fmt: skip
    finally:
        os.close(device)
        os.close(controller)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="appearances per row (default 7)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU sampling")
    args = parser.parse_args()
    trio.run(main, args.reps, args.idle)
