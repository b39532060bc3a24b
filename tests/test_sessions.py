"""Shell and UBoot against the fake consoles of trioserial.testing, over ptys.

Fast and deterministic; test_sessions_qemu.py runs the same things against
busybox and U-Boot in QEMU.
"""

from __future__ import annotations

import io
import logging
import random
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.testing

from trioserial import (
    AsyncSerial,
    CommandFailedError,
    DeviceFailureError,
    ExpectBufferFullError,
    Shell,
    UBoot,
)
from trioserial._sessioncore import State
from trioserial.testing import (
    BootLogDevice,
    FakeDevice,
    FakeUBoot,
    LineShell,
    PosixShell,
    open_fake_device_port,
    open_pty_pair,
)
from trioserial.transfer import TransferProgress

PROMPT = "dut# "


@asynccontextmanager
async def serving(device: FakeDevice) -> AsyncIterator[AsyncSerial]:
    port, pty = await open_pty_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(device.run, pty)
        try:
            yield port
        finally:
            port.close()
            pty.hang_up()
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def serving_in_memory(device: FakeDevice) -> AsyncIterator[trio.abc.Stream]:
    """For tests on an autojump clock: a pty's data is in flight in the kernel
    for a moment, during which the clock would jump; a memory stream's is not."""
    port, end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(device.run, end)
        try:
            yield port
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def ready_shell(device: FakeDevice | None = None, **options: object) -> AsyncIterator[Shell]:
    device = device or PosixShell(prompt=PROMPT, cursor_query=True)
    async with serving(device) as port:
        shell = Shell(port, prompt=re.escape(PROMPT), **options)  # type: ignore[arg-type]
        with trio.fail_after(10):
            await shell.wait_ready()
        yield shell


async def test_run_returns_output_and_exit_code() -> None:
    async with ready_shell() as shell:
        with trio.fail_after(10):
            result = await shell.run("echo hello; false")
            assert (result.command, result.output, result.exit_code) == (
                "echo hello; false",
                "hello\n",
                1,
            )
            assert (await shell.run("true")).exit_code == 0
            assert (await shell.run("nosuch")).exit_code == 127
            assert await shell.run_check("echo ok") == "ok\n"
            with pytest.raises(CommandFailedError) as failed:
                await shell.run_check("echo sad; false")
            assert (failed.value.command, failed.value.exit_code, failed.value.output) == (
                "echo sad; false",
                1,
                "sad\n",
            )


@pytest.mark.parametrize(
    ("command", "output"),
    [
        ("printf 'no newline'", "no newline"),
        ("printf 'a\\tb\\n'", "a\tb\n"),
        ("echo 'caf\u00e9 \u4e2d\u6587 \u2713'", "caf\u00e9 \u4e2d\u6587 \u2713\n"),
        (f"echo '{PROMPT}'; echo '{PROMPT}x'", f"{PROMPT}\n{PROMPT}x\n"),
        ("printf '\\n\\n'", "\n\n"),
        ("true", ""),
    ],
)
async def test_output_is_exact(command: str, output: str) -> None:
    async with ready_shell() as shell:
        with trio.fail_after(10):
            assert (await shell.run(command)).output == output


async def test_twenty_thousand_lines() -> None:
    async with ready_shell() as shell:
        with trio.fail_after(30):
            result = await shell.run("seq 20500")
    assert result.output == "".join(f"{n}\n" for n in range(1, 20501))


async def test_output_longer_than_max_output_interrupts_and_recovers() -> None:
    async with ready_shell(max_output=1000) as shell:
        with trio.fail_after(10):
            with pytest.raises(ExpectBufferFullError, match="max_output"):
                await shell.run("seq 5000")
            assert (await shell.run("echo next")).output == "next\n"


async def test_a_line_longer_than_the_expect_buffer() -> None:
    # base64 -w0, a binary cat: one line past Expect's 64 KiB buffer, with no newline.
    def long(args: list[str]) -> tuple[str, int]:
        return "x" * int(args[0]), 0

    device = PosixShell(prompt=PROMPT, commands={"long": long})
    async with ready_shell(device) as shell:
        with trio.fail_after(20):
            assert (await shell.run("long 200000")).output == "x" * 200_000
    async with ready_shell(device, max_output=1000) as shell:
        with trio.fail_after(20):
            with pytest.raises(ExpectBufferFullError, match="max_output"):
                await shell.run("long 70000")
            # Interrupted, and the session is usable: the line did not stay in the buffer.
            assert (await shell.run("echo next")).output == "next\n"
            await shell.wait_ready()


async def test_a_command_that_names_a_failure_pattern_is_no_failure() -> None:
    # Its echo holds the pattern; only what the device prints counts.
    device = PosixShell(prompt=PROMPT, commands={"grep": lambda args: ("0\n", 1)})
    async with ready_shell(device) as shell:
        with trio.fail_after(10):
            result = await shell.run("grep -c 'Kernel panic' /var/log/messages")
    assert (result.output, result.exit_code) == ("0\n", 1)


async def test_login_with_password() -> None:
    device = BootLogDevice(
        ["Booting", "Welcome"],
        login_prompt="dut login: ",
        password="s3cret",
        shell=PosixShell(prompt=PROMPT),
    )
    log = io.StringIO()
    async with serving(device) as port:
        shell = Shell(port, prompt=PROMPT, username="root", password="s3cret", log=log)
        with trio.fail_after(10):
            await shell.wait_ready()
            assert await shell.run_check("echo in") == "in\n"
    assert "s3cret" not in log.getvalue()
    assert ">>> (password)" in log.getvalue()


async def test_login_refused_and_no_username() -> None:
    device = BootLogDevice(["Booting"], password="right", shell=PosixShell(prompt=PROMPT))
    async with serving(device) as port:
        shell = Shell(port, prompt=PROMPT, username="root", password="wrong")
        with trio.fail_after(10), pytest.raises(RuntimeError, match="refused"):
            await shell.wait_ready()
    async with serving(device) as port:
        shell = Shell(port, prompt=PROMPT)
        with trio.fail_after(10), pytest.raises(RuntimeError, match="no username"):
            await shell.wait_ready()


async def test_cancellation_at_random_moments_leaves_the_session_ready() -> None:
    rng = random.Random(15)
    async with ready_shell() as shell:
        for i in range(25):
            with trio.move_on_after(rng.uniform(0, 0.03)):
                await shell.run(f"seq {i * 50}; sleep 0.01; echo tail{i}; sleep 5")
            with trio.fail_after(10):
                result = await shell.run(f"echo after{i}; false")
            assert (result.output, result.exit_code) == (f"after{i}\n", 1)


async def test_timeout_interrupts_the_command() -> None:
    async with ready_shell() as shell:
        with trio.fail_after(10):
            with pytest.raises(trio.TooSlowError, match=r"'sleep 30'.*interrupted.*ready"):
                await shell.run("sleep 30", timeout=0.2)
            assert (await shell.run("echo next")).output == "next\n"


async def test_resync_that_does_not_finish_is_done_by_the_next_run() -> None:
    released = trio.Event()

    async def stubborn(args: list[str]) -> str:
        with trio.CancelScope(shield=True):  # ignores Ctrl-C until the test lets it go
            await released.wait()
        return "stubborn output\n"

    device = PosixShell(prompt=PROMPT, commands={"stubborn": stubborn})
    async with ready_shell(device, interrupt_timeout=0.05) as shell:
        with trio.move_on_after(0.1) as scope:
            await shell.run("stubborn")
        assert scope.cancelled_caught
        assert shell._engine.state is State.UNSYNCED  # interrupt() gave up after its 0.05 s
        released.set()
        with trio.fail_after(10):
            result = await shell.run("echo clean")
    assert (result.output, result.exit_code) == ("clean\n", 0)


async def panic(args: list[str]) -> str:
    return (
        "sysrq: Trigger a crash\nKernel panic - not syncing: sysrq triggered crash\nCall Trace:\n"
    )


async def oops_unfinished(args: list[str]) -> str:
    return "[   1.5] Oops: 0002"


async def never(args: list[str]) -> str:
    await trio.sleep_forever()
    raise AssertionError


async def test_failure_pattern_ends_the_call_at_once() -> None:
    commands = {"panic": panic, "never": never, "oops": oops_unfinished}
    device = PosixShell(prompt=PROMPT, commands=commands)
    async with ready_shell(device) as shell:
        with trio.fail_after(5):
            with pytest.raises(DeviceFailureError) as failed:
                # The device "reboots": back at its prompt 0.3 s after the panic.
                await shell.run("echo before; panic; sleep 0.3", timeout=None)
            assert failed.value.line == "Kernel panic - not syncing: sysrq triggered crash"
            assert failed.value.match.group(0) == "Kernel panic"
            assert failed.value.context.endswith("before\nsysrq: Trigger a crash\n")
            with pytest.raises(RuntimeError, match="wait_ready"):
                await shell.run("true")
            # The rest of the report (Call Trace:) is no new failure.
            await shell.wait_ready()
            # Per call: no patterns, so the panic is just output.
            result = await shell.run("panic", fail_on=[])
            assert "Kernel panic" in result.output
            assert result.exit_code == 0
            # A failure in a line that has not ended yet is found too.
            with pytest.raises(DeviceFailureError, match=r"Oops: 0002") as failed:
                await shell.run("oops; never", timeout=None)
            assert failed.value.line == "[   1.5] Oops: 0002"


async def test_session_failure_patterns() -> None:
    device = PosixShell(prompt=PROMPT, commands={"never": never})
    async with ready_shell(device, fail_on=[r"E\d{3}: .*"]) as shell:
        with trio.fail_after(5), pytest.raises(DeviceFailureError, match="E042: disk gone"):
            await shell.run("echo 'E042: disk gone'; never", timeout=None)


async def test_transcript_to_a_path_stamped_with_trio_clock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "session.log"
    async with serving_in_memory(PosixShell(prompt=PROMPT)) as port:
        with Shell(port, prompt=PROMPT, log=path) as shell:
            with trio.fail_after(100):
                await shell.wait_ready()
                await shell.run("sleep 42; echo slept", timeout=60)
    lines = path.read_text().splitlines()
    stamp = re.compile(r"^\[ *(\d+\.\d{6})\] (.*)$")
    parsed = [stamp.match(line) for line in lines]
    assert all(parsed), lines
    times = {m.group(2): float(m.group(1)) for m in parsed if m}
    sent = [text for text in times if text.startswith(">>> ") and "sleep 42" in text]
    assert len(sent) == 1
    assert times["slept"] - times[sent[0]] == pytest.approx(42, abs=0.01)


async def test_transcript_to_a_text_file_and_a_logger(caplog: pytest.LogCaptureFixture) -> None:
    file = io.StringIO()
    logger = logging.getLogger("trioserial.test.dut")
    with caplog.at_level(logging.INFO, logger="trioserial.test.dut"):
        async with serving(PosixShell(prompt=PROMPT)) as port:
            for log in (file, logger):
                shell = Shell(port, prompt=PROMPT, log=log)
                with trio.fail_after(10):
                    await shell.wait_ready()
                    await shell.run("echo via-log")
    assert re.search(r"^\[ *\d+\.\d{6}\] via-log$", file.getvalue(), re.MULTILINE)
    assert any(re.fullmatch(r"\[ *\d+\.\d{6}\] via-log", r.getMessage()) for r in caplog.records)


async def test_bad_arguments() -> None:
    async with serving(PosixShell(prompt=PROMPT)) as port:
        with pytest.raises(TypeError, match=r"trio\.abc\.Stream"):
            Shell(object(), prompt=PROMPT)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="prompt"):
            Shell(port, prompt="")
        with pytest.raises(ValueError, match=r"not a regular expression: .* at position 0$"):
            Shell(port, prompt="(")
        with pytest.raises(TypeError, match="log must be"):
            Shell(port, prompt=PROMPT, log=42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="username"):
            Shell(port, prompt=PROMPT, username="a\nb")
        shell = Shell(port, prompt=PROMPT)
        with pytest.raises(RuntimeError, match="wait_ready"):
            await shell.run("true")
        with trio.fail_after(10):
            await shell.wait_ready()
        with pytest.raises(ValueError, match="timeout"):
            await shell.run("true", timeout=0)
        with pytest.raises(ValueError, match="empty"):
            await shell.run("")


async def test_one_command_at_a_time() -> None:
    async with ready_shell() as shell:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(shell.run, "sleep 0.5")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await shell.run("true")
        with trio.fail_after(10):
            assert (await shell.run("echo fine")).output == "fine\n"


async def test_wait_ready_times_out_with_what_it_saw() -> None:
    async with serving(PosixShell(prompt="other$ ")) as port:
        shell = Shell(port, prompt=PROMPT)
        with pytest.raises(
            trio.TooSlowError, match=r"(?s)no shell prompt matching 'dut# '.*other\$"
        ):
            await shell.wait_ready(timeout=0.3)


async def test_wait_ready_says_when_the_prompt_came_but_the_marker_did_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # LineShell keeps quotes: the marker's quote-split echo prints back split.
    async with serving_in_memory(LineShell(prompt=PROMPT)) as port:
        shell = Shell(port, prompt=PROMPT)
        with trio.fail_after(60), pytest.raises(trio.TooSlowError) as info:
            await shell.wait_ready(timeout=10)
    message = str(info.value)
    assert message.startswith(
        "a prompt matching 'dut# ' was seen, but the sync marker typed after it (echo '__TY''"
    ), message
    assert "is this a POSIX shell?" in message
    assert "within 10 s; the console showed:\n" in message


# ------------------------------------------------------------------ U-Boot


@asynccontextmanager
async def uboot_console(
    make: Callable[[], FakeUBoot] = FakeUBoot,
) -> AsyncIterator[trio.abc.Stream]:
    async with serving_in_memory(make()) as port:
        yield port


async def test_uboot_interrupts_autoboot_and_runs_commands(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with uboot_console() as port:
        uboot = UBoot(port)
        with trio.fail_after(30):
            await uboot.interrupt_autoboot()
            result = await uboot.run("echo -n abc")
            assert (result.output, result.exit_code) == ("abc", 0)
            assert (await uboot.run("false")).exit_code == 1
            assert await uboot.run_check("printenv bootdelay") == "bootdelay=2\n"
            with pytest.raises(CommandFailedError, match="exit code 1"):
                await uboot.run_check("printenv nosuch")
            # A second session on a console already at its prompt pokes it awake.
            again = UBoot(port)
            await again.interrupt_autoboot()
            assert await again.run_check("version") == "U-Boot 2023.01 (trioserial fake)\n"


async def test_uboot_cancelled_command_and_reset_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with uboot_console() as port:
        uboot = UBoot(port)
        with trio.fail_after(60):
            await uboot.interrupt_autoboot()
            with pytest.raises(trio.TooSlowError):
                await uboot.run("sleep 10", timeout=1)
            assert (await uboot.run("echo x")).output == "x\n"
            with pytest.raises(DeviceFailureError, match=r"resetting \.\.\."):
                await uboot.run("reset")
            await uboot.interrupt_autoboot()
            assert (await uboot.run("echo back")).output == "back\n"


@pytest.mark.parametrize("protocol", ["xmodem", "ymodem"])
async def test_uboot_load_waits_out_the_drain_after_the_transfer(protocol: str) -> None:
    # U-Boot drops what arrives while it drains the line after a transfer; a
    # session that typed its next line at once lost it (seen in CI against
    # U-Boot in QEMU as "Unknown command 'cho'"). The fake drains as U-Boot
    # does, on a real pty and a real clock, so typing early loses the line here too.
    board = FakeUBoot()
    async with serving(board) as port:
        uboot = UBoot(port)
        image = random.Random(3).randbytes(3000)  # not a whole number of blocks
        with trio.fail_after(30):
            await uboot.interrupt_autoboot()
            assert await uboot.load(image, 0x2000000, protocol=protocol) == len(image)
            assert board.read_memory(0x2000000, len(image)) == image
            assert await uboot.run_check("crc32 2000000 bb8") == (
                f"crc32 for 02000000 ... 02000bb7 ==> {zlib.crc32(image):08x}\n"
            )


async def load_cancelled_after_a_few_blocks(uboot: UBoot, image: bytes) -> None:
    """``uboot.load(image)`` at 0x1000000, cancelled once 4 KiB are acknowledged."""
    with trio.CancelScope() as scope:

        def cancel_after_a_few_blocks(progress: TransferProgress) -> None:
            if progress.done >= 4096:
                scope.cancel()

        await uboot.load(image, 0x1000000, progress=cancel_after_a_few_blocks)
    assert scope.cancelled_caught


async def test_uboot_load_cancelled_leaves_the_fake_at_its_prompt() -> None:
    board = FakeUBoot()
    async with serving(board) as port:
        uboot = UBoot(port)
        image = random.Random(4).randbytes(50_000)
        with trio.fail_after(30):
            await uboot.interrupt_autoboot()
            await load_cancelled_after_a_few_blocks(uboot, image)
            assert "download aborted" in uboot._engine.transcript.text()
            assert board.read_memory(0x1000000, 16) == bytes(16)
            assert (await uboot.run("echo after")).output == "after\n"


async def test_uboot_to_linux() -> None:
    kernel = PosixShell(prompt=PROMPT, cursor_query=True)
    async with uboot_console(lambda: FakeUBoot(kernel=kernel)) as port:
        uboot = UBoot(port)
        with trio.fail_after(10):
            await uboot.interrupt_autoboot()
            await uboot.run_check("setenv bootargs console=ttyS0")
            await uboot.boot()
            with pytest.raises(RuntimeError, match="interrupt_autoboot"):
                await uboot.run("true")
            shell = Shell(port, prompt=PROMPT)
            await shell.wait_ready()
            assert await shell.run_check("echo linux") == "linux\n"


async def test_uboot_arguments() -> None:
    async with uboot_console() as port:
        with pytest.raises(ValueError, match="prompt"):
            UBoot(port, prompt="")
        uboot = UBoot(port)
        with pytest.raises(ValueError, match="one line at a time"):
            await uboot.run("echo a\necho b")


def docs_flash_example() -> Callable[[str, bytes], Awaitable[None]]:
    """``flash(path, image)`` from docs/transfer.rst, as printed there."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "transfer.rst").read_text()
    block = text.split("match the prompt only at the start of a line::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "docs/transfer.rst", "exec"), namespace)
    return cast(Callable[[str, bytes], Awaitable[None]], namespace["flash"])


async def test_the_docs_uboot_example_runs_against_the_fake() -> None:
    # loady, then `crc32 0x1000000 ${filesize}`: the fake sets filesize and expands it.
    board = FakeUBoot(bootdelay=5)
    image = random.Random(4).randbytes(2500)
    async with open_fake_device_port(board) as device:
        with trio.fail_after(60):
            await docs_flash_example()(device.path, image)
    assert board.read_memory(0x1000000, len(image)) == image


async def test_fake_uboot_sets_filesize_and_expands_variables() -> None:
    board = FakeUBoot()
    async with serving(board) as port:
        uboot = UBoot(port)
        with trio.fail_after(30):
            await uboot.interrupt_autoboot()
            assert await uboot.run_check("echo [${filesize}]") == "[]\n"  # unset: empty
            await uboot.load(b"x" * 300, 0x2000000, protocol="ymodem")
            assert await uboot.run_check("printenv filesize") == "filesize=12c\n"
            assert await uboot.run_check("setenv a 2000000; crc32 ${a} ${filesize}") == (
                f"crc32 for 02000000 ... 0200012b ==> {zlib.crc32(b'x' * 300):08x}\n"
            )
            assert await uboot.run_check("echo '${a}' \"${a}\"") == "${a} 2000000\n"
