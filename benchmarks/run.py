"""Run every benchmark for every contender and print the table.

Usage::

    python benchmarks/run.py [--quick] [--json OUT] [--reps N] [--only NAME,NAME]

Each contender runs in its own subprocesses, several repetitions, interleaved
(every repetition runs every contender, in a rotated order) so that a noisy
neighbour hurts every contender alike.

The headline is **CPU per unit of work** (the contender's own ``getrusage``):
ms per MB each way and µs per 1-byte round trip. The ``cpu`` suite measures it
in pairs, a raw-limit pass and a contender pass back to back in one worker
process, order alternating, and the ratio is taken *within each pair*; the
table gives the median and the range of those ratios over every pair of every
repetition. Wall-clock throughput and latency follow, marked noisy: their
ratio is contender / raw limit within one repetition (median and range).
Contenders that cannot run here get a "not available" row.

Suites are named in :data:`SUITES` and metrics in :func:`metrics_for`, by
group; another script can add its own suite and metric rows to both.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.contenders import CONTENDERS, RAW, Contender, by_name, unavailable
from benchmarks.workloads import (
    FULL,
    QUICK,
    Outcome,
    Params,
    run_cpu_pairs,
    run_scale,
    run_stream,
)

ROOT = Path(__file__).resolve().parent.parent


def run_cpu(contender: Contender, params: Params) -> Outcome:
    outcome, ratios = run_cpu_pairs(contender, RAW, params)
    outcome.paired = ratios
    return outcome


#: suite name -> function run in a worker process. Each repetition runs them
#: in this order for every contender (see :func:`suites_for_rep`).
SUITES: dict[str, Callable[[Contender, Params], Outcome]] = {
    "cpu": run_cpu,
    "stream": run_stream,
    "scale": run_scale,
}


def suites_for_rep(rep: int, quick: bool, wanted: list[str] | None = None) -> list[str]:
    """The suites a repetition runs (*wanted*, or all): scale only in the first of a quick run."""
    return [name for name in wanted or SUITES if name != "scale" or rep == 0 or not quick]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False
    ratio: bool = True  # False where the raw limit's value is ~0 (idle CPU)
    digits: int = 1
    #: "cpu" (the headline: paired ratios), "wall" (noisy) or "resources".
    group: str = "wall"


GROUPS = {
    "cpu": "CPU per unit of work (paired with the raw limit: the headline)",
    "wall": "wall clock (NOISY on a shared machine: read the ratios' ranges)",
    "resources": "idle CPU, scale and memory",
}


def metrics_for(params: Params) -> list[Metric]:
    found = [
        Metric("cpu_tx_ms_per_MB", "CPU tx", "ms/MB", digits=2, group="cpu"),
        Metric("cpu_rx_ms_per_MB", "CPU rx", "ms/MB", digits=2, group="cpu"),
        Metric("cpu_echo1_us", "CPU 1 B round trip", "µs", digits=2, group="cpu"),
        Metric("bulk_tx_MBps", "bulk tx", "MB/s", higher_is_better=True),
        Metric("bulk_rx_MBps", "bulk rx", "MB/s", higher_is_better=True),
        Metric("echo1_p50_us", "1 B echo p50", "µs"),
        Metric("echo1_p99_us", "1 B echo p99", "µs"),
        Metric("echo64_p50_us", "64 B echo p50", "µs"),
        Metric("echo64_p99_us", "64 B echo p99", "µs"),
        Metric("idle_cpu_pct", "idle CPU", "%", ratio=False, digits=2, group="resources"),
        Metric(
            "idle_after_wait_cpu_pct",
            "idle CPU after a wait",
            "%",
            ratio=False,
            digits=2,
            group="resources",
        ),
    ]
    for n in params.scale_ports:
        found += [
            Metric(f"scale{n}_open_s", f"{n} ports: open", "s", digits=3, group="resources"),
            Metric(f"scale{n}_exchange_s", f"{n} ports: echo", "s", digits=3, group="resources"),
            Metric(
                f"scale{n}_KiB_per_port",
                f"{n} ports: memory/port",
                "KiB",
                ratio=False,
                group="resources",
            ),
            Metric(
                f"scale{n}_peak_rss_MiB",
                f"{n} ports: peak RSS",
                "MiB",
                ratio=False,
                group="resources",
            ),
            Metric(
                f"scale{n}_threads",
                f"{n} ports: threads",
                "",
                ratio=False,
                digits=0,
                group="resources",
            ),
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
    #: Ratios to the raw limit measured in pairs (the ``cpu`` suite), by key:
    #: every pair of every repetition.
    paired: dict[str, list[float]] = field(default_factory=dict)

    def values(self, key: str) -> list[float]:
        return [run[key] for run in self.runs.values() if key in run]

    def ratios(self, key: str, raw: Record) -> list[float]:
        """This contender's ratios to the raw limit for *key*.

        Paired ratios where the ``cpu`` suite measured them; otherwise this
        contender's value over the raw limit's, repetition by repetition
        (each repetition runs every contender within a short stretch of
        time, so a pair from one repetition shares some of the machine's noise).
        """
        if self.paired.get(key):
            return self.paired[key]
        return [
            run[key] / raw.runs[rep][key]
            for rep, run in self.runs.items()
            if key in run and key in raw.runs.get(rep, {}) and raw.runs[rep][key] > 0
        ]


# ------------------------------------------------------------------- the worker


def worker(name: str, suite: str, params: Params, out: Path) -> None:
    outcome = SUITES[suite](by_name(name), params)
    out.write_text(
        json.dumps({"metrics": outcome.metrics, "errors": outcome.errors, "paired": outcome.paired})
    )


#: Where the workers keep trioserial's bytecode between runs (checked against
#: the sources' mtimes by Python itself, so never stale).
PYCACHE = Path(tempfile.gettempdir()) / "trioserial-bench-pycache"


def worker_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(PYCACHE))
    # Cached bytecode for trioserial too, as the installed peers have it:
    # without it every worker compiles the package, and its first open
    # (the scale suite's 1 port) times the compiler.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode(contenders: list[Contender]) -> None:
    """Fill :data:`PYCACHE` before the first timed worker (a prefix cache ignores
    ``__pycache__``, so the first process would compile trio and the stdlib too)."""
    modules = ["benchmarks.workloads", "trioserial.anyio", *(c.module for c in contenders)]
    code = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=worker_env(), check=False)


def run_worker(
    contender: Contender, suite: str, params: Params, timeout: float
) -> tuple[dict[str, float], dict[str, str], dict[str, list[float]]]:
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
        env = worker_env()
        try:
            done = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {}, {suite: f"worker killed after {timeout:.0f} s"}, {}
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {}, {suite: f"worker failed ({done.returncode}): {tail}"}, {}
        result = json.loads(out.read_text())
        return result["metrics"], result["errors"], result["paired"]


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
    load = os.getloadavg()  # noted again at the end: the load moves during a run
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
    group = None
    for metric in metrics_for(params):
        if metric.group != group:
            group = metric.group
            print(f"== {GROUPS.get(group, group)}")
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
    parser.add_argument(
        "--suites", help=f"comma-separated suites to run (default all: {','.join(SUITES)})"
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
    wanted_suites = args.suites.split(",") if args.suites else None
    for suite in wanted_suites or ():
        if suite not in SUITES:
            parser.error(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")
    info = machine()
    warm_bytecode([r.contender for r in records if not r.unavailable])
    started = time.monotonic()
    for rep in range(reps):
        # Rotate the order every repetition: no contender always runs first.
        shift = rep % len(records)
        for record in records[shift:] + records[:shift]:
            if record.unavailable:
                continue
            # Scale runs every repetition in a full run, once in a quick one.
            for suite in suites_for_rep(rep, args.quick, wanted_suites):
                print(f"rep {rep + 1}/{reps}: {record.contender.name}: {suite}", file=sys.stderr)
                timeout = 60 + 3 * params.scale_timeout * len(params.scale_ports)
                metrics, errors, paired = run_worker(record.contender, suite, params, timeout)
                run = record.runs.setdefault(rep, {})
                for key, measured in metrics.items():
                    # The first suite to measure a key keeps it (the stream
                    # suite's bulk transfers also report CPU; the cpu suite's,
                    # run first, are the paired ones).
                    run.setdefault(key, measured)
                for key, ratios in paired.items():
                    record.paired.setdefault(key, []).extend(ratios)
                for workload, error in errors.items():
                    record.errors.setdefault(workload, error)
    elapsed = time.monotonic() - started
    load_end = os.getloadavg()
    info["load average at end"] = f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}"
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
