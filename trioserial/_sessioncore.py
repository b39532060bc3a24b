"""The engine under :class:`~trioserial.Shell` and :class:`~trioserial.UBoot` (layer 3).

The framing, output cleaning, failure matching and transcript formatting are
sans-IO in :mod:`trioserial._shellproto`; this module only waits, through
:class:`Expect`'s public API. Every wait consumes whole lines as they arrive
(so a 20,000-line output costs linear work, not a search of a growing buffer
per chunk) and checks them for failure patterns on the way.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import re
import secrets
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final, TextIO, final

import trio

from ._expect import Expect, ExpectBufferFullError, ExpectError, ExpectMatch
from ._shellproto import (
    LONG_LINE,
    CommandResult,
    DeviceFailureError,
    FailureWatch,
    Framing,
    Transcript,
    check_command,
    compile_failure_patterns,
    lines_before_marker,
    lines_before_prompt,
    long_line_before_marker,
    prompt_pattern,
    without_echo,
)
from ._util import ConflictDetector

__all__ = ["DEFAULT_MAX_OUTPUT", "WAKE_INTERVAL", "Engine", "State", "check_timeout"]

#: What ``log=`` takes: a path, a text file or a logger.
LogTarget = str | os.PathLike[str] | TextIO | logging.Logger
FailurePatterns = Iterable[str | re.Pattern[str]]

#: How long a failure waits for the rest of its line before it is raised.
LINE_REST_WAIT: Final = 0.25
#: Silence (nothing received) after which a wake-up is sent: Enter for a
#: shell, Ctrl-C for U-Boot. Only on silence: a key typed while a boot log
#: flows would reach getty as an empty login and make it ask twice.
FIRST_WAKE: Final = 0.5
#: ... and between later wake-ups, and how long a sync marker may take.
WAKE_INTERVAL: Final = 2.0
DEFAULT_MAX_OUTPUT: Final = 16 * 1024 * 1024
_ANY_LINE_REST: Final = re.compile(r"[^\n]*\n")


class State(enum.Enum):
    NEW = "new"  # wait_ready / interrupt_autoboot not called yet
    READY = "ready"
    UNSYNCED = "unsynced"  # a cancelled command whose resynchronisation did not finish
    FAILED = "failed"  # a failure pattern was seen


@final
class _Tee(trio.abc.Stream):
    """The session's stream, with what is received also handed to the transcript."""

    def __init__(self, stream: trio.abc.Stream, received: Callable[[bytes], None]) -> None:
        self._stream = stream
        self._received = received

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._stream.receive_some(max_bytes)
        # No checkpoint from here to the caller: a received chunk is recorded
        # exactly once and reaches Expect's buffer.
        if data:
            self._received(bytes(data))
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:  # pragma: no cover - the session never closes it
        await self._stream.aclose()


def _file_writer(file: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        file.write(line)
        file.flush()

    return write


def _log_writer(log: LogTarget | None) -> tuple[Callable[[str], None] | None, TextIO | None]:
    """(write function, file to close) for *log*."""
    if log is None:
        return None, None
    if isinstance(log, logging.Logger):
        logger = log
        return (lambda line: logger.info("%s", line.rstrip("\n"))), None
    if isinstance(log, str | os.PathLike):
        file = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        return _file_writer(file), file
    if callable(getattr(log, "write", None)):
        return _file_writer(log), None
    raise TypeError(f"log must be a path, a text file or a logging.Logger, got {log!r}")


def check_timeout(name: str, value: float | None) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0 or None, got {value!r}")
    return float(value)


class Engine:
    """What :class:`Shell` and :class:`UBoot` share: waits, framing, recovery."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        kind: str,
        dialect: str,
        prompt: str,
        encoding: str,
        fail_on: FailurePatterns,
        log: LogTarget | None,
        interrupt_timeout: float,
        max_output: int,
    ) -> None:
        if not isinstance(stream, trio.abc.Stream):
            raise TypeError(f"stream must be a trio.abc.Stream, got {stream!r}")
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(f"prompt must be a non-empty str, got {prompt!r}")
        self.prompt_text = prompt
        try:
            re.compile(prompt)  # its own error first: positions in *prompt*, not in ours
            self.prompt = prompt_pattern(prompt)
            self.prompt_lines = lines_before_prompt(prompt)
        except re.error as exc:
            raise ValueError(f"prompt {prompt!r} is not a regular expression: {exc}") from None
        self.fail_on = compile_failure_patterns(fail_on)
        self.interrupt_timeout = check_timeout("interrupt_timeout", interrupt_timeout)
        if isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 1:
            raise ValueError(f"max_output must be an int >= 1, got {max_output!r}")
        self.max_output = max_output
        write, self._owned_file = _log_writer(log)
        if self._owned_file is not None:
            weakref.finalize(self, self._owned_file.close)
        name = getattr(stream, "name", None) or getattr(stream, "port", None)
        self.transcript = Transcript(f"{kind} on {name or type(stream).__name__}", write)
        self._t0: float | None = None
        self.last_received: float | None = None
        #: The stream itself, without the transcript's tee (for a file transfer).
        self.stream = stream
        self.expect = Expect(
            _Tee(stream, self._received), encoding=encoding, max_buffer=max(max_output, 65536)
        )
        self.framing = Framing(secrets.token_hex(4), dialect)
        self.watch = FailureWatch()
        self.state = State.NEW
        self._n = 0
        self.busy = ConflictDetector(
            f"another task is already using this {kind} session", trio.BusyResourceError
        )

    # ---------------------------------------------------------------- transcript

    def now(self) -> float:
        """Seconds since the session's first event, on Trio's clock (the transcript's)."""
        return self._now()

    def _now(self) -> float:
        now = trio.current_time()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    def _received(self, data: bytes) -> None:
        self.last_received = trio.current_time()
        self.transcript.received(data, self._now())

    async def wait_or_wake(
        self,
        targets: Sequence[re.Pattern[str]],
        fail: Sequence[re.Pattern[str]],
        wake: Callable[[], Awaitable[None]],
    ) -> ExpectMatch[str]:
        """Wait for one of *targets* at a line start; *wake* the device when it is silent."""
        quiet_needed = FIRST_WAKE
        if self.last_received is None:
            self.last_received = trio.current_time()
        while True:
            with trio.move_on_after(FIRST_WAKE / 2):
                return await self.until(targets, self.prompt_lines, fail)
            if trio.current_time() - self.last_received >= quiet_needed:
                await wake()
                self.last_received = trio.current_time()
                quiet_needed = WAKE_INTERVAL

    def close(self) -> None:
        self.transcript.flush()
        if self._owned_file is not None:
            self._owned_file.close()

    async def send_line(self, line: str, *, shown: str | None = None) -> None:
        self.transcript.sent(line if shown is None else shown, self._now())
        await self.expect.sendline(line)

    async def send_interrupt(self) -> None:
        self.transcript.sent("^C", self._now())
        await self.expect.send(b"\x03")

    # ---------------------------------------------------------------- waits

    def failures(self, fail_on: FailurePatterns | None) -> tuple[re.Pattern[str], ...]:
        return self.fail_on if fail_on is None else compile_failure_patterns(fail_on)

    def _check(self, text: str, fail: Sequence[re.Pattern[str]]) -> None:
        failure = self.watch.scan(text, fail)
        if failure is not None:
            self.state = State.FAILED
            raise failure.error()

    async def until(
        self,
        targets: Sequence[re.Pattern[str]],
        lines: re.Pattern[str],
        fail: Sequence[re.Pattern[str]],
        sink: list[str] | None = None,
        *,
        long_line: re.Pattern[str] = LONG_LINE,
        echo: str | None = None,
    ) -> ExpectMatch[str]:
        """Wait for one of *targets*; complete lines before it are consumed as
        they arrive (into *sink* if given) and checked for failures.

        *lines* must stop where a target can begin, and so must *long_line*,
        which consumes a line that has not ended yet piece by piece (a failure
        pattern split between two pieces of a line longer than
        :data:`~._shellproto.LONG_LINE_PIECE` is not seen). Lines that are the
        echo of the line *echo* are not checked for failures. Raises
        :exc:`DeviceFailureError` for a failure pattern,
        :exc:`ExpectBufferFullError` past ``max_output``.
        """
        patterns = [*targets, lines, long_line, *fail]
        lines_index = len(targets)
        size = 0
        while True:
            found = await self.expect.expect(patterns)
            if found.index in (lines_index, lines_index + 1):
                text = found.after
            elif found.index < lines_index:
                text = found.before  # what precedes it on its line
            else:
                raise await self._failure(found)
            self._check(text if echo is None else without_echo(text, echo), fail)
            if sink is not None and text:
                size += len(text)
                if size > self.max_output:
                    raise ExpectBufferFullError(
                        f"command output is longer than max_output ({self.max_output} characters)",
                        tuple(patterns),
                        text[-256:],
                    )
                sink.append(text)
            if found.index < lines_index:
                return found

    async def _failure(self, found: ExpectMatch[str]) -> DeviceFailureError:
        """The error for a failure matched in an unfinished line (its rest awaited briefly)."""
        self.state = State.FAILED
        rest = None
        with trio.move_on_after(LINE_REST_WAIT):
            rest = (await self.expect.expect(_ANY_LINE_REST)).after
        if rest is None:  # the line has not ended: what there is of it
            rest = self.expect.buffer.partition("\n")[0]
        return self.watch.failure_at(found.before, found.after, rest, found.match).error()

    async def until_marker(
        self, marker: str, fail: Sequence[re.Pattern[str]], *, echo: str | None = None
    ) -> None:
        """Wait for *marker*, wherever it is on its line."""
        await self.until(
            [re.compile(re.escape(marker))],
            lines_before_marker(marker),
            fail,
            long_line=long_line_before_marker(marker),
            echo=echo,
        )

    async def wait_prompt(self, fail: Sequence[re.Pattern[str]]) -> None:
        await self.until([self.prompt], self.prompt_lines, fail)

    def next_number(self) -> int:
        self._n += 1
        return self._n

    async def sync(
        self, fail: Sequence[re.Pattern[str]], *, typed: list[str] | None = None
    ) -> None:
        """Type a line that prints a fresh marker (appended to *typed*, if given);
        wait for it and the prompt after it."""
        n = self.next_number()
        marker = self.framing.sync_marker(n)
        line = self.framing.sync_line(n)
        if typed is not None:
            typed.append(line)
        await self.send_line(line)
        await self.until_marker(marker, fail)
        await self.wait_prompt(fail)
        self.state = State.READY

    async def resync(self, fail: Sequence[re.Pattern[str]]) -> None:
        """Ctrl-C, the prompt, a fresh marker and the prompt again; retried with longer waits."""
        wait = 0.5
        while True:
            await self.send_interrupt()
            with trio.move_on_after(wait):
                await self.wait_prompt(fail)
            with trio.move_on_after(wait):
                await self.sync(fail)
                return
            wait = min(2 * wait, 4.0)

    async def interrupt(self, fail: Sequence[re.Pattern[str]]) -> None:
        """After a cancelled command: stop it and get back to the prompt, shielded and bounded."""
        self.state = State.UNSYNCED
        with trio.move_on_after(self.interrupt_timeout, shield=True):
            while True:
                try:
                    await self.resync(fail)
                except DeviceFailureError:
                    self.state = State.FAILED
                except ExpectBufferFullError:
                    # Waits consume long lines piece by piece, so this is a last
                    # resort: what the buffer holds is dropped, and we try again.
                    self.expect.clear()
                    continue
                except (trio.BrokenResourceError, trio.ClosedResourceError, ExpectError):
                    pass  # the stream is gone: the original error says more
                return

    # ---------------------------------------------------------------- commands

    async def run(
        self,
        command: str,
        timeout: float | None,  # noqa: ASYNC109
        fail_on: FailurePatterns | None,
        *,
        dialect: str,
        not_ready: str,
    ) -> CommandResult:
        check_command(command, dialect=dialect)
        seconds = check_timeout("timeout", timeout)
        fail = self.failures(fail_on)
        if self.state in (State.NEW, State.FAILED):
            raise RuntimeError(not_ready)
        with self.busy:
            try:
                with trio.move_on_after(seconds):
                    return await self._exchange(command, fail)
            except DeviceFailureError:
                raise
            except BaseException:
                await self.interrupt(fail)
                raise
            await self.interrupt(fail)
            state = (
                "the session is ready"
                if self.state is State.READY
                else "the session will resynchronise on the next command"
            )
            raise trio.TooSlowError(
                f"command {command!r} did not finish within {timeout} s; "
                f"it was interrupted (Ctrl-C) and {state}"
            )

    async def exchange(self, command: str, fail: Sequence[re.Pattern[str]]) -> CommandResult:
        """One framed command, with the session already held (``busy``)."""
        return await self._exchange(command, fail)

    async def _exchange(self, command: str, fail: Sequence[re.Pattern[str]]) -> CommandResult:
        if self.state is State.UNSYNCED:
            await self.resync(fail)
        n = self.next_number()
        framing = self.framing
        start, end = framing.start_marker(n), framing.end_marker(n)
        typed = framing.command_line(command, n)
        await self.send_line(typed)
        # Everything before the start marker (the echo, leftovers) is dropped; the
        # echo is not checked for failures (the command may grep for one).
        await self.until_marker(start, fail, echo=typed)
        raw: list[str] = []
        found = await self.until(
            [framing.end_pattern(n)],
            lines_before_marker(end),
            fail,
            raw,
            long_line=long_line_before_marker(end),
        )
        exit_code = int(found.match.group(1))
        await self.wait_prompt(fail)
        return CommandResult(
            command=command, output=framing.output("".join(raw)), exit_code=exit_code
        )

    def tail(self) -> str:
        """The end of the transcript, for timeout messages."""
        lines = self.transcript.text().splitlines()[-5:]
        return "\n".join(lines) if lines else "(nothing)"
