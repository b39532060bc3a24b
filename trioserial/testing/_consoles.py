"""Fake consoles that report exit statuses: a POSIX-like shell and a U-Boot.

Enough of ``sh`` and of U-Boot's hush to test :class:`~trioserial.Shell` and
:class:`~trioserial.UBoot` quickly and deterministically: quoting, ``;``,
``$?``, ``echo``, ``printf``, ``sleep`` that Ctrl-C interrupts, an autoboot
countdown. The real thing (busybox in QEMU, U-Boot in QEMU) is what the
project's own slower tests use.
"""

from __future__ import annotations

import inspect
import io
import shutil
import tempfile
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, final

import trio

from .. import transfer
from ._devices import FakeDevice, _Terminal

__all__ = ["ConsoleCommand", "FakeUBoot", "PosixShell"]

#: A command of :class:`PosixShell` or :class:`FakeUBoot`: called with its
#: arguments (quotes removed, ``$?`` expanded); returns the output (``str``,
#: exit status 0), ``(output, status)``, or ``None``, directly or from a
#: coroutine (which Ctrl-C cancels, status 130).
ConsoleCommand = Callable[
    [list[str]],
    "str | tuple[str, int] | Awaitable[str | tuple[str, int] | None] | None",
]

_INTERRUPTED: Final = 130
_ENDED: Final = (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError)


#: Where ``loadx``/``loady`` load without an address (CONFIG_SYS_LOAD_ADDR).
_LOAD_ADDRESS: Final = 0x1000000
#: How long the line must be quiet before U-Boot's post-transfer drain ends.
_DRAIN_QUIET: Final = 0.25


class _Exit(Exception):
    """``exit``: end the session."""


def split_commands(line: str) -> list[list[str]]:
    """*line* as commands (split on unquoted ``;``), each a list of raw words.

    Words keep their quotes (``$?`` is expanded per command, later).
    """
    commands: list[list[str]] = [[]]
    word = ""
    in_word = False
    quote = ""
    for char in line:
        if quote:
            word += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote, word, in_word = char, word + char, True
        elif char == ";":
            if in_word:
                commands[-1].append(word)
            word, in_word = "", False
            commands.append([])
        elif char in " \t":
            if in_word:
                commands[-1].append(word)
            word, in_word = "", False
        else:
            word, in_word = word + char, True
    if in_word:
        commands[-1].append(word)
    return [words for words in commands if words]


def expand(word: str, status: int, env: Mapping[str, str] | None = None) -> str:
    """Remove quotes from *word*; ``$?`` becomes *status* outside single quotes.

    With *env*, ``${NAME}`` outside single quotes also becomes its value
    (empty if unset), as in U-Boot's hush.
    """
    out = ""
    quote = ""
    i = 0
    while i < len(word):
        char = word[i]
        end = word.find("}", i) if env is not None and word.startswith("${", i) else -1
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
        elif quote != "'" and word.startswith("$?", i):
            out += str(status)
            i += 1
        elif quote != "'" and env is not None and end > i:
            out += env.get(word[i + 2 : end], "")
            i = end
        else:
            out += char
        i += 1
    return out


def printf(fmt: str, args: list[str]) -> str:
    """Enough of printf(1): ``%s``, ``%d``, ``%%``, ``\\n``, ``\\t``, ``\\\\``."""
    out = ""
    args = list(args)
    i = 0
    while i < len(fmt):
        char = fmt[i]
        nxt = fmt[i + 1] if i + 1 < len(fmt) else ""
        if char == "\\" and nxt in "nt\\":
            out += {"n": "\n", "t": "\t", "\\": "\\"}[nxt]
            i += 2
        elif char == "%" and nxt in "sd%":
            if nxt == "%":
                out += "%"
            else:
                arg = args.pop(0) if args else ""
                out += str(int(arg or 0)) if nxt == "d" else arg
            i += 2
        else:
            out += char
            i += 1
    return out


def _echo(args: list[str]) -> str:
    if args[:1] == ["-n"]:
        return " ".join(args[1:])
    return " ".join(args) + "\n"


async def _sleep(args: list[str]) -> str:
    await trio.sleep(float(args[0]) if args else 0)
    return ""


def _seq(args: list[str]) -> str:
    first, last = (1, int(args[0])) if len(args) == 1 else (int(args[0]), int(args[1]))
    return "".join(f"{n}\n" for n in range(first, last + 1))


class _Interpreter:
    """Runs command lines with builtins and handlers; Ctrl-C interrupts a running line."""

    def __init__(
        self,
        commands: Mapping[str, ConsoleCommand],
        not_found: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.commands = dict(commands)
        self.not_found = not_found
        self.env = env  # expands ${NAME}, if given
        self.status = 0

    async def run_line(self, term: _Terminal, line: str) -> None:
        """Run *line*; Ctrl-C (read meanwhile) interrupts it with status 130."""
        held = bytearray()
        interrupted = ended = False
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal interrupted, ended
                while True:
                    try:
                        data = await term.receive()
                    except _ENDED:
                        ended = True
                        nursery.cancel_scope.cancel()
                        return
                    stop = data.find(b"\x03")
                    if stop < 0:
                        held.extend(data)
                        continue
                    # As a tty's ISIG does: input typed before the Ctrl-C is flushed.
                    held[:] = data[stop + 1 :]
                    interrupted = True
                    nursery.cancel_scope.cancel()
                    return

            async def execute() -> None:
                nonlocal ended
                try:
                    for words in split_commands(line):
                        await self._command(term, words)
                except _ENDED:
                    ended = True
                finally:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(execute)
        if ended:  # raised here, not from the nursery: FakeDevice.run ends quietly
            raise trio.EndOfChannel("the console's stream ended")
        term.unread(bytes(held))
        if interrupted:
            self.status = _INTERRUPTED
            await term.send("^C\n")

    async def _command(self, term: _Terminal, words: list[str]) -> None:
        args = [expand(word, self.status, self.env) for word in words]
        # As hush does, an unquoted word that expanded to nothing is no argument.
        args = [
            arg for arg, word in zip(args, words, strict=True) if arg or "'" in word or '"' in word
        ]
        if not args:
            return  # only expansions to nothing
        name, args = args[0], args[1:]
        if name == "exit" and name not in self.commands:
            raise _Exit
        handler = self.commands.get(name)
        if handler is None:
            await term.send(self.not_found.format(name=name))
            self.status = 127
            return
        result = handler(args)
        if inspect.isawaitable(result):
            result = await result
        output, status = result if isinstance(result, tuple) else (result or "", 0)
        await term.send(output)
        self.status = status


@final
class PosixShell(FakeDevice):
    """A shell that reports exit statuses, for testing :class:`~trioserial.Shell`.

    Reads a line (echoed, as a tty does), splits it on ``;`` outside quotes,
    removes quotes, expands ``$?``, and runs each command. Built in:
    ``echo [-n]``, ``printf FORMAT ARGS`` (``%s %d %%``, ``\\n \\t \\\\``),
    ``true``, ``false``, ``sleep SECONDS``, ``seq [FIRST] LAST``, ``stty``
    (does nothing), ``exit``; *commands* add to and override them. An
    unknown command prints ``sh: NAME: not found`` (status 127). Ctrl-C
    interrupts a running line (``^C``, status 130) and, at the prompt,
    abandons the typed line; as with a tty, input typed before the Ctrl-C is
    discarded.

    Use it alone, or as the *shell* of a
    :class:`~trioserial.testing.BootLogDevice` for a getty-style login.

    Args:
      prompt: printed before each line.
      commands: name to :data:`ConsoleCommand`.
      cursor_query: send ``ESC[6n`` after each prompt, as busybox ash's line
        editor does.
      echo: echo typed characters.
      banner: printed when a session starts.
      encoding: of the console.
    """

    def __init__(
        self,
        *,
        prompt: str = "# ",
        commands: Mapping[str, ConsoleCommand] | None = None,
        cursor_query: bool = False,
        echo: bool = True,
        banner: str = "",
        encoding: str = "utf-8",
    ) -> None:
        self.prompt = prompt
        self.commands: dict[str, ConsoleCommand] = {
            "echo": _echo,
            "printf": lambda args: printf(args[0], args[1:]) if args else "",
            "true": lambda args: None,
            "false": lambda args: ("", 1),
            "sleep": _sleep,
            "seq": _seq,
            "stty": lambda args: None,
            **(commands or {}),
        }
        self.cursor_query = cursor_query
        self.echo = echo
        self.banner = banner
        self.encoding = encoding
        self.line_ending = "\r\n"

    def _terminal(self, stream: trio.abc.Stream) -> _Terminal:
        return _Terminal(stream, encoding=self.encoding)

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Run sessions, one after another, until the stream ends."""
        term = self._terminal(stream)
        while True:
            await self._session(term)

    async def _session(self, term: _Terminal) -> None:
        if self.banner:
            await term.send(self.banner if self.banner.endswith("\n") else self.banner + "\n")
        shell = _Interpreter(self.commands, "sh: {name}: not found\n")
        while True:
            await term.send(self.prompt)
            if self.cursor_query:
                await term.send(b"\x1b[6n")
            line = await term.read_line(echo=self.echo)
            if line is None:
                shell.status = _INTERRUPTED
                continue
            if not line.strip():
                continue
            try:
                await shell.run_line(term, line)
            except _Exit:
                return


#: What :class:`FakeUBoot` prints before the countdown.
UBOOT_BANNER: Final = (
    "\nU-Boot 2023.01 (trioserial fake)\n\nDRAM:  256 MiB\nModel: trioserial FakeUBoot\n"
)


@final
class FakeUBoot(FakeDevice):
    """A U-Boot-like console: banner, autoboot countdown, ``=> `` prompt, hush's ``$?``.

    Prints *banner* and ``Hit any key to stop autoboot:  N``, counting down
    once a second (``trio.sleep``: an autojump clock skips it); any key stops
    it (the key is consumed, as U-Boot does). At the prompt, commands run as
    in :class:`PosixShell` (``;``, quotes, ``$?``) with U-Boot's builtins:
    ``echo [-n]``, ``true``, ``false``, ``sleep``, ``version``,
    ``setenv NAME VALUE``, ``printenv [NAME]``, ``${NAME}`` (empty if unset),
    ``reset`` (prints
    ``resetting ...`` and boots again) and ``boot`` (also what the countdown
    runs: ``Starting kernel ...``, then *kernel* serves the console, if
    given). Unknown commands print ``Unknown command 'NAME' - try 'help'``
    (status 1).

    ``loadx ADDR`` and ``loady ADDR`` receive an image with XMODEM or YMODEM
    into the fake's RAM at ``ADDR`` (hex), and ``crc32 ADDR COUNT`` prints
    U-Boot's checksum line over it, so :meth:`trioserial.UBoot.load` can be
    tested without a board; a load sets ``filesize`` (hex, no ``0x``), so
    ``crc32 ADDR ${filesize}`` checks what was loaded. As the real U-Boot does after a transfer, the
    fake then drains the line until it has been quiet for a quarter of a
    second and drops what it read, before printing ``## Total Size`` and the
    prompt: a host that types at once loses its line. :meth:`FakeUBoot.read_memory`
    shows what was loaded.

    Args:
      bootdelay: the countdown's seconds.
      prompt: U-Boot's prompt.
      banner: printed at each boot.
      commands: extra commands (:data:`ConsoleCommand`).
      kernel: what ``boot`` hands the console to (a :class:`PosixShell`);
        ``None``: ``boot`` fails and the prompt comes back.
    """

    def __init__(
        self,
        *,
        bootdelay: int = 2,
        prompt: str = "=> ",
        banner: str = UBOOT_BANNER,
        commands: Mapping[str, ConsoleCommand] | None = None,
        kernel: PosixShell | None = None,
    ) -> None:
        self.bootdelay = bootdelay
        self.prompt = prompt
        self.banner = banner
        self.extra = dict(commands or {})
        self.kernel = kernel
        self._ram: dict[int, bytes] = {}  # start address -> what was loaded there

    def read_memory(self, address: int, size: int) -> bytes:
        """*size* bytes of the fake's RAM at *address*: zeros where nothing was loaded."""
        if address < 0 or size < 0:
            raise ValueError(f"address and size must be >= 0, got {address:#x} and {size}")
        out = bytearray(size)
        for start, data in self._ram.items():
            low, high = max(start, address), min(start + len(data), address + size)
            if low < high:
                out[low - address : high - address] = data[low - start : high - start]
        return bytes(out)

    def _crc32(self, args: list[str]) -> tuple[str, int]:
        try:
            address, count = int(args[0], 16), int(args[1], 16)
        except (IndexError, ValueError):
            return "crc32 - checksum calculation\n\nUsage:\ncrc32 address count\n", 1
        crc = zlib.crc32(self.read_memory(address, count))
        return f"crc32 for {address:08x} ... {address + count - 1:08x} ==> {crc:08x}\n", 0

    async def _load(self, term: _Terminal, protocol: str, args: list[str]) -> tuple[int, int]:
        """``loadx``/``loady``: receive into RAM, drain the line, report.

        Returns:
          The exit status and the size loaded.
        """
        try:
            address = int(args[0], 16) if args else _LOAD_ADDRESS
        except ValueError:
            await term.send(f"Usage: load{protocol[0]} [off] [baud]\n")
            return 1, 0
        await term.send(
            f"## Ready for binary ({protocol}) download to 0x{address:08X} at 115200 bps...\n"
        )
        wire = _TerminalStream(term)
        try:
            if protocol == "xmodem":
                sink = io.BytesIO()
                await transfer.xmodem_receive(wire, sink)
                # U-Boot counts XMODEM's padding out of the last block.
                image = sink.getvalue().rstrip(b"\x1a")
            else:
                image = await _ymodem_image(wire)
        except transfer.TransferError as exc:
            await _drain(term)
            await term.send(f"## Binary ({protocol}) download aborted: {exc}\n")
            return 1, 0
        await _drain(term)
        self._ram[address] = image
        await term.send(
            f"## Total Size      = 0x{len(image):08x} = {len(image)} Bytes\n"
            f"## Start Addr      = 0x{address:08X}\n"
        )
        return 0, len(image)

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Boot, count down, and serve the prompt until the stream ends."""
        term = _Terminal(stream)
        while True:
            if await self._boot(term):
                return

    async def _boot(self, term: _Terminal) -> bool:
        """One power cycle; ``True`` when the kernel took over and ended."""
        env = {"bootcmd": "boot", "bootdelay": str(self.bootdelay)}
        action = ""

        def setenv(args: list[str]) -> tuple[str, int]:
            if not args:
                return "setenv - set environment variables\n", 1
            if len(args) == 1:
                env.pop(args[0], None)
            else:
                env[args[0]] = " ".join(args[1:])
            return "", 0

        def printenv(args: list[str]) -> tuple[str, int]:
            names = args or sorted(env)
            missing = [name for name in names if name not in env]
            if missing:
                return f'## Error: "{missing[0]}" not defined\n', 1
            return "".join(f"{name}={env[name]}\n" for name in names), 0

        action_args: list[str] = []

        def request(what: str) -> Callable[[list[str]], None]:
            def handler(args: list[str]) -> None:
                nonlocal action, action_args
                action, action_args = what, args

            return handler

        commands: dict[str, ConsoleCommand] = {
            "echo": _echo,
            "true": lambda args: None,
            "false": lambda args: ("", 1),
            "sleep": _sleep,
            "version": lambda args: "U-Boot 2023.01 (trioserial fake)\n",
            "setenv": setenv,
            "printenv": printenv,
            "reset": request("reset"),
            "boot": request("boot"),
            # The transfer needs the console to itself, outside the Ctrl-C watch.
            "loadx": request("xmodem"),
            "loady": request("ymodem"),
            "crc32": self._crc32,
            **self.extra,
        }
        hush = _Interpreter(commands, "Unknown command '{name}' - try 'help'\n", env)
        await term.send(self.banner)
        if await self._countdown(term):
            action = "boot"
        while True:
            if action == "boot":
                action = ""
                await term.send("Starting kernel ...\n\n")
                if self.kernel is not None:
                    await self.kernel._session(term)
                    return True
                await term.send("## no kernel image\n")
                hush.status = 1
            if action == "reset":
                await term.send("resetting ...\n")
                return False
            if action in ("xmodem", "ymodem"):
                hush.status, size = await self._load(term, action, action_args)
                if hush.status == 0:
                    env["filesize"] = f"{size:x}"  # as env_set_hex() does
                action = ""
            await term.send(self.prompt)
            line = await term.read_line(echo=True)
            if line is None:
                await term.send("<INTERRUPT>\n")
                continue
            if line.strip():
                await hush.run_line(term, line)

    async def _countdown(self, term: _Terminal) -> bool:
        """The countdown; ``True`` if it ran out (autoboot), ``False`` if a key stopped it."""
        left = self.bootdelay
        await term.send(f"Hit any key to stop autoboot: {left:2d} ")
        while left > 0:
            with trio.move_on_after(1):
                key = await term.receive()
                term.unread(key[1:])  # one key is consumed
                await term.send("\b\b\b 0 \n")
                return False
            left -= 1
            await term.send(f"\b\b\b{left:2d} ")
        await term.send("\n")
        return True


class _TerminalStream(trio.abc.Stream):
    """The console's raw bytes for a file transfer: type-ahead first, no echo."""

    def __init__(self, term: _Terminal) -> None:
        self._term = term

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self._term.receive()
        if max_bytes is not None and len(data) > max_bytes:
            self._term.unread(data[max_bytes:])
            data = data[:max_bytes]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._term.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._term.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        raise trio.BusyResourceError("a fake console's transfer does not end the stream")

    async def aclose(self) -> None:
        pass  # the console's stream belongs to the device


async def _drain(term: _Terminal) -> None:
    """Drop input until the line has been quiet for :data:`_DRAIN_QUIET` (xyzModem_flush)."""
    while True:
        with trio.move_on_after(_DRAIN_QUIET):
            await term.receive()
            continue
        return


async def _ymodem_image(wire: trio.abc.Stream) -> bytes:
    """The first file of a YMODEM batch, as ``loady`` keeps it."""
    directory = await trio.to_thread.run_sync(tempfile.mkdtemp)
    try:
        files = await transfer.ymodem_receive(wire, directory)
        return await trio.Path(files[0]).read_bytes() if files else b""
    finally:
        await trio.to_thread.run_sync(shutil.rmtree, directory)
