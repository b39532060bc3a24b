"""Fake devices: scriptable device models that serve a byte stream.

A fake device is an object with ``async def run(stream)``: it serves *stream*
(usually the :class:`~trioserial.testing.PtyDevice` end of a pty pair, but any
:class:`trio.abc.Stream` will do) until the stream ends, then returns quietly.
``run`` keeps its per-connection state in locals, so one device object can
serve many connections, one after another or at once.

:func:`open_fake_device_port` puts a device behind a stable path that can be
unplugged and plugged back in, to exercise reconnect logic.
"""

from __future__ import annotations

import abc
import inspect
import os
import shutil
import tempfile
import tty
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, final

import trio

from ._pty import PtyDevice

if TYPE_CHECKING:
    from ._consoles import PosixShell

__all__ = [
    "AtModem",
    "BootLogDevice",
    "EchoDevice",
    "FakeDevice",
    "FakeDevicePort",
    "LineShell",
    "ShellHandler",
    "open_fake_device_port",
]

#: A :class:`LineShell` command: called with the words after the command name;
#: returns the output (``str`` lines or raw ``bytes``) or ``None`` for none,
#: directly or from a coroutine.
ShellHandler = Callable[[list[str]], "str | bytes | Awaitable[str | bytes | None] | None"]

_ENDED = (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError)

_BACKSPACE = (0x08, 0x7F)
_CTRL_C = 0x03
_CR, _LF = 0x0D, 0x0A


class FakeDevice(abc.ABC):
    """Base class of the fake devices: implement :meth:`serve`.

    Subclass it for your own device model; :meth:`run` supplies the quiet
    ending every model wants, so :meth:`serve` can just let
    :exc:`trio.EndOfChannel` and the stream's errors out.
    """

    async def run(self, stream: trio.abc.Stream) -> None:
        """Serve *stream* until it ends.

        Returns (without raising) when the other side hangs up (a receive
        returns ``b""`` or raises :exc:`trio.EndOfChannel`) or the stream is
        closed or broken (:exc:`trio.ClosedResourceError`,
        :exc:`trio.BrokenResourceError`). Any other exception is a bug in the
        model or a handler and propagates. Cancellation stops the device at
        once; *stream* is left open (its owner closes it).
        """
        with suppress(*_ENDED):
            await self.serve(stream)

    @abc.abstractmethod
    async def serve(self, stream: trio.abc.Stream) -> None:
        """Serve one connection on *stream*.

        Raise :exc:`trio.EndOfChannel` when the stream ends (``receive_some``
        returned ``b""``), and let the stream's own errors through.
        """


class _Terminal:
    """The device's side of a serial console: line reading with echo and editing.

    Handles what a tty's line discipline or a shell's line editor would: ``\\r``,
    ``\\n`` or ``\\r\\n`` end a line, backspace/DEL delete the last character,
    Ctrl-C abandons the line. Bytes after the end of a line stay buffered for the
    next read (type-ahead).
    """

    def __init__(self, stream: trio.abc.Stream, *, encoding: str = "utf-8") -> None:
        self.stream = stream
        self.encoding = encoding
        self.line_ending = b"\r\n"
        self._pending = bytearray()
        self._after_cr = False

    async def receive(self) -> bytes:
        """Bytes from the stream (type-ahead first); :exc:`trio.EndOfChannel` at its end."""
        if self._pending:
            pending = bytes(self._pending)
            self._pending.clear()
            return pending
        data = await self.stream.receive_some()
        if not data:
            raise trio.EndOfChannel("the other side hung up")
        return bytes(data)

    def unread(self, data: bytes) -> None:
        """Put *data* back in front of the type-ahead."""
        self._pending[:0] = data

    async def send(self, data: bytes | str) -> None:
        """Send *data*; ``str`` is encoded and its line ends become ``line_ending``."""
        if isinstance(data, str):
            data = _to_line_ending(data, self.line_ending.decode("ascii")).encode(self.encoding)
        if data:
            await self.stream.send_all(data)

    async def read_line(self, *, echo: bool) -> str | None:
        """One line, without its end; ``None`` if Ctrl-C abandoned it."""
        line = bytearray()
        while True:
            data = await self.receive()
            out = bytearray()
            for i, byte in enumerate(data):
                if self._after_cr and byte == _LF:
                    self._after_cr = False
                    continue
                self._after_cr = byte == _CR
                if byte in (_CR, _LF, _CTRL_C):
                    self._pending[:0] = data[i + 1 :]
                    if byte == _CTRL_C:
                        out += b"^C"
                    if echo or byte == _CTRL_C:
                        out += self.line_ending
                    await self.send(bytes(out))
                    if byte == _CTRL_C:
                        return None
                    return line.decode(self.encoding, errors="replace")
                if byte in _BACKSPACE:
                    if line:
                        # Drop the last character, however many bytes it has
                        # in this encoding (an undecodable byte counts as one).
                        text = line.decode(self.encoding, errors="surrogateescape")
                        line[:] = text[:-1].encode(self.encoding, errors="surrogateescape")
                        if echo:
                            out += b"\b \b"
                    continue
                line.append(byte)
                if echo:
                    out.append(byte)
            await self.send(bytes(out))


def _to_line_ending(text: str, line_ending: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", line_ending)


@final
class EchoDevice(FakeDevice):
    """Sends back every byte it receives, as a loopback plug does.

    Args:
      transform: applied to each received chunk before it goes back (for
        example ``bytes.upper``); default: unchanged.
    """

    def __init__(self, *, transform: Callable[[bytes], bytes] | None = None) -> None:
        self.transform = transform

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Echo until the stream ends."""
        term = _Terminal(stream)
        while True:
            data = await term.receive()
            await term.send(self.transform(data) if self.transform else data)


def _echo_command(args: list[str]) -> str:
    return " ".join(args)


@final
class LineShell(FakeDevice):
    """A command shell: prints *prompt*, reads a line, runs its command.

    The first word of a line names the command; its handler is called with
    the remaining words (split on whitespace) and returns the output: a
    ``str`` (whose ``\\n`` become *line_ending*, and which gets a final line
    end if it lacks one), raw ``bytes`` (sent as they are), or ``None``.
    Handlers may be ``async`` (to take time, for example). An unknown
    command prints ``"<name>: command not found"``; an empty line just
    prompts again; ``exit`` and ``logout`` end the session (a standalone
    shell then starts a new one with the banner, like a respawned getty;
    under :class:`BootLogDevice` it goes back to the login prompt).

    Input is handled as a terminal would: echoed when *echo* is true (the
    default, as on real consoles), ``\\r``, ``\\n`` or ``\\r\\n`` end a line,
    backspace and DEL delete, Ctrl-C abandons the line (prints ``^C``).

    Args:
      prompt: printed before each command.
      commands: command name to handler; added to (and overriding) the
        built-in ``echo``, which prints its arguments.
      line_ending: what ends each output line.
      echo: whether typed characters are echoed back.
      banner: printed once when a session starts.
      encoding: of everything sent and received.
    """

    def __init__(
        self,
        *,
        prompt: str = "$ ",
        commands: Mapping[str, ShellHandler] | None = None,
        line_ending: str = "\r\n",
        echo: bool = True,
        banner: str = "",
        encoding: str = "utf-8",
    ) -> None:
        self.prompt = prompt
        self.commands: dict[str, ShellHandler] = {"echo": _echo_command, **(commands or {})}
        self.line_ending = line_ending
        self.echo = echo
        self.banner = banner
        self.encoding = encoding

    def _terminal(self, stream: trio.abc.Stream) -> _Terminal:
        term = _Terminal(stream, encoding=self.encoding)
        term.line_ending = self.line_ending.encode("ascii")
        return term

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Run sessions, one after another, until the stream ends."""
        term = self._terminal(stream)
        while True:
            await self._session(term)

    async def _session(self, term: _Terminal) -> None:
        """One session: banner, then commands until ``exit`` or ``logout``."""
        if self.banner:
            await term.send(_with_line_end(self.banner))
        while True:
            await term.send(self.prompt)
            line = await term.read_line(echo=self.echo)
            if line is None:
                continue
            words = line.split()
            if not words:
                continue
            name, args = words[0], words[1:]
            if name in ("exit", "logout") and name not in self.commands:
                return
            handler = self.commands.get(name)
            if handler is None:
                await term.send(f"{name}: command not found\n")
                continue
            output = handler(args)
            if inspect.isawaitable(output):
                output = await output
            if isinstance(output, str):
                await term.send(_with_line_end(output) if output else "")
            elif output is not None:
                await term.send(output)


def _with_line_end(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


#: A short Linux-like boot log: what :class:`BootLogDevice` prints by default.
DEFAULT_BOOT_LOG: tuple[str, ...] = (
    "U-Boot 2024.01 (Jan 01 2024 - 00:00:00 +0000)",
    "DRAM:  512 MiB",
    "Hit any key to stop autoboot:  0",
    "Starting kernel ...",
    "[    0.000000] Booting Linux on physical CPU 0x0",
    "[    0.000000] Linux version 6.6.0-fake (trioserial)",
    "[    1.234567] Run /sbin/init as init process",
    "Welcome to FakeOS!",
)


@final
class BootLogDevice(FakeDevice):
    """A board that boots: prints a log, then a login prompt, then a shell.

    On each connection it prints *log_lines* (one every *line_delay* seconds),
    then asks for a login (echoed) and a password (not echoed). An empty
    login just prompts again, as getty does (so pressing Enter wakes the
    console). Wrong credentials print ``Login incorrect`` and ask again;
    right ones start *shell*'s session. When the session ends (``exit``), the login prompt
    comes back.

    Args:
      log_lines: the boot log, one line per item.
      line_delay: seconds between log lines (``trio.sleep``, so an autojump
        clock skips it).
      login_prompt, password_prompt: what is printed to ask.
      username, password: the accepted credentials; with ``password=None``
        no password is asked.
      shell: the shell after login (a :class:`LineShell` or a
        :class:`PosixShell`); default a :class:`LineShell` with prompt
        ``"# "``. Its *line_ending* and *encoding* apply to the whole console.
    """

    def __init__(
        self,
        log_lines: Sequence[str] = DEFAULT_BOOT_LOG,
        *,
        line_delay: float = 0.0,
        login_prompt: str = "login: ",
        password_prompt: str = "Password: ",
        username: str = "root",
        password: str | None = "root",
        shell: LineShell | PosixShell | None = None,
    ) -> None:
        self.log_lines = tuple(log_lines)
        self.line_delay = line_delay
        self.login_prompt = login_prompt
        self.password_prompt = password_prompt
        self.username = username
        self.password = password
        self.shell: LineShell | PosixShell = shell if shell is not None else LineShell(prompt="# ")

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Boot, then serve logins until the stream ends."""
        term = self.shell._terminal(stream)
        for line in self.log_lines:
            if self.line_delay:
                await trio.sleep(self.line_delay)
            await term.send(_with_line_end(line))
        while True:
            await term.send(self.login_prompt)
            user = await term.read_line(echo=True)
            if user is None or not user.strip():
                continue  # as getty: an empty name just prompts again
            password: str | None = None
            if self.password is not None:
                await term.send(self.password_prompt)
                password = await term.read_line(echo=False)
                await term.send("\n")  # as login does: the unechoed line still ends
            if user.strip() == self.username and password == self.password:
                await self.shell._session(term)
            else:
                await term.send("\nLogin incorrect\n")


@final
class AtModem(FakeDevice):
    """A Hayes-style AT-command modem.

    Commands end with ``\\r`` (``\\n`` and ``\\r\\n`` work too) and start with
    ``AT`` (any case); other lines are ignored, as modems do. Basic commands
    may be chained (``ATE0I``): ``E0``/``E1`` echo off/on, ``I``/``I0``
    identification (*info*), ``V0``/``V1`` numeric/verbose result codes,
    ``Z`` reset to the defaults. An extended command (``AT+...``) takes the
    rest of the line and answers from *extended* (keys upper case, such as
    ``"+CSQ"``; values are response lines). Anything else answers
    ``ERROR``. Echo is on at the start of each connection, as on real modems.

    Responses are framed as modems frame them: verbose ``\\r\\nOK\\r\\n``,
    numeric ``0\\r`` (``OK``) / ``4\\r`` (``ERROR``).

    Args:
      info: the ``ATI`` answer.
      extended: extended command to response text (``\\n`` separates lines).
    """

    def __init__(
        self, *, info: str = "trioserial fake modem", extended: Mapping[str, str] | None = None
    ) -> None:
        self.info = info
        self.extended = {key.upper(): value for key, value in (extended or {}).items()}

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Answer commands until the stream ends."""
        term = _Terminal(stream)
        term.line_ending = b"\r"  # a modem echoes the carriage return it got
        echo, verbose = True, True
        while True:
            line = await term.read_line(echo=echo)
            if line is None or not line.strip():
                continue
            command = line.strip()
            if command[:2].upper() != "AT":
                continue
            lines, ok, echo_after, verbose_after = self._execute(command[2:], echo, verbose)
            echo, verbose = echo_after, verbose_after
            out = "".join(f"\r\n{text}\r\n" if verbose else f"{text}\r\n" for text in lines)
            if verbose:
                out += "\r\nOK\r\n" if ok else "\r\nERROR\r\n"
            else:
                out += "0\r" if ok else "4\r"
            await term.send(out.encode(term.encoding))

    def _execute(self, rest: str, echo: bool, verbose: bool) -> tuple[list[str], bool, bool, bool]:
        """Run the commands after ``AT``: (response lines, ok, echo, verbose)."""
        lines: list[str] = []
        i = 0
        while i < len(rest):
            letter = rest[i].upper()
            if letter == "+":
                response = self.extended.get(rest[i:].upper())
                if response is None:
                    return lines, False, echo, verbose
                lines += response.splitlines()
                break
            i += 1
            digits = ""
            while i < len(rest) and rest[i].isdigit():
                digits += rest[i]
                i += 1
            if letter == "E" and digits in ("", "0", "1"):
                echo = digits == "1"
            elif letter == "V" and digits in ("", "0", "1"):
                verbose = digits == "1"
            elif letter == "I" and digits in ("", "0"):
                lines += self.info.splitlines()
            elif letter == "Z" and digits in ("", "0"):
                echo, verbose = True, True
            elif letter == " ":
                continue
            else:
                return lines, False, echo, verbose
        return lines, True, echo, verbose


@final
class FakeDevicePort:
    """A fake device behind a stable path that can be unplugged and plugged in.

    Made by :func:`open_fake_device_port`. :attr:`path` is a symlink to the
    current pty's port side; open it as you would ``/dev/ttyUSB0``. The device
    is "powered" while plugged in: it keeps running when your code closes and
    reopens the port, and what it sends while the port is closed waits in the
    pty for the next open.
    """

    def __init__(self, device: FakeDevice, link: str, nursery: trio.Nursery) -> None:
        #: The device model being served.
        self.device = device
        #: The stable path (a symlink) to open.
        self.path = link
        #: How many times the device has been plugged in (1 after opening).
        self.generation = 0
        self._nursery = nursery
        self._pty: PtyDevice | None = None
        self._slave = -1
        self._scope: trio.CancelScope | None = None
        self._finished = False

    @property
    def plugged_in(self) -> bool:
        """Whether the device is there (between :meth:`reappear` and :meth:`hang_up`)."""
        return self._pty is not None

    @property
    def pty_path(self) -> str:
        """The current pty's port-side path (changes at each :meth:`reappear`).

        Raises:
          RuntimeError: the device is unplugged.
        """
        if self._pty is None:
            raise RuntimeError(f"fake device at {self.path!r} is unplugged")
        return self._pty.path

    def hang_up(self) -> None:
        """Unplug the device now: its task stops, the pty goes away.

        An open port on it sees what a USB unplug looks like: reads return
        ``b""`` (:exc:`trio.EndOfChannel` from ``receive``), writes fail with
        :exc:`trio.BrokenResourceError`. The symlink stays, dangling, until
        :meth:`reappear`. Idempotent.
        """
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        if self._pty is not None:
            self._pty.hang_up()
            self._pty = None
        slave, self._slave = self._slave, -1
        if slave != -1:
            os.close(slave)

    def reappear(self) -> None:
        """Plug the device in again: a new pty, :attr:`path` pointed at it,
        and a fresh :meth:`FakeDevice.run` serving it. Hangs up first if needed.

        Raises:
          RuntimeError: the :func:`open_fake_device_port` block has ended.
        """
        if self._finished:
            raise RuntimeError(
                f"fake device at {self.path!r} cannot reappear: its "
                f"open_fake_device_port() block has ended"
            )
        self.hang_up()
        master, slave = os.openpty()
        try:
            # Raw at once: until our port opens and configures it, the line
            # discipline must neither echo the device's output back to it nor
            # cook it.
            tty.setraw(slave)
            pty_path = os.ttyname(slave)
            tmp = f"{self.path}.{self.generation + 1}.tmp"
            os.symlink(pty_path, tmp)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # The device holds the pty open, so it outlives our port's closes.
        self._slave = slave
        self._pty = PtyDevice(master, pty_path)
        self.generation += 1
        self._scope = scope = trio.CancelScope()
        self._nursery.start_soon(self._serve, self.device, self._pty, scope)

    async def _serve(self, device: FakeDevice, pty: PtyDevice, scope: trio.CancelScope) -> None:
        with scope:
            await device.run(pty)


@asynccontextmanager
async def open_fake_device_port(
    device: FakeDevice, *, link: str | os.PathLike[str] | None = None
) -> AsyncIterator[FakeDevicePort]:
    """Serve *device* on a pty behind a stable symlink, plugged in.

    Use it to test reconnect logic: :meth:`FakeDevicePort.hang_up` unplugs,
    :meth:`FakeDevicePort.reappear` plugs a fresh pty in at the same path.
    On exit the device is unplugged, its task ended and every fd closed;
    the symlink (and the temporary directory holding it, if we made one)
    is removed.

    Args:
      device: the model to serve.
      link: where to put the symlink; default a new temporary directory's
        ``ttyFAKE0``.
    """
    tmpdir = None
    if link is None:
        tmpdir = tempfile.mkdtemp(prefix="trioserial-")
        link = os.path.join(tmpdir, "ttyFAKE0")
    link = os.fspath(link)
    try:
        async with trio.open_nursery() as nursery:
            port = FakeDevicePort(device, link, nursery)
            try:
                port.reappear()
                yield port
            finally:
                port._finished = True
                port.hang_up()
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                os.unlink(link)
