"""The workloads, run inside one contender's own process (see :mod:`benchmarks.run`).

Everything is written against :class:`~benchmarks.contenders.Port` and runs
under :func:`anyio.run` on the contender's event loop; anyio is only the
harness (task groups, sleeps, timeouts), never on the timed data path. The
device side is a separate process (:mod:`benchmarks.device`), so CPU times
from :func:`resource.getrusage` are the contender's own.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field

import anyio

from .contenders import Contender, Port
from .device import CHUNK, pattern

__all__ = ["CPU_KEYS", "BenchmarkError", "Params", "run_cpu_pairs", "run_scale", "run_stream"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1e6

Metrics = dict[str, float]


class BenchmarkError(Exception):
    """A workload saw wrong data, or the device misbehaved."""


@dataclass(frozen=True)
class Params:
    """How big each workload is."""

    bulk_bytes: int = 64 * 2**20
    echo_count: int = 2000
    echo_warmup: int = 100
    idle_seconds: float = 2.0
    scale_ports: tuple[int, ...] = (1, 100, 1000)
    scale_rounds: int = 10
    scale_timeout: float = 20.0
    #: The paired CPU suite (:func:`run_cpu_pairs`): bytes each way, round
    #: trips, and how many rounds (a raw pass and a contender pass) one
    #: worker process runs per repetition.
    cpu_bytes: int = 8 * 2**20
    cpu_trips: int = 2000
    cpu_rounds: int = 5

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Params:
        ports = data["scale_ports"]
        assert isinstance(ports, list)
        return cls(**{**data, "scale_ports": tuple(ports)})  # type: ignore[arg-type]


FULL = Params()
QUICK = Params(
    bulk_bytes=4 * 2**20,
    echo_count=300,
    echo_warmup=30,
    idle_seconds=0.3,
    scale_ports=(1, 100),
    scale_rounds=5,
    scale_timeout=10.0,
    cpu_bytes=2**20,
    cpu_trips=200,
    cpu_rounds=1,
)


# ---------------------------------------------------------------- process facts


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_field(name: str) -> int:
    """A number from /proc/self/status (VmRSS in KiB, Threads)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise BenchmarkError(f"/proc/self/status has no {name!r} line")


def peak_rss_kib() -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a
    # worker would report its parent's peak.
    return status_field("VmHWM")


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


# ----------------------------------------------------------------- pty and device


@contextlib.asynccontextmanager
async def open_ports(
    contender: Contender, count: int, mode: str, *args: object
) -> AsyncIterator[tuple[list[Port], Device]]:
    """*count* ports on fresh pty pairs, with a device process in *mode* on the masters.

    The device starts after every port is open (so no master sees a moment
    with no slave open), and the ports are closed before the device is reaped.
    """
    ports: list[Port] = []
    masters: list[int] = []
    device: Device | None = None
    try:
        for _ in range(count):
            master, slave = os.openpty()
            masters.append(master)
            try:
                ports.append(await contender.open(os.ttyname(slave)))
            finally:
                os.close(slave)
        device = Device(mode, masters, args)
        for master in masters:
            os.close(master)
        masters.clear()
        yield ports, device
    finally:
        for master in masters:
            os.close(master)
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + 10  # a port that cannot close
            for port in ports:
                with contextlib.suppress(Exception):
                    await port.aclose()
        if device is not None:
            device.reap()


class Device:
    """The device process on the pty masters (see :mod:`benchmarks.device`)."""

    def __init__(self, mode: str, masters: list[int], args: tuple[object, ...]) -> None:
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.device", mode, *map(str, masters), *map(str, args)],
            pass_fds=masters,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )

    async def line(self) -> list[str]:
        """The device's next report line, waited for without blocking the loop."""
        stdout = self.process.stdout
        assert stdout is not None
        await anyio.wait_readable(stdout.fileno())
        words = stdout.readline().split()
        if not words:
            raise BenchmarkError(f"device exited early with {self.process.wait()}")
        return words

    def reap(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# ---------------------------------------------------------------- the workloads


async def bulk_tx(contender: Contender, nbytes: int) -> Metrics:
    """Port to device: *nbytes* in 64 KiB send_all calls; the device counts and checksums."""
    block = pattern(CHUNK)
    whole, rest = divmod(nbytes, CHUNK)
    expected = zlib.crc32(pattern(nbytes))
    async with open_ports(contender, 1, "sink", nbytes, 0) as (ports, device):
        send_all = ports[0].send_all
        cpu0 = cpu_seconds()
        t0 = time.monotonic()
        for _ in range(whole):
            await send_all(block)
        if rest:
            await send_all(block[:rest])
        _, got, crc, t_end = await device.line()
        cpu = cpu_seconds() - cpu0
    if int(got) != nbytes or int(crc) != expected:
        raise BenchmarkError(
            f"bulk tx: device got {got} bytes crc {crc}, sent {nbytes} crc {expected}"
        )
    return {
        "bulk_tx_MBps": nbytes / MB / (float(t_end) - t0),
        "cpu_tx_ms_per_MB": cpu * 1e3 / (nbytes / MB),
    }


async def bulk_rx(contender: Contender, nbytes: int) -> Metrics:
    """Device to port: *nbytes* after a start byte; counted and checksummed afterwards."""
    chunks: list[bytes] = []
    async with open_ports(contender, 1, "source", nbytes) as (ports, _device):
        receive_some = ports[0].receive_some
        append = chunks.append
        got = 0
        cpu0 = cpu_seconds()
        t0 = time.monotonic()
        await ports[0].send_all(b"g")
        while got < nbytes:
            data = await receive_some(CHUNK)
            if not data:
                raise BenchmarkError(f"bulk rx: end of stream after {got} of {nbytes} bytes")
            append(data)
            got += len(data)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds() - cpu0
    crc = 0
    for data in chunks:
        crc = zlib.crc32(data, crc)
    if got != nbytes or crc != zlib.crc32(pattern(nbytes)):
        raise BenchmarkError(f"bulk rx: received {got} bytes of {nbytes}, checksum mismatch")
    return {
        "bulk_rx_MBps": nbytes / MB / elapsed,
        "cpu_rx_ms_per_MB": cpu * 1e3 / (nbytes / MB),
        "chunks_rx": float(len(chunks)),
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def echo(contender: Contender, size: int, count: int, warmup: int) -> Metrics:
    """Round trips of *size* bytes through the device's echo, one at a time."""
    message = pattern(size)
    samples: list[float] = []
    async with open_ports(contender, 1, "echo") as (ports, _device):
        send_all = ports[0].send_all
        receive_some = ports[0].receive_some
        clock = time.perf_counter_ns
        cpu0 = 0.0
        for i in range(warmup + count):
            if i == warmup:
                cpu0 = cpu_seconds()
            t0 = clock()
            await send_all(message)
            reply = await receive_some(CHUNK)
            while len(reply) < size:
                reply += await receive_some(CHUNK)
            t1 = clock()
            if reply != message:
                raise BenchmarkError(f"echo: sent {message!r}, got back {reply!r}")
            if i >= warmup:
                samples.append((t1 - t0) / 1e3)
        cpu = cpu_seconds() - cpu0
    return {
        f"echo{size}_p50_us": statistics.median(samples),
        f"echo{size}_p99_us": percentile(samples, 0.99),
        f"cpu_echo{size}_us": cpu * 1e6 / count,
    }


async def idle_cpu(port: Port, seconds: float) -> float:
    """CPU percent while a receive waits on *port* and nothing arrives."""

    async def receive() -> None:
        await port.receive_some(CHUNK)
        raise BenchmarkError("idle: a silent port returned data")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(receive)
        await anyio.sleep(0.05)
        cpu0 = cpu_seconds()
        t0 = time.monotonic()
        await anyio.sleep(seconds)
        cpu = cpu_seconds() - cpu0
        elapsed = time.monotonic() - t0
        tasks.cancel_scope.cancel()
    return 100 * cpu / elapsed


async def idle(contender: Contender, seconds: float) -> Metrics:
    """Busy-loop detector: CPU on a silent port, and again after a send that had to wait."""
    async with open_ports(contender, 1, "echo") as (ports, _device):
        silent = await idle_cpu(ports[0], seconds)
    nbytes = 2**20  # far more than a pty buffers: the send must wait for the device
    async with open_ports(contender, 1, "sink", nbytes, 0.1) as (ports, device):
        await ports[0].send_all(pattern(nbytes))
        _, got, _crc, _t = await device.line()
        if int(got) != nbytes:
            raise BenchmarkError(f"idle: the device got {got} of {nbytes} bytes")
        after_wait = await idle_cpu(ports[0], seconds)
    return {"idle_cpu_pct": silent, "idle_after_wait_cpu_pct": after_wait}


async def scale_one(contender: Contender, nports: int, rounds: int, stall_s: float) -> Metrics:
    """*nports* ports in this process, all doing *rounds* 16-byte echo exchanges at once."""
    raise_fd_limit(3 * nports + 256)
    message = b"0123456789abcdef"
    rss0 = status_field("VmRSS")
    t0 = time.monotonic()
    async with open_ports(contender, nports, "echo") as (ports, _device):
        opened = time.monotonic() - t0
        threads = status_field("Threads")

        async def exchange(port: Port) -> None:
            for _ in range(rounds):
                await port.send_all(message)
                reply = await port.receive_some(CHUNK)
                while len(reply) < len(message):
                    reply += await port.receive_some(CHUNK)
                if reply != message:
                    raise BenchmarkError(f"scale: sent {message!r}, got back {reply!r}")

        t1 = time.monotonic()
        with anyio.fail_after(stall_s):
            async with anyio.create_task_group() as tasks:
                for port in ports:
                    tasks.start_soon(exchange, port)
        exchanged = time.monotonic() - t1
        rss = status_field("VmRSS")
        threads = max(threads, status_field("Threads"))
    return {
        f"scale{nports}_open_s": opened,
        f"scale{nports}_exchange_s": exchanged,
        f"scale{nports}_KiB_per_port": (rss - rss0) / nports,
        f"scale{nports}_peak_rss_MiB": peak_rss_kib() / 1024,
        f"scale{nports}_threads": float(threads),
    }


# ------------------------------------------------------------------- the suites


@dataclass
class Outcome:
    """What one suite run produced: metrics, errors by workload, paired ratios by key."""

    metrics: Metrics
    errors: dict[str, str]
    paired: dict[str, list[float]] = field(default_factory=dict)


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "stalled: no progress before the timeout"
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def recorded(outcome: Outcome, workload: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        outcome.errors[workload] = describe(exc)


def run_stream(contender: Contender, params: Params) -> Outcome:
    """Bulk, echo and idle workloads for *contender*, in this process."""
    outcome = Outcome({}, {})

    async def main() -> None:
        with recorded(outcome, "bulk_tx"):
            outcome.metrics |= await bulk_tx(contender, params.bulk_bytes)
        with recorded(outcome, "bulk_rx"):
            outcome.metrics |= await bulk_rx(contender, params.bulk_bytes)
        for size in (1, 64):
            with recorded(outcome, f"echo{size}"):
                outcome.metrics |= await echo(
                    contender, size, params.echo_count, params.echo_warmup
                )
        with recorded(outcome, "idle"):
            outcome.metrics |= await idle(contender, params.idle_seconds)

    anyio.run(main, backend=contender.backend)
    return outcome


#: What the paired CPU suite measures (see :func:`run_cpu_pairs`).
CPU_KEYS = ("cpu_tx_ms_per_MB", "cpu_rx_ms_per_MB", "cpu_echo1_us")


async def cpu_pass(contender: Contender, params: Params) -> Metrics:
    """One pass of the CPU workloads: bulk tx, bulk rx, 1-byte round trips."""
    metrics: Metrics = {}
    metrics |= await bulk_tx(contender, params.cpu_bytes)
    metrics |= await bulk_rx(contender, params.cpu_bytes)
    metrics |= await echo(contender, 1, params.cpu_trips, params.echo_warmup)
    return {key: metrics[key] for key in CPU_KEYS}


def run_cpu_pairs(
    contender: Contender, raw: Contender, params: Params
) -> tuple[Outcome, dict[str, list[float]]]:
    """CPU per unit of work, *contender* against *raw*, in alternating passes in this process.

    ``params.cpu_rounds`` rounds, each a pass of the raw limit and a pass of
    *contender* back to back (the order alternating from round to round),
    each pass on its own event loop, after one untimed pass of each (the
    first pass in a process pays for imports and the allocator's growth).
    The ratio is the contender's median over the raw limit's median, per
    key: both halves ran in one process within seconds, and a pass that a
    neighbour on the machine slowed down (which happens to single passes,
    and only ever adds CPU time) moves a median little. (With *raw* as the
    contender too, the ratios show the harness's own noise floor.)

    Returns the contender's medians, and the ratio by key (one value: the
    caller collects one per repetition).
    """
    outcome = Outcome({}, {})
    ratios: dict[str, list[float]] = {key: [] for key in CPU_KEYS}
    mine: list[Metrics] = []
    base: list[Metrics] = []
    try:
        for who in (raw, contender):
            anyio.run(cpu_pass, who, params, backend=who.backend)
        for round_ in range(params.cpu_rounds):
            order = [(raw, base), (contender, mine)]
            for who, into in order if round_ % 2 == 0 else order[::-1]:
                into.append(anyio.run(cpu_pass, who, params, backend=who.backend))
    except Exception as exc:
        outcome.errors["cpu"] = describe(exc)
        return outcome, ratios
    for key in CPU_KEYS:
        median = statistics.median(m[key] for m in mine)
        outcome.metrics[key] = median
        ratios[key].append(median / statistics.median(m[key] for m in base))
    return outcome, ratios


def run_scale(contender: Contender, params: Params) -> Outcome:
    """The scale workload for each port count, smallest first, in this process.

    Smallest first, so that the peak RSS reported for each size is that size's.
    """
    outcome = Outcome({}, {})

    async def main() -> None:
        for nports in params.scale_ports:
            with recorded(outcome, f"scale{nports}"):
                outcome.metrics |= await scale_one(
                    contender, nports, params.scale_rounds, params.scale_timeout
                )

    anyio.run(main, backend=contender.backend)
    return outcome
