"""The decision log and the server's life under faults, each on a real server of its own on loopback.

A full disk (the kernel's file size limit, RLIMIT_FSIZE, which cuts a write short exactly as a full
disk does), SIGHUP reloads and log rotation under load, SIGTERM with requests in flight, an
unwritable log path, the fsync policies, and the refusal to listen beyond loopback without a token.
Each test checks the promise of docs/service.md: a record for every answered decision and for nothing
else, never a partial record, and the documented exit codes.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from imr_policy.compliance import audit
from imr_policy.loading.resources import policies_dir
from imr_policy.service.worker import SLOW_CASE_ID
from tests.conftest import ROOT
from tests.service.conftest import Server, read_records, start_server, stop_server
from tests.service.test_http import JSON, _metric, example, problem_of
from tests.unit.test_engine import GRID


def whole_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines log, each a whole record; the file ends with a newline."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "the log ends in a partial line"
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


async def _load(server: Server, clients: int, stop: asyncio.Event, tag: str) -> list[tuple[str, httpx.Response]]:
    """`clients` connections sending GRID cases until `stop` is set (at most 400 requests each)."""

    async def client(i: int) -> list[tuple[str, httpx.Response]]:
        sent: list[tuple[str, httpx.Response]] = []
        async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as c:
            while not stop.is_set() and len(sent) < 400:
                case = {**GRID[(i * 31 + len(sent)) % len(GRID)], "case_id": f"{tag}-{i}-{len(sent)}"}
                try:
                    r = await c.post("/v1/determinations", content=json.dumps(case), headers=JSON)
                except httpx.TransportError:  # the server stopped taking connections (SIGTERM)
                    break
                sent.append((case["case_id"], r))
        return sent

    done = await asyncio.gather(*(client(i) for i in range(clients)))
    return [pair for sent in done for pair in sent]


@pytest.mark.parametrize("name", ["decisions.jsonl", "decisions.sqlite"])
def test_a_full_disk_answers_503_and_leaves_no_partial_record(tmp_path: Path, name: str) -> None:
    limit = 120_000  # bytes any file of the server may have; the rule files' copies are smaller

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    log = tmp_path / "server" / name
    server = start_server(tmp_path / "server", "--audit-log", str(log), preexec_fn=small_disk)
    answers: list[tuple[str, httpx.Response]] = []
    try:
        full = 0
        for n in range(400):  # bounded: the log is full after about 30 records of the example
            case = {**example(), "case_id": f"disk-{n}"}
            r = server.post_case(case)
            answers.append((case["case_id"], r))
            full = full + 1 if r.status_code == 503 else 0
            if full == 5:
                break
        assert full == 5, "the log never filled up"
        with server.client() as c:
            assert c.get("/readyz").status_code == 200  # the workers are fine; only the log is full
            text = c.get("/metrics").text
    finally:
        assert stop_server(server) == 0
    assert log.stat().st_size <= limit
    if name.endswith(".sqlite"):
        entries = list(audit.read_log(log))
        assert all(e.problem is None for e in entries)
        records = [e.record for e in entries if e.record is not None]
    else:
        records = whole_records(log)
    answered = {r.headers["imr-decision-id"]: case_id for case_id, r in answers if r.status_code == 200}
    refused = [case_id for case_id, r in answers if r.status_code != 200]
    for _, r in answers:
        if r.status_code != 200:
            problem_of(r, 503, "audit-unavailable")
            assert r.headers["retry-after"] == "1"
    assert len(answered) >= 5 and len(refused) == 5
    assert {x["decision_id"]: x["case_id"] for x in records} == answered  # every answer, nothing else
    assert _metric(text, "imr_policy_decision_log_failures_total") == 5
    assert "Traceback" not in server.stderr.read_text()


def test_sighup_rotation_and_reloads_under_load_cost_no_request(tmp_path: Path) -> None:
    """8 clients send cases while the log is rotated and the policy set reloaded by SIGHUP six times (every
    other time with changed rule files, so new workers take over): every request is answered 200, and
    the rotated files together hold exactly one whole record per answer."""
    packs = tmp_path / "packs"
    shutil.copytree(policies_dir(), packs, ignore=shutil.ignore_patterns("tests"))
    server = start_server(tmp_path / "server", "--policies", str(packs))
    rotated: list[Path] = []

    async def run() -> list[tuple[str, httpx.Response]]:
        stop = asyncio.Event()
        load = asyncio.ensure_future(_load(server, 8, stop, "hup"))
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as c:
            for n in range(6):
                before = (await c.get("/v1/policies")).json()["policy_set"]["content_hash"]
                moved = server.audit_log.with_name(f"decisions.{n}.jsonl")
                server.audit_log.rename(moved)
                rotated.append(moved)
                if n % 2:
                    with (packs / "mtus-cpmtg" / "2009.yaml").open("a", encoding="utf-8") as fh:
                        fh.write(f"# reload {n}\n")
                server.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # reopened, and (when changed) swapped
                    now = (await c.get("/v1/policies")).json()["policy_set"]["content_hash"]
                    if server.audit_log.exists() and (now != before or not n % 2):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"reload {n} did not finish")
                await asyncio.sleep(0.3)
        stop.set()
        return await asyncio.wait_for(load, 120)

    try:
        answers = asyncio.run(run())
    finally:
        assert stop_server(server) == 0
    assert len(answers) > 50
    assert [r.status_code for _, r in answers if r.status_code != 200] == []
    records = [x for f in [*rotated, server.audit_log] for x in whole_records(f)]
    assert sorted(x["decision_id"] for x in records) == sorted(r.headers["imr-decision-id"] for _, r in answers)
    assert len({x["policy_set"]["content_hash"] for x in records}) >= 3  # three swaps happened under load


def test_sigterm_answers_what_it_holds_exits_0_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """No --audit-log: the log goes to $XDG_STATE_HOME/imr-policy (owner-only), not the working directory.
    SIGTERM while 4 clients send cases: exit 0, every answered decision logged, the temporary directory empty."""
    work, tmp, state = tmp_path / "server", tmp_path / "tmp", tmp_path / "state"
    tmp.mkdir()
    log = state / "imr-policy" / "decisions.jsonl"
    server = start_server(work, env={"TMPDIR": str(tmp), "XDG_STATE_HOME": str(state)}, audit_log=log)
    assert list(tmp.iterdir())  # the snapshot of the rule files lives there while serving
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    code: list[int] = []

    async def run() -> list[tuple[str, httpx.Response]]:
        stop = asyncio.Event()
        load = asyncio.ensure_future(_load(server, 4, stop, "term"))
        await asyncio.sleep(1.0)
        code.append(await asyncio.to_thread(stop_server, server))
        stop.set()
        return await asyncio.wait_for(load, 60)

    answers = asyncio.run(run())
    assert code == [0]
    assert list(tmp.iterdir()) == []
    assert sorted(p.name for p in work.iterdir()) == ["server.stderr"]  # nothing in the working directory
    assert "Traceback" not in server.stderr.read_text()
    answered = {r.headers["imr-decision-id"] for _, r in answers if r.status_code == 200}
    assert answered and {x["decision_id"] for x in whole_records(log)} == answered


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "imr_policy", "serve", "--port", "0", "--workers", "1", *args]
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=environment
    )


def test_an_unwritable_log_path_is_refused_before_serving(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir").mkdir()
    for path, reason in (
        (tmp_path / "a-file" / "log.jsonl", "Not a directory"),
        (tmp_path / "a-dir", "Is a directory"),
    ):
        done = _serve(tmp_path, "--audit-log", str(path))
        assert done.returncode == 1, done.stderr
        assert "serving on" not in done.stdout
        assert f"imr-policy: cannot write the decision log {path}: {reason}; not serving" in done.stderr
        assert "Traceback" not in done.stderr


def test_listening_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    done = _serve(tmp_path, "--host", "0.0.0.0", "--audit-log", str(tmp_path / "log.jsonl"))
    assert done.returncode == 2
    assert "serving on" not in done.stdout
    assert "refusing to listen on 0.0.0.0, which is not a loopback address, without an admin token" in done.stderr
    assert not (tmp_path / "log.jsonl").exists()
    done = _serve(tmp_path, "--audit-fsync", "5s")
    assert done.returncode == 2
    assert "expected `always`, `never` or a number of milliseconds like `20ms`" in done.stderr


@pytest.mark.parametrize("policy", ["20ms", "never"])
def test_fsync_policies_and_the_access_log(tmp_path: Path, policy: str) -> None:
    """Group commit (`20ms`): each answer waits for a sync that covers it; `never` syncs nothing. Either way
    every answer is logged; the access log has one JSON line per request with latency and decision id."""
    server = start_server(tmp_path / "server", "--audit-fsync", policy, access_log=True)

    async def run() -> list[tuple[str, httpx.Response]]:
        stop = asyncio.Event()
        load = asyncio.ensure_future(_load(server, 8, stop, policy))
        await asyncio.sleep(1.5)
        stop.set()
        return await asyncio.wait_for(load, 60)

    try:
        answers = asyncio.run(run())
        with server.client() as c:
            text = c.get("/metrics").text
    finally:
        assert stop_server(server) == 0
    assert answers and all(r.status_code == 200 for _, r in answers)
    assert {x["decision_id"] for x in whole_records(server.audit_log)} == {
        r.headers["imr-decision-id"] for _, r in answers
    }
    writes = _metric(text, "imr_policy_decision_log_writes_total")
    syncs = _metric(text, "imr_policy_decision_log_syncs_total")
    assert writes == len(answers)
    if policy == "never":
        assert syncs == 0
    else:
        assert 1 <= syncs <= writes
    lines = [
        json.loads(m.group(1))
        for m in re.finditer(r"imr_policy\.access: (\{.*\})$", server.stderr.read_text(), re.MULTILINE)
    ]
    logged = {x["decision_id"]: x for x in lines if x["path"] == "/v1/determinations"}
    for _, r in answers:
        line = logged[r.headers["imr-decision-id"]]
        assert line["status"] == 200 and line["method"] == "POST"
        assert line["request_id"] == r.headers["x-request-id"]
        assert line["latency_ms"] > 0
        assert line["policy_set"] == r.headers["imr-policy-set"]
    assert "secret" not in server.stderr.read_text()


def test_a_client_that_leaves_before_its_answer_gets_no_record(server: Server) -> None:
    """A record means an answer was sent: a client that closes its connection while its case is being
    decided (the `slow` test fault holds it for a second) leaves nothing in the log; one that waits does."""
    body = json.dumps({**example(), "case_id": SLOW_CASE_ID}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/determinations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-Id: gone-away\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        time.sleep(0.2)  # the case is in a worker now
    time.sleep(1.5)  # past the worker's answer
    waited = server.post_case({**example(), "case_id": SLOW_CASE_ID})
    assert waited.status_code == 200
    mine = [x for x in read_records(server.audit_log) if x["case_id"] == SLOW_CASE_ID]
    assert [x["decision_id"] for x in mine] == [waited.headers["imr-decision-id"]]
    assert all(x["request"]["request_id"] != "gone-away" for x in mine)
