"""list_ports, wait_for_port and watch_ports on Trio, and on anyio's two backends.

How each part is reached on a machine without USB serial adapters:

- Kernel uevents are real: writing ``change`` to ``/sys/class/tty/ptmx/uevent``
  makes the kernel broadcast a tty event on the netlink socket (ptmx is no
  serial port: the write opens nothing and changes nothing). The ports
  themselves come from a copy of the recorded adapter tree
  (``tests/usb_serial_tree.py``, ``tests/data/usb-serial-tree.md``) whose FT232R
  the test plugs in (restores its ``class/tty`` link) before the event: so the
  test shows that the kernel's event, not a timer, wakes the waiter.
- The inotify fallback and paths are real file-system events: real ptys
  appear and vanish behind symlinks in a ``dev/serial/by-id`` directory.
- The polling fallback runs on Trio's autojump clock.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import trio
import trio.testing
from conftest import fds_not_leaked, open_fds
from usb_serial_tree import shared_tree

import trioserial
import trioserial.anyio
from trioserial import (
    AmbiguousPortError,
    NotASerialPortError,
    PortEvent,
    PortInfo,
    PortNotFoundError,
    _portwatch,
)
from trioserial._portwatch import WatchConfig, _open_netlink

TREE = shared_tree()
TRIGGER = "/sys/class/tty/ptmx/uevent"


def netlink_available() -> bool:
    sock = _open_netlink()
    if sock is not None:
        sock.close()
    return sock is not None


def _uevents_available() -> str | None:
    if not netlink_available():
        return "no NETLINK_KOBJECT_UEVENT socket on this machine"
    if not os.access(TRIGGER, os.W_OK):
        return f"cannot write {TRIGGER} to make the kernel send a uevent (needs root)"
    return None


needs_uevents = pytest.mark.skipif(
    _uevents_available() is not None, reason=str(_uevents_available())
)


def kernel_uevent(path: str = TRIGGER) -> None:
    """Make the kernel broadcast a real ``change`` uevent (for a tty by default)."""
    with open(path, "w") as f:
        f.write("change")


def all_tasks() -> set[trio.lowlevel.Task]:
    tasks, stack = set(), [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is not None:
            tasks.add(task)
            stack += [t for n in task.child_nurseries for t in n.child_tasks]
    return tasks


@attrs.define
class Tree:
    """A copy of the recorded adapter tree whose FT232R can be plugged and unplugged."""

    root: Path
    config: WatchConfig

    @property
    def link(self) -> Path:
        return self.root / "sys" / "class" / "tty" / "ttyUSB0"

    def plug(self) -> None:
        self.link.symlink_to(
            "../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0"
        )

    def unplug(self) -> None:
        self.link.unlink()

    @property
    def device(self) -> str:
        return str(self.root / "dev" / "ttyUSB0")


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "tree"
    shutil.copytree(TREE, root, symlinks=True)
    config = WatchConfig(sysfs=str(root / "sys"), dev=str(root / "dev"), backend="netlink")
    tree = Tree(root, config)
    tree.unplug()
    return tree


@attrs.define
class Pty:
    """A real pty, opened and closed at will."""

    fds: tuple[int, int] | None = None

    def open(self) -> str:
        self.fds = os.openpty()
        return os.ttyname(self.fds[1])

    def close(self) -> None:
        if self.fds is not None:
            for fd in self.fds:
                os.close(fd)
            self.fds = None


@pytest.fixture
def pty() -> Iterator[Pty]:
    pty = Pty()
    yield pty
    pty.close()


def empty_config(tmp_path: Path, backend: str) -> WatchConfig:
    (tmp_path / "sys").mkdir(exist_ok=True)
    (tmp_path / "dev").mkdir(exist_ok=True)
    return WatchConfig(sysfs=str(tmp_path / "sys"), dev=str(tmp_path / "dev"), backend=backend)  # type: ignore[arg-type]


def by_id(tmp_path: Path) -> Path:
    return tmp_path / "dev" / "serial" / "by-id"


# --------------------------------------------------------------- list_ports


async def test_list_ports_reads_the_tree() -> None:
    config = WatchConfig(sysfs=str(TREE / "sys"), dev=str(TREE / "dev"))
    ports = await trioserial.list_ports(_config=config)
    assert [p.usb_id for p in ports] == [
        "2e8a:000a",
        None,
        "0403:6001",
        "0403:6010",
        "0403:6010",
        "10c4:ea60",
    ]
    assert await trioserial.list_ports() == trioserial._sysfs.read_ports()


# ----------------------------------------------------------- kernel uevents


@needs_uevents
async def test_a_kernel_uevent_wakes_wait_for_port(tree: Tree) -> None:
    found: list[PortInfo] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def wait() -> None:
                found.append(
                    await trioserial.wait_for_port(vid=0x0403, pid=0x6001, _config=tree.config)
                )

            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            tree.plug()  # sysfs alone tells nobody: the waiter sleeps on
            await trio.testing.wait_all_tasks_blocked()
            assert not found
            kernel_uevent()
    assert found[0].device == tree.device
    assert found[0].serial_number == "A10K1234"


@needs_uevents
async def test_watch_ports_reports_kernel_uevents(tree: Tree) -> None:
    with trio.fail_after(5):
        async with trioserial.watch_ports(_config=tree.config) as events:
            assert events.backend == "netlink"
            assert tree.device not in [p.device for p in events.ports]
            tree.plug()
            kernel_uevent()
            added = await events.__anext__()
            assert (added.kind, added.port.device, added.port.vid) == ("added", tree.device, 0x0403)
            assert added.port in events.ports
            tree.unplug()
            kernel_uevent()
            removed = await events.__anext__()
            assert removed == PortEvent("removed", added.port)
            assert added.port not in events.ports


@needs_uevents
async def test_uevents_of_other_subsystems_cost_no_scan(tree: Tree) -> None:
    # /dev/null's uevent: subsystem "mem", as harmless as ptmx's.
    other = "/sys/class/mem/null/uevent"
    watch = _portwatch.PortWatch(tree.config)
    try:
        assert watch.fd is not None
        watch.drain()
        watch.scan()  # clears the dirty flag
        kernel_uevent(other)
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(watch.fd)
        assert not watch.drain()
        kernel_uevent()
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(watch.fd)
        assert watch.drain()
    finally:
        watch.close()


# -------------------------------------------------------- inotify and paths


async def test_inotify_fallback_sees_ptys_come_and_go_behind_links(
    tmp_path: Path, pty: Pty
) -> None:
    config = empty_config(tmp_path, "inotify")
    with trio.fail_after(5), fds_not_leaked():
        async with trioserial.watch_ports(_config=config) as events:
            assert (events.backend, events.ports) == ("inotify", [])
            # /dev/serial/by-id does not exist yet: udev makes it with the first adapter.
            by_id(tmp_path).mkdir(parents=True)
            link = by_id(tmp_path) / "usb-Board_1234-if00"
            link.symlink_to(pty.open())
            added = await events.__anext__()
            assert added == PortEvent(
                "added", PortInfo(device=os.readlink(link), by_id=str(link), is_pty=True)
            )
            link.unlink()
            pty.close()
            assert await events.__anext__() == PortEvent("removed", added.port)
            assert events.ports == []


@pytest.mark.parametrize("backend", ["auto", "inotify"])
async def test_wait_for_a_path_that_appears(tmp_path: Path, pty: Pty, backend: str) -> None:
    config = empty_config(tmp_path, backend)
    link = tmp_path / "board"
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            found: list[PortInfo] = []

            async def wait() -> None:
                found.append(await trioserial.wait_for_port(path=str(link), _config=config))

            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            assert not found
            link.symlink_to(pty.open())
    assert found == [PortInfo(device=os.readlink(link), is_pty=True)]


def test_auto_falls_back_where_netlink_or_inotify_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sandbox that refuses the netlink socket cannot be made here without
    # namespaces; the refusal is simulated at the one call that opens it.
    config = empty_config(tmp_path, "auto")
    monkeypatch.setattr(_portwatch, "_open_netlink", lambda: None)
    with fds_not_leaked():
        watch = _portwatch.PortWatch(config)
        assert watch.backend == "inotify"
        watch.close()

        def refused() -> None:
            raise OSError(errno.EMFILE, "too many inotify instances")

        monkeypatch.setattr(_portwatch, "_Inotify", refused)
        watch = _portwatch.PortWatch(config)
        assert (watch.backend, watch.fd) == ("poll", None)
        watch.close()
        with pytest.raises(OSError, match="no NETLINK_KOBJECT_UEVENT socket here"):
            _portwatch.PortWatch(attrs.evolve(config, backend="netlink"))
        with pytest.raises(OSError, match="too many inotify instances"):
            _portwatch.PortWatch(attrs.evolve(config, backend="inotify"))


@pytest.mark.parametrize("cancelled", [False, True])
async def test_inotify_is_closed_off_the_loop(
    tmp_path: Path, pty: Pty, monkeypatch: pytest.MonkeyPatch, cancelled: bool
) -> None:
    # Closing an inotify fd with watches waits for an RCU grace period (up to
    # 25 ms measured here): it must not freeze the loop, and a cancellation
    # must not skip it.
    closers: list[threading.Thread] = []
    real = _portwatch.close_inotify

    def close(fd: int) -> None:
        closers.append(threading.current_thread())
        real(fd)

    monkeypatch.setattr(_portwatch, "close_inotify", close)
    config = empty_config(tmp_path, "inotify")
    link = tmp_path / "board"
    if not cancelled:
        link.symlink_to(pty.open())
    with trio.fail_after(5), fds_not_leaked():
        with trio.move_on_after(0 if cancelled else math.inf):
            await trioserial.wait_for_port(path=str(link), _config=config)
    assert len(closers) == 1
    assert closers[0] is not threading.main_thread()


@pytest.mark.skipif(not netlink_available(), reason="no NETLINK_KOBJECT_UEVENT socket here")
def test_paths_udev_announces_need_no_inotify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = empty_config(tmp_path, "auto")
    inside, outside = str(by_id(tmp_path) / "usb-x"), str(tmp_path / "board")

    def inotify_dirs(path: str) -> bool:
        watch = _portwatch.PortWatch(config, paths=[path])
        try:
            return watch._inotify is not None
        finally:
            watch.close()

    monkeypatch.setattr(_portwatch, "UDEVD_CONTROL", str(tmp_path / "no-udevd"))
    assert inotify_dirs(inside)  # no udevd: nobody announces a link under /dev
    assert inotify_dirs(outside)
    (tmp_path / "udevd-control").touch()
    monkeypatch.setattr(_portwatch, "UDEVD_CONTROL", str(tmp_path / "udevd-control"))
    assert not inotify_dirs(inside)  # udevd's uevent comes once the link is made
    assert inotify_dirs(outside)


async def test_poll_fallback(
    tmp_path: Path, pty: Pty, autojump_clock: trio.testing.MockClock
) -> None:
    config = empty_config(tmp_path, "poll")
    async with trioserial.watch_ports(_config=config) as events:
        assert events.backend == "poll"
        by_id(tmp_path).mkdir(parents=True)
        (by_id(tmp_path) / "x").symlink_to(pty.open())
        start = trio.current_time()
        event = await events.__anext__()
        assert event.kind == "added"
        assert event.port.is_pty
        assert trio.current_time() - start == pytest.approx(1.0)


# ------------------------------------------------------------ wait_for_port


FIXTURE = WatchConfig(sysfs=str(TREE / "sys"), dev=str(TREE / "dev"))


async def test_wait_for_a_present_port_returns_at_once() -> None:
    with trio.testing.assert_checkpoints():
        port = await trioserial.wait_for_port(serial_number="A10K1234", _config=FIXTURE)
    assert port.device == str(TREE / "dev" / "ttyUSB0")
    second = await trioserial.wait_for_port(
        serial_number="FT5XJ2AB", match=lambda p: p.interface_number == 1, _config=FIXTURE
    )
    assert second.device.endswith("ttyUSB2")


async def test_ambiguity_is_an_error_unless_first() -> None:
    with pytest.raises(
        AmbiguousPortError,
        match=r"2 serial ports match vid=0x0403, pid=0x6010: .*if00-port0, .*if01-port0;"
        r".* or pass first=True$",
    ):
        await trioserial.wait_for_port(vid=0x0403, pid=0x6010, _config=FIXTURE)
    port = await trioserial.wait_for_port(vid=0x0403, pid=0x6010, first=True, _config=FIXTURE)
    assert port.interface_number == 0


async def test_timeout(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(
        PortNotFoundError, match=r"^no serial port matching vid=0x1234 appeared within 5 s$"
    ) as caught:
        await trioserial.wait_for_port(vid=0x1234, timeout=5, _config=FIXTURE)
    assert caught.value.errno == errno.ETIMEDOUT
    assert trio.current_time() == pytest.approx(5)
    with pytest.raises(PortNotFoundError, match="within 0 s"):
        await trioserial.wait_for_port(vid=0x1234, timeout=0, _config=FIXTURE)


async def test_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    with pytest.raises(NotASerialPortError, match=r"is not a serial port \(not a tty device\)"):
        await trioserial.wait_for_port(path=str(tmp_path / "file"))
    with pytest.raises(TypeError, match=r"first must be True or False, got 'yes'"):
        await trioserial.wait_for_port(first="yes")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"timeout must be >= 0 seconds \(None: no limit\), got -1"
    ):
        await trioserial.wait_for_port(timeout=-1)
    with pytest.raises(TypeError, match=r"timeout must be a number of seconds or None, got '5'"):
        await trioserial.wait_for_port(timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"vid must be a USB id from 0 to 0xffff"):
        await trioserial.wait_for_port(vid=0x10000)


# ------------------------------------------------------------- cancellation


@pytest.mark.parametrize("backend", ["auto", "inotify", "poll"])
async def test_cancelled_wait_for_port_leaves_no_fd_or_task(tmp_path: Path, backend: str) -> None:
    config = empty_config(tmp_path, backend)
    before = all_tasks()
    fds = open_fds()
    with trio.fail_after(5), fds_not_leaked():
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: trioserial.wait_for_port(path=str(tmp_path / "board"), _config=config)
                )
                await trio.testing.wait_all_tasks_blocked()
                if backend != "poll":
                    assert len(open_fds() - fds) >= 2  # the watch is open: epoll and a source
                scope.cancel()
        assert scope.cancelled_caught
    assert all_tasks() == before


async def test_cancelled_iteration_loses_no_event(tmp_path: Path, pty: Pty) -> None:
    config = empty_config(tmp_path, "inotify")
    by_id(tmp_path).mkdir(parents=True)
    other = Pty()
    a, b = by_id(tmp_path) / "a", by_id(tmp_path) / "b"
    a.symlink_to(pty.open())
    try:
        b.symlink_to(other.open())
        with trio.fail_after(5), fds_not_leaked():
            async with trioserial.watch_ports(_config=config) as events:
                assert [p.by_id for p in events.ports] == [str(a), str(b)]
                with trio.move_on_after(0.01):  # cancelled while waiting
                    await events.__anext__()
                a.unlink()
                b.unlink()  # two changes, one wake-up: the second event waits in line
                assert (await events.__anext__()).port.by_id == str(a)
                with trio.CancelScope() as scope:  # cancelled with that event pending
                    scope.cancel()
                    with pytest.raises(trio.Cancelled):
                        await events.__anext__()
                assert await events.__anext__() == PortEvent(
                    "removed",
                    PortInfo(device=os.ttyname(other.fds[1]), by_id=str(b), is_pty=True),  # type: ignore[index]
                )
                assert events.ports == []
            with pytest.raises(StopAsyncIteration):
                await events.__anext__()
    finally:
        other.close()


# ------------------------------------------------------------------- anyio


def run_on_asyncio(fn: Callable[[], Any]) -> Any:
    return anyio.run(fn, backend="asyncio")


@pytest.mark.parametrize("backend", ["auto", "inotify"])
def test_anyio_on_asyncio(tmp_path: Path, pty: Pty, backend: str) -> None:
    config = empty_config(tmp_path, backend)
    link = by_id(tmp_path) / "usb-x"
    device = pty.open()

    async def main() -> None:
        with anyio.fail_after(5):
            ports = await trioserial.anyio.list_ports(_config=FIXTURE)
            assert len(ports) == 6
            async with trioserial.anyio.watch_ports(_config=config) as events:
                async with anyio.create_task_group() as tg:
                    found: list[PortInfo] = []

                    async def wait() -> None:
                        found.append(
                            await trioserial.anyio.wait_for_port(path=str(link), _config=config)
                        )

                    tg.start_soon(wait)
                    await anyio.wait_all_tasks_blocked()
                    by_id(tmp_path).mkdir(parents=True)
                    link.symlink_to(device)
                assert found[0].is_pty
                if backend == "inotify":
                    assert (await events.__anext__()).kind == "added"
            with anyio.move_on_after(0.01):  # cancelled while waiting: no fd left
                await trioserial.anyio.wait_for_port(vid=1, _config=config)

    with fds_not_leaked():
        run_on_asyncio(main)


async def test_anyio_on_trio(tmp_path: Path, pty: Pty) -> None:
    link = tmp_path / "board"
    link.symlink_to(pty.open())
    with trio.fail_after(5):
        port = await trioserial.anyio.wait_for_port(
            path=str(link), _config=empty_config(tmp_path, "auto")
        )
    assert port == PortInfo(device=os.readlink(link), is_pty=True)


def test_anyio_ports_module_never_imports_trio() -> None:
    from test_layers import PACKAGE, imports

    assert all(
        not m.startswith("trio") or m.startswith("trioserial")
        for m, _ in imports(PACKAGE / "_ports_anyio.py")
    )


# --------------------------------------------------------------- benchmark


async def test_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import ports as bench

    with trio.fail_after(60):
        await bench.main(reps=1, idle=0.05)
    rows = capsys.readouterr().out.splitlines()
    assert any(r.startswith("symlink    wait_for_port") for r in rows), rows
    assert len([r for r in rows if "wait_for_port" in r]) == (1 if _uevents_available() else 2)
