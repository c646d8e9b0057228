"""Reloading the policy set: atomic, validated, with the old set kept when the new one is not valid.

A server of its own, on a copy of the shipped packs that the tests edit, with an admin token.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import imr_policy
from imr_policy.cli.main import main
from imr_policy.loading.resources import policies_dir
from tests.service.conftest import Server, read_records, start_server, stop_server
from tests.service.test_http import JSON, example, problem_of
from tests.unit.test_engine import GRID

TOKEN = "test-token-7"
AUTH = {"authorization": f"Bearer {TOKEN}"}
EDITED = Path("mtus-cpmtg") / "2009.yaml"


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reload") / "packs"
    shutil.copytree(policies_dir(), root, ignore=shutil.ignore_patterns("tests"))
    return root


@pytest.fixture(scope="module")
def reloading(policies: Path) -> Iterator[Server]:
    running = start_server(
        policies.parent / "server", "--policies", str(policies), env={"IMR_POLICY_ADMIN_TOKEN": TOKEN}
    )
    yield running
    stop_server(running)


def touch(policies: Path, note: str) -> None:
    """A new comment: new bytes, so a new content hash, and the same decisions."""
    with (policies / EDITED).open("a", encoding="utf-8") as fh:
        fh.write(f"# {note}\n")


def in_use(server: Server) -> str:
    with server.client() as c:
        content_hash: str = c.get("/v1/policies").json()["policy_set"]["content_hash"]
    return content_hash


def reload(server: Server, headers: dict[str, str] | None = None) -> httpx.Response:
    with server.client() as c:
        return c.post("/v1/admin/reload", headers=AUTH if headers is None else headers)


def test_reload_needs_the_token(reloading: Server) -> None:
    problem_of(reload(reloading, headers={}), 401, "unauthorized")
    problem_of(reload(reloading, headers={"authorization": "Bearer wrong"}), 401, "unauthorized")


def test_unchanged_files_change_nothing(reloading: Server, policies: Path) -> None:
    before = in_use(reloading)
    assert before == imr_policy.load(policies).policy_set.content_hash
    r = reload(reloading)
    assert r.status_code == 200
    assert r.json() == {
        "changed": False,
        "policy_set": {"id": "packs", "content_hash": before},
        "previous": {"id": "packs", "content_hash": before},
    }


def test_a_valid_change_is_swapped_in(reloading: Server, policies: Path) -> None:
    before = in_use(reloading)
    touch(policies, "reload 1")
    after = imr_policy.load(policies).policy_set.content_hash
    r = reload(reloading)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True
    assert r.json()["policy_set"]["content_hash"] == after != before
    assert in_use(reloading) == after
    answer = reloading.post_case(example())
    assert answer.headers["imr-policy-set"] == after
    assert answer.json()["policy_set"] == {"id": "packs", "content_hash": after}


def test_an_invalid_change_keeps_the_set_in_use(reloading: Server, policies: Path) -> None:
    before = in_use(reloading)
    good = (policies / EDITED).read_text(encoding="utf-8")
    (policies / EDITED).write_text(good.replace("rules:\n", "rules:\n  - id: [unclosed\n", 1), encoding="utf-8")
    try:
        body = problem_of(reload(reloading), 409, "invalid-policies")
    finally:
        (policies / EDITED).write_text(good, encoding="utf-8")
    assert body["detail"].endswith(f"in the rule files; policy set {before} is still in use")
    assert body["errors"][0]["code"] == "policy.syntax"
    assert body["errors"][0]["file"] == EDITED.as_posix()
    assert body["errors"][0]["line"] > 1
    assert in_use(reloading) == before
    answer = reloading.post_case(example())
    assert answer.status_code == 200
    assert answer.headers["imr-policy-set"] == before


def test_in_flight_requests_are_answered_by_exactly_one_set(reloading: Server, policies: Path) -> None:
    """16 clients keep sending cases while the set is reloaded, each until it has had 5 answers after the
    swap: requests sent before the swap are answered by the old set, those after by the new one, and
    each answer, header and log record names the one set that gave it."""
    engine = imr_policy.load(policies)
    before = in_use(reloading)
    touch(policies, "reload 2")
    after = imr_policy.load(policies).policy_set.content_hash

    async def run() -> tuple[list[tuple[dict[str, Any], httpx.Response]], httpx.Response]:
        swapped = asyncio.Event()

        async def client(i: int) -> list[tuple[dict[str, Any], httpx.Response]]:
            sent: list[tuple[dict[str, Any], httpx.Response]] = []
            since_swap = 0
            async with httpx.AsyncClient(base_url=reloading.url, timeout=60.0) as c:
                while since_swap < 5 and len(sent) < 200:  # bounded: at most 3,200 requests in all
                    case = {**GRID[(i * 97 + len(sent)) % len(GRID)], "case_id": f"reload-{i}-{len(sent)}"}
                    sent.append((case, await c.post("/v1/determinations", content=json.dumps(case), headers=JSON)))
                    since_swap += swapped.is_set()
            return sent

        async def reloader() -> httpx.Response:
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=reloading.url, timeout=60.0) as c:
                r = await c.post("/v1/admin/reload", headers=AUTH)
            swapped.set()
            return r

        done = await asyncio.wait_for(asyncio.gather(reloader(), *(client(i) for i in range(16))), timeout=120)
        return [pair for sent in done[1:] for pair in sent], done[0]

    answers, swap = asyncio.run(run())
    assert swap.status_code == 200 and swap.json()["policy_set"]["content_hash"] == after
    records = {r["decision_id"]: r for r in read_records(reloading.audit_log)}
    answered_by = []
    for case, r in answers:
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["case_id"] == case["case_id"]
        assert got["policy_set"]["content_hash"] in (before, after)
        assert r.headers["imr-policy-set"] == got["policy_set"]["content_hash"]
        assert records[r.headers["imr-decision-id"]]["policy_set"]["content_hash"] == got["policy_set"]["content_hash"]
        assert got["items"] == engine.evaluate(case).to_dict()["items"]  # a comment changed nothing that decides
        answered_by.append(got["policy_set"]["content_hash"])
    assert answered_by[0] == before and answered_by[-1] == after
    assert set(answered_by) == {before, after}
    assert in_use(reloading) == after


def test_sighup_reloads(reloading: Server, policies: Path) -> None:
    before = in_use(reloading)
    touch(policies, "reload 3")
    after = imr_policy.load(policies).policy_set.content_hash
    reloading.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while in_use(reloading) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_use(reloading) == after
    assert reloading.post_case(example()).headers["imr-policy-set"] == after


def test_a_log_written_across_reloads_replays_clean(
    reloading: Server, policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = read_records(reloading.audit_log)
    hashes = {r["policy_set"]["content_hash"] for r in records}
    assert len(hashes) >= 3  # decided by several policy sets, one after the other (see above)
    assert main(["replay", str(reloading.audit_log), "--policies", str(policies)]) == 0
    out = capsys.readouterr().out
    assert f": {len(records)} same, 0 differ, 0 cannot be replayed" in out


def test_a_reload_reopens_the_decision_log(reloading: Server) -> None:
    """Log rotation: move the log away, reload (here with unchanged rule files), and decisions go to a
    new file at the configured path; the moved file keeps every record written before."""
    rotated = reloading.audit_log.with_name("decisions.1.jsonl")
    reloading.audit_log.rename(rotated)
    before = len(read_records(rotated))
    assert reload(reloading).json()["changed"] is False
    answer = reloading.post_case(example())
    assert answer.status_code == 200
    (record,) = read_records(reloading.audit_log)
    assert record["decision_id"] == answer.headers["imr-decision-id"]
    assert len(read_records(rotated)) == before
