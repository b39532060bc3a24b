"""``trioserial console``: an interactive terminal on a port (layer 3).

Registered by :func:`._cli.build_parser`; the terminal itself is
``_console`` (imported when the command runs, not to build the parser), and
this module only checks the options and opens what the session needs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._cli import Body, _add_line_options, _driver, _open_options, _open_output, _open_port
from ._console_keys import EOL, parse_key

if TYPE_CHECKING:
    from ._console_zmodem import ZmodemOptions

__all__ = ["add_console_command"]


def cmd_console(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    from ._console import ConsoleOptions, run_console, run_reconnecting_console

    try:
        exit_key = parse_key(args.exit_key)
    except ValueError as exc:
        parser.error(str(exc))
    options = ConsoleOptions(
        exit_key=exit_key,
        echo=args.echo,
        eol=EOL[args.eol],
        lf_to_crlf=args.lf_to_crlf,
        reconnect=args.reconnect,
        zmodem=_zmodem_options(args, parser),
    )
    open_options = _open_options(args, parser)
    if not os.isatty(0):
        parser.error("console needs a terminal on stdin; for pipes and files use 'pipe'")

    async def body() -> int:
        async with contextlib.AsyncExitStack() as stack:
            port = None
            if not options.reconnect:
                port = await stack.enter_async_context(await _open_port(args.url, open_options))
            log = None
            if args.log:
                log = await stack.enter_async_context(await _open_output(args.log, append=True))
            if port is not None:
                return await run_console(port, args.url, options, log=log)
            # --reconnect: PySerial.run() follows the device (renumbering, USB identity).
            driver = _driver(args.url, open_options)
            dtr, rts = open_options["dtr"], open_options["rts"]
            return await run_reconnecting_console(driver, options, dtr=dtr, rts=rts, log=log)
        raise AssertionError("unreachable")  # pragma: no cover

    return body


def _zmodem_options(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> ZmodemOptions | None:
    from ._console_zmodem import ZmodemOptions

    if args.no_zmodem:
        if args.send or args.receive_dir != ".":
            parser.error("--no-zmodem contradicts --send and --receive-dir")
        return None
    if not os.path.isdir(args.receive_dir):
        parser.error(f"--receive-dir must be a directory, got {args.receive_dir!r}")
    for name in args.send:
        if not os.path.isfile(name) or not os.access(name, os.R_OK):
            parser.error(f"--send must name a readable file, got {name!r}")
    return ZmodemOptions(
        directory=pathlib.Path(args.receive_dir), send=tuple(map(pathlib.Path, args.send))
    )


def add_console_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``console`` through ``build_parser``'s *command* helper."""
    p = command(
        "console",
        cmd_console,
        help="interactive terminal on a serial port",
        description="An interactive terminal: keys go to the device, its output to the "
        "screen. Every key (Ctrl-C too) goes to the device except the exit key, "
        "Ctrl-] unless --exit-key says otherwise.",
    )
    p.add_argument("url", metavar="PORT", help="device path (/dev/ttyUSB0) or URL")
    _add_line_options(p)
    p.add_argument(
        "--exit-key",
        default="^]",
        metavar="KEY",
        help="key that ends the session: '^]' (the default), 'ctrl-a', '0x1d', ...",
    )
    p.add_argument("--echo", action="store_true", help="show typed keys (local echo)")
    p.add_argument(
        "--eol",
        choices=sorted(EOL),
        default="cr",
        help="what Enter sends: cr (default, like a terminal), lf or crlf",
    )
    p.add_argument(
        "--lf-to-crlf",
        action="store_true",
        help="show each LF from the device as CR LF (devices that end lines with LF only)",
    )
    p.add_argument(
        "--log", metavar="FILE", help="append everything the device sends to FILE (a transcript)"
    )
    p.add_argument(
        "--reconnect",
        action="store_true",
        help="when the device disappears (or is not there yet), wait for it instead of exiting",
    )
    p.add_argument(
        "--receive-dir",
        default=".",
        metavar="DIR",
        help="where files go when the device runs sz (ZMODEM; default: the current directory)",
    )
    p.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="FILE",
        help="a file to send when the device runs rz (ZMODEM; repeat for more); "
        "without one, the device's rz is cancelled",
    )
    p.add_argument(
        "--no-zmodem",
        action="store_true",
        help="do not look for ZMODEM (sz/rz) in the device's output: only show it",
    )
