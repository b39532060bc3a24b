"""benchmarks/zmodem.py still runs its three rows and checks what they move (no timing asserted)."""

from __future__ import annotations

from benchmarks import zmodem


def test_zmodem_benchmark_rows_run_at_a_tiny_size() -> None:
    best = zmodem.measure(100_000, reps=1)
    assert set(best) == {"sz -> rz", "zmodem_send -> rz", "sz -> zmodem_receive"}
    for run in best.values():
        assert 0 < run.seconds < 60
        assert run.sender_cpu > 0
        assert run.receiver_cpu > 0
