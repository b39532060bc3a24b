"""The ``trioserial`` command (layer 3): list, console, pipe, sim and demo.

Every subcommand is a Trio program. Errors the user can act on (a missing
port, a bad option) end as one line on stderr and a non-zero exit code;
``--debug`` adds the traceback. SIGINT, SIGTERM and SIGHUP cancel the running
command, so its ``finally`` blocks (restoring the terminal, closing the port)
run before it exits with ``128 + signal``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

import attrs
import trio

from . import __version__, _cli_run
from ._errors import SerialPortError, UnsupportedOperationError
from ._settings import SerialSettings
from ._sim import SIM_KINDS, check_link, run_demo, run_sim
from ._stream import AsyncSerial, open_serial_port

if TYPE_CHECKING:
    from ._driver import PySerial

# Each command imports what only it needs (the console, the driver, port
# discovery, sessions) when it runs: every invocation builds the whole
# parser, and `trioserial pipe` should not pay for the console's imports.
# tests/test_lazy_import.py holds this.

__all__ = ["main"]

PROG: Final = "trioserial"
#: The signals that stop a command cleanly (exit code 128 + signal number).
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Where udev keeps stable names for USB serial devices.


#: A subcommand, once its arguments are checked: the Trio program to run.
Body = Callable[[], Awaitable[int]]


class CliError(Exception):
    """A failure to report as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``trioserial pipe: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ----------------------------------------------------------------- helpers


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or *exc* itself."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(exc, BaseException) and isinstance(inner, tuple) and inner:
        return [leaf for sub in inner for leaf in _leaves(sub)]
    return [exc]


async def _until_signal(body: Callable[[], Awaitable[int]]) -> int:
    """Run *body*; a stop signal cancels it and the result is ``128 + signal``."""
    code = 0
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def run_body() -> None:
                nonlocal code
                code = await body()
                nursery.cancel_scope.cancel()

            async def watch() -> None:
                nonlocal code
                async for signum in signals:
                    code = 128 + signum
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(run_body)
            nursery.start_soon(watch)
    return code


def _add_line_options(parser: argparse.ArgumentParser) -> None:
    line = parser.add_argument_group("line settings")
    line.add_argument(
        "-b", "--baudrate", type=int, default=115200, metavar="RATE", help="default: 115200"
    )
    line.add_argument("--bytesize", type=int, default=8, metavar="N", help="5 to 8; default: 8")
    line.add_argument("--parity", default="N", metavar="P", help="N, E, O, M or S; default: N")
    line.add_argument("--stopbits", type=float, default=1, metavar="N", help="1, 1.5 or 2")
    line.add_argument("--xonxoff", action="store_true", help="software flow control")
    line.add_argument("--rtscts", action="store_true", help="hardware (RTS/CTS) flow control")
    line.add_argument(
        "--no-exclusive",
        dest="exclusive",
        action="store_false",
        help="do not lock the port against other processes",
    )
    for name in ("dtr", "rts"):
        line.add_argument(
            f"--{name}",
            choices=("on", "off"),
            help=f"drive {name.upper()} after opening (default: leave it as the driver has it)",
        )
    line.add_argument(
        "--no-hupcl",
        action="store_true",
        help="do not drop DTR/RTS on close (keeps auto-reset boards such as ESP32 running)",
    )


def _open_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The keyword arguments of :func:`open_serial_port`, checked (usage error if bad)."""
    stopbits: float = float(args.stopbits)
    if stopbits.is_integer():  # 1.0 -> 1, so messages show what was typed
        stopbits = int(stopbits)
    try:
        settings = SerialSettings(
            baudrate=args.baudrate,
            bytesize=args.bytesize,
            parity=args.parity,
            stopbits=stopbits,
            xonxoff=args.xonxoff,
            rtscts=args.rtscts,
            exclusive=args.exclusive,
        )
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    level = {None: None, "on": True, "off": False}
    return {
        **attrs.asdict(settings),
        "dtr": level[args.dtr],
        "rts": level[args.rts],
        "hupcl": False if args.no_hupcl else None,
    }


def _driver(url: str, options: dict[str, Any]) -> PySerial:
    """A :class:`PySerial` with the settings of *options* (``_open_options``)."""
    from ._driver import PySerial

    settings = {name: options[name] for name in attrs.fields_dict(SerialSettings)}
    try:
        return PySerial(
            url, check_present=False, disable_hupcl=options["hupcl"] is False, **settings
        )
    except ValueError as exc:  # an unknown URL scheme: the argument is wrong
        raise CliError(str(exc), code=2) from exc


async def _open_port(url: str, options: dict[str, Any]) -> AsyncSerial:
    try:
        return await open_serial_port(url, **options)
    except ValueError as exc:  # an unknown URL scheme: the argument is wrong
        raise CliError(str(exc), code=2) from exc


@final
class _Output(trio.abc.SendStream):
    """Where output goes (a file, stdout): a write that fails names it.

    Only a reader that went away (``EPIPE``: ``| head`` has what it wanted)
    stays a :exc:`trio.BrokenResourceError`, for the caller to end quietly.
    Any other failure (a full disk, an I/O error) is a :class:`CliError`.
    """

    def __init__(self, stream: trio.lowlevel.FdStream, name: str) -> None:
        self._stream = stream
        self.name = name

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._stream.send_all(data)
        except trio.BrokenResourceError as exc:
            cause = exc.__cause__
            if isinstance(cause, BrokenPipeError):
                raise
            reason = getattr(cause, "strerror", None) or str(cause or exc)
            raise CliError(f"cannot write to {self.name}: {reason}") from exc

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _open_output(path: str, *, append: bool) -> _Output:
    """A file opened for writing, as a stream.

    ``open`` runs off the event loop, as a FIFO without a reader or a network
    file system can make it block; Ctrl-C abandons such an open (the command
    is ending, and the fd, should it ever open, goes with the process).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = await trio.to_thread.run_sync(os.open, path, flags, 0o666, abandon_on_cancel=True)
    except OSError as exc:
        raise CliError(f"cannot open {path!r} for writing: {exc.strerror}") from exc
    return _Output(trio.lowlevel.FdStream(fd), repr(path))


def _std_stream(fd: int) -> trio.lowlevel.FdStream:
    """A stream on a duplicate of stdin or stdout.

    :class:`~trio.lowlevel.FdStream` makes the fd non-blocking, which also
    affects everyone sharing the open file description (the shell, the other
    end of a pipe); it restores the original mode when closed, and the CLI
    always closes it.
    """
    return trio.lowlevel.FdStream(os.dup(fd))


def _fill_closed_std_fds() -> frozenset[int]:
    """Put ``/dev/null`` on whichever of fds 0, 1 and 2 is closed; return those.

    A closed standard fd is a free number: the next fd opened takes it, one of
    Trio's own or the serial port's, and "stdin" or "stdout" would then be
    that fd (an eventfd, or the device itself). Commands that use stdin or
    stdout check the returned set instead.
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: *fd*
        if null != fd:  # pragma: no cover - only if another thread opened one
            os.dup2(null, fd)
            os.close(null)
    return frozenset(closed)


# -------------------------------------------------------------------- list
# In _cli_list: port_record, format_ports, run_list.


def cmd_list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    from ._cli_list import run_list

    async def body() -> int:
        return await run_list(watch=args.watch, as_json=args.json)

    return body


# -------------------------------------------------------------------- pipe


def _pipe_modes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> bool:
    """Check the option combination; return whether stdin goes to the port."""
    if args.append and not args.output:
        parser.error("--append needs --output FILE")
    if args.input and args.no_input:
        parser.error("--input and --no-input contradict each other")
    if args.no_output:
        if args.output:
            parser.error("--no-output and --output contradict each other")
        if args.no_input:
            parser.error("--no-output with --no-input leaves nothing to do")
        return True
    if args.no_input:
        return False
    return bool(args.input) or not os.isatty(0)


async def _copy(source: trio.abc.ReceiveStream, sink: trio.abc.SendStream) -> None:
    while data := await source.receive_some():
        await sink.send_all(data)


def cmd_pipe(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    send_input = _pipe_modes(args, parser)
    open_options = _open_options(args, parser)
    closed: frozenset[int] = getattr(args, "closed_std_fds", frozenset())
    if send_input and 0 in closed:
        parser.error("stdin is closed: nothing to send (use --no-input)")
    if not args.no_output and not args.output and 1 in closed:
        parser.error("stdout is closed: use --output FILE or --no-output")

    async def body() -> int:
        async with contextlib.AsyncExitStack() as stack:
            port = await stack.enter_async_context(await _open_port(args.url, open_options))
            stdin = None
            if send_input:
                stdin = await stack.enter_async_context(_std_stream(0))
            if args.no_output:
                assert stdin is not None
                return await _fire_and_forget(stdin, port)
            if args.output:
                out = await _open_output(args.output, append=args.append)
            else:
                out = _Output(_std_stream(1), "stdout")
            await stack.enter_async_context(out)
            if sys.stderr.isatty():
                flow = f"{args.url} -> {args.output or 'stdout'}"
                flow = f"stdin -> {flow}" if send_input else flow
                print(f"{PROG}: {flow} (Ctrl-C to stop)", file=sys.stderr)
            async with trio.open_nursery() as nursery:
                if stdin is not None:
                    # Until stdin's end; the output side keeps running after it.
                    nursery.start_soon(_copy, stdin, port)
                code = await _receive_to(port, out, args.url)
                nursery.cancel_scope.cancel()
            return code
        raise AssertionError("unreachable")  # pragma: no cover

    return body


async def _fire_and_forget(stdin: trio.abc.ReceiveStream, port: AsyncSerial) -> int:
    """Send stdin until its EOF, wait until the driver has sent it, return 0."""
    await _copy(stdin, port)
    # Closing the port discards output still queued in the driver: wait for it.
    with contextlib.suppress(UnsupportedOperationError):  # a transport with no queue
        await port.wait_drained()
    return 0


async def _receive_to(port: AsyncSerial, out: trio.abc.SendStream, url: str) -> int:
    """Port to *out* until the device hangs up (exit 1) or *out* is closed (exit 0)."""
    while True:
        try:
            data = await port.receive_some()
        except trio.BrokenResourceError as exc:
            raise CliError(f"{url} failed: {exc.__cause__ or exc}") from exc
        if not data:
            raise CliError(f"{url} hung up (the device disappeared)")
        try:
            await out.send_all(data)
        except trio.BrokenResourceError:  # only EPIPE (see _Output)
            return 0  # whoever read our output is gone (`| head`): stop quietly


# ------------------------------------------------------------- sim, demo


def cmd_sim(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    if args.link is not None:
        try:
            check_link(args.link)
        except ValueError as exc:
            parser.error(str(exc))

    async def body() -> int:
        return await run_sim(args.kind, args.link)

    return body


def cmd_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    return run_demo


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    return _cli_run.run_command(args, _open_options(args, parser), parser.error)


# ------------------------------------------------------------------ parser


_Command = Callable[[argparse.Namespace, argparse.ArgumentParser], Body]


def build_parser() -> argparse.ArgumentParser:
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback when something fails",
    )
    parser = _Parser(
        prog=PROG,
        description="Serial ports from the command line, on Trio.",
        epilog="New here? 'trioserial demo' shows the library at work with no hardware.",
        parents=[debug],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: _Command, **kwargs: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[debug], **kwargs)
        assert isinstance(sub, argparse.ArgumentParser)
        sub.set_defaults(run=run, parser=sub)
        return sub

    p = command(
        "list",
        cmd_list,
        help="list the serial ports of this machine",
        description="List serial ports: device, /dev/serial/by-id and by-path links, USB "
        "product, VID:PID, serial number, manufacturer, interface and driver.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list (with --watch: one JSON object a line per port and event)",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="after the list, print ports as they are added and removed, until Ctrl-C",
    )

    from ._cli_console import add_console_command  # it imports this module's helpers

    add_console_command(command)

    p = command(
        "pipe",
        cmd_pipe,
        help="pipe stdin to a port and the port to stdout or a file",
        description="Copy the port's output to stdout (or a file) and, when stdin is\n"
        "piped, stdin to the port. After stdin's end the output keeps flowing until\n"
        "Ctrl-C or until the device disappears. With --no-output: send stdin, wait\n"
        "until it has been transmitted, exit.",
        epilog="examples:\n"
        "  trioserial pipe /dev/ttyUSB0 -o boot.log\n"
        "  cat commands.txt | trioserial pipe /dev/ttyUSB0\n"
        "  printf 'reboot\\r' | trioserial pipe /dev/ttyUSB0 --no-output",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="PORT", help="device path (/dev/ttyUSB0) or URL")
    _add_line_options(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write the port's output to FILE")
    p.add_argument("-a", "--append", action="store_true", help="append to FILE (with -o)")
    p.add_argument(
        "-i", "--input", action="store_true", help="send stdin even when it is a terminal"
    )
    p.add_argument(
        "--no-input", action="store_true", help="do not send stdin, even when it is piped"
    )
    p.add_argument(
        "--no-output",
        action="store_true",
        help="fire and forget: send stdin, wait until it has been sent, exit",
    )

    p = command(
        "sim",
        cmd_sim,
        help="run a simulated device on a pty and print the path to open",
        description="Run a simulated device on a pty until Ctrl-C. The first line on\n"
        "stdout is the path to open: a symlink to the pty.\n\nkinds:\n"
        + "\n".join(f"  {name:<6} {text}" for name, (text, _) in SIM_KINDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "kind", nargs="?", default="shell", choices=list(SIM_KINDS), help="default: shell"
    )
    p.add_argument(
        "--link",
        metavar="PATH",
        help="put the symlink to the device at PATH (default: in a new temporary directory)",
    )

    p = command(
        "run",
        cmd_run,
        help=_cli_run.HELP,
        description=_cli_run.DESCRIPTION,
        epilog=_cli_run.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="PORT", help="device path (/dev/ttyUSB0) or URL")
    _add_line_options(p)
    _cli_run.add_run_arguments(p)

    command(
        "demo",
        cmd_demo,
        help="see the library at work with a simulated device (no hardware needed)",
        description="Start a simulated device, open it through the library and run a "
        "short scripted session: send, expect, reconfigure, modem lines, unplug.",
    )
    from ._cli_serve import add_serve_command  # it imports this module's helpers

    add_serve_command(command)
    from ._cli_transfer import add_transfer_commands  # here: it imports this module

    add_transfer_commands(command)
    return parser


# -------------------------------------------------------------------- main


def _message(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, SerialPortError):
        return str(exc), 1
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        return f"{exc} ({exc.__cause__})", 1
    text = str(exc) or type(exc).__name__
    return f"{text} ({type(exc).__name__}; run with --debug for the traceback)", 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trioserial`` command; return its exit code."""
    closed_std_fds = _fill_closed_std_fds()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.closed_std_fds = closed_std_fds
    debug = getattr(args, "debug", False)
    sub: argparse.ArgumentParser = args.parser
    body: Body = args.run(args, sub)  # checks the arguments: usage errors exit here
    try:
        return trio.run(_until_signal, body)
    except BaseException as exc:
        leaves = _leaves(exc)
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return 128 + signal.SIGINT  # before our handler was installed
        if debug:
            traceback.print_exception(exc)
        errors = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
        message, code = _message(errors[0] if errors else exc)
        print(f"{sub.prog}: {message}", file=sys.stderr)
        return code
