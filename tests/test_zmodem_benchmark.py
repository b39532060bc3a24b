"""benchmarks/zmodem.py still runs its three rows and checks what they move (no timing asserted)."""

from __future__ import annotations

from benchmarks import zmodem


def test_zmodem_benchmark_rows_run_at_a_tiny_size() -> None:
    best = zmodem.measure(100_000, reps=1)
    assert set(best) == {"sz -> rz", "zmodem_send -> rz", "sz -> zmodem_receive"}
    assert all(0 < seconds < 60 for seconds in best.values())
