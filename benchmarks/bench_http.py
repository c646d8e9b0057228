"""Requests per second and p50/p99 latency of `imr-policy serve` on loopback, next to in-process evaluation.

Why this shape: the service adds HTTP parsing, a hop to a worker process and back, and a decision-log
write to every evaluation. The question an embedder asks is how much that costs against calling
`engine.evaluate` in their own process, so both are measured in the same run, on the same machine,
in the same minute, and the report gives their ratio.

Method (see benchmarks/README.md):
* the server is started as an operator would (`python -m imr_policy serve`, its default workers,
  a JSON Lines decision log, the access log off) on 127.0.0.1 and a free port;
* the load comes from this process: N closed-loop clients, each on its own keep-alive connection,
  each sending the example case again as soon as it has its answer. The client is a few lines of
  asyncio over raw sockets (no HTTP library), so as little of the 2 cores as possible goes to it;
* every answer is checked: status 200 and the same bytes as the first answer, which is itself checked
  against `imr_policy.load().evaluate(case)` in this process; the decision log must end up with one
  record per answer;
* rounds are interleaved: each round runs every client count (in a new random order) and a slice of
  individually timed in-process evaluations; requests/s is the median over rounds, percentiles are
  over all requests of all rounds.

Run from the repository root:  python benchmarks/bench_http.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Measure the checkout this file belongs to, not whatever imr_policy happens to be installed.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import imr_policy  # noqa: E402

DEFAULT_CASE = REPO / "examples" / "cases" / "imr-2015-psych-example.yaml"
CLIENTS = (1, 8, 64)


# ---------------------------------------------------------------------------------------- the client


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for this server's answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if found is None:
            raise RuntimeError("an answer without Content-Length")
        return status, await self.reader.readexactly(int(found.group(1)))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def post(port: int, body: bytes) -> bytes:
    return (
        f"POST /v1/determinations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Level:
    """Everything measured at one number of concurrent clients."""

    clients: int
    cpu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # server, workers, clients (s)
    round_rps: list[float] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    requests: int = 0
    errors: int = 0


async def closed_loop(
    port: int, request: bytes, expected: bytes, clients: int, seconds: float
) -> tuple[list[int], int]:
    """`clients` connections sending `request` back to back for `seconds`; (latencies, errors)."""
    connections = [await Connection.open(port) for _ in range(clients)]
    latencies: list[int] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one(conn: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter_ns()
            status, body = await conn.send(request)
            latencies.append(time.perf_counter_ns() - start)
            if status != 200 or body != expected:
                errors += 1

    try:
        await asyncio.wait_for(asyncio.gather(*(one(c) for c in connections)), timeout=seconds + 120)
    finally:
        for c in connections:
            await c.close()
    return latencies, errors


# ---------------------------------------------------------------------------------------- the server


def start_server(
    workdir: Path, workers: int | None, fsync: str = "always"
) -> tuple[subprocess.Popen[str], int, int, Path]:
    log = workdir / "decisions.jsonl"
    command = [sys.executable, "-m", "imr_policy", "serve", "--port", "0", "--audit-log", str(log)]
    command += ["--no-access-log", "--log-level", "warning", "--audit-fsync", fsync]
    if workers:
        command += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=workdir, env=env)
    assert proc.stdout is not None
    found = re.search(r"127\.0\.0\.1:(\d+) with (\d+) workers", proc.stdout.readline())
    if not found:
        proc.kill()
        raise SystemExit("the server did not start")
    port = int(found.group(1))
    deadline = time.monotonic() + 60
    ready = f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def poll() -> bool:
        conn = await Connection.open(port)
        try:
            status, body = await conn.send(ready)
            return status == 200 and json.loads(body)["workers"]["live"] == int(found.group(2))
        finally:
            await conn.close()

    while time.monotonic() < deadline:
        try:
            if asyncio.run(poll()):
                return proc, port, int(found.group(2)), log
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not become ready within 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text(encoding="utf-8")
        found += [int(c) for c in text.split()]
    return found


def cpu_split(server: int) -> tuple[float, float, float]:
    """CPU seconds so far of the server process, of its workers, and of this process (the clients)."""
    return cpu_seconds(server), sum(cpu_seconds(c) for c in children(server)), time.process_time()


# ---------------------------------------------------------------------------------------- in process


def time_in_process(engine: imr_policy.Engine, case: dict[str, Any], n: int, into: list[int]) -> None:
    for _ in range(n):
        start = time.perf_counter_ns()
        engine.evaluate(case)
        into.append(time.perf_counter_ns() - start)


# ---------------------------------------------------------------------------------------- report


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))])


def loadavg() -> list[str]:
    try:
        return Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3]
    except OSError:
        return []


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 10 s) to check that it works")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--seconds", type=float, help="seconds per client count per round (default 5; 1 with --quick)")
    parser.add_argument("--workers", type=int, help="the server's worker processes (default: its own default)")
    parser.add_argument(
        "--audit-fsync", default="always", help="the server's --audit-fsync: always (its default), never or <N>ms"
    )
    parser.add_argument("--in-process-calls", type=int, default=3000, help="timed evaluations per round")
    parser.add_argument("--seed", type=int, default=20150710)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (1.0 if args.quick else 5.0)

    case = json.loads(json.dumps(yaml.safe_load(args.case.read_text(encoding="utf-8")), default=str))
    body = json.dumps(case).encode()
    engine = imr_policy.load()
    gc.freeze()  # as the workers do after loading (docs/api.md)
    reference = engine.evaluate(case).to_dict()
    start_load = loadavg()

    with tempfile.TemporaryDirectory(prefix="imr-policy-bench-") as tmp:
        proc, port, workers, log = start_server(Path(tmp), args.workers, args.audit_fsync)
        try:
            request = post(port, body)

            async def first() -> bytes:
                conn = await Connection.open(port)
                try:
                    status, answer = await conn.send(request)
                finally:
                    await conn.close()
                if status != 200 or json.loads(answer) != reference:
                    raise SystemExit("the server's answer differs from the in-process evaluation")
                return answer

            expected = asyncio.run(first())
            levels = {c: Level(c) for c in CLIENTS}
            in_process: list[int] = []
            rng = random.Random(args.seed)
            warm, warm_errors = asyncio.run(closed_loop(port, request, expected, 8, 0.5 if args.quick else 2.0))
            answered = 1 + len(warm) - warm_errors  # the first checked answer and the warm-up's
            for _ in range(rounds):
                order = list(CLIENTS)
                rng.shuffle(order)
                for clients in order:
                    started, cpu_before = time.perf_counter(), cpu_split(proc.pid)
                    latencies, errors = asyncio.run(closed_loop(port, request, expected, clients, seconds))
                    elapsed, cpu_after = time.perf_counter() - started, cpu_split(proc.pid)
                    level = levels[clients]
                    level.cpu = [t + b - a for t, a, b in zip(level.cpu, cpu_before, cpu_after, strict=True)]
                    level.round_rps.append(len(latencies) / elapsed)
                    level.latencies_ns += latencies
                    level.requests += len(latencies)
                    level.errors += errors
                time_in_process(engine, case, args.in_process_calls, in_process)
            answered += sum(level.requests - level.errors for level in levels.values())
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        logged = sum(1 for line in log.read_text(encoding="utf-8").splitlines() if line.strip())

    in_p50, in_p99 = pct(in_process, 0.50), pct(in_process, 0.99)
    figures: dict[str, Any] = {
        "machine": {
            "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "loadavg_at_start": start_load,
            "loadavg_at_end": loadavg(),
            "uvloop": have("uvloop"),
            "httptools": have("httptools"),
        },
        "config": {"case": str(args.case), "rounds": rounds, "seconds": seconds, "server_workers": workers},
        "in_process": {"calls": len(in_process), "p50_us": in_p50 / 1e3, "p99_us": in_p99 / 1e3},
        "http": [],
        "decision_log": {"answers": answered, "records": logged},
    }
    print(f"imr-policy serve on 127.0.0.1, {workers} workers, JSON Lines decision log, access log off")
    print(
        f"case: {args.case.relative_to(REPO) if args.case.is_relative_to(REPO) else args.case} "
        f"({len(body)} bytes in, {len(expected)} bytes out); {rounds} rounds x {seconds:g} s per client count"
    )
    print(
        f"machine: {figures['machine']['nproc']} CPUs, Python {figures['machine']['python']}, "
        f"uvloop={figures['machine']['uvloop']}, httptools={figures['machine']['httptools']}, "
        f"load average {' '.join(start_load)} -> {' '.join(loadavg())}"
    )
    print()
    print(
        f"{'clients':>7} {'requests/s':>11} {'spread':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
        f"{'requests':>9} {'errors':>6}   CPU µs/request: server / workers / clients"
    )
    for clients in CLIENTS:
        level = levels[clients]
        rps = statistics.median(level.round_rps)
        spread = (max(level.round_rps) - min(level.round_rps)) / rps if rps else 0.0
        p50, p99, p999 = (pct(level.latencies_ns, q) / 1e6 for q in (0.50, 0.99, 0.999))
        figures["http"].append(
            {
                "clients": clients,
                "requests_per_s": rps,
                "spread": spread,
                "p50_ms": p50,
                "p99_ms": p99,
                "p999_ms": p999,
                "requests": level.requests,
                "errors": level.errors,
                "p50_ratio_to_in_process_p50": p50 * 1e6 / in_p50,
            }
        )
        cpu = [t / max(1, level.requests) * 1e6 for t in level.cpu]
        figures["http"][-1]["cpu_us_per_request"] = {"server": cpu[0], "workers": cpu[1], "clients": cpu[2]}
        print(
            f"{clients:>7} {rps:>11,.0f} {spread:>6.0%} {p50:>8.2f} {p99:>8.2f} {p999:>9.2f} "
            f"{level.requests:>9,} {level.errors:>6}   {cpu[0]:>6.0f} / {cpu[1]:>7.0f} / {cpu[2]:>7.0f}"
        )
    one = figures["http"][0]
    print()
    print(
        f"in-process engine.evaluate (same process, same run): p50 {in_p50 / 1e3:.0f} µs, p99 {in_p99 / 1e3:.0f} µs "
        f"({len(in_process):,} calls)"
    )
    print(
        f"HTTP latency / in-process latency at 1 client: p50 {one['p50_ms'] * 1e6 / in_p50:.1f}x, "
        f"p99 {one['p99_ms'] * 1e6 / in_p99:.1f}x"
    )
    print(f"decision log: {logged:,} records for {answered:,} answers (warm-up included)")
    errors = warm_errors + sum(level.errors for level in levels.values())
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if errors or logged != answered else 0


if __name__ == "__main__":
    sys.exit(main())
