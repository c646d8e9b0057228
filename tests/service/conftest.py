"""A real `imr-policy serve` on 127.0.0.1, on a free port, for the whole test session.

The server runs in its own process exactly as an operator starts it, with the test-only fault hook
of the workers switched on (IMR_POLICY_TEST_FAULTS=1, imr_policy/service/worker.py), a short
evaluation timeout so a hung worker is noticed in two seconds, and a 64 KiB body limit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT

TIMEOUT = 2.0  # seconds a worker may take before it is killed
MAX_BODY = 64 * 1024
START_DEADLINE = 60.0


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    audit_log: Path
    stderr: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)

    def post_case(self, case: Any, path: str = "/v1/determinations") -> httpx.Response:
        with self.client() as c:
            return c.post(path, content=json.dumps(case, default=str), headers={"content-type": "application/json"})

    def wait_ready(self, *, live: int | None = None, deadline: float = START_DEADLINE) -> dict[str, Any]:
        """Poll /readyz until it answers 200 (with `live` live workers, if given); bounded by `deadline`."""
        end = time.monotonic() + deadline
        last: object = None
        with self.client() as c:
            while time.monotonic() < end:
                try:
                    r = c.get("/readyz")
                    last = r.json()
                    if r.status_code == 200 and (live is None or r.json()["workers"]["live"] == live):
                        ready: dict[str, Any] = r.json()
                        return ready
                except httpx.TransportError as exc:
                    last = exc
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise AssertionError(f"the server did not become ready: {last}\n{self.stderr.read_text()}")


def start_server(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    audit_log: Path | None = None,
    access_log: bool = False,
    preexec_fn: Callable[[], None] | None = None,
) -> Server:
    """`audit_log`: where the server is told to log (default `workdir/decisions.jsonl`); pass it with
    `--audit-log` left out of `args` to check the default location, via `env`'s XDG_STATE_HOME."""
    workdir.mkdir(parents=True, exist_ok=True)
    explicit = audit_log is None
    audit_log = audit_log or workdir / "decisions.jsonl"
    stderr = workdir / "server.stderr"
    command = [
        sys.executable,
        "-m",
        "imr_policy",
        "serve",
        "--port",
        "0",
        "--workers",
        "2",
        "--timeout",
        str(TIMEOUT),
        "--max-body-bytes",
        str(MAX_BODY),
        *(("--audit-log", str(audit_log)) if explicit else ()),
        *(() if access_log else ("--no-access-log",)),
        "--log-level",
        "info" if access_log else "warning",
        *args,
    ]
    environment = {**os.environ, "IMR_POLICY_TEST_FAULTS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=workdir,
            env=environment,
            preexec_fn=preexec_fn,  # noqa: PLW1509  (a resource limit, set in the child only)
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server prints its address once it listens (EOF if it fails first)
    found = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
    if not found:
        proc.kill()
        raise AssertionError(f"the server did not start: {line!r}\n{stderr.read_text()}")
    server = Server(found.group(1), proc, audit_log, stderr)
    server.wait_ready()
    return server


def stop_server(server: Server) -> int:
    """SIGTERM, and the exit status (bounded: 30 s)."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        raise AssertionError("the server did not stop within 30 s of SIGTERM") from None
    assert server.proc.stdout is not None
    server.proc.stdout.close()
    return code


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
