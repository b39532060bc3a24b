"""``trioserial list``: the ports of this machine, and with ``--watch`` their changes (layer 3).

A thin printer over :func:`trioserial.list_ports` and
:func:`trioserial.watch_ports`; moved out of ``_cli`` to keep both modules short.
"""

from __future__ import annotations

import json
import sys
from typing import Final, TextIO

import attrs

from ._portinfo import PortEvent, PortInfo
from ._ports import list_ports, watch_ports
from ._portwatch import DEFAULT_CONFIG, WatchConfig

__all__ = ["format_event", "format_ports", "port_record", "run_list"]

#: The text format's labels, in order, for the fields shown under the device.
_LABELS: Final = {
    "by_id": "by-id",
    "by_path": "by-path",
    "product": "product",
    "usb_id": "VID:PID",
    "serial_number": "serial number",
    "manufacturer": "manufacturer",
    "interface": "interface",
    "driver": "driver",
}


def port_record(port: PortInfo) -> dict[str, object]:
    """What ``trioserial list --json`` prints of one port: every field of
    :class:`~trioserial.PortInfo` (vid and pid as numbers), plus ``usb_id``
    (``"0403:6001"``) for people reading it."""
    return {**attrs.asdict(port), "usb_id": port.usb_id}


def _lines(port: PortInfo) -> list[str]:
    record = port_record(port)
    lines = [port.device + (" (pty)" if port.is_pty else "")]
    lines += [f"  {label + ':':<14} {record[k]}" for k, label in _LABELS.items() if record[k]]
    return lines


def format_ports(ports: list[PortInfo]) -> str:
    """The text ``trioserial list`` prints."""
    if not ports:
        return "no serial ports found"
    return "\n".join(line for port in ports for line in _lines(port))


def format_event(event: PortEvent) -> str:
    """One event of ``trioserial list --watch``: ``added /dev/ttyUSB0`` and its details."""
    head, *rest = _lines(event.port)
    return "\n".join([f"{event.kind} {head}", *rest])


async def run_list(
    *, watch: bool, as_json: bool, out: TextIO | None = None, config: WatchConfig = DEFAULT_CONFIG
) -> int:
    """Print the ports; with *watch*, then every change until cancelled.

    With *as_json* and *watch*, one JSON object a line:
    ``{"event": "present" | "added" | "removed", "port": {...}}``.
    """
    out = sys.stdout if out is None else out

    def emit(text: str) -> None:
        print(text, file=out, flush=True)

    if not watch:
        ports = await list_ports(_config=config)
        emit(
            json.dumps([port_record(p) for p in ports], indent=2)
            if as_json
            else format_ports(ports)
        )
        return 0
    async with watch_ports(_config=config) as events:
        if as_json:
            for port in events.ports:
                emit(json.dumps({"event": "present", "port": port_record(port)}))
        else:
            emit(format_ports(events.ports))
            print(f"watching for ports ({events.backend}); Ctrl-C to stop", file=sys.stderr)
        async for event in events:
            if as_json:
                emit(json.dumps({"event": event.kind, "port": port_record(event.port)}))
            else:
                emit(format_event(event))
    return 0  # pragma: no cover - the iteration ends only by cancellation
