"""Device sessions (layer 3): :class:`Shell` and :class:`UBoot` on :class:`Expect`.

The framing, output cleaning, failure matching and transcript formatting are
sans-IO in :mod:`trioserial._shellproto`; the waits are in
:mod:`trioserial._sessioncore`. This module is the public face.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO, TextIO, final

import trio

from . import _uboot_load
from ._expect import Expect
from ._sessioncore import DEFAULT_MAX_OUTPUT, WAKE_INTERVAL, Engine, State, check_timeout
from ._shellproto import (
    DEFAULT_FAILURE_PATTERNS,
    CommandFailedError,
    CommandResult,
    check_command,
)
from ._transfer_base import TransferProgress

__all__ = ["Shell", "UBoot"]


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
        self._engine = Engine(
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
          trio.TooSlowError: no prompt within *timeout*, or a prompt but not the
            marker (not a POSIX shell?); the message says which and shows the
            end of the transcript.
          DeviceFailureError: a failure pattern appeared.
          RuntimeError: a login prompt appeared without *username*, or the
            login was refused.
        """
        engine = self._engine
        seconds = check_timeout("timeout", timeout)
        fail = engine.failures(fail_on)
        synced: list[str] = []  # the sync lines typed after a prompt
        with engine.busy:
            with trio.move_on_after(seconds):
                await self._login_and_sync(fail, synced)
                return
        if synced:
            # The prompt was there: the shell does not run our echo as a POSIX
            # shell would (quotes kept, say), or is too busy to.
            raise trio.TooSlowError(
                f"a prompt matching {engine.prompt_text!r} was seen, but the sync marker "
                f"typed after it ({synced[-1]}) never printed back (is this a POSIX shell?) "
                f"within {timeout} s; the console showed:\n{engine.tail()}"
            )
        raise trio.TooSlowError(
            f"no shell prompt matching {engine.prompt_text!r} within {timeout} s; "
            f"the console showed:\n{engine.tail()}"
        )

    async def _login_and_sync(self, fail: Sequence[re.Pattern[str]], synced: list[str]) -> None:
        """Log in and sync; each sync line typed after a prompt is appended to *synced*."""
        engine = self._engine
        targets = [engine.prompt, self._login, self._password_prompt]
        logins = 0
        # After a failure the rest of its report (a panic's call trace) is
        # still arriving: it is not a new failure. Watch again from the prompt on.
        wake_fail = () if engine.state is State.FAILED else fail

        async def wake() -> None:
            await engine.send_line("")

        while True:
            found = await engine.wait_or_wake(targets, wake_fail, wake)
            if found.index == 0:
                # A line of a boot log may look like a prompt: the marker decides.
                with trio.move_on_after(WAKE_INTERVAL):
                    await engine.sync(fail, typed=synced)
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
        self._engine = Engine(
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
        seconds = check_timeout("timeout", timeout)
        fail = engine.failures(fail_on)
        wake_fail = () if engine.state is State.FAILED else fail  # as in Shell.wait_ready
        with engine.busy:
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
        with engine.busy:
            engine.state = State.NEW
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

    async def load(
        self,
        data: bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str],
        address: int,
        *,
        protocol: str = "ymodem",
        progress: Callable[[TransferProgress], object] | None = None,
        timeout: float | None = 600.0,  # noqa: ASYNC109
        fail_on: Iterable[str | re.Pattern[str]] | None = None,
    ) -> int:
        """Load *data* into memory at *address* over the console, and check it.

        Types ``loady ADDRESS`` (``protocol="ymodem"``) or ``loadx ADDRESS``
        (``"xmodem"``, 1 KiB blocks), sends *data* with
        :func:`trioserial.transfer.ymodem_send` /
        :func:`~trioserial.transfer.xmodem_send` on the same stream, waits for
        the prompt (U-Boot drops what is typed while it drains the line after
        a transfer, so nothing is typed before it), then runs
        ``crc32 ADDRESS LENGTH`` and compares U-Boot's CRC-32 with the host's
        (so XMODEM's padding after the image is not counted). U-Boot's
        ``${filesize}`` is set by the load as usual.

        Args:
          data: the image: bytes-like, a binary file object or a path (read
            whole, in a worker thread: U-Boot needs it in memory anyway).
          address: where U-Boot writes it (``CONFIG_SYS_LOAD_ADDR`` is a usual
            choice; nothing checks that it is RAM).
          protocol: ``"ymodem"`` (the default) or ``"xmodem"``.
          progress: called with a :class:`~trioserial.transfer.TransferProgress`
            at least once per block, as by the transfer functions.
          timeout: for the whole load, in seconds (``None``: no limit). A
            transfer runs at the line rate: at 115200 bps about 11 KB/s at
            best, and U-Boot acknowledges every block.
          fail_on: failure patterns for this call (default: the session's).

        Returns:
          The number of bytes loaded (``len(data)``).

        Raises:
          trioserial.transfer.TransferError: the transfer failed (the
            subclasses say why), U-Boot did not start the load, or the CRC-32
            differs (the message names both values).
          trio.TooSlowError: *timeout* passed; the load was cancelled.
          DeviceFailureError: a failure pattern appeared.
          RuntimeError: the session is not ready (call
            :meth:`interrupt_autoboot` first).

        Cancellation:
          As :meth:`run`: a cancelled load tells U-Boot with the protocol's
          CAN sequence, then Ctrl-C and the prompt put the console back
          (shielded, bounded by ``interrupt_timeout``); the session is ready
          for the next command. What is in U-Boot's memory at *address* is
          then whatever part of the image had arrived.
        """
        return await _uboot_load.load(
            self._engine,
            data,
            address,
            protocol=protocol,
            progress=progress,
            timeout=timeout,
            fail_on=fail_on,
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
