"""``trioserial run PORT [--login USER] -- COMMAND``: one command on a device's shell (layer 3).

Prints the command's output and exits with the device's exit status, for shell
scripts and CI jobs. When the command could not be run (no prompt, a device
failure, a timeout) the reason goes to stderr and the exit code is 255, as
with ``ssh``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from ._stream import open_serial_port

__all__ = ["CANNOT_RUN", "DEFAULT_PROMPT", "add_run_arguments", "run_command"]

#: The exit code when the command could not be run on the device.
CANNOT_RUN: Final = 255
#: A prompt at a line start: up to 60 characters, then ``#``, ``$``, ``%`` or
#: ``>`` and a space (``dut# ``, ``root@box:~# ``, ``~ $ ``).
DEFAULT_PROMPT: Final = r"[^\n]{0,60}?[#$%>] "

HELP: Final = "run one command on a device's shell; exit with its exit status"
DESCRIPTION: Final = (
    "Wake the console on PORT, log in if it asks (--login), run COMMAND, print its\n"
    "output and exit with its exit status. If the command cannot be run (no prompt,\n"
    "a device failure such as a kernel panic, --timeout) the reason goes to stderr\n"
    "and the exit code is 255."
)
EPILOG: Final = (
    "examples:\n"
    "  trioserial run /dev/ttyUSB0 -- uname -a\n"
    "  trioserial run /dev/ttyUSB0 --login root --prompt 'dut# ' -- 'dmesg | tail'\n"
    "The password comes from --password or the TRIOSERIAL_PASSWORD environment variable."
)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` command's own arguments (PORT and the line settings come from the CLI)."""
    parser.add_argument("--login", metavar="USER", help="log in as USER if a login prompt appears")
    parser.add_argument(
        "--password", help="password for --login (default: $TRIOSERIAL_PASSWORD, else none)"
    )
    parser.add_argument(
        "--prompt",
        default=DEFAULT_PROMPT,
        metavar="REGEX",
        help="the shell prompt, a regular expression matched at a line start "
        f"(default: {DEFAULT_PROMPT.replace('%', '%%')!r})",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="for the command (default: 30)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="for the prompt and login (default: 30)",
    )
    parser.add_argument("command", nargs="+", metavar="COMMAND", help="the command (after --)")


def run_command(
    args: argparse.Namespace, options: dict[str, Any], error: Callable[[str], object]
) -> Callable[[], Awaitable[int]]:
    """The Trio program for ``run``: *options* open the port; *error* reports a usage error."""
    command = " ".join(args.command)
    for name in ("timeout", "ready_timeout"):
        if not getattr(args, name) > 0:
            error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    password = args.password if args.password is not None else os.environ.get("TRIOSERIAL_PASSWORD")

    async def body() -> int:
        # Here, not at the top: every command's parser is built from this module.
        from ._session import Shell
        from ._shellproto import DeviceFailureError

        port = await open_serial_port(args.url, **options)
        async with port:
            shell = Shell(port, prompt=args.prompt, username=args.login, password=password)
            try:
                await shell.wait_ready(timeout=args.ready_timeout)
                result = await shell.run(command, timeout=args.timeout)
            except (trio.TooSlowError, DeviceFailureError, RuntimeError) as exc:
                print(f"trioserial run: {exc}", file=sys.stderr)
                return CANNOT_RUN
        sys.stdout.write(result.output)
        sys.stdout.flush()
        return result.exit_code

    return body
