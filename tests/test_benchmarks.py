"""The benchmark workloads still run and still check what they move (no timing asserted).

`python benchmarks/run.py --quick` in CI keeps the whole harness working; this
runs trioserial's workloads at a tiny size in-process and shows that the
checksums catch a contender that corrupts data.
"""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.contenders import RAW, Contender, Port, by_name
from benchmarks.workloads import CPU_KEYS, Params, run_cpu_pairs, run_scale, run_stream

TINY = Params(
    bulk_bytes=200_000,
    echo_count=5,
    echo_warmup=1,
    idle_seconds=0.05,
    scale_ports=(1, 3),
    scale_rounds=2,
    scale_timeout=10.0,
    cpu_bytes=100_000,
    cpu_trips=5,
    cpu_rounds=2,
)


@pytest.fixture
def trioserial_contender() -> Contender:
    return by_name("trioserial")


def test_stream_workloads_move_the_right_bytes(trioserial_contender: Contender) -> None:
    outcome = run_stream(trioserial_contender, TINY)
    assert outcome.errors == {}
    for key in ("bulk_tx_MBps", "bulk_rx_MBps", "echo1_p50_us", "echo64_p99_us", "idle_cpu_pct"):
        assert outcome.metrics[key] >= 0


def test_scale_workload_opens_every_port(trioserial_contender: Contender) -> None:
    outcome = run_scale(trioserial_contender, TINY)
    assert outcome.errors == {}
    assert outcome.metrics["scale3_threads"] >= 1


def test_cpu_pairs_give_one_ratio_per_key(trioserial_contender: Contender) -> None:
    """The paired CPU suite runs both sides and reports a ratio for each metric."""
    outcome, ratios = run_cpu_pairs(trioserial_contender, RAW, TINY)
    assert outcome.errors == {}
    assert set(outcome.metrics) == set(CPU_KEYS) == set(ratios)
    assert all(len(values) == 1 and values[0] > 0 for values in ratios.values())


def test_cpu_pairs_report_a_failing_contender(trioserial_contender: Contender) -> None:
    """A contender that corrupts data gives an error, not a ratio."""

    async def open_corrupting(path: str) -> Port:
        port = await trioserial_contender.open(path)

        async def send_all(data: bytes) -> None:
            await port.send_all(bytes(len(data)))

        return Port(send_all, port.receive_some, port.aclose)

    corrupting = dataclasses.replace(trioserial_contender, open=open_corrupting)
    outcome, ratios = run_cpu_pairs(corrupting, RAW, TINY)
    assert "crc" in outcome.errors["cpu"]
    assert all(values == [] for values in ratios.values())


def test_checksums_catch_corrupted_data(trioserial_contender: Contender) -> None:
    """A contender that flips the first byte of every send fails bulk tx and echo."""

    async def open_corrupting(path: str) -> Port:
        port = await trioserial_contender.open(path)

        async def send_all(data: bytes) -> None:
            data = bytes(data)
            await port.send_all(bytes([data[0] ^ 0xFF]) + data[1:])

        return Port(send_all, port.receive_some, port.aclose)

    corrupting = dataclasses.replace(trioserial_contender, open=open_corrupting)
    outcome = run_stream(corrupting, dataclasses.replace(TINY, idle_seconds=0.01))
    assert "crc" in outcome.errors["bulk_tx"]
    assert "got back" in outcome.errors["echo1"]
    assert "bulk_rx" not in outcome.errors  # only the start byte is sent: nothing to corrupt
