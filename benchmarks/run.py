"""Run every benchmark for every contender and print the table.

Usage::

    python benchmarks/run.py [--quick] [--json OUT] [--reps N] [--only NAME,NAME]

Each contender runs in its own subprocess (one for the stream workloads, one
for the scale workload), several repetitions, interleaved so that a noisy
neighbour hurts every contender alike. The table gives the median, min and max
over the repetitions, and the ratio to the raw limit: the median (and range)
over repetitions of contender / raw limit within the same repetition.
Contenders that cannot run here get a "not available" row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.contenders import CONTENDERS, RAW, Contender, by_name, unavailable
from benchmarks.workloads import FULL, QUICK, Params, run_scale, run_stream

ROOT = Path(__file__).resolve().parent.parent
SUITES = {"stream": run_stream, "scale": run_scale}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False
    ratio: bool = True  # False where the raw limit's value is ~0 (idle CPU)
    digits: int = 1


def metrics_for(params: Params) -> list[Metric]:
    found = [
        Metric("bulk_tx_MBps", "bulk tx", "MB/s", higher_is_better=True),
        Metric("bulk_rx_MBps", "bulk rx", "MB/s", higher_is_better=True),
        Metric("echo1_p50_us", "1 B echo p50", "µs"),
        Metric("echo1_p99_us", "1 B echo p99", "µs"),
        Metric("echo64_p50_us", "64 B echo p50", "µs"),
        Metric("echo64_p99_us", "64 B echo p99", "µs"),
        Metric("cpu_tx_ms_per_MB", "CPU tx", "ms/MB", digits=2),
        Metric("cpu_rx_ms_per_MB", "CPU rx", "ms/MB", digits=2),
        Metric("idle_cpu_pct", "idle CPU", "%", ratio=False, digits=2),
        Metric("idle_after_wait_cpu_pct", "idle CPU after a wait", "%", ratio=False, digits=2),
    ]
    for n in params.scale_ports:
        found += [
            Metric(f"scale{n}_open_s", f"{n} ports: open", "s", digits=3),
            Metric(f"scale{n}_exchange_s", f"{n} ports: echo", "s", digits=3),
            Metric(f"scale{n}_KiB_per_port", f"{n} ports: memory/port", "KiB", ratio=False),
            Metric(f"scale{n}_peak_rss_MiB", f"{n} ports: peak RSS", "MiB", ratio=False),
            Metric(f"scale{n}_threads", f"{n} ports: threads", "", ratio=False, digits=0),
        ]
    return found


@dataclass
class Record:
    """Everything one contender produced over the repetitions."""

    contender: Contender
    unavailable: str | None = None
    #: One dict of metrics per repetition (the stream and scale suites merged).
    runs: dict[int, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def values(self, key: str) -> list[float]:
        return [run[key] for run in self.runs.values() if key in run]

    def ratios(self, key: str, raw: Record) -> list[float]:
        """This contender's value over the raw limit's, repetition by repetition.

        Each repetition runs every contender within a short stretch of time,
        so a pair from one repetition shares most of the machine's noise.
        """
        return [
            run[key] / raw.runs[rep][key]
            for rep, run in self.runs.items()
            if key in run and key in raw.runs.get(rep, {}) and raw.runs[rep][key] > 0
        ]


# ------------------------------------------------------------------- the worker


def worker(name: str, suite: str, params: Params, out: Path) -> None:
    outcome = SUITES[suite](by_name(name), params)
    out.write_text(json.dumps({"metrics": outcome.metrics, "errors": outcome.errors}))


def run_worker(
    contender: Contender, suite: str, params: Params, timeout: float
) -> tuple[dict[str, float], dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--worker",
            contender.name,
            "--suite",
            suite,
            "--params",
            json.dumps(params.to_json()),
            "--out",
            str(out),
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        try:
            done = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {}, {suite: f"worker killed after {timeout:.0f} s"}
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {}, {suite: f"worker failed ({done.returncode}): {tail}"}
        result = json.loads(out.read_text())
        return result["metrics"], result["errors"]


# ------------------------------------------------------------------- the report


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in ("trio", "anyio", "pyserial", "trio-serial", "serialx", "pyserial-asyncio-fast"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    load = os.getloadavg()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        **{f"{dist} version": v for dist, v in versions.items()},
    }


def fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def summarize(records: list[Record], params: Params) -> dict[str, Any]:
    raw = next(r for r in records if r.contender is RAW)
    summary: dict[str, Any] = {}
    for record in records:
        entry: dict[str, Any] = {"note": record.contender.note, "backend": record.contender.backend}
        if record.unavailable:
            entry["unavailable"] = record.unavailable
        entry["errors"] = record.errors
        stats: dict[str, Any] = {}
        for metric in metrics_for(params):
            values = record.values(metric.key)
            if not values:
                continue
            median = statistics.median(values)
            row: dict[str, Any] = {
                "median": median,
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
            ratios = record.ratios(metric.key, raw) if metric.ratio else []
            if ratios:
                row["ratio_to_raw"] = statistics.median(ratios)
                row["ratio_min"] = min(ratios)
                row["ratio_max"] = max(ratios)
            stats[metric.key] = row
        entry["metrics"] = stats
        entry["runs"] = record.runs
        summary[record.contender.name] = entry
    return summary


def print_table(summary: dict[str, Any], params: Params) -> None:
    width = max(len(name) for name in summary) + 2
    print(f"\n{'':<{width}}{'median':>12}{'min':>12}{'max':>12}{'x raw':>9}{'(range)':>14}")
    for metric in metrics_for(params):
        better = "higher" if metric.higher_is_better else "lower"
        print(f"{metric.label} ({metric.unit or 'count'}, {better} is better)")
        for name, entry in summary.items():
            row = entry["metrics"].get(metric.key)
            if row is None:
                why = entry.get("unavailable") or next(
                    (e for k, e in entry["errors"].items() if metric.key.startswith(k)), None
                )
                why = why or next(iter(entry["errors"].values()), "no result")
                print(f"  {name:<{width}}{why}")
                continue
            ratio = spread = "-"
            if "ratio_to_raw" in row:
                ratio = f"{row['ratio_to_raw']:.2f}x"
                spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
            print(
                f"  {name:<{width}}"
                f"{fmt(row['median'], metric.digits):>12}"
                f"{fmt(row['min'], metric.digits):>12}"
                f"{fmt(row['max'], metric.digits):>12}"
                f"{ratio:>9}{spread:>14}"
            )
    for name, entry in summary.items():
        for workload, error in entry["errors"].items():
            print(f"! {name}: {workload}: {error}")


# -------------------------------------------------------------------- the main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (CI)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 2)")
    parser.add_argument(
        "--only", help="comma-separated contender names (the raw limit always runs)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--suite", choices=sorted(SUITES), help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker, args.suite, Params.from_json(json.loads(args.params)), args.out)
        return 0

    params = QUICK if args.quick else FULL
    reps = args.reps or (2 if args.quick else 5)
    wanted = {RAW.name, *(args.only.split(",") if args.only else [c.name for c in CONTENDERS])}
    records = [Record(c, unavailable(c)) for c in CONTENDERS if c.name in wanted]
    info = machine()
    started = time.monotonic()
    for rep in range(reps):
        # Rotate the order every repetition: no contender always runs first.
        shift = rep % len(records)
        for record in records[shift:] + records[:shift]:
            if record.unavailable:
                continue
            # Scale runs every repetition in a full run, once in a quick one.
            for suite in ("stream", "scale") if rep == 0 or not args.quick else ("stream",):
                print(f"rep {rep + 1}/{reps}: {record.contender.name}: {suite}", file=sys.stderr)
                timeout = 60 + 3 * params.scale_timeout * len(params.scale_ports)
                metrics, errors = run_worker(record.contender, suite, params, timeout)
                record.runs.setdefault(rep, {}).update(metrics)
                for workload, error in errors.items():
                    record.errors.setdefault(workload, error)
    elapsed = time.monotonic() - started
    summary = summarize(records, params)
    print(f"\n{'quick' if args.quick else 'full'} run, {reps} repetitions, {elapsed:.0f} s")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print_table(summary, params)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "params": params.to_json(),
                    "repetitions": reps,
                    "seconds": elapsed,
                    "contenders": summary,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
