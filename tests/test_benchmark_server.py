"""The server benchmark's workloads still run and check what they move (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from url_servers import need

from benchmarks import server as bench


@pytest.mark.parametrize("kind", ["trioserial", "ser2net"])
async def test_server_workloads_move_the_right_bytes(kind: str, tmp_path: Path) -> None:
    need("ser2net")
    with trio.fail_after(60):
        tx = await bench.bulk_tx(kind, 100_000, tmp_path)
        rx = await bench.bulk_rx(kind, 100_000, tmp_path)
        echo = await bench.echo1(kind, 20, tmp_path)
    assert tx["tx_MBps"] > 0
    assert rx["rx_MBps"] > 0
    assert echo["echo1_p50_us"] > 0


def test_the_table_has_a_ratio_per_row() -> None:
    results = {
        name: {key: 2.0 if name == "trioserial" else 1.0 for key, *_ in bench.ROWS}
        for name in bench.SERVERS
    }
    lines = bench.table(results).splitlines()
    assert len(lines) == 1 + len(bench.ROWS)
    assert all(line.endswith("2.00x") for line in lines[1:])
