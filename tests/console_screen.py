"""The far side of the console's terminal in the in-process console tests."""

from __future__ import annotations

import trio

from trioserial.testing import PtyDevice


class Screen:
    """The terminal's far side: what the console shows, and a keyboard."""

    def __init__(self, master: PtyDevice) -> None:
        self.master = master
        self.text = b""

    async def wait_for(self, text: str, *, seconds: float = 60) -> None:
        """Read what the console shows until *text* is there (failing after *seconds*)."""
        with trio.fail_after(seconds):
            while text.encode() not in self.text:
                chunk = await self.master.receive_some()
                assert chunk, f"the console closed its terminal; it showed {self.text!r}"
                self.text += chunk

    async def type(self, keys: bytes) -> None:
        await self.master.send_all(keys)
