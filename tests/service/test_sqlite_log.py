"""The SQLite decision log behind a real server: every answer is a committed row, and the log replays clean."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imr_policy.cli.main import main
from tests.service.conftest import start_server, stop_server
from tests.service.test_http import example


def test_a_server_with_a_sqlite_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "server" / "decisions.sqlite"
    server = start_server(tmp_path / "server", "--audit-log", str(log))
    try:
        ids = []
        for n in range(3):
            case = {**example(), "case_id": f"sqlite-{n}"}
            r = server.post_case(case)
            assert r.status_code == 200
            ids.append(r.headers["imr-decision-id"])
        # committed before each answer: readable by another connection while the server runs
        with sqlite3.connect(log) as db:
            rows = db.execute("SELECT decision_id, case_id FROM decisions ORDER BY rowid").fetchall()
        assert rows == [(i, f"sqlite-{n}") for n, i in enumerate(ids)]
    finally:
        stop_server(server)
    assert main(["replay", str(log)]) == 0
    assert ": 3 same, 0 differ, 0 cannot be replayed" in capsys.readouterr().out
