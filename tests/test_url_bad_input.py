"""Bad port names and URLs: one clear error naming the value, before any I/O, nothing leaked."""

from __future__ import annotations

import pytest

import trioserial
from trioserial import UnsupportedURLError, open_serial_port
from trioserial._open import check_url
from trioserial._spy import MAX_NESTING

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


@pytest.mark.parametrize(
    ("url", "host", "reason"),
    [
        (f"socket://{'a' * 64}:2217", "a" * 64, "label too long"),
        ("rfc2217://a..b:2217", "a..b", "label empty"),
        ("socket://.:2217", ".", "label empty"),
    ],
)
async def test_a_host_that_is_no_dns_name(url: str, host: str, reason: str) -> None:
    with pytest.raises(UnsupportedURLError, match=f"malformed host name '{host}'") as info:
        await open_serial_port(url)
    assert url in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize("value", ["1e308", "inf", "3600.5", "nan", "-1"])
@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
async def test_timeout_is_bounded(scheme: str, value: str) -> None:
    url = f"{scheme}://127.0.0.1:1?timeout={value}"
    with pytest.raises(UnsupportedURLError, match=f"malformed timeout '{value}'.*at most 3600"):
        await open_serial_port(url)


@pytest.mark.parametrize(
    ("port", "error", "message"),
    [
        ("/dev/pts/0\x00", ValueError, r"malformed device path '/dev/pts/0\\x00': .* NUL byte"),
        ("/dev/tty\ud800", ValueError, r"malformed device path '/dev/tty\\ud800': '\\ud800'"),
        ("spy:///dev/pts/0\x00", ValueError, r"malformed device path '/dev/pts/0\\x00'"),
        ("spy:///dev/tty\ud800?raw", ValueError, r"malformed device path '/dev/tty\\ud800'"),
        ("alt:///dev/pts/0\x00", UnsupportedURLError, r"'/dev/pts/0\\x00' in 'alt://"),
        ("alt:///dev/tty\ud800", UnsupportedURLError, r"'/dev/tty\\ud800' in 'alt://"),
        ("spy://alt:///dev/tty\ud800", UnsupportedURLError, r"'/dev/tty\\ud800' in 'alt://"),
    ],
)
async def test_nul_or_lone_surrogate_in_a_path(
    port: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        await open_serial_port(port)
    assert not isinstance(info.value, UnicodeError)


async def test_a_path_with_an_undecodable_byte_is_still_a_path() -> None:
    # os.fsdecode maps an undecodable byte to a surrogate escape: a real name.
    with pytest.raises(trioserial.PortNotFoundError, match="No such file"):
        await open_serial_port("/dev/ttyNOPE\udcff")


async def test_spy_nesting_is_limited() -> None:
    url = "spy://" * 2000 + "loop://"
    with pytest.raises(UnsupportedURLError, match=r"spy:// nested 2000 deep .* at most 8 levels"):
        await open_serial_port(url)


async def test_spy_nesting_up_to_the_limit_opens() -> None:
    async with await open_serial_port("spy://" * MAX_NESTING + "loop://?raw") as port:
        await port.send_all(b"x")
        assert await port.receive_some() == b"x"


@pytest.mark.parametrize("url", ["/dev/pts/0\x00", "/dev/tty\ud800", "spy:///dev/tty\ud800"])
def test_the_driver_refuses_such_a_path_before_its_presence_check(url: str) -> None:
    with pytest.raises(ValueError, match="malformed device path") as info:
        trioserial.PySerial(url)
    assert not isinstance(info.value, UnicodeError)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("nope://x", None),
        ("loop://x", None),
        ("loop://?bogus", None),
        ("loop://?logging=loud", None),
        ("socket://h:1/p", None),
        ("socket://[::1]", None),
        ("socket://[::1", None),
        ("socket://[zz]:1", None),
        ("socket://h", None),
        ("socket://a:b:1", None),
        ("socket://:1", None),
        ("socket://a..b:1", None),
        ("socket://h:0", None),
        ("socket://h:1?timeout=-1", None),
        ("rfc2217://h:1?bogus", None),
        ("spy://", None),
        ("spy://loop://?file", None),
        ("spy://loop://?file=x&logger=y", None),
        ("spy://" * (MAX_NESTING + 1) + "loop://", None),
        ("spy://nope://x", "nope://x"),
        ("alt://", None),
        ("alt:///dev/ttyS0?class=Nope", None),
        ("alt:///dev/tty\ud800", None),
        ("spy://alt:///dev/tty\ud800", "alt:///dev/tty\ud800"),
        ("hwgrep://", None),
        ("hwgrep://(", None),
        ("hwgrep://x&n=0", None),
    ],
)
def test_a_bad_url_is_named_by_the_errors_port(url: str, port: str | None) -> None:
    # exc.port is the URL whose check failed (the inner one under spy://), as
    # SerialPortError promises, so handlers need not parse the message.
    with pytest.raises(UnsupportedURLError) as info:
        check_url(url)
    assert info.value.port == (url if port is None else port)
