"""Real devices in QEMU for the session tests: a Linux guest and U-Boot 2023.01.

- **Linux**: Debian's cloud kernel with a busybox-static initramfs built here.
  ``ttyS0`` is the kernel console with busybox ash (prompt ``dut# ``; its line
  editor sends ``ESC[6n`` after each prompt, as on real busybox devices);
  ``ttyS1`` runs busybox getty (user ``root``, no password). ``panic=-1``: a
  kernel panic reboots the guest at once.
- **U-Boot**: Debian's ``u-boot-qemu`` (``qemu-x86_64/u-boot.rom`` as the
  BIOS): banner, ``Hit any key to stop autoboot:  2``, ``=> ``.

The kernel, busybox-static and u-boot-qemu are fetched with ``apt-get
download`` (not installed) into a cache (``$TRIOSERIAL_TEST_CACHE``, default
``~/.cache/trioserial-tests``). Each guest boots once per test session, from
a *sync* session fixture (pytest-trio allows no async session fixtures);
tests open the ptys themselves. QEMU's pty backend drops output while nobody
holds the pty open: open the port first, then :meth:`Qemu.reset`, to see a
boot from its start.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

CACHE = Path(os.environ.get("TRIOSERIAL_TEST_CACHE", Path.home() / ".cache" / "trioserial-tests"))
INITRAMFS_VERSION = "session-2"  # change when the guest files below change
BOOT_TIMEOUT = 120.0

INITTAB = """\
::sysinit:/etc/init.d/rcS
ttyS0::respawn:/bin/sh -l
ttyS1::respawn:/sbin/getty -L 115200 ttyS1 vt100
"""
RCS = """\
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname dut
dmesg -n 1
echo "trioserial-dut: ready"
"""


def _apt_download(package: str, into: Path) -> Path:
    """``apt-get download`` *package* into *into*; the .deb's path."""
    tmp = Path(tempfile.mkdtemp(prefix="trioserial-apt-"))
    tmp.chmod(0o755)  # apt's _apt user writes there
    try:
        for attempt in range(2):
            done = subprocess.run(
                ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True
            )
            if done.returncode == 0:
                break
            if attempt == 0:
                subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        else:
            raise RuntimeError(f"apt-get download {package} failed: {done.stderr.strip()}")
        (deb,) = tmp.glob("*.deb")
        into.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(deb, into / deb.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract(deb: Path, member: str, target: Path) -> None:
    """Copy *member* (a path glob inside the .deb) to *target*."""
    with tempfile.TemporaryDirectory(prefix="trioserial-deb-") as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        (found,) = Path(tmp).glob(member)
        shutil.copyfile(found, target.with_suffix(".tmp"))
        target.with_suffix(".tmp").replace(target)


def _kernel_package() -> str:
    for attempt in range(2):
        out = subprocess.run(
            ["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True, text=True
        ).stdout
        found = re.search(r"Depends: (linux-image-\S+)", out)
        if found:
            return found.group(1)
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
    raise RuntimeError("apt-cache knows no linux-image-cloud-amd64")


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries.

    A device node's data is ``b"rdev:MAJOR,MINOR"``: no mknod, so no root needed.
    """
    out = io.BytesIO()
    for ino, (path, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        rdev = (0, 0)
        if data.startswith(b"rdev:"):
            major, minor = data[5:].split(b",")
            rdev, data = (int(major), int(minor)), b""
        name = path.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        out.write(b"\0" * (-(110 + len(name)) % 4))
        out.write(data + b"\0" * (-len(data) % 4))
    return out.getvalue()


def _initramfs(busybox: bytes) -> bytes:
    directory, executable, regular = 0o040755, 0o100755, 0o100644
    directories = "bin sbin usr usr/bin usr/sbin etc etc/init.d proc sys dev tmp root"
    entries = [(name, directory, b"") for name in directories.split()]
    entries += [
        ("bin/busybox", executable, busybox),
        ("bin/sh", 0o120777, b"busybox"),
        ("init", 0o120777, b"bin/busybox"),
        ("dev/console", 0o020600, b"rdev:5,1"),
        ("dev/null", 0o020666, b"rdev:1,3"),
        ("etc/inittab", regular, INITTAB.encode()),
        ("etc/init.d/rcS", executable, RCS.encode()),
        ("etc/profile", regular, b'export PS1="dut# "\n'),
        ("etc/passwd", regular, b"root::0:0:root:/root:/bin/sh\n"),
        ("etc/group", regular, b"root:x:0:\n"),
        ("etc/issue", regular, b"trioserial DUT (\\l)\n\n"),
    ]
    return gzip.compress(_cpio(entries), compresslevel=1)


def linux_files() -> tuple[Path, Path]:
    """(kernel, initramfs), fetched and built into the cache once."""
    cache = CACHE / "linux"
    kernel, busybox, initramfs = cache / "vmlinuz", cache / "busybox", cache / "initramfs.cpio.gz"
    if not kernel.exists():
        _extract(_apt_download(_kernel_package(), cache / "debs"), "boot/vmlinuz-*", kernel)
    if not busybox.exists():
        _extract(_apt_download("busybox-static", cache / "debs"), "bin/busybox", busybox)
    version = cache / "initramfs.version"
    if not initramfs.exists() or not version.exists() or version.read_text() != INITRAMFS_VERSION:
        initramfs.with_suffix(".tmp").write_bytes(_initramfs(busybox.read_bytes()))
        initramfs.with_suffix(".tmp").replace(initramfs)
        version.write_text(INITRAMFS_VERSION)
    return kernel, initramfs


def uboot_rom() -> Path:
    """Debian's U-Boot for QEMU x86_64, fetched into the cache once."""
    rom = CACHE / "u-boot" / "u-boot.rom"
    if not rom.exists():
        deb = _apt_download("u-boot-qemu", CACHE / "u-boot" / "debs")
        _extract(deb, "usr/lib/u-boot/qemu-x86_64/u-boot.rom", rom)
    return rom


class Qemu:
    """A QEMU process with its serial ports on ptys and a monitor socket."""

    def __init__(self, name: str, args: list[str], serial_ports: int) -> None:
        if shutil.which("qemu-system-x86_64") is None:
            pytest.skip("qemu-system-x86_64 is not installed (.ci/run installs qemu-system-x86)")
        self.dir = Path(tempfile.mkdtemp(prefix=f"trioserial-qemu-{name}-"))
        self.monitor = self.dir / "monitor.sock"
        chardevs = []
        for i in range(serial_ports):
            chardevs += ["-chardev", f"pty,id=s{i}", "-serial", f"chardev:s{i}"]
        self.process = subprocess.Popen(
            [
                "qemu-system-x86_64",
                *("-nodefaults", "-no-user-config", "-display", "none", "-m", "256M"),
                *("-accel", "tcg", "-net", "none"),
                *args,
                # The monitor first: chardevs are made in order, so the socket
                # exists once the ptys are announced.
                *("-monitor", f"unix:{self.monitor},server=on,wait=off"),
                *chardevs,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.ptys: list[str] = []
        assert self.process.stdout is not None
        while len(self.ptys) < serial_ports:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"QEMU ({name}) exited: {self.process.wait()}")
            found = re.search(r"(/dev/pts/\d+) \(label s(\d+)\)", line)
            if found:
                self.ptys.append(found.group(1))
        assert self.monitor.is_socket(), "QEMU announced its ptys before its monitor socket"

    async def reset(self) -> None:
        """Hard reset (the monitor's ``system_reset``), as a power cycle."""
        socket = await trio.open_unix_socket(str(self.monitor))
        async with socket:
            await socket.send_all(b"system_reset\n")
            with trio.fail_after(5):
                reply = b""
                while b"system_reset" not in reply:  # the monitor echoes the command
                    reply += await socket.receive_some()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_linux() -> Qemu:
    kernel, initramfs = linux_files()
    qemu = Qemu(
        "linux",
        [
            *("-machine", "pc", "-cpu", "max", "-smp", "1"),
            *("-kernel", str(kernel), "-initrd", str(initramfs)),
            *("-append", "console=ttyS0,115200 panic=-1"),
        ],
        serial_ports=2,
    )
    return qemu


def start_uboot() -> Qemu:
    return Qemu("uboot", ["-bios", str(uboot_rom())], serial_ports=1)


@pytest.fixture(scope="session")
def qemu_linux() -> Iterator[Qemu]:
    """The Linux guest, booting (ptys: the console with ash, then getty).

    Not waited for here: a test's ``Shell.wait_ready`` waits for the prompt
    (the first one waits for the boot to finish).
    """
    qemu = start_linux()
    try:
        yield qemu
    finally:
        qemu.stop()


@pytest.fixture(scope="session")
def qemu_uboot() -> Iterator[Qemu]:
    """U-Boot in QEMU (wherever its autoboot is by now: tests reset it)."""
    qemu = start_uboot()
    try:
        yield qemu
    finally:
        qemu.stop()
