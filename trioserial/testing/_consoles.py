"""Fake consoles that report exit statuses: a POSIX-like shell and a U-Boot.

Enough of ``sh`` and of U-Boot's hush to test :class:`~trioserial.Shell` and
:class:`~trioserial.UBoot` quickly and deterministically: quoting, ``;``,
``$?``, ``echo``, ``printf``, ``sleep`` that Ctrl-C interrupts, an autoboot
countdown. The real thing (busybox in QEMU, U-Boot in QEMU) is what the
project's own slower tests use.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, final

import trio

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


def expand(word: str, status: int) -> str:
    """Remove quotes from *word*; ``$?`` becomes *status* outside single quotes."""
    out = ""
    quote = ""
    i = 0
    while i < len(word):
        char = word[i]
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
        elif quote != "'" and word.startswith("$?", i):
            out += str(status)
            i += 1
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

    def __init__(self, commands: Mapping[str, ConsoleCommand], not_found: str) -> None:
        self.commands = dict(commands)
        self.not_found = not_found
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
        args = [expand(word, self.status) for word in words]
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
    ``setenv NAME VALUE``, ``printenv [NAME]``, ``reset`` (prints
    ``resetting ...`` and boots again) and ``boot`` (also what the countdown
    runs: ``Starting kernel ...``, then *kernel* serves the console, if
    given). Unknown commands print ``Unknown command 'NAME' - try 'help'``
    (status 1).

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

        def request(what: str) -> Callable[[list[str]], None]:
            def handler(args: list[str]) -> None:
                nonlocal action
                action = what

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
            **self.extra,
        }
        hush = _Interpreter(commands, "Unknown command '{name}' - try 'help'\n")
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
