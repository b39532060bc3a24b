"""Shell and UBoot against real software: busybox on Linux and U-Boot 2023.01, in QEMU.

Each guest boots once per test session (tests/qemu_peers.py); every test
opens the pty itself. The kernel-panic test reboots the Linux guest and
brings it back to its prompt, so it runs last among the Linux tests.
"""

from __future__ import annotations

import io
import random
import re
import zlib
from collections.abc import AsyncIterator

import pytest
import trio
from qemu_peers import BOOT_TIMEOUT, Qemu, qemu_linux, qemu_uboot
from test_sessions import load_cancelled_after_a_few_blocks

from trioserial import (
    AsyncSerial,
    CommandFailedError,
    DeviceFailureError,
    Shell,
    UBoot,
    open_serial_port,
)
from trioserial.transfer import TransferProgress

__all__ = ["qemu_linux", "qemu_uboot"]  # fixtures, used by name

PROMPT = "dut# "


@pytest.fixture
async def console(qemu_linux: Qemu) -> AsyncIterator[AsyncSerial]:
    """The Linux guest's ttyS0 (kernel console, busybox ash)."""
    port = await open_serial_port(qemu_linux.ptys[0])
    async with port:
        yield port


@pytest.fixture
async def shell(console: AsyncSerial) -> AsyncIterator[Shell]:
    with Shell(console, prompt=re.escape(PROMPT), log=io.StringIO()) as shell:
        # The first test waits for the boot to finish.
        await shell.wait_ready(timeout=BOOT_TIMEOUT)
        yield shell


async def test_commands_output_and_exit_codes(shell: Shell) -> None:
    with trio.fail_after(30):
        result = await shell.run("echo hello; false")
        assert (result.output, result.exit_code) == ("hello\n", 1)
        assert (await shell.run("exit_with() { return $1; }; exit_with 42")).exit_code == 42
        assert await shell.run_check("printf 'a\\tb\\tc'") == "a\tb\tc"
        assert await shell.run_check("printf '\\303\\251\\344\\270\\255\\n'") == "\u00e9\u4e2d\n"
        assert await shell.run_check(f"echo '{PROMPT}'; printf '{PROMPT}'") == f"{PROMPT}\n{PROMPT}"
        assert await shell.run_check("echo err >&2") == "err\n"
        with pytest.raises(CommandFailedError) as failed:
            await shell.run_check("ls /nonexistent")
        assert failed.value.exit_code == 1
        assert "/nonexistent" in failed.value.output


async def test_cursor_queries_are_not_output(shell: Shell) -> None:
    with trio.fail_after(30):
        result = await shell.run("echo plain")
    assert result.output == "plain\n"
    # busybox ash really sent its cursor query after the prompt (shown escaped).
    assert "dut# \\x1b[6n" in _transcript(shell)


def _transcript(shell: Shell) -> str:
    return shell._engine.transcript.text()


async def test_long_command_line_redrawn_by_the_line_editor(shell: Shell) -> None:
    words = " ".join(f"word{i}" for i in range(60))  # wider than the terminal
    with trio.fail_after(30):
        assert await shell.run_check(f"echo {words}") == words + "\n"


async def test_twenty_thousand_lines(shell: Shell) -> None:
    with trio.fail_after(60):
        result = await shell.run("seq 20000", timeout=60)
    assert result.output == "".join(f"{n}\n" for n in range(1, 20001))


async def test_cancellation_at_random_moments(shell: Shell) -> None:
    rng = random.Random(1415)
    for i in range(12):
        command = rng.choice(["sleep 3", "seq 50000", "seq 300; sleep 2; echo late"])
        with trio.move_on_after(rng.uniform(0, 0.4)):
            await shell.run(command)
        with trio.fail_after(30):
            result = await shell.run(f"echo after{i}; false")
        assert (result.output, result.exit_code) == (f"after{i}\n", 1)


async def test_getty_login(qemu_linux: Qemu) -> None:
    port = await open_serial_port(qemu_linux.ptys[1])
    async with port:
        with Shell(port, prompt=re.escape(PROMPT), username="root") as shell:
            with trio.fail_after(BOOT_TIMEOUT):
                await shell.wait_ready(timeout=BOOT_TIMEOUT)
            with trio.fail_after(30):
                assert await shell.run_check("id -u; tty") == "0\n/dev/ttyS1\n"
                # Log out, so the next session meets getty again.
                await shell.expect.sendline("exit")


async def test_kernel_panic_mid_command(shell: Shell) -> None:
    """Last of the Linux tests: the guest reboots (panic=-1) and comes back."""
    with trio.fail_after(10):  # far below the call's own timeout
        with pytest.raises(DeviceFailureError) as failed:
            await shell.run("echo before; echo c > /proc/sysrq-trigger; sleep 30", timeout=120)
    assert "Kernel panic - not syncing: sysrq triggered crash" in failed.value.line
    assert "sysrq: Trigger a crash" in failed.value.context
    with trio.fail_after(BOOT_TIMEOUT):
        await shell.wait_ready(timeout=BOOT_TIMEOUT)
    with trio.fail_after(30):
        assert await shell.run_check("echo back") == "back\n"


# ------------------------------------------------------------------ U-Boot


@pytest.fixture
async def uboot(qemu_uboot: Qemu) -> AsyncIterator[UBoot]:
    """U-Boot, power-cycled with the port open, autoboot stopped."""
    port = await open_serial_port(qemu_uboot.ptys[0])
    async with port:
        with UBoot(port, log=io.StringIO()) as uboot:
            await qemu_uboot.reset()
            with trio.fail_after(60):
                await uboot.interrupt_autoboot(timeout=60)
            yield uboot


async def test_uboot_commands(uboot: UBoot) -> None:
    with trio.fail_after(30):
        assert await uboot.run_check("version") != ""
        assert (await uboot.run("false")).exit_code == 1
        assert (await uboot.run("echo -n abc")).output == "abc"
        with pytest.raises(CommandFailedError):
            await uboot.run_check("printenv nosuchvariable")
        # crc32 prints "==> ", which contains the prompt "=> ".
        output = await uboot.run_check("mw.b 0x1000000 0x55 0x100; crc32 0x1000000 0x100")
        assert re.fullmatch(r"crc32 for 01000000 \.\.\. 010000ff ==> [0-9a-f]{8}\n", output)
        assert _uboot_banner_seen(uboot)


def _uboot_banner_seen(uboot: UBoot) -> bool:
    return "Hit any key to stop autoboot" in uboot._engine.transcript.text()


async def test_uboot_cancelled_command_and_prompt_already_there(
    uboot: UBoot, qemu_uboot: Qemu
) -> None:
    with trio.fail_after(30):
        with pytest.raises(trio.TooSlowError, match="interrupted"):
            await uboot.run("sleep 10", timeout=0.5)
        result = await uboot.run("echo after")
        assert (result.output, result.exit_code) == ("after\n", 0)
        # A new session on a U-Boot already at its prompt wakes it with Ctrl-C.
        again = UBoot(uboot.expect.stream)  # type: ignore[arg-type]
        await again.interrupt_autoboot(timeout=10)
        assert await again.run_check("echo again") == "again\n"


@pytest.mark.deadline(180)
@pytest.mark.parametrize("protocol", ["ymodem", "xmodem"])
async def test_uboot_load_checks_the_image_with_crc32(uboot: UBoot, protocol: str) -> None:
    image = random.Random(7).randbytes(12_345)  # not a whole number of blocks
    seen: list[TransferProgress] = []
    with trio.fail_after(150):
        assert await uboot.load(image, 0x1000000, protocol=protocol, progress=seen.append) == 12_345
        assert seen[-1].done == len(image)
        # U-Boot's own view agrees, and the session goes on.
        output = await uboot.run_check("crc32 0x1000000 0x3039")
        assert output.rstrip().endswith(f"==> {zlib.crc32(image):08x}")


@pytest.mark.deadline(180)
async def test_uboot_load_cancelled_mid_transfer_leaves_the_session_ready(uboot: UBoot) -> None:
    image = random.Random(8).randbytes(100_000)
    with trio.fail_after(150):
        await load_cancelled_after_a_few_blocks(uboot, image)
        result = await uboot.run("echo after")
        assert (result.output, result.exit_code) == ("after\n", 0)
        assert await uboot.load(image[:3000], 0x1000000, protocol="ymodem") == 3000


async def test_uboot_load_refuses_bad_arguments(uboot: UBoot) -> None:
    with trio.fail_after(10):
        with pytest.raises(ValueError, match="protocol must be one of"):
            await uboot.load(b"x", 0x1000000, protocol="kermit")
        with pytest.raises(ValueError, match="address must be an int"):
            await uboot.load(b"x", -1)
        with pytest.raises(TypeError, match="data must be bytes-like"):
            await uboot.load(12, 0x1000000)  # type: ignore[arg-type]
