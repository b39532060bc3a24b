"""Device sessions (layer 3): :class:`Shell` and :class:`UBoot` on :class:`Expect`.

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
    DEFAULT_FAILURE_PATTERNS,
    CommandFailedError,
    CommandResult,
    DeviceFailureError,
    FailureWatch,
    Framing,
    Transcript,
    check_command,
    compile_failure_patterns,
    lines_before_marker,
    lines_before_prompt,
    prompt_pattern,
)
from ._util import ConflictDetector

__all__ = ["Shell", "UBoot"]

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


class _State(enum.Enum):
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


def _check_timeout(name: str, value: float | None) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0 or None, got {value!r}")
    return float(value)


class _Engine:
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
            self.prompt = prompt_pattern(prompt)
            self.prompt_lines = lines_before_prompt(prompt)
        except re.error as exc:
            raise ValueError(f"prompt {prompt!r} is not a regular expression: {exc}") from None
        self.fail_on = compile_failure_patterns(fail_on)
        self.interrupt_timeout = _check_timeout("interrupt_timeout", interrupt_timeout)
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
        self.expect = Expect(
            _Tee(stream, self._received), encoding=encoding, max_buffer=max(max_output, 65536)
        )
        self.framing = Framing(secrets.token_hex(4), dialect)
        self.watch = FailureWatch()
        self.state = _State.NEW
        self._n = 0
        self._busy = ConflictDetector(
            f"another task is already using this {kind} session", trio.BusyResourceError
        )

    # ---------------------------------------------------------------- transcript

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
            self.state = _State.FAILED
            raise failure.error()

    async def until(
        self,
        targets: Sequence[re.Pattern[str]],
        lines: re.Pattern[str],
        fail: Sequence[re.Pattern[str]],
        sink: list[str] | None = None,
    ) -> ExpectMatch[str]:
        """Wait for one of *targets*; complete lines before it are consumed as
        they arrive (into *sink* if given) and checked for failures.

        *lines* must stop where a target can begin. Raises
        :exc:`DeviceFailureError` for a failure pattern,
        :exc:`ExpectBufferFullError` past ``max_output``.
        """
        patterns = [*targets, lines, *fail]
        lines_index = len(targets)
        size = 0
        while True:
            found = await self.expect.expect(patterns)
            if found.index == lines_index:
                text = found.after
            elif found.index < lines_index:
                text = found.before  # what precedes it on its line
            else:
                raise await self._failure(found)
            self._check(text, fail)
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
        self.state = _State.FAILED
        rest = None
        with trio.move_on_after(LINE_REST_WAIT):
            rest = (await self.expect.expect(_ANY_LINE_REST)).after
        if rest is None:  # the line has not ended: what there is of it
            rest = self.expect.buffer.partition("\n")[0]
        return self.watch.failure_at(found.before, found.after, rest, found.match).error()

    async def wait_prompt(self, fail: Sequence[re.Pattern[str]]) -> None:
        await self.until([self.prompt], self.prompt_lines, fail)

    def next_number(self) -> int:
        self._n += 1
        return self._n

    async def sync(self, fail: Sequence[re.Pattern[str]]) -> None:
        """Type a line that prints a fresh marker; wait for it and the prompt after it."""
        n = self.next_number()
        marker = self.framing.sync_marker(n)
        await self.send_line(self.framing.sync_line(n))
        await self.until([re.compile(re.escape(marker))], lines_before_marker(marker), fail)
        await self.wait_prompt(fail)
        self.state = _State.READY

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
        self.state = _State.UNSYNCED
        with trio.move_on_after(self.interrupt_timeout, shield=True):
            try:
                await self.resync(fail)
            except DeviceFailureError:
                self.state = _State.FAILED
            except (trio.BrokenResourceError, trio.ClosedResourceError, ExpectError):
                pass  # the stream is gone: the original error says more

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
        seconds = _check_timeout("timeout", timeout)
        fail = self.failures(fail_on)
        if self.state in (_State.NEW, _State.FAILED):
            raise RuntimeError(not_ready)
        with self._busy:
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
                if self.state is _State.READY
                else "the session will resynchronise on the next command"
            )
            raise trio.TooSlowError(
                f"command {command!r} did not finish within {timeout} s; "
                f"it was interrupted (Ctrl-C) and {state}"
            )

    async def _exchange(self, command: str, fail: Sequence[re.Pattern[str]]) -> CommandResult:
        if self.state is _State.UNSYNCED:
            await self.resync(fail)
        n = self.next_number()
        framing = self.framing
        start, end = framing.start_marker(n), framing.end_marker(n)
        await self.send_line(framing.command_line(command, n))
        # Everything before the start marker (the echo, leftovers) is dropped.
        await self.until([re.compile(re.escape(start))], lines_before_marker(start), fail)
        raw: list[str] = []
        found = await self.until([framing.end_pattern(n)], lines_before_marker(end), fail, raw)
        exit_code = int(found.match.group(1))
        await self.wait_prompt(fail)
        return CommandResult(
            command=command, output=framing.output("".join(raw)), exit_code=exit_code
        )

    def tail(self) -> str:
        """The end of the transcript, for timeout messages."""
        lines = self.transcript.text().splitlines()[-5:]
        return "\n".join(lines) if lines else "(nothing)"


def _check_result(result: CommandResult) -> str:
    if result.exit_code != 0:
        raise CommandFailedError(result.command, result.exit_code, result.output)
    return result.output


@final
class Shell:
    """A POSIX shell on a console (busybox ash, bash, a getty login): run
    commands, get their output and exit status.

    See :doc:`sessions` for how commands are framed and what a cancellation
    leaves behind. The session does not own *stream*; :meth:`close` (or
    ``with``) closes only a transcript file it opened.

    Args:
      stream: the console (an :class:`~trioserial.AsyncSerial`, a driver's
        stream, any :class:`trio.abc.Stream`).
      prompt: a regular expression for the shell's prompt, matched where a
        line starts (``r"dut# "``, ``r"[#$] "``).
      username: log in as this user when a login prompt appears.
      password: the password, if one is asked for.
      login_prompt, password_prompt: regular expressions for getty's and
        login's questions.
      encoding: of the console.
      fail_on: failure patterns watched during every wait (regular
        expressions, ``^``/``$`` at line boundaries).
      log: the transcript: a path (written), a text file, or a
        :class:`logging.Logger` (lines logged at ``INFO``).
      interrupt_timeout: how long a cancelled :meth:`run` may spend getting
        back to the prompt (shielded).
      max_output: the longest output :meth:`run` collects (characters).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        prompt: str,
        username: str | None = None,
        password: str | None = None,
        login_prompt: str = r"login: ",
        password_prompt: str = r"[Pp]assword: ",
        encoding: str = "utf-8",
        fail_on: Iterable[str | re.Pattern[str]] = DEFAULT_FAILURE_PATTERNS,
        log: str | os.PathLike[str] | TextIO | logging.Logger | None = None,
        interrupt_timeout: float = 5.0,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        for name, value in (("username", username), ("password", password)):
            if value is not None and (not isinstance(value, str) or "\r" in value or "\n" in value):
                raise ValueError(f"{name} must be a str without line ends or None, got {value!r}")
        self._engine = _Engine(
            stream,
            kind="shell",
            dialect="sh",
            prompt=prompt,
            encoding=encoding,
            fail_on=fail_on,
            log=log,
            interrupt_timeout=interrupt_timeout,
            max_output=max_output,
        )
        try:
            self._login = re.compile(login_prompt)
            self._password_prompt = re.compile(password_prompt)
        except (re.error, TypeError) as exc:
            raise ValueError(
                f"login_prompt/password_prompt must be regular expressions: {exc}"
            ) from None
        self.username = username
        self.password = password

    @property
    def expect(self) -> Expect[str]:
        """The :class:`Expect` under this session, for waits of your own between
        commands (a reboot, a boot log). Text mode; waits here do not watch the
        failure patterns."""
        return self._engine.expect

    def close(self) -> None:
        """Finish the transcript and close its file if *log* was a path. Idempotent."""
        self._engine.close()

    def __enter__(self) -> Shell:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def wait_ready(
        self,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> None:
        """Wake the console, log in if asked to, and wait until the shell runs commands.

        Sends Enter when the console is silent (after 0.5 s, then every 2 s),
        answers a login prompt
        with *username* and a password prompt with *password*, and once the
        prompt is there types ``echo`` of a fresh marker and waits for it and
        the prompt after it. It changes nothing on the device (no ``stty``, no
        prompt of its own): the framing needs neither.

        Call it first, and again whenever the device restarted (after a
        :exc:`DeviceFailureError`, a reboot). After a :exc:`DeviceFailureError`
        the failure patterns are watched only from the prompt on: until then
        the rest of the failure's report (a panic's call trace) is arriving.

        Raises:
          trio.TooSlowError: no prompt within *timeout* (the message shows the
            end of the transcript).
          DeviceFailureError: a failure pattern appeared.
          RuntimeError: a login prompt appeared without *username*, or the
            login was refused.
        """
        engine = self._engine
        seconds = _check_timeout("timeout", timeout)
        fail = engine.failures(fail_on)
        with engine._busy:
            with trio.move_on_after(seconds):
                await self._login_and_sync(fail)
                return
        raise trio.TooSlowError(
            f"no shell prompt matching {engine.prompt_text!r} within {timeout} s; "
            f"the console showed:\n{engine.tail()}"
        )

    async def _login_and_sync(self, fail: Sequence[re.Pattern[str]]) -> None:
        engine = self._engine
        targets = [engine.prompt, self._login, self._password_prompt]
        logins = 0
        # After a failure the rest of its report (a panic's call trace) is
        # still arriving: it is not a new failure. Watch again from the prompt on.
        wake_fail = () if engine.state is _State.FAILED else fail

        async def wake() -> None:
            await engine.send_line("")

        while True:
            found = await engine.wait_or_wake(targets, wake_fail, wake)
            if found.index == 0:
                # A line of a boot log may look like a prompt: the marker decides.
                with trio.move_on_after(WAKE_INTERVAL):
                    await engine.sync(fail)
                    return
                await engine.send_line("")
                continue
            if found.index == 1:
                if self.username is None:
                    raise RuntimeError(
                        f"the console asks for a login ({found.after!r}) but Shell has no username"
                    )
                if logins == 2:
                    raise RuntimeError(f"login as {self.username!r} was refused twice")
                logins += 1
                await engine.send_line(self.username)
            else:
                await engine.send_line(self.password or "", shown="(password)")

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> CommandResult:
        """Run *command*; return its output and exit status.

        Args:
          command: one shell command line (it may contain newlines; it is
            followed by ``; printf`` of the end marker on the same line).
          timeout: seconds, or ``None`` for no limit.
          fail_on: failure patterns for this call instead of the session's.

        Returns:
          The output (line ends ``\\n``, no echo, prompt or escape sequences)
          and the exit status ``$?``.

        Raises:
          trio.TooSlowError: *timeout* expired (the command was interrupted).
          DeviceFailureError: a failure pattern appeared; call
            :meth:`wait_ready` before the next command.
          ExpectBufferFullError: the output is longer than *max_output*.
          RuntimeError: :meth:`wait_ready` was not called (or not since a
            failure).
          trio.BusyResourceError: another task is using this session.

        Cancellation: however it comes (*timeout*, a cancel scope), the
        command is interrupted on the device with Ctrl-C and the session waits
        (shielded, at most *interrupt_timeout*) for the prompt and a fresh
        marker; the next :meth:`run` then sees nothing of this command's
        output. If that did not finish in time, the next :meth:`run` does it
        first.
        """
        return await self._engine.run(
            command,
            timeout,
            fail_on,
            dialect="sh",
            not_ready="the shell session is not ready: call wait_ready() first "
            "(again after a device failure)",
        )

    async def run_check(
        self,
        command: str,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> str:
        """:meth:`run`, returning the output; :exc:`CommandFailedError` for a
        non-zero exit status. Cancellation as :meth:`run`."""
        return _check_result(await self.run(command, timeout=timeout, fail_on=fail_on))


@final
class UBoot:
    """A U-Boot console: stop autoboot, run commands, get their exit status.

    Args:
      stream: the console.
      prompt: U-Boot's prompt, literal text (``CONFIG_SYS_PROMPT``), matched
        where a line starts (so the ``==>`` in ``crc32``'s output is not taken
        for it).
      autoboot_prompt: a regular expression for the autoboot countdown.
      encoding, fail_on, log, interrupt_timeout, max_output: as for
        :class:`Shell`.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        prompt: str = "=> ",
        autoboot_prompt: str = r"Hit any key to stop autoboot",
        encoding: str = "utf-8",
        fail_on: Iterable[str | re.Pattern[str]] = DEFAULT_FAILURE_PATTERNS,
        log: str | os.PathLike[str] | TextIO | logging.Logger | None = None,
        interrupt_timeout: float = 5.0,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(f"prompt must be a non-empty str, got {prompt!r}")
        self._engine = _Engine(
            stream,
            kind="U-Boot",
            dialect="uboot",
            prompt=re.escape(prompt),
            encoding=encoding,
            fail_on=fail_on,
            log=log,
            interrupt_timeout=interrupt_timeout,
            max_output=max_output,
        )
        try:
            self._autoboot = re.compile(autoboot_prompt)
        except (re.error, TypeError) as exc:
            raise ValueError(f"autoboot_prompt must be a regular expression: {exc}") from None

    @property
    def expect(self) -> Expect[str]:
        """The :class:`Expect` under this session (see :attr:`Shell.expect`)."""
        return self._engine.expect

    def close(self) -> None:
        """As :meth:`Shell.close`."""
        self._engine.close()

    def __enter__(self) -> UBoot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def interrupt_autoboot(
        self,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> None:
        """Wait for the autoboot countdown (or the prompt) and stop it.

        Sends Ctrl-C as the "any key" when the countdown appears, and when
        the console is silent (after 0.5 s, then every 2 s): U-Boot may
        already sit at its prompt. Once at the prompt, types
        ``echo`` of a fresh marker and waits for it and the prompt after it.
        Call it first, and again after a reset.

        Raises:
          trio.TooSlowError: no countdown or prompt within *timeout*.
          DeviceFailureError: a failure pattern appeared.
        """
        engine = self._engine
        seconds = _check_timeout("timeout", timeout)
        fail = engine.failures(fail_on)
        wake_fail = () if engine.state is _State.FAILED else fail  # as in Shell.wait_ready
        with engine._busy:
            with trio.move_on_after(seconds):
                while True:
                    found = await engine.wait_or_wake(
                        [self._autoboot, engine.prompt], wake_fail, engine.send_interrupt
                    )
                    if found.index == 0:
                        await engine.send_interrupt()
                        continue
                    with trio.move_on_after(WAKE_INTERVAL):
                        await engine.sync(fail)
                        return
                    await engine.send_interrupt()
        raise trio.TooSlowError(
            f"no U-Boot autoboot countdown or prompt within {timeout} s; "
            f"the console showed:\n{engine.tail()}"
        )

    async def boot(self, command: str = "boot") -> None:
        """Type *command* (``boot``, ``bootm 0x1000000``...) and hand the console over.

        The command does not come back to the prompt, so nothing is framed
        or awaited: open a :class:`Shell` on the same stream and call its
        :meth:`~Shell.wait_ready` next. The session is not ready afterwards
        (until :meth:`interrupt_autoboot` after a reset). Cancellation: as the
        stream's ``send_all``.
        """
        engine = self._engine
        check_command(command, dialect="uboot")
        with engine._busy:
            engine.state = _State.NEW
            await engine.send_line(command)

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> CommandResult:
        """Run a U-Boot command; its output and exit status (hush's ``$?``).

        *command* is one line of printable ASCII (U-Boot's editor completes
        on Tab), at most ``CONFIG_SYS_CBSIZE`` minus about 70 characters of
        framing. The output is what the command printed, line ends as
        ``\\n``; there is no ``printf`` in U-Boot, so output that does not end
        with a newline is returned as it is, and output that does keeps it.
        Raises and cancellation as :meth:`Shell.run` (Ctrl-C stops the
        commands that poll for it: ``sleep``, ``md``, ``loady``...).
        """
        return await self._engine.run(
            command,
            timeout,
            fail_on,
            dialect="uboot",
            not_ready="the U-Boot session is not ready: call interrupt_autoboot() first "
            "(again after a device failure)",
        )

    async def run_check(
        self,
        command: str,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> str:
        """:meth:`run`, returning the output; :exc:`CommandFailedError` for a
        non-zero exit status."""
        return _check_result(await self.run(command, timeout=timeout, fail_on=fail_on))
