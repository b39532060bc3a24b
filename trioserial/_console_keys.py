"""The console's keys: the exit key's names and what Enter sends (layer 3).

Apart from ``_console`` so that building the command line's parser (which
lists the choices) does not load the console itself.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EOL", "key_name", "parse_key"]

_CARET: Final = re.compile(r"^(?:\^|ctrl-|c-)(.)$", re.IGNORECASE)


def parse_key(text: str) -> int:
    """Parse a key name (``^]``, ``ctrl-a``, ``C-x``, ``0x1d``) into its byte value.

    Raises:
      ValueError: *text* names no single control key.
    """
    match = _CARET.match(text.strip())
    if match:
        char = match.group(1).upper()
        if char == "?":
            return 0x7F
        if "@" <= char <= "_":
            return ord(char) ^ 0x40
    elif text.lower().startswith("0x"):
        try:
            value = int(text, 16)
        except ValueError:
            pass
        else:
            if 0 <= value <= 0xFF:
                return value
    raise ValueError(
        f"exit key must be a control key such as '^]', 'ctrl-a' or '0x1d', got {text!r}"
    )


def key_name(value: int) -> str:
    """``0x1d`` -> ``"Ctrl-]"``: how to tell a person which key to press."""
    if value < 0x20:
        return f"Ctrl-{chr(value ^ 0x40)}"
    if value == 0x7F:
        return "Ctrl-?"
    return f"0x{value:02x}"


#: What the Enter key (which a raw terminal delivers as CR) sends to the device.
EOL: Final = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}
