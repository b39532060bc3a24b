"""Reset an ESP32 into its serial bootloader with DTR and RTS, as esptool does.

Run it:  python examples/esp32_bootloader.py               (a simulated ESP32 on a pty)
         python examples/esp32_bootloader.py /dev/ttyUSB0  (a real board)

ESP32 dev boards wire the adapter's DTR and RTS through two transistors to
the chip's EN (reset) and IO0 (boot mode) pins: RTS alone pulls EN low (reset),
DTR alone pulls IO0 low (download mode), both together do nothing. A pty has no
modem lines, so the simulation plugs :class:`trioserial.testing.FakeModem` into
the port and runs a small model of that circuit and the chip's boot ROM.
"""

from __future__ import annotations

import math
import sys

import trio

import trioserial
from trioserial.testing import FakeModem, PtyDevice, open_pty_pair


async def enter_bootloader(port: trioserial.AsyncSerial) -> None:
    """esptool's "classic reset": hold EN low, then release it with IO0 low."""
    port.reset_input_buffer()  # forget whatever the app printed before
    port.dtr = False  # IO0 high
    port.rts = True  # EN low: the chip is held in reset
    await trio.sleep(0.1)
    port.dtr = True  # IO0 low ...
    port.rts = False  # ... and EN high: the chip boots and samples IO0 low
    await trio.sleep(0.05)
    port.dtr = False  # IO0 high again (done)


async def read_until(port: trioserial.AsyncSerial, marker: bytes) -> bytes:
    received = b""
    with trio.fail_after(5):
        while marker not in received:
            received += await port.receive()
    return received


NORMAL_BOOT = b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
DOWNLOAD_BOOT = (
    b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
    b"waiting for download\r\n"
)


class SimulatedEsp32:
    """The auto-program circuit of an ESP32 dev board and the chip's boot ROM."""

    def __init__(self, device: PtyDevice) -> None:
        self.device = device
        self._changed, self._changes = trio.open_memory_channel[None](math.inf)
        self.modem = FakeModem(loopback=False, on_change=self._lines_changed)

    def _lines_changed(self, name: str, value: object) -> None:
        self._changed.send_nowait(None)  # called inside the port's ioctl: never block

    def pins(self) -> tuple[bool, bool]:
        """(EN, IO0) levels for the DTR/RTS the port drives."""
        dtr, rts = self.modem.dtr, self.modem.rts
        return not (rts and not dtr), not (dtr and not rts)

    async def run(self) -> None:
        enabled, _ = self.pins()
        async for _ in self._changes:
            now_enabled, _ = self.pins()
            if now_enabled and not enabled:
                # EN has an RC delay on the board: the chip comes out of reset
                # a few ms later and latches IO0 then.
                await trio.sleep(0.005)
                _, io0 = self.pins()
                await self.device.send_all(NORMAL_BOOT if io0 else DOWNLOAD_BOOT)
            enabled = now_enabled


async def main() -> None:
    if len(sys.argv) > 1:
        # A real board: leave DTR/RTS alone on open, so opening does not reset it.
        port = await trioserial.open_serial_port(sys.argv[1], baudrate=115200)
        async with port:
            await enter_bootloader(port)
            print((await read_until(port, b"waiting for download")).decode(errors="replace"))
        return

    port, device = await open_pty_pair(baudrate=115200)
    esp32 = SimulatedEsp32(device)
    esp32.modem.attach(port)
    async with port, device, trio.open_nursery() as nursery:
        nursery.start_soon(esp32.run)
        print(f"simulated ESP32 on {port.port}; resetting it into the bootloader")
        await enter_bootloader(port)
        boot = await read_until(port, b"waiting for download")
        for line in boot.decode().splitlines():
            print(f"  esp32> {line}")
        steps = [
            f"{name.upper()} {'on' if value else 'off'}"
            for _, name, value in esp32.modem.events
            if name in ("dtr", "rts")
        ]
        print(f"line sequence: {', '.join(steps)}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
