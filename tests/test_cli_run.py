"""``trioserial run PORT [--login USER] -- COMMAND``, as a subprocess against fake consoles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

from trioserial.testing import BootLogDevice, FakeDevice, PosixShell, open_fake_device_port

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


async def trioserial_run(
    device: FakeDevice, *args: str, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[bytes]:
    async with open_fake_device_port(device) as port:
        with trio.fail_after(30):
            return await trio.run_process(
                [sys.executable, "-m", "trioserial", "run", port.path, *args],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env,
            )


def shell_with_exit() -> PosixShell:
    return PosixShell(
        prompt="box# ",
        cursor_query=True,
        commands={"exit_with": lambda args: ("", int(args[0]))},
    )


async def test_prints_the_output_and_exits_with_the_exit_code() -> None:
    done = await trioserial_run(
        shell_with_exit(), "--", "printf", "'a\\tb\\n'", ";", "exit_with", "7"
    )
    assert (done.stdout, done.returncode) == (b"a\tb\n", 7)
    done = await trioserial_run(shell_with_exit(), "--", "echo", "caf\u00e9")
    assert (done.stdout, done.returncode) == ("caf\u00e9\n".encode(), 0)


async def test_logs_in() -> None:
    device = BootLogDevice(["Booting"], password="pw", shell=PosixShell(prompt="dut# "))
    env = {**ENV, "TRIOSERIAL_PASSWORD": "pw"}
    done = await trioserial_run(
        device, "--login", "root", "--prompt", "dut# ", "--", "echo in", env=env
    )
    assert (done.stdout, done.returncode) == (b"in\n", 0)


async def test_cannot_run_exits_255() -> None:
    done = await trioserial_run(
        PosixShell(prompt="other> "), "--prompt", "dut# ", "--ready-timeout", "0.5", "--", "true"
    )
    assert done.returncode == 255
    assert b"trioserial run: no shell prompt matching 'dut# '" in done.stderr
    assert done.stdout == b""
