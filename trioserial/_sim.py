"""``trioserial sim`` and ``trioserial demo``: simulated devices (layer 3).

Both stand on :mod:`trioserial.testing`'s fake devices, served on a pty
behind a stable symlink (:func:`~trioserial.testing.open_fake_device_port`),
so what a user opens is a real tty, read and written by the same code as
``/dev/ttyUSB0``. This is the one package module that imports
:mod:`trioserial.testing`: the CLI is how people meet those fakes.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import trio

from ._errors import UnsupportedOperationError
from ._stream import open_serial_port

if TYPE_CHECKING:
    from .testing import AtModem, ConsoleCommand, FakeDevice, PosixShell

# trioserial.testing and Expect are imported where a device is made or the
# demo runs, not here: the CLI builds its parser (SIM_KINDS) on every run.

__all__ = ["SIM_KINDS", "make_device", "run_demo", "run_sim"]


def _echo() -> FakeDevice:
    from .testing import EchoDevice

    return EchoDevice()


def _commands() -> dict[str, ConsoleCommand]:
    """The simulated shells' own commands, beside :class:`PosixShell`'s builtins."""
    started = time.monotonic()
    return {
        "help": lambda _: (
            "commands: help, echo [-n] WORDS, printf FORMAT ARGS, true, false,"
            " sleep S, seq [FIRST] LAST, uptime, version, exit\n"
        ),
        "uptime": lambda _: f"up {time.monotonic() - started:.1f} s\n",
        "version": lambda _: "FakeOS 1.0 (a trioserial simulated device)\n",
    }


def _shell() -> PosixShell:
    # A PosixShell, not a LineShell: quotes, ';', '$?' and printf are what
    # trioserial.Shell (and `trioserial run`) frame every command with.
    from .testing import PosixShell

    return PosixShell(
        prompt="$ ",
        banner="FakeOS 1.0 shell (simulated by trioserial); type 'help'",
        commands=_commands(),
    )


def _boot() -> FakeDevice:
    from .testing import BootLogDevice, PosixShell

    return BootLogDevice(line_delay=0.2, shell=PosixShell(prompt="# ", commands=_commands()))


def _modem() -> AtModem:
    from .testing import AtModem

    return AtModem(
        info="trioserial simulated modem",
        extended={"+CSQ": "+CSQ: 20,99", "+CGMI": "trioserial", "+CGMM": "FakeModem 1.0"},
    )


#: Kind name -> (one-line description, factory).
SIM_KINDS: Final[dict[str, tuple[str, Callable[[], FakeDevice]]]] = {
    "echo": ("sends back every byte it receives", _echo),
    "shell": (
        "a POSIX-like shell: prompt '$ ', commands help, echo, printf, uptime, version, ...",
        _shell,
    ),
    "boot": (
        "a board booting: a boot log, then 'login:' (root / root), then a shell",
        _boot,
    ),
    "modem": ("an AT-command modem: AT, ATI, ATE0/ATE1, AT+CSQ, AT+CGMI", _modem),
}


def make_device(kind: str) -> FakeDevice:
    """A fresh device model of *kind* (a key of :data:`SIM_KINDS`)."""
    return SIM_KINDS[kind][1]()


def check_link(link: str) -> None:
    """Refuse a ``--link`` that would replace something that is not a symlink.

    Raises:
      ValueError: *link* exists and is not a symlink, or its directory is missing.
    """
    if os.path.lexists(link) and not os.path.islink(link):
        raise ValueError(f"--link {link!r} exists and is not a symlink: refusing to replace it")
    parent = os.path.dirname(os.path.abspath(link))
    if not os.path.isdir(parent):
        raise ValueError(f"--link {link!r}: directory {parent!r} does not exist")


async def run_sim(kind: str, link: str | None) -> int:
    """Serve a *kind* device until cancelled; print the path to open first."""
    from .testing import open_fake_device_port

    async with open_fake_device_port(make_device(kind), link=link) as device:
        # The path alone on the first line of stdout, so a script can read it
        # while the sim runs on (`coproc trioserial sim; read -r PORT <&"${COPROC[0]}"`),
        # or use --link to choose the path itself.
        print(device.path, flush=True)
        print(
            f"simulated {kind} device at {device.path} (-> {device.pty_path}): "
            f"{SIM_KINDS[kind][0]}\n"
            f"open it with: trioserial console {device.path}\n"
            "Ctrl-C stops the simulation",
            file=sys.stderr,
            flush=True,
        )
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


# -------------------------------------------------------------------- demo

#: How long any one step of the demo may take before it is called a failure.
STEP_TIMEOUT: Final = 10.0


def _show(text: str = "") -> None:
    print(text, flush=True)


def _shown(data: str) -> str:
    """Received text as a Python literal, so CR and LF are visible."""
    return repr(data)


async def run_demo() -> int:
    """A short scripted session with a simulated device; returns 0."""
    from ._expect import Expect
    from .testing import open_fake_device_port

    _show("trioserial demo: a simulated device on a pty, driven through the library.")
    _show("No hardware needed: a pty is a real tty, so this is the code path of /dev/ttyUSB0.")
    _show()
    async with open_fake_device_port(_shell()) as device:
        path = device.path
        _show("1. device = trioserial.testing.open_fake_device_port(PosixShell(...))")
        _show(f"   a simulated shell is running at {path} (a symlink to {device.pty_path})")
        _show()
        _show(f"2. port = await trioserial.open_serial_port({path!r}, baudrate=115200)")
        port = await open_serial_port(path, baudrate=115200)
        async with port:
            _show(f"   opened {port.port}: {port.settings.framing}")
            _show()
            ex = Expect(port, encoding="utf-8")
            _show("3. ex = trioserial.Expect(port, encoding='utf-8')")
            _show("   await ex.sendline(command); await ex.expect('$ ')")
            found = await ex.expect("$ ", timeout=STEP_TIMEOUT)
            _show(f"   <- {_shown(found.before + found.after)}")
            for command in ("echo hello, serial world", "version"):
                _show(f"   -> {_shown(command + chr(13))}")
                await ex.sendline(command)
                found = await ex.expect("$ ", timeout=STEP_TIMEOUT)
                _show(f"   <- {_shown(found.before + found.after)}")
            _show()

            _show("4. await port.reconfigure(baudrate=9600)")
            await port.reconfigure(baudrate=9600)
            _show(f"   now {port.settings.framing}; buffered data and DTR/RTS untouched")
            _show("   (a pty takes the setting but does not pace bytes: a UART would)")
            await ex.sendline("uptime")
            found = await ex.expect("$ ", timeout=STEP_TIMEOUT)
            _show(f"   -> 'uptime\\r'   <- {_shown(found.before + found.after)}")
            _show()

            _show("5. modem lines: port.modem_lines()")
            try:
                lines = port.modem_lines()
            except UnsupportedOperationError as exc:
                reason = "ENOTTY" if exc.errno == errno.ENOTTY else exc
                _show(f"   raises UnsupportedOperationError ({reason}): a pty has no modem lines.")
                _show("   On a UART or USB adapter this reads CTS, DSR, RI and CD, and")
                _show("   port.dtr = ... / port.rts = ... drive the outputs.")
            else:  # pragma: no cover - only on a device with modem lines
                _show(f"   {lines}")
            _show()

            _show("6. unplug the device: device.hang_up()")
            device.hang_up()
            with trio.fail_after(STEP_TIMEOUT):
                while await port.receive_some():
                    pass  # anything the shell still had to say
            _show("   port.receive_some() -> b'' : end of stream, the device is gone")
        _show("   the port is closed (async with)")
    _show()
    _show("done. Next, in two terminals:")
    _show("   trioserial sim shell --link /tmp/ttyFAKE0")
    _show("   trioserial console /tmp/ttyFAKE0")
    return 0
