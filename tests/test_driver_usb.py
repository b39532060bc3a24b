"""``PySerial(vid=..., pid=..., serial_number=...)``: a port named by its USB identity.

The machine has no USB serial adapter, so the adapters are the recorded sysfs
tree of ``tests/usb_serial_tree.py`` (``tests/data/usb-serial-tree.md`` says
where it comes from), with the FT232R's device node made a link to a real
pty: the identity is matched on real sysfs layouts, and the bytes go through
a real tty. Plugging it in is writing its sysfs entries, then its device node;
what wakes the supervisor is inotify seeing that node appear (the fallback
backend), or a real kernel uevent where this machine lets a test make one.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
import usb_serial_tree
from test_driver_run import receive_exactly, wait_connected
from test_ports import kernel_uevent, needs_uevents

import trioserial._usb
from trioserial import AmbiguousPortError, PortNotFoundError, PySerial
from trioserial._portwatch import Backend, WatchConfig
from trioserial.testing import PtyDevice

FT232R = {"vid": 0x0403, "pid": 0x6001, "serial_number": "A10K1234"}
#: The FT232R's tty in sysfs, below the tree root.
TTY = "sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0"


@attrs.define
class Adapter:
    """The recorded FT232R, plugged in and out of a copy of the tree."""

    root: Path
    device: PtyDevice | None = None

    def plug(self, name: str = "ttyUSB0") -> str:
        """Enumerate it as *name*: sysfs first, then the device node, as the kernel does."""
        tty = self.root / TTY
        minor = int(name.removeprefix("ttyUSB"))
        (tty / "uevent").write_text(f"MAJOR=188\nMINOR={minor}\nDEVNAME={name}\n")
        (self.root / "sys/class/tty" / name).symlink_to(f"../../{TTY.removeprefix('sys/')}")
        master, slave = os.openpty()
        node = self.root / "dev" / name
        node.symlink_to(os.ttyname(slave))
        os.close(slave)
        self.device = PtyDevice(master, str(node))
        return str(node)

    def unplug(self) -> None:
        assert self.device is not None
        name = Path(self.device.path).name
        (self.root / "sys/class/tty" / name).unlink()
        Path(self.device.path).unlink()
        self.device.hang_up()


@pytest.fixture
async def adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Adapter]:
    root = tmp_path / "tree"
    shutil.copytree(usb_serial_tree.shared_tree(), root, symlinks=True)
    (root / "sys/class/tty/ttyUSB0").unlink()  # unplugged to begin with
    (root / "dev/ttyUSB0").unlink()
    backend: Backend = getattr(request, "param", "inotify")
    config = WatchConfig(sysfs=str(root / "sys"), dev=str(root / "dev"), backend=backend)
    monkeypatch.setattr(trioserial._usb, "USB_CONFIG", config)
    adapter = Adapter(root)
    try:
        yield adapter
    finally:
        if adapter.device is not None:
            await adapter.device.aclose()


async def test_connect_opens_the_adapter_by_its_identity(adapter: Adapter) -> None:
    adapter.plug("ttyUSB7")
    assert adapter.device is not None
    driver = PySerial(**FT232R)  # type: ignore[arg-type]
    assert driver.url is None
    assert "serial_number='A10K1234'" in repr(driver)
    async with driver.connect() as stream:
        await stream.send_all(b"hello")
        assert await receive_exactly(adapter.device, 5) == b"hello"


async def test_identity_errors(adapter: Adapter) -> None:
    with pytest.raises(TypeError, match="needs a url"):
        PySerial()
    with pytest.raises(TypeError, match="not both"):
        PySerial("/dev/ttyUSB0", vid=0x0403)
    with pytest.raises(ValueError, match="vid must be a USB id"):
        PySerial(vid=0x10000, check_present=False)
    with pytest.raises(PortNotFoundError, match="serial_number='A10K1234'"):
        PySerial(**FT232R)  # type: ignore[arg-type]  # check_present: not plugged in
    # Three FTDI ports in the tree (an FT232R's, two of an FT2232H): no guessing.
    adapter.plug()
    with pytest.raises(AmbiguousPortError, match="3 serial ports match vid=0x0403") as caught:
        PySerial(vid=0x0403)
    # PySerial has no first=: the advice is what it does take.
    assert str(caught.value).endswith("narrow the query (serial_number=, path=)")
    driver = PySerial(vid=0x0403, check_present=False)
    async with trio.open_nursery() as nursery:
        with pytest.raises(AmbiguousPortError):
            await nursery.start(driver.run)  # the first open's error, as any but "absent"


@pytest.mark.parametrize(
    "adapter",
    ["inotify", pytest.param("netlink", marks=needs_uevents)],
    indirect=True,
)
async def test_run_follows_the_adapter_across_renumbering(
    adapter: Adapter, no_fd_leaks: None
) -> None:
    # A 1000 s backoff: only a device event can bring the port back in time.
    driver = PySerial(**FT232R, check_present=False)  # type: ignore[arg-type]
    run = functools.partial(driver.run, initial_backoff=1000, max_backoff=1000)
    netlink = trioserial._usb.USB_CONFIG.backend == "netlink"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(run)
            assert not port.connected.value
            assert isinstance(port.last_error.value, PortNotFoundError)
            for n, name in enumerate(["ttyUSB0", "ttyUSB5"], 1):
                node = adapter.plug(name)
                if netlink:
                    await trio.testing.wait_all_tasks_blocked()
                    assert not port.connected.value  # sysfs alone tells nobody
                    kernel_uevent()
                await wait_connected(port, True)
                assert port.connect_count == n
                assert port.path == node
                assert adapter.device is not None
                await port.send_all(b"ping")
                assert await receive_exactly(adapter.device, 4) == b"ping"
                adapter.unplug()
                await wait_connected(port, False)
                await adapter.device.aclose()
                adapter.device = None
            nursery.cancel_scope.cancel()
