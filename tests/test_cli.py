"""The ``trioserial`` command, run as a subprocess against fake devices on ptys.

``console`` runs in a real terminal: a tmux pane, driven with ``send-keys``
and read with ``capture-pane``. Each console run is wrapped in a script that
records ``stty -g`` before and compares it after, and checks stdin's
blocking mode, so "the terminal is restored" is checked on the terminal
itself, whatever way the console ended.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tty
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

import trioserial
from trioserial import PortEvent, PortInfo
from trioserial._cli_list import format_event, format_ports, port_record, run_list
from trioserial._console import key_name, parse_key
from trioserial._portwatch import WatchConfig
from trioserial.testing import (
    EchoDevice,
    FakeDevice,
    FakeDevicePort,
    PtyDevice,
    open_fake_device_port,
)

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CLI = [sys.executable, "-m", "trioserial"]
#: Upper bound for anything a test waits for; a healthy run takes a fraction.
DEADLINE = 20


async def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(DEADLINE):
        return await trio.run_process(
            [*CLI, *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=ENV,
            cwd=ROOT,
        )


async def wait_for_file(path: Path, content: bytes) -> None:
    """Wait until *path* holds *content*.

    Another process writes the file and nothing signals us when it does, so
    this looks every 20 ms: a wait for a condition, bounded, never a sleep
    standing in for one.
    """
    file = trio.Path(path)
    with trio.fail_after(DEADLINE):
        while True:
            if await file.exists() and await file.read_bytes() == content:
                return
            await trio.sleep(0.02)  # bounded poll, noqa: no event when a file is written


class Recorder(FakeDevice):
    """A device that records what it receives and lets the test speak for it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.stream: trio.abc.Stream | None = None
        self._changed = trio.Event()

    async def serve(self, stream: trio.abc.Stream) -> None:
        self.received.clear()
        self.stream = stream
        while data := await stream.receive_some():
            self.received += data
            self._changed.set()
            self._changed = trio.Event()
        raise trio.EndOfChannel

    async def wait_received(self, expected: bytes) -> None:
        with trio.fail_after(DEADLINE):
            while expected not in self.received:
                await self._changed.wait()

    async def send(self, data: bytes) -> None:
        assert self.stream is not None
        await self.stream.send_all(data)


# ------------------------------------------------------------- help, errors


@pytest.mark.parametrize("command", ["", "list", "console", "pipe", "sim", "demo"])
async def test_help_everywhere(command: str) -> None:
    result = await run_cli(*command.split(), "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(b"usage: trioserial")
    assert result.stderr == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["pipe"], "required: PORT"),
        (["pipe", "/dev/null", "-a"], "--append needs --output FILE"),
        (["pipe", "/dev/null", "-i", "--no-input"], "--input and --no-input contradict"),
        (["pipe", "/dev/null", "--no-output", "--no-input"], "leaves nothing to do"),
        (["pipe", "/dev/null", "--no-output", "-o", "x"], "--no-output and --output"),
        (["pipe", "/dev/null", "-b", "0"], "baudrate must be between 1 and"),
        (["pipe", "/dev/null", "--parity", "Q"], "parity must be one of"),
        (["pipe", "/dev/null", "--stopbits", "nan"], "stopbits must be 1, 1.5 or 2"),
        (["pipe", "/dev/null", "-b", "fast"], "invalid int value: 'fast'"),
        (["pipe", "nope://x"], "unsupported URL scheme 'nope'"),
        (["console", "/dev/null"], "console needs a terminal on stdin"),
        (["console", "/dev/null", "--exit-key", "q"], "exit key must be a control key"),
        (["console", "/dev/null", "--send", "nope.bin"], "--send must name a readable file"),
        (["console", "/dev/null", "--receive-dir", "README.md"], "--receive-dir must be a dir"),
        (["console", "/dev/null", "--no-zmodem", "--send", "x"], "--no-zmodem contradicts"),
        (["sim", "toaster"], "invalid choice: 'toaster'"),
    ],
)
async def test_bad_arguments_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = await run_cli(*args)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.count("\n") == 1, err
    assert err.startswith("trioserial")
    assert message in err
    assert "Traceback" not in err


async def test_missing_port_is_one_line_and_debug_shows_the_traceback() -> None:
    result = await run_cli("pipe", "/dev/no-such-tty")
    assert result.returncode == 1
    assert result.stderr == (
        b"trioserial pipe: cannot open '/dev/no-such-tty': No such file or directory\n"
    )
    result = await run_cli("--debug", "pipe", "/dev/no-such-tty")
    assert result.returncode == 1
    assert b"Traceback" in result.stderr
    assert result.stderr.endswith(
        b"trioserial pipe: cannot open '/dev/no-such-tty': No such file or directory\n"
    )


async def test_modem_lines_on_a_pty_are_a_one_line_error(echo: FakeDevicePort) -> None:
    result = await run_cli("pipe", echo.path, "--no-input", "--dtr", "on")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.count("\n") == 1, err
    assert "does not support setting DTR" in err
    assert "ENOTTY" in err


async def test_console_missing_port_with_a_terminal(tmp_path: Path) -> None:
    # stdin is a tty (a pty's slave), so the console gets as far as opening.
    master, slave = os.openpty()
    try:
        with trio.fail_after(DEADLINE):
            result = await trio.run_process(
                [*CLI, "console", str(tmp_path / "ttyGONE")],
                stdin=slave,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=ENV,
            )
    finally:
        os.close(master)
        os.close(slave)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"trioserial console: cannot open '{tmp_path}/ttyGONE': No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("text", "value", "name"),
    [
        ("^]", 0x1D, "Ctrl-]"),
        ("ctrl-a", 0x01, "Ctrl-A"),
        ("C-x", 0x18, "Ctrl-X"),
        ("Ctrl-T", 0x14, "Ctrl-T"),
        ("^@", 0x00, "Ctrl-@"),
        ("^?", 0x7F, "Ctrl-?"),
        ("0x1d", 0x1D, "Ctrl-]"),
        ("0x7e", 0x7E, "0x7e"),
    ],
)
def test_exit_key_names(text: str, value: int, name: str) -> None:
    assert parse_key(text) == value
    assert key_name(value) == name


@pytest.mark.parametrize("text", ["q", "^", "ctrl-ab", "^1", "0x100", "0xzz", ""])
def test_exit_key_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="exit key must be a control key"):
        parse_key(text)


# -------------------------------------------------------------------- list


#: ``list --json``'s keys: PortInfo's fields and usb_id (issue 18 moved list onto
#: list_ports; "description" and "vid_pid" became PortInfo's product and usb_id).
RECORD_KEYS = {f.name for f in attrs.fields(PortInfo)} | {"usb_id"}


async def test_list_runs_and_json_is_a_list_of_ports() -> None:
    result = await run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    ports = json.loads(result.stdout)
    assert isinstance(ports, list)
    for port in ports:
        assert set(port) == RECORD_KEYS
    text = (await run_cli("list")).stdout.decode()
    if ports:
        assert text.splitlines()[0] == ports[0]["device"]
    else:
        assert text == "no serial ports found\n"


def test_list_record_and_format() -> None:
    port = PortInfo(
        device="/dev/ttyUSB7",
        by_id="/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0",
        by_path="/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0",
        vid=0x0403,
        pid=0x6001,
        serial_number="A10K1234",
        manufacturer="FTDI",
        product="FT232R USB UART",
        interface_number=0,
        driver="ftdi_sio",
    )
    record = port_record(port)
    assert set(record) == RECORD_KEYS
    assert (record["vid"], record["usb_id"], record["interface"]) == (0x0403, "0403:6001", None)
    assert format_ports([port]).splitlines() == [
        "/dev/ttyUSB7",
        f"  by-id:         {port.by_id}",
        f"  by-path:       {port.by_path}",
        "  product:       FT232R USB UART",
        "  VID:PID:       0403:6001",
        "  serial number: A10K1234",
        "  manufacturer:  FTDI",
        "  driver:        ftdi_sio",
    ]
    assert format_ports([PortInfo(device="/dev/ttyS0")]) == "/dev/ttyS0"
    assert format_ports([PortInfo(device="/dev/pts/3", is_pty=True)]) == "/dev/pts/3 (pty)"
    assert format_ports([]) == "no serial ports found"
    assert format_event(PortEvent("removed", PortInfo(device="/dev/ttyS0"))) == (
        "removed /dev/ttyS0"
    )


@pytest.mark.parametrize("as_json", [False, True])
async def test_list_watch_prints_events(tmp_path: Path, as_json: bool) -> None:
    # In-process, on a directory of links that the test fills with real ptys
    # (the inotify backend); the subprocess test below shows the command runs.
    (tmp_path / "sys").mkdir()
    by_id = tmp_path / "dev" / "serial" / "by-id"
    by_id.mkdir(parents=True)
    config = WatchConfig(sysfs=str(tmp_path / "sys"), dev=str(tmp_path / "dev"), backend="inotify")
    out = io.StringIO()
    controller, device = os.openpty()
    pty = os.ttyname(device)
    present = by_id / "present"
    present.symlink_to(pty)
    try:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                run = partial(run_list, watch=True, as_json=as_json, out=out, config=config)
                nursery.start_soon(run)
                await trio.testing.wait_all_tasks_blocked()
                present.unlink()
                while "removed" not in out.getvalue():
                    await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
    finally:
        os.close(device)
        os.close(controller)
    lines = out.getvalue().splitlines()
    if as_json:
        events = [json.loads(line) for line in lines]
        assert [e["event"] for e in events] == ["present", "removed"]
        assert events[1]["port"]["by_id"] == str(present)
        assert events[1]["port"]["is_pty"] is True
    else:
        shown = [f"{pty} (pty)", f"  by-id:         {present}"]
        assert lines == [*shown, f"removed {shown[0]}", shown[1]]


async def test_list_watch_runs_until_ctrl_c() -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            process = await start(nursery, "list", "--watch", stdout=subprocess.PIPE)
            assert process.stderr is not None
            said = b""
            while b"Ctrl-C to stop" not in said:
                said += await process.stderr.receive_some()
            assert re.match(rb"watching for ports \((netlink|inotify|poll)\)", said), said
            process.send_signal(signal.SIGINT)
    assert process.returncode == 130


# -------------------------------------------------------------------- pipe


@pytest.fixture
async def echo() -> AsyncIterator[FakeDevicePort]:
    async with open_fake_device_port(EchoDevice()) as device:
        yield device


async def start(
    nursery: trio.Nursery, *args: str, stdin: int | None = None, **kwargs: object
) -> trio.Process:
    """Start the command in *nursery*; its stderr is a pipe (see :func:`errors`)."""
    process: trio.Process = await nursery.start(
        partial(
            trio.run_process,
            [*CLI, *args],
            stdin=stdin,
            stderr=subprocess.PIPE,
            check=False,
            env=ENV,
            cwd=ROOT,
            **kwargs,
        )
    )
    return process


async def errors(process: trio.Process) -> str:
    """Everything the (finished) process wrote to stderr."""
    assert process.stderr is not None
    text = b""
    with trio.fail_after(DEADLINE):
        while chunk := await process.stderr.receive_some():
            text += chunk
    return text.decode()


async def test_pipe_round_trip_with_files(tmp_path: Path, echo: FakeDevicePort) -> None:
    data = bytes(range(256)) * 64  # every byte value, CR, LF, XON and XOFF included
    (tmp_path / "in.bin").write_bytes(data)
    out = tmp_path / "out.bin"
    with (tmp_path / "in.bin").open("rb") as stdin, trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            process = await start(
                nursery,
                "pipe",
                echo.path,
                "-o",
                str(out),
                stdin=stdin.fileno(),
            )
            # After stdin's end the output keeps flowing until Ctrl-C.
            await wait_for_file(out, data)
            process.send_signal(signal.SIGINT)
    assert process.returncode == 130
    assert await errors(process) == ""  # a clean Ctrl-C: no traceback, no noise
    assert out.read_bytes() == data


async def test_pipe_appends_with_a(tmp_path: Path) -> None:
    out = tmp_path / "log.txt"
    out.write_bytes(b"first run\n")
    device = Recorder()
    async with open_fake_device_port(device) as port, trio.open_nursery() as nursery:
        process = await start(
            nursery,
            "pipe",
            port.path,
            "--no-input",
            "-o",
            str(out),
            "-a",
        )
        await device.send(b"second run\n")
        await wait_for_file(out, b"first run\nsecond run\n")
        process.send_signal(signal.SIGTERM)
    assert process.returncode == 128 + signal.SIGTERM
    assert await errors(process) == ""


async def test_pipe_stdin_to_port_and_port_to_stdout(echo: FakeDevicePort) -> None:
    async with trio.open_nursery() as nursery:
        process = await start(
            nursery,
            "pipe",
            echo.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        await process.stdin.send_all(b"ping\r\n")
        await process.stdin.aclose()  # stdin's end: the output goes on
        got = b""
        with trio.fail_after(DEADLINE):
            while got != b"ping\r\n":
                got += await process.stdout.receive_some()
        # The device disappearing ends the command: one line, exit 1.
        echo.hang_up()
        with trio.fail_after(DEADLINE):
            assert await process.wait() == 1
    assert await errors(process) == (
        f"trioserial pipe: {echo.path} hung up (the device disappeared)\n"
    )


async def test_pipe_stops_quietly_when_its_reader_goes_away() -> None:
    device = Recorder()
    async with open_fake_device_port(device) as port, trio.open_nursery() as nursery:
        process = await start(nursery, "pipe", port.path, "--no-input", stdout=subprocess.PIPE)
        assert process.stdout is not None
        await device.send(b"first\n")
        with trio.fail_after(DEADLINE):
            assert await process.stdout.receive_some() == b"first\n"
        await process.stdout.aclose()  # as `| head -n 1` does once it has its line
        await device.send(b"second\n")
        with trio.fail_after(DEADLINE):
            assert await process.wait() == 0
    assert await errors(process) == ""


@pytest.mark.parametrize(
    ("closed", "args", "message"),
    [
        ("<&-", [], "stdin is closed: nothing to send (use --no-input)"),
        (">&-", ["--no-input"], "stdout is closed: use --output FILE or --no-output"),
    ],
)
async def test_pipe_with_stdin_or_stdout_closed_is_a_usage_error(
    echo: FakeDevicePort, closed: str, args: list[str], message: str
) -> None:
    # A closed fd 0 or 1 used to be taken by Trio's own fds or by the port,
    # so "stdin" was an eventfd (EINVAL) and "stdout" was not what it said.
    command = " ".join(shlex.quote(a) for a in [*CLI, "pipe", echo.path, *args])
    with trio.fail_after(DEADLINE):
        result = await trio.run_process(
            ["sh", "-c", f"exec {command} {closed}"],
            capture_stderr=True,
            check=False,
            env=ENV,
            cwd=ROOT,
        )
    assert result.returncode == 2
    usage = "(see 'trioserial pipe --help')"
    assert result.stderr.decode() == f"trioserial pipe: error: {message} {usage}\n"


@pytest.mark.parametrize(
    ("redirect", "args", "name"),
    [("", ["-o", "/dev/full"], "'/dev/full'"), (">/dev/full", [], "stdout")],
)
async def test_pipe_output_that_cannot_be_written_is_an_error(
    redirect: str, args: list[str], name: str
) -> None:
    # Only a reader that went away (EPIPE) ends pipe quietly; a full disk
    # used to end it with exit 0 too, the log silently cut short.
    device = Recorder()
    async with open_fake_device_port(device) as port, trio.open_nursery() as nursery:
        command = " ".join(shlex.quote(a) for a in [*CLI, "pipe", port.path, "--no-input", *args])
        process: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                ["sh", "-c", f"exec {command} {redirect}"],
                stderr=subprocess.PIPE,
                check=False,
                env=ENV,
                cwd=ROOT,
            )
        )
        await device.send(b"boot log\n")
        with trio.fail_after(DEADLINE):
            assert await process.wait() == 1
    assert await errors(process) == (
        f"trioserial pipe: cannot write to {name}: No space left on device\n"
    )


async def test_pipe_fire_and_forget_exits_after_stdin_ends() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    device = PtyDevice(master, os.ttyname(slave))
    try:
        async with device, trio.open_nursery() as nursery:
            process = await start(
                nursery,
                "pipe",
                device.path,
                "--no-output",
                stdin=subprocess.PIPE,
            )
            assert process.stdin is not None
            await device.send_all(b"output nobody reads\r\n")
            await process.stdin.send_all(b"reboot\r")
            got = b""
            with trio.fail_after(DEADLINE):
                while got != b"reboot\r":
                    got += await device.receive_some()
            assert process.poll() is None  # still waiting for more stdin
            # Only stdin's end makes it exit. (The device reads first so the
            # test does not depend on what closing a pty does to bytes its
            # other side has not read yet: a pty has no queue to drain.)
            await process.stdin.aclose()
            with trio.fail_after(DEADLINE):
                assert await process.wait() == 0
    finally:
        os.close(slave)
    assert await errors(process) == ""


# ---------------------------------------------------------------- sim, demo


@pytest.mark.parametrize(
    ("kind", "send", "expect"),
    [
        ("echo", b"ping", b"ping"),
        ("shell", b"echo hi\r", b"hi\r\n$ "),
        ("boot", b"", b"login: "),
        ("modem", b"AT\r", b"OK\r\n"),
    ],
)
async def test_sim_serves_a_device_at_the_printed_path(
    tmp_path: Path, kind: str, send: bytes, expect: bytes
) -> None:
    link = tmp_path / "ttySIM"
    async with trio.open_nursery() as nursery:
        process = await start(
            nursery,
            "sim",
            kind,
            "--link",
            str(link),
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        printed = b""
        with trio.fail_after(DEADLINE):
            while not printed.endswith(b"\n"):
                printed += await process.stdout.receive_some()
        assert printed.decode() == f"{link}\n"
        async with await trioserial.open_serial_port(link) as port:
            ex = trioserial.Expect(port)
            await ex.send(send)
            await ex.expect(expect, timeout=DEADLINE)
        process.send_signal(signal.SIGINT)
    assert process.returncode == 130
    assert not link.is_symlink()  # cleaned up


async def test_sim_refuses_to_replace_a_file(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    result = await run_cli("sim", "--link", str(precious))
    assert result.returncode == 2
    assert b"is not a symlink: refusing to replace it" in result.stderr
    assert precious.read_text() == "keep me"


async def test_demo_runs_and_exits_0() -> None:
    result = await run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    out = result.stdout.decode()
    for step in (
        "trioserial.open_serial_port(",
        "'echo hello, serial world\\r\\nhello, serial world\\r\\n$ '",
        "await port.reconfigure(baudrate=9600)",
        "now 9600 8N1",
        "a pty has no modem lines",
        "port.receive_some() -> b''",
        "done.",
    ):
        assert step in out, out


def test_readme_commands() -> None:
    """The README's two set-up commands are the ones this suite checks."""
    readme = (ROOT / "README.md").read_text()
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/trioserial demo"
        in readme
    )
    assert "bash .ci/run" in readme
    # The demo's core is test_demo_runs_and_exits_0; the entry point it names is ours:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'trioserial = "trioserial._cli:main"' in pyproject


# ----------------------------------------------------------------- console

needs_tmux = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is needed to drive a real terminal (.ci/run)"
)


class Terminal:
    """A tmux pane running one console command inside a checking script."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.socket = str(tmp_path / "tmux.sock")
        self.conf = tmp_path / "tmux.conf"
        # remain-on-exit: the pane (and its text) stays after the script ends.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n")

    async def tmux(self, *args: str) -> str:
        result = await trio.run_process(
            ["tmux", "-S", self.socket, "-f", str(self.conf), *args],
            capture_stdout=True,
            capture_stderr=True,
            env={**ENV, "TERM": "xterm"},
        )
        return result.stdout.decode()

    async def run_console(self, *args: str) -> None:
        command = shlex.join([*CLI, "console", *args])
        script = self.dir / "run.sh"
        script.write_text(
            f"cd {shlex.quote(str(ROOT))}\n"
            f"export PYTHONPATH={shlex.quote(str(ROOT))}\n"
            "saved=$(stty -g)\n"
            f"{command}\n"
            'echo "exit=$?"\n'
            'if [ "$(stty -g)" = "$saved" ]; then echo "terminal restored";'
            ' else echo "terminal NOT restored"; fi\n'
            f'{shlex.quote(sys.executable)} -c \'import os; print("stdin blocking"'
            ' if os.get_blocking(0) else "stdin NON-BLOCKING")\'\n'
            "echo END\n"
        )
        await self.tmux(
            "new-session", "-d", "-x", "120", "-y", "30", f"bash --norc --noprofile {script}"
        )

    async def screen(self) -> str:
        return await self.tmux("capture-pane", "-p", "-J", "-S", "-")

    async def wait_for(self, text: str) -> str:
        """Wait until *text* is on the screen (looked for every 20 ms, bounded:
        tmux has no "text appeared" notification)."""
        with trio.move_on_after(DEADLINE):
            while True:
                screen = await self.screen()
                if text in screen:
                    return screen
                await trio.sleep(0.02)  # bounded poll, noqa: tmux has no text event
        raise AssertionError(f"{text!r} never appeared; the screen:\n{await self.screen()}")

    async def keys(self, *keys: str) -> None:
        await self.tmux("send-keys", *keys)

    async def finished(self, code: int) -> str:
        screen = await self.wait_for("END")
        assert f"exit={code}" in screen, screen
        assert "terminal restored" in screen, screen
        assert "stdin blocking" in screen, screen
        assert "Traceback" not in screen, screen
        return screen

    async def console_pid(self) -> int:
        shell = int((await self.tmux("display-message", "-p", "#{pane_pid}")).strip())
        children = (await trio.Path(f"/proc/{shell}/task/{shell}/children").read_text()).split()
        assert len(children) == 1, children
        return int(children[0])

    async def close(self) -> None:
        await self.tmux("kill-server")


@pytest.fixture
async def terminal(tmp_path: Path) -> AsyncIterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        with trio.CancelScope(shield=True):
            await term.close()


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, FakeDevicePort]]:
    device = Recorder()
    async with open_fake_device_port(device) as port:
        yield device, port


@needs_tmux
async def test_console_keys_output_log_and_exit_key(
    terminal: Terminal, recorder: tuple[Recorder, FakeDevicePort], tmp_path: Path
) -> None:
    device, port = recorder
    log = tmp_path / "session.log"
    await terminal.run_console(port.path, "--log", str(log))
    await terminal.wait_for(f"connected to {port.path} (115200 8N1); exit with Ctrl-]")
    await device.send(b"hello from the device\r\n")
    await terminal.wait_for("hello from the device")
    # Raw mode: Ctrl-C goes to the device as a byte, Enter as CR.
    await terminal.keys("ls", "C-c", "Enter")
    await device.wait_received(b"ls\x03\r")
    await terminal.keys("C-]")
    await terminal.finished(0)
    assert bytes(device.received) == b"ls\x03\r"  # the exit key itself is not sent
    assert log.read_bytes() == b"hello from the device\r\n"


@needs_tmux
async def test_console_sends_keys_typed_just_before_the_exit_key(
    terminal: Terminal, recorder: tuple[Recorder, FakeDevicePort]
) -> None:
    device, port = recorder
    await terminal.run_console(port.path)
    await terminal.wait_for("connected to")
    # One send-keys: tmux writes the text and the exit key together, so the
    # console reads them in one chunk (a paste, a fast typist).
    await terminal.keys("reboot", "Enter", "C-]")
    await terminal.finished(0)
    await device.wait_received(b"reboot\r")
    assert bytes(device.received) == b"reboot\r"


@needs_tmux
async def test_console_echo_eol_lf_mapping_and_other_exit_key(
    terminal: Terminal, recorder: tuple[Recorder, FakeDevicePort]
) -> None:
    device, port = recorder
    await terminal.run_console(
        port.path, "--echo", "--eol", "crlf", "--lf-to-crlf", "--exit-key", "ctrl-x"
    )
    await terminal.wait_for("exit with Ctrl-X")
    await terminal.keys("typed", "Enter")
    await device.wait_received(b"typed\r\n")
    await terminal.wait_for("typed")  # local echo
    await device.send(b"one\ntwo\n")
    screen = await terminal.wait_for("two")
    # LF shown as CR LF: each line starts at the left edge (no staircase).
    assert re.search(r"^one\n^two$", screen, re.MULTILINE), screen
    await terminal.keys("C-x")
    await terminal.finished(0)


@needs_tmux
async def test_console_device_vanishes(
    terminal: Terminal, recorder: tuple[Recorder, FakeDevicePort]
) -> None:
    _, port = recorder
    await terminal.run_console(port.path)
    await terminal.wait_for("connected to")
    port.hang_up()
    screen = await terminal.finished(1)
    assert f"{port.path} disappeared (the device hung up" in screen


@needs_tmux
async def test_console_reconnects(
    terminal: Terminal, recorder: tuple[Recorder, FakeDevicePort]
) -> None:
    device, port = recorder
    await terminal.run_console(port.path, "--reconnect")
    await terminal.wait_for("connected to")
    port.hang_up()
    await terminal.wait_for(f"waiting for {port.path} to come back")
    await terminal.keys("lost")  # typed into the unplugged cable: dropped
    port.reappear()
    await terminal.wait_for(f"reconnected to {port.path}")
    await terminal.keys("x")
    await device.wait_received(b"x")
    await device.send(b"back again\r\n")
    await terminal.wait_for("back again")
    await terminal.keys("C-]")
    await terminal.finished(0)
    assert bytes(device.received) == b"x"


@needs_tmux
async def test_console_reconnect_waits_for_a_device_to_appear(
    terminal: Terminal, tmp_path: Path
) -> None:
    link = tmp_path / "ttyLATER"
    await terminal.run_console(str(link), "--reconnect")
    await terminal.wait_for(f"waiting for {link} to appear")
    device = Recorder()
    async with open_fake_device_port(device, link=link):
        await terminal.wait_for(f"connected to {link}")
        await terminal.keys("hi")
        await device.wait_received(b"hi")
        await terminal.keys("C-]")
        await terminal.finished(0)


@needs_tmux
async def test_console_sigterm_restores_the_terminal(
    terminal: Terminal, recorder: tuple[Recorder, FakeDevicePort]
) -> None:
    _, port = recorder
    await terminal.run_console(port.path)
    await terminal.wait_for("connected to")
    os.kill(await terminal.console_pid(), signal.SIGTERM)
    await terminal.finished(128 + signal.SIGTERM)
