"""The summary tables as reStructuredText, for docs/performance.rst.

``python benchmarks/report.py RESULTS.json`` prints them from a run's JSON,
so the docs tables are never typed by hand: first the headline (CPU per unit
of work as paired ratios to the raw limit, with their range), then the
wall-clock and resource table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: The headline: (metric key, column title, digits of the raw limit's own value).
CPU_COLUMNS = (
    ("cpu_tx_ms_per_MB", "CPU tx per MB", 2),
    ("cpu_rx_ms_per_MB", "CPU rx per MB", 2),
    ("cpu_echo1_us", "CPU per 1 B round trip", 2),
)

#: (metric key, column title, digits)
COLUMNS = (
    ("bulk_tx_MBps", "bulk tx MB/s", 1),
    ("bulk_rx_MBps", "bulk rx MB/s", 1),
    ("echo1_p50_us", "1 B echo p50 µs", 1),
    ("echo64_p50_us", "64 B echo p50 µs", 1),
    ("idle_cpu_pct", "idle CPU %", 2),
    ("idle_after_wait_cpu_pct", "idle CPU after a wait %", 2),
)


def scale_columns(results: dict[str, Any]) -> list[tuple[str, str, int]]:
    largest = max(results["params"]["scale_ports"])
    return [
        (f"scale{largest}_open_s", f"{largest:,} ports open s", 3),
        (f"scale{largest}_exchange_s", f"{largest:,} ports echo s", 3),
        (f"scale{largest}_KiB_per_port", f"{largest:,} ports KiB/port", 1),
        (f"scale{largest}_threads", f"{largest:,} ports threads", 0),
    ]


def cell(entry: dict[str, Any], key: str, digits: int) -> str:
    row = entry["metrics"].get(key)
    if row is None:
        if entry.get("unavailable"):
            return "n/a"
        failed = [w for w in entry["errors"] if key.startswith(w)]
        return f"failed ({failed[0]})" if failed else "n/a"
    text = f"{row['median']:,.{digits}f}"
    if "ratio_to_raw" in row:
        text += f" ({row['ratio_to_raw']:.2f}x)"
    return text


def ratio_cell(entry: dict[str, Any], key: str, digits: int, *, is_raw: bool) -> str:
    """``1.12x (1.05-1.20)``; the raw limit's row: its own value, then itself against itself."""
    row = entry["metrics"].get(key)
    if row is None or "ratio_to_raw" not in row:
        return cell(entry, key, digits)
    text = f"{row['ratio_to_raw']:.2f}x ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})"
    if is_raw:
        text = f"{row['median']:,.{digits}f}, vs itself {text}"
    return text


def headline_rst(results: dict[str, Any]) -> str:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :stub-columns: 1",
        "",
        "   * - contender",
    ]
    lines += [f"     - {title}" for _, title, _ in CPU_COLUMNS]
    for index, (name, entry) in enumerate(results["contenders"].items()):
        lines.append(f"   * - {name}")
        lines += [
            f"     - {ratio_cell(entry, key, digits, is_raw=index == 0)}"
            for key, _, digits in CPU_COLUMNS
        ]
    return "\n".join(lines) + "\n"


def rst(results: dict[str, Any]) -> str:
    columns = [*COLUMNS, *scale_columns(results)]
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :stub-columns: 1",
        "",
        "   * - contender",
    ]
    lines += [f"     - {title}" for _, title, _ in columns]
    for name, entry in results["contenders"].items():
        lines.append(f"   * - {name}")
        lines += [f"     - {cell(entry, key, digits)}" for key, _, digits in columns]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/report.py RESULTS.json")
    results = json.loads(Path(sys.argv[1]).read_text())
    print(headline_rst(results))
    print(rst(results))


if __name__ == "__main__":
    main()
