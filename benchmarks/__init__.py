"""Benchmarks: trioserial beside the raw limit and the peers, on pty pairs.

Run ``python benchmarks/run.py [--quick] [--json OUT]``; see
``docs/performance.rst`` for what is measured and the latest table.
"""
