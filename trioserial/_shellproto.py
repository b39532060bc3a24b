"""Device sessions, sans-IO (layer 0): command framing, output cleaning, failure
watching and grabserial-style transcripts.

Nothing here waits or touches a stream: :mod:`trioserial._session` drives it
through :class:`~trioserial.Expect`. The framing puts a command between two
markers that the shell prints, built so that the *echo* of the typed line can
never match them (the marker text is split by quotes in what is typed, whole in
what is printed), and the end marker carries ``$?``. So output is exactly what
lies between the markers, and the exit status comes from the shell itself.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final, final

import attrs

__all__ = [
    "DEFAULT_FAILURE_PATTERNS",
    "CommandFailedError",
    "CommandResult",
    "DeviceFailureError",
    "Failure",
    "FailureWatch",
    "Framing",
    "Transcript",
    "clean_output",
    "recent_transcripts",
]

#: Messages that mean the device failed: the Linux kernel's panic, oops, BUG
#: and stack-trace lines, and U-Boot giving up (``hang()`` and ``panic()``,
#: which print the ``### ERROR ###`` line or ``resetting ...``).
DEFAULT_FAILURE_PATTERNS: Final[tuple[str, ...]] = (
    r"Kernel panic",
    r"Oops:",
    r"BUG:",
    r"Call Trace:",
    r"U-Boot SPL[^\n]*resetting|^resetting \.\.\.",
    r"### ERROR ### Please RESET the board ###",
)

#: Terminal escape sequences: CSI (``ESC [ ... final``, so also busybox ash's
#: cursor query ``ESC[6n``), OSC (``ESC ] ... BEL``), charset selection
#: (``ESC ( B``), other two-character escapes, and a lone ESC.
_ESCAPE: Final = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[()*+\-./][ -~]|[ -~]?)"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
#: Line ends: CR LF, CR CR LF (ONLCR on a line that already had CR), LF CR,
#: and a lone CR all become one LF.
_LINE_END: Final = re.compile(r"\r*\n\r*(?!\n)|\r*\n|\r+")

#: How much context (characters before the matched line) a failure keeps.
CONTEXT_CHARS: Final = 4096


def clean_output(raw: str) -> str:
    """*raw* console text without escape sequences, with every line end as ``\\n``."""
    if "\x1b" in raw or "\x9b" in raw:
        raw = _ESCAPE.sub("", raw)
    if "\r" in raw:
        raw = _LINE_END.sub("\n", raw)
    return raw


def _tail_lines(text: str, count: int) -> str:
    lines = text.splitlines()[-count:]
    return "\n".join(lines)


@final
@attrs.frozen
class CommandResult:
    """What :meth:`Shell.run <trioserial.Shell.run>` returns."""

    #: The command as passed.
    command: str
    #: What the command printed (stdout and stderr as the console shows them),
    #: line ends as ``\n``, without the echoed command, the prompt or escape
    #: sequences.
    output: str
    #: The exit status the device reported (``$?``).
    exit_code: int


class CommandFailedError(Exception):
    """A command run by ``run_check`` ended with a non-zero exit status."""

    def __init__(self, command: str, exit_code: int, output: str) -> None:
        last = _tail_lines(output, 5)
        super().__init__(
            f"command {command!r} failed with exit code {exit_code}"
            + (f"; its output ends:\n{last}" if last else "; it printed nothing")
        )
        #: The command as passed.
        self.command = command
        #: Its exit status (non-zero).
        self.exit_code = exit_code
        #: Its output, as in :attr:`CommandResult.output`.
        self.output = output


class DeviceFailureError(Exception):
    """A failure pattern (a kernel panic, ...) appeared on the console.

    Raised at once by the wait that saw it, instead of waiting out a timeout.
    """

    def __init__(self, line: str, match: re.Match[str], context: str) -> None:
        super().__init__(
            f"device failure: {line.strip()!r} (matched {match.re.pattern!r})"
            + (f"; the console before it:\n{_tail_lines(context, 10)}" if context.strip() else "")
        )
        #: The whole console line the pattern matched in (escape sequences and
        #: line end removed).
        self.line = line
        #: The match of the failure pattern.
        self.match = match
        #: Console text before that line (up to 4096 characters).
        self.context = context


@final
@attrs.frozen
class Failure:
    """Where a :class:`FailureWatch` found a pattern."""

    line: str
    match: re.Match[str]
    context: str

    def error(self) -> DeviceFailureError:
        return DeviceFailureError(self.line, self.match, self.context)


def compile_failure_patterns(
    patterns: Iterable[str | re.Pattern[str]],
) -> tuple[re.Pattern[str], ...]:
    """Failure patterns compiled with :data:`re.MULTILINE` (``^`` is a line start).

    Raises:
      TypeError: a pattern is neither ``str`` nor a ``str`` regex.
      ValueError: a pattern does not compile.
    """
    if isinstance(patterns, str | bytes | re.Pattern):
        raise TypeError(
            f"fail_on must be a list of regular expressions, got a single {type(patterns).__name__}"
        )
    compiled = []
    for pattern in patterns:
        if isinstance(pattern, re.Pattern):
            if not isinstance(pattern.pattern, str):
                raise TypeError(f"failure pattern {pattern!r} must be a str regex, not bytes")
            compiled.append(re.compile(pattern.pattern, pattern.flags | re.MULTILINE))
        elif isinstance(pattern, str):
            if not pattern:
                raise ValueError("an empty failure pattern would match everything")
            try:
                compiled.append(re.compile(pattern, re.MULTILINE))
            except re.error as exc:
                raise ValueError(f"failure pattern {pattern!r} does not compile: {exc}") from None
        else:
            raise TypeError(f"a failure pattern must be a str regex, got {type(pattern).__name__}")
    return tuple(compiled)


@final
class FailureWatch:
    """Scans console text for failure patterns and keeps recent context.

    :meth:`scan` takes text as it is consumed, in order; a pattern is found
    within one piece (the session feeds whole lines, so within a line).
    """

    def __init__(self) -> None:
        self._recent = ""

    @property
    def recent(self) -> str:
        """The last :data:`CONTEXT_CHARS` characters scanned."""
        return self._recent

    def scan(self, text: str, patterns: Sequence[re.Pattern[str]]) -> Failure | None:
        """Record *text*; the earliest failure in it, or ``None``."""
        best: re.Match[str] | None = None
        for pattern in patterns:
            found = pattern.search(text)
            if found is not None and (best is None or found.start() < best.start()):
                best = found
        if best is None:
            self._remember(text)
            return None
        start = text.rfind("\n", 0, best.start()) + 1
        end = text.find("\n", best.end())
        end = len(text) if end < 0 else end
        context = (self._recent + text[:start])[-CONTEXT_CHARS:]
        self._remember(text)
        return Failure(clean_output(text[start:end]).strip("\n"), best, clean_output(context))

    def failure_at(self, before: str, matched: str, rest: str, found: re.Match[str]) -> Failure:
        """A failure matched by a wait: *before* it on its line, *rest* after it."""
        line_start = before.rfind("\n") + 1
        context = (self._recent + before[:line_start])[-CONTEXT_CHARS:]
        line = before[line_start:] + matched + rest
        self._remember(before + matched + rest)
        return Failure(clean_output(line).strip("\n"), found, clean_output(context))

    def _remember(self, text: str) -> None:
        self._recent = (self._recent + text)[-CONTEXT_CHARS:]


@final
@attrs.frozen
class Framing:
    """How commands are framed for one kind of shell, and the patterns to wait for.

    Args:
      token: makes this session's markers unique (letters and digits).
      dialect: ``"sh"`` (a POSIX shell: the end marker starts a new line, so
        output without a final newline is exact) or ``"uboot"`` (U-Boot's
        hush, which has no ``printf``: the end marker follows the output
        directly).
    """

    token: str
    dialect: str = "sh"

    def start_marker(self, n: int) -> str:
        return f"__TS{self.token}_{n}__"

    def end_marker(self, n: int) -> str:
        return f"__TE{self.token}_{n}__"

    def sync_marker(self, n: int) -> str:
        return f"__TY{self.token}_{n}__"

    @staticmethod
    def _typed(marker: str) -> str:
        # '__TE''tok_1__' is echoed as typed but printed as __TEtok_1__.
        return f"'{marker[:4]}''{marker[4:]}'"

    def command_line(self, command: str, n: int) -> str:
        """The line to type for *command* (without the line ending)."""
        start = self._typed(self.start_marker(n))
        end = self._typed(self.end_marker(n))
        if self.dialect == "uboot":
            return f"echo {start}; {command}; echo {end}$?"
        return f"echo {start}; {command}; printf '\\n%s%d\\n' {end} $?"

    def sync_line(self, n: int) -> str:
        """A line that prints :meth:`sync_marker`: proves the shell runs what we type."""
        return f"echo {self._typed(self.sync_marker(n))}"

    def end_pattern(self, n: int) -> re.Pattern[str]:
        """The end marker with the exit status (group 1) and its line end."""
        return re.compile(re.escape(self.end_marker(n)) + r"(\d{1,10})[^\S\n]*\n")

    def output(self, raw: str) -> str:
        """The command's output from *raw*, everything between the two markers."""
        text = clean_output(raw)
        text = text.removeprefix("\n")  # the start marker's line end
        if self.dialect == "sh":
            text = text.removesuffix("\n")  # the one printf put before the end marker
        return text


def lines_before_marker(marker: str) -> re.Pattern[str]:
    """Complete lines at the buffer's start, stopping where *marker* begins (even mid-line)."""
    return re.compile(r"^(?:(?:(?!" + re.escape(marker) + r")[^\n])*\n)+")


#: How much of a line that has not ended a wait consumes at a time: a line
#: longer than the Expect buffer (``base64 -w0``, a binary ``cat``) neither
#: fills it nor makes every read search a growing buffer.
LONG_LINE_PIECE: Final = 4096


def long_line_before_marker(marker: str) -> re.Pattern[str]:
    """:data:`LONG_LINE_PIECE` characters of an unfinished line at the buffer's start,
    none of them where *marker* begins. At least *marker*'s length must follow them,
    so that a marker that begins in the piece has arrived whole, and is seen."""
    return re.compile(
        r"^(?:(?!" + re.escape(marker) + rf")[^\n]){{{LONG_LINE_PIECE}}}(?=[\s\S]{{{len(marker)}}})"
    )


#: The same for a wait for a prompt (which begins a line, so never inside a long one).
LONG_LINE: Final = re.compile(rf"^[^\n]{{{LONG_LINE_PIECE}}}")


def without_echo(text: str, typed: str) -> str:
    """*text* without the lines that are the console's echo of the line *typed*
    (whole, after a prompt, or a piece of it that the terminal wrapped)."""
    if not text:
        return text
    kept = []
    for line in text.splitlines(keepends=True):
        seen = clean_output(line).strip()
        if seen and (typed in seen or seen in typed):
            continue
        kept.append(line)
    return "".join(kept)


def prompt_pattern(prompt: str) -> re.Pattern[str]:
    """*prompt* (a regex) where a line starts (after LF or CR, or at the buffer's start)."""
    return re.compile(r"(?:^|(?<=[\r\n]))(?:" + prompt + ")")


def lines_before_prompt(prompt: str) -> re.Pattern[str]:
    """Complete lines at the buffer's start, stopping at a line that starts with *prompt*."""
    return re.compile(r"^(?:(?!(?:" + prompt + r"))[^\n]*\n)+")


def check_command(command: object, *, dialect: str) -> str:
    """*command*, checked: a non-empty ``str`` without control characters
    (tab allowed; newline too for a POSIX shell).

    Raises:
      TypeError, ValueError: it is not.
    """
    if not isinstance(command, str):
        raise TypeError(f"command must be a str, got {type(command).__name__}")
    if not command.strip():
        raise ValueError(f"command must not be empty, got {command!r}")
    allowed = "\t\n" if dialect == "sh" else ""
    for char in command:
        if (char < " " and char not in allowed) or char == "\x7f":
            raise ValueError(
                f"command {command!r} contains the control character {char!r}"
                + (" (U-Boot runs one line at a time)" if char == "\n" else "")
            )
    if dialect == "uboot" and not command.isascii():
        raise ValueError(f"command {command!r} is not ASCII (U-Boot's line editor takes ASCII)")
    return command


# --------------------------------------------------------------------- transcripts

#: How much of each transcript stays in memory for a test report (characters).
MEMORY_CHARS: Final = 256 * 1024
#: How many recent transcripts :func:`recent_transcripts` remembers.
RECENT: Final = 32

_recent: deque[Transcript] = deque(maxlen=RECENT)
_opened = 0


def recent_transcripts(since: int = 0) -> tuple[int, list[Transcript]]:
    """(count opened so far, the transcripts numbered above *since* still remembered).

    For the pytest plugin: a number taken before a test, and those opened after it.
    """
    return _opened, [t for t in _recent if t.number > since]


def _visible(text: str) -> str:
    """A transcript line: control characters other than tab shown as ``\\xNN``."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c == "\t" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


@final
class Transcript:
    """Lines received and commands sent, stamped grabserial style, sans-IO.

    ``[   12.345678] text``: seconds since the session started (the caller
    supplies the time, from Trio's clock), one line per received line, stamped
    when its first character arrived. Commands sent appear as
    ``[   12.345678] >>> command``. Line ends are dropped; other control
    characters are shown as escapes (``\\x1b[6n``).

    Args:
      name: names the session in reports.
      write: called with each finished line (with ``\\n``), or ``None``.
    """

    def __init__(self, name: str, write: Callable[[str], None] | None = None) -> None:
        global _opened
        _opened += 1
        self.number = _opened
        self.name = name
        self._write = write
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial: list[str] = []  # the pieces of a line not ended yet
        self._partial_at = 0.0
        self._open = False  # a line has begun (its first byte may still be undecoded)
        self._memory: deque[str] = deque()
        self._memory_chars = 0
        self._dropped = 0
        _recent.append(self)

    def _emit(self, at: float, text: str) -> None:
        line = f"[{at:12.6f}] {_visible(text)}\n"
        self._memory.append(line)
        self._memory_chars += len(line)
        while self._memory_chars > MEMORY_CHARS and len(self._memory) > 1:
            self._memory_chars -= len(self._memory.popleft())
            self._dropped += 1
        if self._write is not None:
            self._write(line)

    def received(self, data: bytes, now: float) -> None:
        """Record bytes received *now* seconds after the session started."""
        if data and not self._open:
            self._open, self._partial_at = True, now
        text = self._decoder.decode(data)
        while text:
            if not self._open:
                self._open, self._partial_at = True, now
            end = text.find("\n")
            if end < 0:
                self._partial.append(text)
                return
            line = "".join([*self._partial, text[:end]]).rstrip("\r")
            self._partial, text, self._open = [], text[end + 1 :], False
            self._emit(self._partial_at, line)

    def flush(self) -> None:
        """Write out a received line that has not ended yet (before a send, at close)."""
        if self._partial:
            partial, self._partial, self._open = "".join(self._partial), [], False
            self._emit(self._partial_at, partial.rstrip("\r"))

    def sent(self, text: str, now: float) -> None:
        """Record that *text* was sent *now* seconds after the session started."""
        self.flush()
        self._emit(now, ">>> " + text)

    def text(self) -> str:
        """What is kept in memory (the last 256 KiB), for a test report."""
        head = f"[... {self._dropped} earlier lines dropped ...]\n" if self._dropped else ""
        return (
            head
            + "".join(self._memory)
            + (_visible("".join(self._partial)) if self._partial else "")
        )
