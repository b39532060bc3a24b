"""Command framing, output cleaning, failure watching and transcripts: sans-IO, no event loop.

The consoles here are byte-exact copies of what busybox ash (QEMU guest) and
U-Boot 2023.01 (QEMU) printed for these framings; the live tests in
test_sessions_qemu.py run the same framings against the real programs.
"""

from __future__ import annotations

import re

import pytest

from trioserial import CommandFailedError, DeviceFailureError
from trioserial._shellproto import (
    DEFAULT_FAILURE_PATTERNS,
    LONG_LINE_PIECE,
    FailureWatch,
    Framing,
    Transcript,
    check_command,
    clean_output,
    compile_failure_patterns,
    lines_before_marker,
    lines_before_prompt,
    long_line_before_marker,
    prompt_pattern,
    recent_transcripts,
    without_echo,
)

SH = Framing("t0k", "sh")
UBOOT = Framing("t0k", "uboot")


def split(framing: Framing, console: str, n: int) -> tuple[str, int, str]:
    """What the session does with Expect, done with plain re: (output, exit code, after).

    Everything before the start marker is dropped, the end pattern gives the
    exit code; complete lines before a marker are consumed with the
    lines_before_marker regex, exactly as the session consumes them.
    """
    start = re.compile(re.escape(framing.start_marker(n))).search(console)
    assert start is not None, "no start marker"
    rest = console[start.end() :]
    end_marker = framing.end_marker(n)
    lines = lines_before_marker(end_marker)
    pieces: list[str] = []
    while True:
        end = framing.end_pattern(n).match(rest)
        if end is not None:
            return framing.output("".join(pieces)), int(end.group(1)), rest[end.end() :]
        piece = lines.match(rest)
        if piece is not None:
            pieces.append(piece.group(0))
            rest = rest[piece.end() :]
            continue
        found = framing.end_pattern(n).search(rest)
        assert found is not None, "no end marker"
        pieces.append(rest[: found.start()])
        rest = rest[found.start() :]


def test_sh_command_line_is_one_line_with_quote_split_markers() -> None:
    line = SH.command_line("ls /", 7)
    assert "\n" not in line
    assert "\r" not in line
    assert line == ("echo '__TS''t0k_7__'; ls /; printf '\\n%s%d\\n' '__TE''t0k_7__' $?")
    # The typed line (and so its echo, however a line editor redraws it)
    # never contains a marker the shell prints.
    for marker in (SH.start_marker(7), SH.end_marker(7)):
        assert marker not in line
    assert SH.sync_marker(3) not in SH.sync_line(3)


def test_uboot_command_line_uses_echo_and_dollar_question() -> None:
    assert UBOOT.command_line("false", 2) == "echo '__TS''t0k_2__'; false; echo '__TE''t0k_2__'$?"


# What busybox ash printed (QEMU guest, ONLCR, its cursor query after the prompt).
ASH = (
    "dut# \x1b[6necho '__TS''t0k_1__'; printf 'a\\tb\\n\\303\\251'; "
    "printf '\\n%s%d\\n' '__TE''t0k_1__' $?\r\n"
    "__TSt0k_1__\r\na\tb\r\n\u00e9\r\n__TEt0k_1__0\r\ndut# \x1b[6n"
)


def test_ash_output_without_trailing_newline_tabs_utf8() -> None:
    output, code, after = split(SH, ASH, 1)
    assert (output, code) == ("a\tb\n\u00e9", 0)
    assert prompt_pattern("dut# ").match(after)


@pytest.mark.parametrize(
    ("printed", "output"),
    [
        ("", ""),
        ("x", "x"),
        ("x\r\n", "x\n"),
        ("\r\n", "\n"),
        ("\r\n\r\n", "\n\n"),
        ("a\r\nb", "a\nb"),
    ],
)
def test_sh_output_is_exact_with_and_without_final_newline(printed: str, output: str) -> None:
    console = f"junk\r\n__TSt0k_4__\r\n{printed}\r\n__TEt0k_4__5\r\n# "
    assert split(SH, console, 4)[:2] == (output, 5)


def test_uboot_output_as_printed() -> None:
    # U-Boot 2023.01: `echo -n abc` then the end marker on the same line.
    console = "__TSt0k_1__\r\nabc__TEt0k_1__0\r\n=> "
    assert split(UBOOT, console, 1)[:2] == ("abc", 0)
    console = "__TSt0k_2__\r\n__TEt0k_2__1\r\n=> "
    assert split(UBOOT, console, 2)[:2] == ("", 1)


def test_output_that_prints_the_prompt_and_old_markers() -> None:
    console = (
        "__TSt0k_9__\r\ndut# \r\n__TEt0k_8__0\r\n__TSt0k_8__\r\nlast\r\n\r\n__TEt0k_9__0\r\ndut# "
    )
    assert split(SH, console, 9)[:2] == ("dut# \n__TEt0k_8__0\n__TSt0k_8__\nlast\n", 0)


def test_exit_code_needs_its_line_end() -> None:
    # "1" of "12" must not be taken for the status before the "2" arrives.
    assert SH.end_pattern(1).search("__TEt0k_1__1") is None
    found = SH.end_pattern(1).search("__TEt0k_1__12\r\n")
    assert found is not None
    assert found.group(1) == "12"
    assert SH.end_pattern(1).search("__TEt0k_1__" + "9" * 20 + "\n") is None


def test_twenty_thousand_lines() -> None:
    body = "".join(f"line {i}\r\n" for i in range(25_000))
    console = f"__TSt0k_1__\r\n{body}\r\n__TEt0k_1__0\r\n"
    output, code, _ = split(SH, console, 1)
    assert code == 0
    assert output == "".join(f"line {i}\n" for i in range(25_000))


def test_lines_before_marker_stops_mid_line() -> None:
    lines = lines_before_marker("__TEx__")
    found = lines.match("a\nb\nc__TEx__0\n")
    assert found is not None
    assert found.group(0) == "a\nb\n"
    assert lines.match("__TEx__0\n") is None
    assert lines.match("partial") is None


def test_a_long_line_is_consumed_in_pieces_that_never_cut_a_marker() -> None:
    marker = "__TEx__"
    piece = long_line_before_marker(marker)
    n = LONG_LINE_PIECE
    # A piece goes only once the marker's length follows it ...
    assert piece.match("x" * (n + len(marker) - 1)) is None
    found = piece.match("x" * (n + len(marker)))
    assert found is not None
    assert found.group(0) == "x" * n
    # ... so a marker that begins inside it is whole, and stops it,
    assert piece.match("x" * (n - 3) + marker + "0\n" + "y" * n) is None
    # even one that straddles the piece's end,
    assert piece.match("x" * (n - 3) + marker) is None
    # while a marker that has not arrived whole is not yet in the piece's reach.
    assert piece.match("x" * (n - 3) + marker[:4]) is None
    assert piece.match("x\n" + "y" * 2 * n) is None  # complete lines are not its business


def test_the_echo_of_the_typed_line_is_not_checked_for_failures() -> None:
    typed = SH.command_line("dmesg | grep -c 'Kernel panic'", 1)
    echoed = (
        f"dut# {typed}\r\n"  # after the prompt
        f"{typed[:30]}\r\n{typed[30:]}\r\n"  # wrapped by the terminal
        "[   9.1] Kernel panic - not syncing: Fatal exception\r\n"  # the device, meanwhile
    )
    assert without_echo(echoed, typed) == (
        "[   9.1] Kernel panic - not syncing: Fatal exception\r\n"
    )
    assert without_echo("", typed) == ""


def test_prompt_at_a_line_start_only() -> None:
    prompt = prompt_pattern(re.escape("=> "))
    # crc32's "==> " is not the prompt.
    text = "crc32 for 01000000 ... 010493df ==> e8a802fc\r\n=> "
    found = prompt.search(text)
    assert found is not None
    assert found.start() == text.rindex("=> ")
    lines = lines_before_prompt(re.escape("=> "))
    consumed = lines.match(text)
    assert consumed is not None
    assert consumed.end() == text.rindex("=> ")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("dut# \x1b[6n", "dut# "),
        ("\x1b[1;32mgreen\x1b[0m", "green"),
        ("\x1b]0;title\x07text", "text"),
        ("\x1b(Bx\x1b7y\x1b8", "xy"),
        ("lone\x1b", "lone"),
        ("a\r\nb\r\r\nc\n\rd\re", "a\nb\nc\nd\ne"),
        ("tab\there \u00e9\u4e2d", "tab\there \u00e9\u4e2d"),
        ("\x9b2Kcsi8", "csi8"),
    ],
)
def test_clean_output(raw: str, clean: str) -> None:
    assert clean_output(raw) == clean


def test_failure_watch_finds_the_line_and_context() -> None:
    patterns = compile_failure_patterns(DEFAULT_FAILURE_PATTERNS)
    watch = FailureWatch()
    assert watch.scan("booting\r\nok\r\n", patterns) is None
    failure = watch.scan(
        "sysrq: Trigger a crash\r\nKernel panic - not syncing: sysrq triggered crash\r\nCPU: 0\r\n",
        patterns,
    )
    assert failure is not None
    assert failure.line == "Kernel panic - not syncing: sysrq triggered crash"
    assert failure.context == "booting\nok\nsysrq: Trigger a crash\n"
    error = failure.error()
    assert isinstance(error, DeviceFailureError)
    assert "Kernel panic - not syncing" in str(error)
    assert error.match.group(0) == "Kernel panic"


def test_failure_in_an_unfinished_line() -> None:
    watch = FailureWatch()
    found = re.search("Oops:", "[ 1.0] Oops: 0002")
    assert found is not None
    failure = watch.failure_at("[ 1.0] ", "Oops:", " 0002 [#1] SMP\r\n", found)
    assert failure.line == "[ 1.0] Oops: 0002 [#1] SMP"


@pytest.mark.parametrize(
    "line",
    [
        "[    5.1] Kernel panic - not syncing: VFS",
        "[    5.1] Oops: general protection fault",
        "[    5.1] BUG: kernel NULL pointer dereference",
        "[    5.1] Call Trace:",
        "U-Boot SPL 2023.01: resetting ...",
        "resetting ...",
        "### ERROR ### Please RESET the board ###",
    ],
)
def test_default_failure_patterns(line: str) -> None:
    patterns = compile_failure_patterns(DEFAULT_FAILURE_PATTERNS)
    assert any(p.search(line) for p in patterns)
    assert not any(p.search("Hit any key to stop autoboot:  2") for p in patterns)


def test_failure_patterns_checked() -> None:
    with pytest.raises(TypeError, match="list of regular expressions"):
        compile_failure_patterns("Kernel panic")
    with pytest.raises(ValueError, match="does not compile"):
        compile_failure_patterns(["("])
    with pytest.raises(TypeError, match="str regex"):
        compile_failure_patterns([re.compile(b"x")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        compile_failure_patterns([""])
    assert compile_failure_patterns([]) == ()


@pytest.mark.parametrize(
    ("command", "dialect", "message"),
    [
        ("", "sh", "must not be empty"),
        ("  ", "sh", "must not be empty"),
        ("a\rb", "sh", "control character"),
        ("a\x03", "sh", "control character"),
        ("a\nb", "uboot", "one line at a time"),
        ("echo \u00e9", "uboot", "not ASCII"),
        ("a\tb", "uboot", "control character"),
    ],
)
def test_bad_commands(command: str, dialect: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_command(command, dialect=dialect)


def test_good_commands() -> None:
    assert check_command("printf 'a\\tb'\t; if true\nthen echo x; fi", dialect="sh")
    with pytest.raises(TypeError, match="must be a str"):
        check_command(b"ls", dialect="sh")


def test_transcript_lines_stamped_at_their_first_character() -> None:
    lines: list[str] = []
    transcript = Transcript("shell on test", lines.append)
    transcript.received(b"Booting\r", 0.5)
    transcript.received(b"\nhalf", 1.25)
    transcript.received(b" line\r\ndut# \x1b[6n", 2.0)
    transcript.sent("echo hi", 3.0)
    transcript.received(b"\xc3", 3.5)
    transcript.received(b"\xa9\ttab\n", 4.0)
    assert lines == [
        "[    0.500000] Booting\n",
        "[    1.250000] half line\n",
        "[    2.000000] dut# \\x1b[6n\n",
        "[    3.000000] >>> echo hi\n",
        "[    3.500000] \u00e9\ttab\n",
    ]
    assert transcript.text() == "".join(lines)
    count, recent = recent_transcripts(transcript.number - 1)
    assert count == transcript.number
    assert recent == [transcript]


def test_transcript_memory_is_bounded() -> None:
    transcript = Transcript("big")
    line = b"x" * 1000 + b"\n"
    for i in range(400):
        transcript.received(line, float(i))
    text = transcript.text()
    assert len(text) < 300 * 1024
    assert text.startswith("[... ")
    assert "earlier lines dropped" in text


def test_command_failed_error() -> None:
    error = CommandFailedError("ls /nope", 1, "ls: /nope: No such file or directory\n")
    assert (error.command, error.exit_code) == ("ls /nope", 1)
    assert "exit code 1" in str(error)
    assert "No such file" in str(error)
    assert "printed nothing" in str(CommandFailedError("false", 1, ""))
