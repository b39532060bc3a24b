"""Talk to a simulated echo device on a pty: no hardware needed.

Run it:  python examples/echo_pty.py
"""

from __future__ import annotations

import trio

from trioserial.testing import PtyDevice, open_pty_pair


async def echo_device(device: PtyDevice) -> None:
    """A fake device: send back whatever arrives, upper-cased, until the port hangs up."""
    while data := await device.receive_some():
        await device.send_all(data.upper())


async def main() -> None:
    port, device = await open_pty_pair(baudrate=115200)
    async with port, device, trio.open_nursery() as nursery:
        nursery.start_soon(echo_device, device)
        print(f"opened {port.port} ({port.settings.framing})")
        for line in (b"hello\n", b"serial world\n"):
            await port.send_all(line)
            got = b""
            with trio.fail_after(5):
                while not got.endswith(b"\n"):
                    got += await port.receive()
            print(f"sent {line!r}, device answered {got!r}")
        await port.aclose()  # the device sees end of stream and its task ends


if __name__ == "__main__":
    trio.run(main)
