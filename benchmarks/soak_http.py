"""The soak: does `imr-policy serve` keep its memory flat over 100,000 invalid requests and 1,000 reloads
under load, and do the reloads cost any request?

Why this shape (issue 15, "Done when"): `memory_flat.py` and `hostile_memory.py` measure one process
evaluating, or refusing, in a loop; neither sees the server process, the worker processes, the frames
between them, or a reload. Here the server is started as an operator starts it, on loopback, and
loaded from this process by closed-loop clients on raw keep-alive sockets (as in `bench_http.py`).

Two phases, one run:
* **invalid**: `--invalid` invalid requests (every JSON file of tests/hostile/, round after round, and
  invalid cases: a wrong type, a missing field, malformed JSON), with one valid case every
  `--valid-every` requests, and no reload. The workers live through the whole phase, so their RSS at
  its start, middle and end says whether refusing leaks.
* **reloads**: the same mix of requests keeps coming while `--reloads` reloads are made one after the
  other. Each first appends a comment to a rule file of a private copy of the shipped packs, so each is
  a real change (a new content hash, a new pool of workers, the old one drained and stopped); every
  `--sighup-every`-th is a SIGHUP, the others `POST /v1/admin/reload` with the admin token. The
  server's RSS at the start, middle and end of the phase says whether a reload leaks.

Counted as failed: a valid case answered anything but 200 with the determination the benchmark's own
`engine.evaluate` gives (items compared; the policy set differs after a reload), any 5xx, any refusal
that is not `application/problem+json`, any broken connection, and a reload that does not answer 200
with `"changed": true` (or a SIGHUP after which the new set is not in use within 60 s). The decision log
must end with exactly one record per 200 answer.

Linux only (reads /proc). Run from the repository root:
    python benchmarks/soak_http.py [--invalid 100000] [--reloads 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import imr_policy  # noqa: E402
from imr_policy.loading.resources import policies_dir  # noqa: E402

EXAMPLE = REPO / "examples" / "cases" / "imr-2015-psych-example.yaml"
HOSTILE = REPO / "tests" / "hostile"
TOKEN = "soak-admin-token"  # a throwaway token for the loopback server this script starts
EDITED = Path("mtus-cpmtg") / "2009.yaml"  # a comment appended here is a new content hash, the same decisions


# ---------------------------------------------------------------------------------------- the client


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: bytes
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for this server's answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if found is None:
            raise RuntimeError("an answer without Content-Length")
        body = await self.reader.readexactly(int(found.group(1)))
        if re.search(rb"(?i)\r\nconnection:\s*close", head):
            await self.close()
        return Answer(status, head, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def http(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post_json(body: bytes, content_type: str = "application/json") -> bytes:
    return http("POST", "/v1/determinations", body, {"Content-Type": content_type})


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    request: bytes
    valid: bool


def request_mix(case: dict[str, Any], valid_every: int) -> list[Kind]:
    """One cycle of requests: every hostile JSON file, plain invalid cases, and valid cases among them."""
    invalid: list[Kind] = []
    for path in sorted(HOSTILE.glob("*.json")):
        invalid.append(Kind(f"hostile/{path.name}", post_json(path.read_bytes()), False))
    wrong_type = {**case, "requests": [{**case["requests"][0], "quantity": "six"}, *case["requests"][1:]]}
    missing = {k: v for k, v in case.items() if k != "date_of_injury"}
    plain = [
        Kind("invalid/wrong-type", post_json(json.dumps(wrong_type).encode()), False),
        Kind("invalid/missing-field", post_json(json.dumps(missing).encode()), False),
        Kind("invalid/malformed-json", post_json(json.dumps(case).encode()[:-7]), False),
        Kind("invalid/yaml-body", post_json(EXAMPLE.read_bytes()), False),
    ]
    invalid += plain * 20  # the common refusals outnumber the exotic ones, as they would in life
    valid = Kind("valid/example", post_json(json.dumps(case).encode()), True)
    mix: list[Kind] = []
    for i, kind in enumerate(invalid):
        if i % (valid_every - 1) == 0:
            mix.append(valid)
        mix.append(kind)
    return mix


@dataclass
class Tally:
    """What the clients saw, per phase."""

    sent: int = 0
    invalid: int = 0
    valid: int = 0
    ok: int = 0  # valid cases answered 200 with the right determination
    failed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failed += 1
        if len(self.failures) < 20:
            self.failures.append(what)


def check(kind: Kind, answer: Answer, expected_items: Any, tally: Tally) -> None:
    tally.statuses[f"{'valid' if kind.valid else 'invalid'} {answer.status}"] += 1
    if kind.valid:
        tally.valid += 1
        if answer.status != 200:
            tally.fail(f"{kind.name}: {answer.status} {answer.body[:300]!r}")
        elif json.loads(answer.body)["items"] != expected_items:
            tally.fail(f"{kind.name}: a different determination")
        else:
            tally.ok += 1
        return
    tally.invalid += 1
    problem = re.search(rb"(?i)\r\ncontent-type:\s*application/problem\+json", answer.headers)
    if answer.status >= 500 or answer.status < 400 or problem is None:
        tally.fail(f"{kind.name}: {answer.status} {answer.body[:300]!r}")


async def client(port: int, mix: list[Kind], turn: itertools.count[int], expected: Any, load: Load) -> None:
    conn = Connection(port)
    pace = load.clients / load.rate if load.rate > 0 else 0.0  # seconds between this client's requests
    due = time.perf_counter()
    try:
        while not load.stop.is_set():
            if pace:
                due += pace
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            kind = mix[next(turn) % len(mix)]
            tally = load.tally
            tally.sent += 1
            try:
                answer = await conn.send(kind.request)
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                tally.fail(f"{kind.name}: {type(exc).__name__} {exc}")
                await conn.close()
                continue
            check(kind, answer, expected, tally)
            if tally.invalid >= load.invalid_target > 0:
                load.stop.set()
    finally:
        await conn.close()


@dataclass
class Load:
    tally: Tally
    stop: asyncio.Event
    invalid_target: int = 0  # stop once this many invalid requests were answered (0: stop when told)
    rate: float = 0.0  # requests per second from all clients together; 0: closed loop (as fast as answered)
    clients: int = 1


# ---------------------------------------------------------------------------------------- the server


def start_server(workdir: Path, packs: Path, workers: int, fsync: str) -> tuple[subprocess.Popen[str], int]:
    log = workdir / "decisions.jsonl"
    command = [sys.executable, "-m", "imr_policy", "serve", "--port", "0", "--workers", str(workers)]
    command += ["--policies", str(packs), "--audit-log", str(log), "--audit-fsync", fsync]
    command += ["--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "IMR_POLICY_ADMIN_TOKEN": TOKEN}
    errors = (workdir / "server.stderr").open("w")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=workdir, env=env)
    assert proc.stdout is not None
    found = re.search(r"127\.0\.0\.1:(\d+) with", proc.stdout.readline())
    if not found:
        proc.kill()
        raise SystemExit(f"the server did not start:\n{(workdir / 'server.stderr').read_text()}")
    return proc, int(found.group(1))


async def get_json(port: int, path: str) -> Any:
    conn = Connection(port)
    try:
        answer = await conn.send(http("GET", path))
    finally:
        await conn.close()
    return json.loads(answer.body)


async def metrics(port: int) -> dict[str, float]:
    conn = Connection(port)
    try:
        text = (await conn.send(http("GET", "/metrics"))).body.decode()
    finally:
        await conn.close()
    wanted = ("imr_policy_reloads_total", "imr_policy_worker_restarts_total", "imr_policy_decision_log_failures_total")
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(found.group(1)) / 1024, 2) if found else None


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text(encoding="utf-8").split()]
    return sorted(found)


@dataclass
class Sampler:
    server: int
    started: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    reload_seconds: list[float] = field(default_factory=list)  # each reload, from its edit to the new set in use

    def take(self, phase: str, label: str, tally: Tally, reloads: int) -> dict[str, Any]:
        workers = {pid: rss_mb(pid) for pid in children(self.server)}
        row = {
            "phase": phase,
            "label": label,
            "elapsed_s": round(time.perf_counter() - self.started, 1),
            "sent": tally.sent,
            "invalid": tally.invalid,
            "failed": tally.failed,
            "reloads": reloads,
            "server_rss_mb": rss_mb(self.server),
            "workers_rss_mb": workers,
        }
        self.rows.append(row)
        shown = ", ".join(f"{pid}: {mb:.2f}" for pid, mb in workers.items() if mb is not None)
        print(
            f"{phase:<8} {label:<7} {row['elapsed_s']:>7.1f} s  sent {tally.sent:>8,}  invalid {tally.invalid:>8,}"
            f"  failed {tally.failed}  reloads {reloads:>5,}  server RSS {row['server_rss_mb']:.2f} MB"
            f"  workers RSS MB {{{shown}}}",
            flush=True,
        )
        return row


# ---------------------------------------------------------------------------------------- the phases


async def phase_invalid(port: int, mix: list[Kind], expected: Any, args: argparse.Namespace, sampler: Sampler) -> Tally:
    tally = Tally()
    load = Load(tally, asyncio.Event(), invalid_target=args.invalid, rate=args.rate, clients=args.clients)
    turn = itertools.count()
    sampler.take("invalid", "start", tally, 0)
    clients = [asyncio.ensure_future(client(port, mix, turn, expected, load)) for _ in range(args.clients)]
    step = max(1, args.invalid // 10)
    mark = step
    while not load.stop.is_set():
        await asyncio.sleep(0.2)
        if tally.invalid >= mark and mark < args.invalid:
            sampler.take("invalid", "middle" if mark == 5 * step else "sample", tally, 0)
            mark += step
    await asyncio.gather(*clients)
    sampler.take("invalid", "end", tally, 0)
    return tally


async def one_reload(port: int, packs: Path, n: int, by_sighup: bool, server: int) -> str | None:
    """Reload number `n` with changed rule files; why it failed, or None."""
    before = (await get_json(port, "/v1/policies"))["policy_set"]["content_hash"]
    with (packs / EDITED).open("a", encoding="utf-8") as fh:
        fh.write(f"# soak reload {n}\n")
    if by_sighup:
        os.kill(server, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (await get_json(port, "/v1/policies"))["policy_set"]["content_hash"] != before:
                return None
            await asyncio.sleep(0.02)
        return f"reload {n} (SIGHUP): the new policy set was not in use within 60 s"
    conn = Connection(port)
    try:
        answer = await conn.send(http("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}))
    finally:
        await conn.close()
    if answer.status != 200 or json.loads(answer.body).get("changed") is not True:
        return f"reload {n}: {answer.status} {answer.body[:300]!r}"
    return None


async def phase_reloads(
    port: int, packs: Path, mix: list[Kind], expected: Any, args: argparse.Namespace, sampler: Sampler
) -> tuple[Tally, int, list[str]]:
    tally = Tally()
    load = Load(tally, asyncio.Event(), rate=args.reload_rate, clients=args.clients)
    turn = itertools.count()
    sampler.take("reloads", "start", tally, 0)
    clients = [asyncio.ensure_future(client(port, mix, turn, expected, load)) for _ in range(args.clients)]
    failed: list[str] = []
    took = sampler.reload_seconds
    done = 0
    step = max(1, args.reloads // 10)
    try:
        await asyncio.sleep(0.5)  # the clients are under way before the first reload
        for n in range(1, args.reloads + 1):
            by_sighup = args.sighup_every > 0 and n % args.sighup_every == 0
            began = time.perf_counter()
            if (why := await one_reload(port, packs, n, by_sighup, sampler.server)) is not None:
                failed.append(why)
            took.append(time.perf_counter() - began)
            done += 1
            if n % step == 0 and n < args.reloads:
                sampler.take("reloads", "middle" if n == 5 * step else "sample", tally, done)
        await asyncio.sleep(0.5)  # and still under way after the last one
    finally:
        load.stop.set()
        await asyncio.gather(*clients)
    sampler.take("reloads", "end", tally, done)
    return tally, done, failed


# ---------------------------------------------------------------------------------------- report


def figures_of(tally: Tally) -> dict[str, Any]:
    return {
        "sent": tally.sent,
        "invalid": tally.invalid,
        "valid": tally.valid,
        "valid_ok": tally.ok,
        "failed": tally.failed,
        "statuses": dict(sorted(tally.statuses.items())),
        "first_failures": tally.failures,
    }


def growth(rows: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    """RSS at the phase's start, middle and end, for the server and the workers alive at each point."""
    picked = {r["label"]: r for r in rows if r["phase"] == phase and r["label"] in ("start", "middle", "end")}
    return {
        label: {"server_rss_mb": row["server_rss_mb"], "workers_rss_mb": row["workers_rss_mb"]}
        for label, row in picked.items()
    }


def reload_stats(took: list[float]) -> dict[str, float]:
    if not took:
        return {}
    ordered = sorted(took)
    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }


def print_summary(summary: dict[str, Any]) -> None:
    print()
    for phase in ("invalid", "reloads"):
        f = summary[phase]
        print(
            f"{phase}: sent {f['sent']:,}; invalid {f['invalid']:,}; valid {f['valid']:,} ({f['valid_ok']:,} right);"
            f" failed {f['failed']}; statuses {f['statuses']}"
        )
        for label, row in summary["memory"][phase].items():
            workers = ", ".join(f"{mb}" for mb in row["workers_rss_mb"].values())
            print(f"  {label:<6} server RSS {row['server_rss_mb']} MB; workers RSS {workers} MB")
        for failure in f["first_failures"]:
            print(f"  failure: {failure}")
    print(
        f"reloads done {summary['reloads_done']:,} ({summary['reloads_by_sighup']:,} by SIGHUP); "
        f"failed {len(summary['reload_failures'])}; seconds per reload {summary['reload_seconds']}"
    )
    for failure in summary["reload_failures"][:20]:
        print(f"  reload failure: {failure}")
    print(f"decision log: {summary['log_records']:,} records for {summary['answered_200']:,} answers of 200")
    print(f"metrics: {json.dumps(summary['metrics'], sort_keys=True)}")
    print(f"server exit status after SIGTERM: {summary['server_exit']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invalid", type=int, default=100_000, help="invalid requests in phase 1 (default 100,000)")
    parser.add_argument("--reloads", type=int, default=1_000, help="reloads under load in phase 2 (default 1,000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--valid-every", type=int, default=10, help="one valid case every N requests (default 10)")
    parser.add_argument("--sighup-every", type=int, default=10, help="every Nth reload by SIGHUP; 0: none")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s in the invalid phase; 0 (default): closed loop"
    )
    parser.add_argument(
        "--reload-rate", type=float, default=0.0, help="requests/s in the reload phase; 0 (default): closed loop"
    )
    parser.add_argument("--workers", type=int, default=2, help="the server's workers (default 2)")
    parser.add_argument("--audit-fsync", default="never", help="the server's --audit-fsync (default never)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.valid_every < 2:
        parser.error("--valid-every must be at least 2")
    return args


async def soak(args: argparse.Namespace, workdir: Path, packs: Path, expected: Any) -> dict[str, Any]:
    case = json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), default=str))
    mix = request_mix(case, args.valid_every)
    proc, port = start_server(workdir, packs, args.workers, args.audit_fsync)
    try:
        sampler = Sampler(proc.pid, time.perf_counter())
        invalid = await phase_invalid(port, mix, expected, args, sampler) if args.invalid else Tally()
        reloads, done, reload_failures = (
            await phase_reloads(port, packs, mix, expected, args, sampler) if args.reloads else (Tally(), 0, [])
        )
        counted = await metrics(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    log = workdir / "decisions.jsonl"
    records = sum(1 for line in log.read_text(encoding="utf-8").splitlines() if line.strip())
    return {
        "invalid": figures_of(invalid),
        "reloads": figures_of(reloads),
        "memory": {"invalid": growth(sampler.rows, "invalid"), "reloads": growth(sampler.rows, "reloads")},
        "reloads_done": done,
        "reloads_by_sighup": done // args.sighup_every if args.sighup_every else 0,
        "reload_failures": reload_failures,
        "reload_seconds": reload_stats(sampler.reload_seconds),
        "log_records": records,
        "answered_200": invalid.statuses["valid 200"] + reloads.statuses["valid 200"],
        "metrics": counted,
        "server_exit": code,
        "series": sampler.rows,
    }


def code_fingerprint() -> str:
    """A hash of the package's source the server's workers import: a reload starts new worker processes,
    which import it again, so a run during which it changed (an edit or a merge in an editable install)
    measured two programs, and its failures may be the edit's, not the service's."""
    root = Path(imr_policy.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    before = code_fingerprint()
    case = json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), default=str))
    expected = imr_policy.load().evaluate(case).to_dict()["items"]
    print(
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}  python {sys.version.split()[0]}  "
        f"{platform.platform()}  nproc {len(os.sched_getaffinity(0))}  load {os.getloadavg()[0]:.2f}  "
        f"invalid {args.invalid:,}  reloads {args.reloads:,}  clients {args.clients}  workers {args.workers}  "
        f"audit-fsync {args.audit_fsync}",
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imr-policy-soak-") as tmp:
        packs = Path(tmp) / "packs"
        shutil.copytree(policies_dir(), packs, ignore=shutil.ignore_patterns("tests"))
        summary = asyncio.run(soak(args, Path(tmp), packs, expected))
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    summary["code_changed_during_run"] = code_fingerprint() != before
    summary["load_at_end"] = round(os.getloadavg()[0], 2)
    print_summary(summary)
    print(f"wall {summary['wall_s']} s; load average at the end {summary['load_at_end']}")
    if summary["code_changed_during_run"]:
        print(
            "VOID: imr_policy's source changed during the run (new workers import it on every reload); "
            "run the soak from an install that nothing edits, e.g. a venv with `pip install .` of one commit"
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    bad = summary["invalid"]["failed"] + summary["reloads"]["failed"] + len(summary["reload_failures"])
    void = summary["code_changed_during_run"]
    return 1 if void or bad or summary["log_records"] != summary["answered_200"] or summary["server_exit"] != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
