"""A board test harness: boot, log in, run a command, check the output.

Run it against a simulated board:   python examples/boot_harness.py
or against a real one:              python examples/boot_harness.py /dev/ttyUSB0
(power-cycle the board after starting it).
"""

from __future__ import annotations

import re
import sys

import trio

import trioserial
from trioserial import Expect
from trioserial.testing import BootLogDevice, LineShell, open_fake_device_port


async def check_board(port: trioserial.AsyncSerial) -> str:
    """Log in on *port*'s console and return the kernel release it reports."""
    ex = Expect(port, encoding="utf-8")
    with trio.fail_after(60):  # the whole session, boot included
        booted = await ex.expect(["login: ", re.compile(r"Kernel panic[^\n]*")])
        if booted.index == 1:
            raise RuntimeError(f"the board did not boot: {booted.after}")
        await ex.sendline("root")
        await ex.expect("Password: ")
        await ex.sendline("root")
        await ex.expect("# ")
        await ex.sendline("uname -r")
        # The console echoes the command, then prints the answer and a prompt.
        result = await ex.expect(re.compile(r"uname -r\r\n(.*)\r\n# "))
    return result.match.group(1)


def fake_board() -> BootLogDevice:
    """A simulated board whose shell knows ``uname``."""

    def uname(args: list[str]) -> str:
        return "6.6.0-fake" if args == ["-r"] else "Linux"

    return BootLogDevice(
        line_delay=0.01,
        username="root",
        password="root",
        shell=LineShell(prompt="# ", commands={"uname": uname}),
    )


async def main() -> None:
    if len(sys.argv) > 1:
        async with await trioserial.open_serial_port(sys.argv[1]) as port:
            release = await check_board(port)
    else:
        # The fake board sits behind a path, as a USB adapter would.
        async with open_fake_device_port(fake_board()) as board:
            print(f"simulated board at {board.path}")
            async with await trioserial.open_serial_port(board.path) as port:
                release = await check_board(port)
    if not release.startswith("6."):
        raise SystemExit(f"unexpected kernel {release!r}")
    print(f"board booted, login ok, kernel {release}")


if __name__ == "__main__":
    trio.run(main)
