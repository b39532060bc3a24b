"""``await nursery.start(driver.run)``: supervision, unplug and replug.

An unplug is simulated for real: closing a pty's master (``os.openpty``), or
killing socat, whose pty links then vanish, and starting it again with the
same link paths (the replug). Readiness is always an event: socat's "starting
data transfer loop" line, ``connected``/``last_error`` transitions; never a
sleep.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
import usb_serial_tree
from conftest import GatedOpen

import trioserial._driver
import trioserial._supervised
import trioserial._usb
from trioserial import (
    AsyncSerial,
    DeviceDisconnectedError,
    NotASerialPortError,
    PortNotFoundError,
    PySerial,
    SerialPortError,
    SupervisedStream,
    open_serial_port,
)
from trioserial._core import PortCore
from trioserial._options import OpenOptions
from trioserial._port import TtyPort
from trioserial._portwatch import WatchConfig
from trioserial._settings import ModemLines, SerialSettings
from trioserial.testing import FakeModem, PtyDevice


def fast(driver: PySerial) -> functools.partial[Coroutine[Any, Any, None]]:
    """``driver.run`` retrying every 10 to 50 ms, so unplug tests are quick."""
    return functools.partial(driver.run, initial_backoff=0.01, max_backoff=0.05)


def fd_is_open(fd: int) -> bool:
    return os.path.exists(f"/proc/self/fd/{fd}")


def real(path: Path) -> str:
    return os.path.realpath(path)


@asynccontextmanager
async def socat(a: Path, b: Path) -> AsyncIterator[trio.Process]:
    """Run ``socat`` joining two ptys linked at *a* and *b*; kill it on exit."""
    proc = await trio.lowlevel.open_process(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        log = b""
        with trio.fail_after(10):
            while b"starting data transfer loop" not in log:
                chunk = await proc.stderr.receive_some()
                assert chunk, f"socat exited: {log.decode(errors='replace')}"
                log += chunk
        yield proc
    finally:
        proc.terminate()
        with trio.CancelScope(shield=True):
            await proc.wait()
            await proc.stderr.aclose()


async def receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    data = b""
    with trio.fail_after(5):
        while len(data) < n:
            chunk = await stream.receive_some(n - len(data))
            assert chunk, f"end of stream after {data!r}"
            data += chunk
    return data


async def wait_connected(port: SupervisedStream, value: bool = True) -> None:
    with trio.fail_after(10):
        await port.connected.wait_value(value)


# --------------------------------------------------------------- on a pty


async def test_run_hands_back_a_connected_stream(pty: tuple[str, PtyDevice]) -> None:
    path, device = pty
    driver = PySerial(path)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(driver.run)
        assert isinstance(port, SupervisedStream)
        assert port.connected.value
        assert port.connect_count == 1
        assert port.last_error.value is None
        assert port.modem_lines.value is None  # a pty has none
        assert isinstance(port.serial, AsyncSerial)
        await port.send_all(b"hello")
        assert await receive_exactly(device, 5) == b"hello"
        await device.send_all(b"world")
        assert await receive_exactly(port, 5) == b"world"
        assert port.statistics().bytes_sent == 5
        assert port.statistics().bytes_received == 5
        nursery.cancel_scope.cancel()
    assert not port.connected.value
    assert port.serial is None
    assert await port.receive_some() == b""  # supervision stopped: end of stream
    with pytest.raises(trio.ClosedResourceError):
        await port.send_all(b"late")


def unplug(link: Path, device: PtyDevice) -> None:
    """Unplug the device behind *link*: its name goes, then the pty master closes.

    The supervisor retries by name, so the name must go first: a bare
    ``/dev/pts/N`` is soon reused by someone else's pty (another test
    process), and reopening that would take over a stranger's port.
    """
    link.unlink()
    device.hang_up()


async def test_hangup_is_published_and_retried(pty: tuple[str, PtyDevice], tmp_path: Path) -> None:
    pts, device = pty
    path = tmp_path / "ttyUSB0"
    path.symlink_to(pts)
    driver = PySerial(path)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(fast(driver))
        unplug(path, device)  # the pty master closes: what an unplug looks like
        await wait_connected(port, False)
        error = port.last_error.value
        assert isinstance(error, OSError)
        assert str(path) in str(error)
        # The pty is gone for good: every retry fails, and says so.
        with trio.fail_after(5):
            retry, previous = await port.last_error.wait_transition()
            again, _ = await port.last_error.wait_transition()
        assert previous is error
        assert isinstance(retry, OSError)
        assert isinstance(again, OSError)
        assert again is not retry
        assert not port.connected.value
        nursery.cancel_scope.cancel()


async def test_cancelling_the_nursery_closes_the_port_and_ends_receivers(
    pty: tuple[str, PtyDevice], no_fd_leaks: None
) -> None:
    path, device = pty
    driver = PySerial(path)
    received: list[bytes] = []
    got_all = trio.Event()

    async def reader(port: SupervisedStream) -> None:
        # Outside the supervisor's nursery, as an application's tasks are.
        while chunk := await port.receive_some():
            received.append(chunk)
            if sum(map(len, received)) == 10:
                got_all.set()
        received.append(b"<eof>")

    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(driver.run)
            fd = port.serial.fileno() if port.serial else -1
            outer.start_soon(reader, port)
            await device.send_all(b"last words")
            with trio.fail_after(5):
                await got_all.wait()
            nursery.cancel_scope.cancel()
        assert not fd_is_open(fd)
    assert b"".join(received) == b"last words<eof>"
    with trio.fail_after(5):
        assert await device.receive_some() == b""  # the device saw the port close


async def test_buffer_is_bounded_and_loses_nothing(pty: tuple[str, PtyDevice]) -> None:
    path, device = pty
    driver = PySerial(path)
    data = bytes(range(256)) * 4
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(driver.run, buffer_size=16))
        await device.send_all(data)  # 1 KiB, and nobody reads for now
        await trio.testing.wait_all_tasks_blocked()
        assert port.buffered <= 16  # the rest waits in the kernel (or the device)
        got = b""
        with trio.fail_after(5):
            while len(got) < len(data):
                got += await port.receive_some(7)
                assert port.buffered <= 16
        assert got == data
        nursery.cancel_scope.cancel()


async def test_cancelled_receive_consumes_nothing(pty: tuple[str, PtyDevice]) -> None:
    path, device = pty
    async with trio.open_nursery() as nursery:
        port = await nursery.start(PySerial(path).run)
        with trio.CancelScope() as scope:
            scope.cancel()
            await port.receive_some()  # cancelled before it could take anything
        await device.send_all(b"kept")
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0):  # data is there, but the cancel comes first
            await port.receive_some()
            raise AssertionError("a cancelled receive returned")  # pragma: no cover
        assert await receive_exactly(port, 4) == b"kept"
        nursery.cancel_scope.cancel()


async def test_driver_close_from_a_thread_stops_run(
    pty: tuple[str, PtyDevice], no_fd_leaks: None
) -> None:
    path, _ = pty
    driver = PySerial(path)
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(driver.run)
        fd = port.serial.fileno() if port.serial else -1

        async def reader() -> None:
            got.append(await port.receive_some())

        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()

        def close() -> bool:
            assert threading.current_thread() is not threading.main_thread()
            driver.close()
            return fd_is_open(fd)

        with trio.fail_after(5):
            assert await trio.to_thread.run_sync(close) is False
    # run() returned by itself (the nursery would otherwise never exit).
    assert got == [b""]


async def test_close_while_the_first_open_runs(
    pty: tuple[str, PtyDevice], gated_open: GatedOpen, no_fd_leaks: None
) -> None:
    driver = PySerial(pty[0])
    started: list[SupervisedStream] = []

    async def start(nursery: trio.Nursery) -> None:
        started.append(await nursery.start(driver.run))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start, nursery)
        await gated_open.wait_entered()
        driver.close()  # the open cannot be interrupted ...
        gated_open.release()  # ... and its fd is closed as soon as it returns
    [port] = started
    assert not port.connected.value
    assert port.connect_count == 0
    assert await port.receive_some() == b""


async def test_aclose_stops_run(pty: tuple[str, PtyDevice]) -> None:
    path, _ = pty
    async with trio.open_nursery() as nursery:
        port = await nursery.start(PySerial(path).run)
        await port.aclose()
        await port.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await port.receive_some()


async def test_first_open_error_comes_from_start(tmp_path: Path) -> None:
    path = tmp_path / "not-a-tty"
    path.write_text("")
    driver = PySerial(path, check_present=False)
    async with trio.open_nursery() as nursery:
        with pytest.raises(NotASerialPortError):
            await nursery.start(driver.run)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"initial_backoff": 0}, ValueError, "initial_backoff must be > 0 seconds, got 0"),
        ({"max_backoff": "1"}, TypeError, "max_backoff must be a number of seconds, got '1'"),
        (
            {"initial_backoff": 2, "max_backoff": 1},
            ValueError,
            "max_backoff must be >= initial_backoff",
        ),
        ({"buffer_size": 0}, ValueError, "buffer_size must be an int >= 1, got 0"),
        (
            {"modem_poll_interval": -1},
            ValueError,
            "modem_poll_interval must be > 0 seconds, got -1",
        ),
    ],
)
async def test_bad_run_options(
    pty: tuple[str, PtyDevice], kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(error, match=re.escape(message)):
            await nursery.start(functools.partial(PySerial(pty[0]).run, **kwargs))  # type: ignore[arg-type]


async def test_backoff_doubles_up_to_the_cap_and_starts_over(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "ttyACM0"  # absent: the board is not powered yet
    driver = PySerial(path, check_present=False)
    attempts: list[float] = []

    async def watch(port: SupervisedStream, n: int) -> None:
        for _ in range(n):
            await port.last_error.wait_transition()
            attempts.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        port = await nursery.start(
            functools.partial(driver.run, initial_backoff=0.1, max_backoff=1.0)
        )
        assert not port.connected.value
        assert isinstance(port.last_error.value, PortNotFoundError)
        await watch(port, 6)
        assert [round(t - start, 6) for t in attempts] == [0.1, 0.3, 0.7, 1.5, 2.5, 3.5]
        # The board powers up: its device node appears, and the device event
        # (inotify, the link appearing) wakes the supervisor at once: on the
        # autojump clock, no time passes (the next poll would be at 4.5 s).
        master, slave = os.openpty()
        os.symlink(os.ttyname(slave), path)
        os.close(slave)
        device = PtyDevice(master, str(path))
        await port.connected.wait_value(True)
        assert trio.current_time() - start == pytest.approx(3.5)
        # Unplugged again: the backoff starts over from initial_backoff.
        unplug(path, device)
        await port.connected.wait_value(False)
        hangup = trio.current_time()
        attempts.clear()
        await watch(port, 3)
        assert [round(t - hangup, 6) for t in attempts] == [0.1, 0.3, 0.7]
        nursery.cancel_scope.cancel()


async def test_reconnect_is_driven_by_the_device_appearing(
    tmp_path: Path, no_fd_leaks: None
) -> None:
    # A backoff of 1000 s: only the device event (inotify sees the link to
    # the new pty appear) can bring the port back within the deadline.
    path = tmp_path / "ttyACM0"
    driver = PySerial(path, check_present=False)
    run = functools.partial(driver.run, initial_backoff=1000, max_backoff=1000)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(run)
        for n in (1, 2):
            assert not port.connected.value
            master, slave = os.openpty()
            os.symlink(os.ttyname(slave), path)
            os.close(slave)
            async with PtyDevice(master, str(path)) as device:
                await wait_connected(port, True)
                assert port.connect_count == n
                await port.send_all(b"hi")
                assert await receive_exactly(device, 2) == b"hi"
                unplug(path, device)
                await wait_connected(port, False)
        nursery.cancel_scope.cancel()


async def test_cancelled_while_away_leaves_no_fd(tmp_path: Path, no_fd_leaks: None) -> None:
    # The watch's netlink, inotify and epoll fds are the supervisor's own:
    # cancelling it while it waits for the device closes them all.
    driver = PySerial(tmp_path / "ttyACM0", check_present=False)
    with trio.move_on_after(0.05):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(driver.run)
            assert not port.connected.value
            await trio.sleep_forever()
    assert await port.receive_some() == b""


async def test_dtr_rts_act_on_the_supervised_handle(
    pty: tuple[str, PtyDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = FakeModem(loopback=True)
    opened: list[PortCore] = []

    def open_with_modem(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        core = TtyPort.open(url, settings, options, ioctl=model)  # the real pty, fake lines
        opened.append(core)
        return core

    monkeypatch.setattr(trioserial._driver, "open_core", open_with_modem)
    driver = PySerial(pty[0])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(driver.run)
        assert port.modem_lines.value == ModemLines()
        await trio.to_thread.run_sync(driver.set_dtr, True)
        driver.set_rts(True)
        assert len(opened) == 1
        assert port.modem_lines.value == ModemLines(dtr=True, rts=True, dsr=True, cts=True)
        nursery.cancel_scope.cancel()


async def test_supervised_cps(
    pty: tuple[str, PtyDevice], autojump_clock: trio.testing.MockClock
) -> None:
    path, device = pty
    async with trio.open_nursery() as nursery:
        port = await nursery.start(PySerial(path, cps=10).run)
        start = trio.current_time()
        await port.send_all(b"0123456789A")
        assert trio.current_time() - start == pytest.approx(1.0)
        with trio.move_on_after(0.35):  # characters at +0.1, +0.2, +0.3
            await port.send_all(b"BCDEFG")
        assert port.statistics().bytes_sent == 14
        got = b""
        while len(got) < 14:
            got += await device.receive_some()
        assert got == b"0123456789ABCD"
        nursery.cancel_scope.cancel()


async def test_modem_lines_are_watched_when_asked(
    pty: tuple[str, PtyDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = FakeModem(loopback=False)

    def open_with_modem(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        return TtyPort.open(url, settings, options, ioctl=model)

    monkeypatch.setattr(trioserial._driver, "open_core", open_with_modem)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            functools.partial(PySerial(pty[0]).run, modem_poll_interval=0.001)
        )
        assert port.modem_lines.value == ModemLines()
        model.set_inputs(cd=True)  # carrier comes up
        with trio.fail_after(5):
            await port.modem_lines.wait_value(lambda lines: lines is not None and lines.cd)
        model.set_inputs(cd=False, ri=True)
        with trio.fail_after(5):
            await port.modem_lines.wait_value(ModemLines(ri=True))
        nursery.cancel_scope.cancel()


async def test_replug_follows_the_usb_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_fd_leaks: None
) -> None:
    # USB enumeration is the one thing a pty cannot show: the adapters are
    # read from the recorded sysfs tree (tests/usb_serial_tree.py), whose
    # FT232R (0403:6001, serial A10K1234) we renumber from ttyUSB0 to ttyUSB5
    # as a replug without udev would; its device nodes are links to real ptys.
    root = tmp_path / "tree"
    shutil.copytree(usb_serial_tree.shared_tree(), root, symlinks=True)
    monkeypatch.setattr(
        trioserial._usb, "USB_CONFIG", WatchConfig(sysfs=str(root / "sys"), dev=str(root / "dev"))
    )
    tty = root / "sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0"
    first_master, first_slave = os.openpty()
    first = root / "dev" / "ttyUSB0"
    first.unlink()
    first.symlink_to(os.ttyname(first_slave))
    os.close(first_slave)
    async with PtyDevice(first_master, str(first)) as device, trio.open_nursery() as nursery:
        port = await nursery.start(fast(PySerial(first)))
        master, slave = os.openpty()  # made first, so it cannot reuse the old number
        pts = os.ttyname(slave)
        os.close(slave)
        (root / "sys/class/tty/ttyUSB0").unlink()  # the kernel forgets ttyUSB0
        unplug(first, device)
        await wait_connected(port, False)
        async with PtyDevice(master, pts) as replugged:
            (tty / "uevent").write_text("MAJOR=188\nMINOR=5\nDEVNAME=ttyUSB5\n")
            (root / "sys/class/tty/ttyUSB5").symlink_to(f"../../{tty.relative_to(root / 'sys')}")
            (root / "dev" / "ttyUSB5").symlink_to(pts)  # the event that wakes the supervisor
            await wait_connected(port, True)
            assert port.path == str(root / "dev" / "ttyUSB5")
            await port.send_all(b"found you")
            assert await receive_exactly(replugged, 9) == b"found you"
            nursery.cancel_scope.cancel()


def test_usb_identity_tells_the_ports_of_a_dual_adapter_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = usb_serial_tree.shared_tree()
    monkeypatch.setattr(
        trioserial._usb, "USB_CONFIG", WatchConfig(sysfs=str(root / "sys"), dev=str(root / "dev"))
    )
    # The FT2232H's two ports share one serial number; the interface tells them apart.
    second = trioserial._usb.usb_identity(str(root / "dev" / "ttyUSB2"))
    assert second == trioserial._usb.UsbIdentity(0x0403, 0x6010, "FT5XJ2AB", 1)
    assert trioserial._usb.find_usb_port(second) == str(root / "dev" / "ttyUSB2")
    by_id = root / "dev/serial/by-id/usb-Raspberry_Pi_Pico_E6614103E7176D2F-if00"
    pico = trioserial._usb.usb_identity(str(by_id))
    assert pico == trioserial._usb.UsbIdentity(0x2E8A, 0x000A, "E6614103E7176D2F", 0)
    assert trioserial._usb.usb_identity(str(root / "dev" / "ttyS0")) is None  # not USB
    assert trioserial._usb.find_usb_port(attrs.evolve(pico, serial_number="OTHER")) is None


# ------------------------------------------------------- unplug and replug


async def test_unplug_and_replug_with_socat(tmp_path: Path, no_fd_leaks: None) -> None:
    a, b = tmp_path / "ttyDUT", tmp_path / "ttyHOST"
    driver = PySerial(a, check_present=False)
    waiting: list[bytes] = []
    got_yes = trio.Event()
    async with trio.open_nursery() as nursery:
        async with socat(a, b):
            port = await nursery.start(fast(driver))
            async with await open_serial_port(b) as device:
                await device.send_all(b"boot\n")
                assert await receive_exactly(port, 5) == b"boot\n"

                async def receiver() -> None:
                    waiting.append(await port.receive_some())
                    got_yes.set()

                nursery.start_soon(receiver)  # blocked in receive across the unplug
                await trio.testing.wait_all_tasks_blocked()
        # socat is gone: the links vanish, our fd hangs up.
        await wait_connected(port, False)
        assert port.connect_count == 1
        assert waiting == []

        async def send_while_unplugged() -> None:
            await port.send_all(b"are you back?")

        nursery.start_soon(send_while_unplugged)
        async with socat(a, b):  # the replug, at the same path
            await wait_connected(port, True)
            assert port.connect_count == 2
            async with await open_serial_port(b) as device:
                assert await receive_exactly(device, 13) == b"are you back?"
                await device.send_all(b"yes")
                with trio.fail_after(5):
                    await got_yes.wait()
                assert waiting == [b"yes"]
            nursery.cancel_scope.cancel()


async def test_replug_follows_the_by_id_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured with the kernel name (ttyUSB0); the replugged adapter gets
    # another (ttyUSB1), and udev points its /dev/serial/by-id link there.
    # Here the kernel names are links to socat's ptys, and by-id a directory
    # we stand in for udev in, so the renaming does not depend on which pty
    # numbers happen to be free.
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    monkeypatch.setattr(trioserial._supervised, "BY_ID_DIR", by_id)
    a, b = tmp_path / "link-a", tmp_path / "link-b"
    usb0, usb1 = tmp_path / "ttyUSB0", tmp_path / "ttyUSB1"
    stable = by_id / "usb-Acme_Board_1234-if00-port0"
    async with trio.open_nursery() as nursery:
        async with socat(a, b):
            usb0.symlink_to(real(a))
            stable.symlink_to(usb0)
            port = await nursery.start(fast(PySerial(usb0)))
            assert port.path == str(stable)
            # Unplug: udev removes both names, the adapter goes.
            stable.unlink()
            usb0.unlink()
        await wait_connected(port, False)
        async with socat(a, b):
            usb1.symlink_to(real(a))  # the replug, under a new kernel name
            stable.symlink_to(usb1)
            await wait_connected(port, True)
            async with await open_serial_port(b) as device:
                await port.send_all(b"renumbered")
                assert await receive_exactly(device, 10) == b"renumbered"
            nursery.cancel_scope.cancel()


async def test_close_wakes_a_throttled_supervised_sender_at_once(
    pty: tuple[str, PtyDevice], autojump_clock: trio.testing.MockClock
) -> None:
    path, device = pty
    driver = PySerial(path, cps=0.001)  # the second character is due 1000 s later
    async with trio.open_nursery() as nursery:
        port = await nursery.start(driver.run)
        errors: list[BaseException] = []

        async def send() -> None:
            try:
                await port.send_all(b"abc")
            except trio.ClosedResourceError as exc:
                errors.append(exc)

        async with trio.open_nursery() as senders:
            senders.start_soon(send)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            driver.close()
        assert trio.current_time() == start
        assert len(errors) == 1
        assert port.statistics().bytes_sent == 1
    assert await device.receive_some() == b"a"


async def test_set_dtr_while_reconnecting_is_kept_for_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The device is away and the supervisor is retrying: set_dtr must not open
    # a second handle (it would fail, or race the supervisor's open for the
    # lock and drop the line at its close); the next open applies the level.
    model = FakeModem(loopback=True)
    opened: list[PortCore] = []

    def open_with_modem(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        core = TtyPort.open(url, settings, options, ioctl=model)
        opened.append(core)
        return core

    monkeypatch.setattr(trioserial._driver, "open_core", open_with_modem)
    path = tmp_path / "ttyUSB0"  # not there yet
    driver = PySerial(path, check_present=False)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(fast(driver))
        assert not port.connected.value
        await trio.to_thread.run_sync(driver.set_dtr, True)
        driver.set_rts(True)
        assert opened == []
        master, slave = os.openpty()
        os.symlink(os.ttyname(slave), path)
        os.close(slave)
        async with PtyDevice(master, str(path)):
            await wait_connected(port)
            assert len(opened) == 1
            assert (model.dtr, model.rts) == (True, True)
            assert port.modem_lines.value == ModemLines(dtr=True, rts=True, dsr=True, cts=True)
            nursery.cancel_scope.cancel()


async def test_set_dtr_while_away_on_a_device_without_modem_lines_does_not_stop_reconnects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A pty (the sim's devices, or an adapter without modem lines) cannot take
    # a DTR level: remembered while the device was away, it must not make
    # every later open fail, which would leave the port disconnected for good.
    path = tmp_path / "ttyUSB0"  # not there yet
    driver = PySerial(path, check_present=False)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(fast(driver))
        await trio.to_thread.run_sync(driver.set_dtr, True)
        master, slave = os.openpty()
        os.symlink(os.ttyname(slave), path)
        os.close(slave)
        async with PtyDevice(master, str(path)) as device:
            await wait_connected(port)
            await device.send_all(b"up")
            assert await receive_exactly(port, 2) == b"up"
            nursery.cancel_scope.cancel()
    assert "cannot set DTR" in caplog.text
    # Dropped, not kept for later opens.
    master, slave = os.openpty()
    path.unlink()
    os.symlink(os.ttyname(slave), path)
    os.close(slave)
    async with PtyDevice(master, str(path)), driver.connect():
        pass


async def test_a_send_cut_off_by_an_unplug_leaves_the_stream_usable(
    pty: tuple[str, PtyDevice], tmp_path: Path
) -> None:
    # In Trio, BrokenResourceError means "this stream is dead"; a supervised
    # stream is not, so the send fails with DeviceDisconnectedError instead,
    # and the next send goes to the replugged device.
    pts, device = pty
    path = tmp_path / "ttyUSB0"
    path.symlink_to(pts)
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(fast(PySerial(path)))

        async def send() -> None:
            try:
                await port.send_all(bytes(1_000_000))  # more than a pty holds: it blocks
            except Exception as exc:
                errors.append(exc)

        async with trio.open_nursery() as senders:
            senders.start_soon(send)
            await trio.testing.wait_all_tasks_blocked()
            unplug(path, device)
        [error] = errors
        assert isinstance(error, DeviceDisconnectedError)
        assert isinstance(error, SerialPortError)
        assert not isinstance(error, trio.BrokenResourceError)
        assert str(path) in str(error)
        assert 0 < port.statistics().bytes_sent < 1_000_000  # a prefix went out
        master, slave = os.openpty()
        os.symlink(os.ttyname(slave), path)
        os.close(slave)
        async with PtyDevice(master, str(path)) as replugged:
            await wait_connected(port)
            await port.send_all(b"again")
            assert await receive_exactly(replugged, 5) == b"again"
            nursery.cancel_scope.cancel()


async def test_a_device_gone_is_logged(
    pty: tuple[str, PtyDevice], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pts, device = pty
    path = tmp_path / "ttyUSB0"
    path.symlink_to(pts)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(fast(PySerial(path)))
        unplug(path, device)
        await wait_connected(port, False)
        nursery.cancel_scope.cancel()
    [record] = [r for r in caplog.records if "went away" in r.getMessage()]
    assert record.name == "trioserial.driver"
    assert record.levelname == "WARNING"
    assert repr(str(path)) in record.getMessage()
    assert "hung up" in record.getMessage()
