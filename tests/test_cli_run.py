"""``trioserial run PORT [--login USER] -- COMMAND``, as a subprocess against fake consoles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from functools import partial
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


# ------------------------------------------------- against `trioserial sim`


async def run_against_sim(
    tmp_path: Path, kind: str, *args: str, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[bytes]:
    """``trioserial run`` (its *args*) against ``trioserial sim KIND``, both subprocesses."""
    link = tmp_path / "ttySIM"
    async with trio.open_nursery() as nursery:
        sim: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                [sys.executable, "-m", "trioserial", "sim", kind, "--link", str(link)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                check=False,
                env=ENV,
            )
        )
        assert sim.stdout is not None
        with trio.fail_after(30):
            printed = b""
            while not printed.endswith(b"\n"):  # the path: the sim is serving
                printed += await sim.stdout.receive_some()
            done = await trio.run_process(
                [sys.executable, "-m", "trioserial", "run", str(link), *args],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env,
            )
        sim.send_signal(signal.SIGINT)
    return done


async def test_runs_on_the_simulated_shell(tmp_path: Path) -> None:
    """The sync marker (``echo '__TY''...'``) and the framing need a POSIX
    shell's quoting and printf: the simulated shell has them."""
    done = await run_against_sim(tmp_path, "shell", "--ready-timeout", "10", "--", "version")
    assert done.stderr == b""
    assert (done.stdout, done.returncode) == (b"FakeOS 1.0 (a trioserial simulated device)\n", 0)
    done = await run_against_sim(tmp_path, "shell", "--", "echo", "no;", "false")
    assert (done.stdout, done.returncode) == (b"no\n", 1)


async def test_logs_in_to_the_simulated_board(tmp_path: Path) -> None:
    env = {**ENV, "TRIOSERIAL_PASSWORD": "root"}
    done = await run_against_sim(tmp_path, "boot", "--login", "root", "--", "uptime", env=env)
    assert done.stderr == b""
    assert (done.stdout.startswith(b"up "), done.returncode) == (True, 0)
