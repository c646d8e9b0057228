"""The decision log: records, redaction that never changes a decision, both log formats, replay."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imr_policy
from imr_policy.compliance import audit
from tests.conftest import load_example
from tests.property.strategies import cases


def redactor_for(engine: imr_policy.Engine) -> audit.Redactor:
    return audit.Redactor(audit.facts_read(engine.editions), conditions=audit.condition_tables(engine.editions))


def identifying(case: dict[str, Any], n: int) -> dict[str, Any]:
    """`case` with every identifying field of the contract filled in with recognisable values."""
    case = json.loads(json.dumps(case, default=str))
    case["claimant"] = {"age": 20 + n % 60, "sex": "male"}
    case["diagnoses"] = [
        {**d, "description": f"secret description {n}-{i}", "code": "F32.1"} for i, d in enumerate(case["diagnoses"])
    ] or [{"description": f"secret description {n}", "code": "F43.10"}]
    for h in case.get("history", []):
        h["progress_notes"] = f"secret note {n}"
    for r in case["requests"]:
        if r["service"] in ("physical_therapy", "occupational_therapy"):
            r["postsurgical"] = {"procedure": f"secret procedure {n}", "surgery_date": r["date_of_service"]}
    return case


@settings(max_examples=60)
@given(case=cases(), n=st.integers(0, 1000))
def test_redaction_never_changes_a_decision(engine: imr_policy.Engine, case: dict[str, Any], n: int) -> None:
    case = identifying(case, n)
    reads = audit.facts_read(engine.editions)
    redaction = audit.redact(case, reads=reads, conditions=audit.condition_tables(engine.editions))
    assert engine.evaluate(redaction.case).to_dict() == engine.evaluate(case).to_dict()
    text = json.dumps(redaction.case)
    # free text no rule can read is always gone; a field a rule reads is kept, and the record says so
    assert "secret description" not in text and "secret note" not in text
    assert ("secret procedure" in text) == any(p.endswith(".procedure") for p in redaction.kept)
    for path in redaction.kept:
        assert path.rsplit(".", 1)[-1] in ("age", "sex", "code", "procedure", "surgery_date")


def test_redaction_keeps_exactly_what_rules_read() -> None:
    case = identifying(load_example("imr-2015-psych-example.yaml"), 1)
    everything = audit.redact(case, reads=frozenset())
    assert everything.kept == ()
    assert "claimant" not in everything.case
    assert everything.case["diagnoses"] == [
        {"description": "redacted", "severity": "moderate"},
        {"description": "redacted"},
    ]
    assert "secret" not in json.dumps(everything.case)
    age_read = audit.redact(case, reads=frozenset({"age", "diagnosis_codes"}))
    assert age_read.case["claimant"] == {"age": case["claimant"]["age"]}
    assert set(age_read.kept) == {"$.claimant.age", "$.diagnoses[0].code", "$.diagnoses[1].code"}
    assert "$.claimant.sex" in age_read.redacted


def test_a_record_carries_what_the_issue_asks(engine: imr_policy.Engine) -> None:
    case = load_example("imr-2015-psych-example.yaml")
    det = engine.evaluate(case)
    record = audit.decision_record(case, det, redactor=redactor_for(engine))
    assert set(record) == {
        "format",
        "decision_id",
        "timestamp",
        "engine_version",
        "policy_set",
        "case_id",
        "input_hash",
        "items",
        "decision_hash",
        "min_provenance",
        "case",
        "redaction",
    }
    assert record["min_provenance"] is None  # no floor
    assert record["policy_set"] == {"id": det.policy_set.id, "content_hash": det.policy_set.content_hash}
    assert record["input_hash"] == audit.sha256_of(json.loads(json.dumps(case, default=str)))
    assert record["timestamp"].endswith("Z")
    assert [(i["request"], i["determination"], i["basis"]) for i in record["items"]] == [
        (i.request, i.determination, [b.to_dict() for b in i.basis]) for i in det.items
    ]
    assert record["redaction"]["applied"] is True
    assert "$.claimant.age" in record["redaction"]["fields"]


def _log(tmp_path: Path, engine: imr_policy.Engine, name: str, *, redacted: bool = True) -> Path:
    path = tmp_path / name
    log = audit.open_log(path)
    redactor = redactor_for(engine) if redacted else None
    for n, file in enumerate(["imr-2015-psych-example.yaml", "certify-psychotherapy-initial-trial.yaml"]):
        case = identifying(load_example(file), n)
        record = audit.decision_record(case, engine.evaluate(case), redactor=redactor)
        log.append(audit.LoggedDecision.of(record))
    log.close()
    return path


def test_both_formats_replay_clean(tmp_path: Path, engine: imr_policy.Engine) -> None:
    for name in ("log.jsonl", "log.sqlite"):
        results = list(audit.replay(audit.read_log(_log(tmp_path, engine, name)), engine))
        assert [r.status for r in results] == ["same", "same"], name
        assert [r.where for r in results] == (["line 1", "line 2"] if name.endswith("jsonl") else ["row 1", "row 2"])
    assert (tmp_path / "log.sqlite").read_bytes().startswith(b"SQLite format 3")


def test_an_unredacted_record_must_match_its_input_hash(tmp_path: Path, engine: imr_policy.Engine) -> None:
    path = _log(tmp_path, engine, "whole.jsonl", redacted=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    assert "secret" in json.dumps(record["case"])  # --audit-unredacted logs the case whole
    record["case"]["history"][0]["completed"] = 0
    path.write_text(json.dumps(record) + "\n" + lines[1] + "\n", encoding="utf-8")
    first, second = audit.replay(audit.read_log(path), engine)
    assert (first.status, first.differences) == ("unreplayable", ("the logged case does not match its input hash",))
    assert second.status == "same"


def test_a_record_decided_differently_is_reported(tmp_path: Path, engine: imr_policy.Engine) -> None:
    path = _log(tmp_path, engine, "log.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["items"][1]["determination"] = "certify"
    record["items"][1]["basis"] = []
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (result,) = audit.replay(audit.read_log(path), engine)
    assert result.status == "differs"
    assert result.differences[0] == "item `cbt`: determination `certify` -> `non_certify`"
    assert result.differences[1].startswith("item `cbt`: basis `[]` -> `[mtus-cpmtg@2009:")


def test_replay_reports_wording_apart_from_decisions(
    tmp_path: Path, engine: imr_policy.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14.6: replaying with packs whose `reason` texts were reworded said "0 same, 2 differ" and
    exited 1 though no decision changed. A wording change is now reported apart and exits 0; a decision
    that differs still exits 1."""
    import shutil

    from imr_policy.cli.main import main
    from tests.conftest import ROOT

    path = _log(tmp_path, engine, "log.jsonl")
    reworded = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", reworded, ignore=shutil.ignore_patterns("tests"))
    pack = reworded / "mtus-cpmtg/2009.yaml"
    pack.write_text(pack.read_text(encoding="utf-8").replace("      reason: ", "      reason: reworded, "))
    results = list(audit.replay(audit.read_log(path), imr_policy.load(reworded)))
    assert [r.status for r in results] == ["worded", "worded"]
    assert main(["replay", str(path), "--policies", str(reworded)]) == 0
    out = capsys.readouterr().out
    assert "line 1: decision " in out and "is worded differently (the same decision)" in out
    assert " differs" not in out
    assert ": 0 same, 0 differ, 0 cannot be replayed; 2 decided the same, worded differently; 2 were" in out
    assert main(["replay", str(path), "--policies", str(reworded), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["same"], summary["differs"], summary["wording_only"]) == (0, 0, 2)
    # one decision tampered with: it differs (exit 1), the other is still only worded differently
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["items"][1]["determination"] = "certify"
    path.write_text(json.dumps(record) + "\n" + lines[1] + "\n", encoding="utf-8")
    assert main(["replay", str(path), "--policies", str(reworded)]) == 1
    out = capsys.readouterr().out
    assert out.index(" differs\n") < out.index("is worded differently")
    assert ": 0 same, 1 differ, 0 cannot be replayed; 1 decided the same, worded differently" in out


def test_unreadable_records(tmp_path: Path, engine: imr_policy.Engine) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('[]\n{"format": 2}\n{"format": 1}\n\n', encoding="utf-8")
    got = [(r.where, r.status, r.differences) for r in audit.replay(audit.read_log(path), engine)]
    assert got == [
        ("line 1", "unreplayable", ("not a decision record: each line must be a JSON object",)),
        ("line 2", "unreplayable", ("not a decision record of format 1: `format` is `2`",)),
        ("line 3", "unreplayable", ("not a decision record: `decision_id` is missing or malformed",)),
    ]


def test_diagnosis_words_never_reach_the_log(engine: imr_policy.Engine) -> None:
    """A description that names a row of ODG's table by words is logged as the table's phrases only, and
    the logged case decides the same (same row, same phrase in the basis)."""
    case = {
        "case_id": "tx-lumbar-sprain",
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-15",
        "diagnoses": [{"description": "accepted lumbar sprain/strain after J. Doe fell at Acme"}],
        "requests": [
            {
                "id": "pt",
                "service": "physical_therapy",
                "body_region": "lumbar",
                "quantity": 9,
                "date_of_service": "2010-09-01",
            }
        ],
        "history": [{"service": "physical_therapy", "completed": 13, "functional_improvement": "unknown"}],
    }
    det = engine.evaluate(case)
    record = audit.decision_record(case, det, redactor=redactor_for(engine))
    text = json.dumps(record)
    assert "Doe" not in text and "Acme" not in text and "accepted" not in text
    assert record["case"]["diagnoses"][0]["description"] == "lumbar sprain; lumbar strain"
    assert record["items"][0]["basis"][0]["condition"] == {
        "id": "lumbar-sprain",
        "title": "Lumbar sprains and strains",
        "matched_by": "words",
        "diagnosis": "lumbar sprain",
    }
    assert engine.evaluate(record["case"]).to_dict()["items"][0]["basis"] == det.to_dict()["items"][0]["basis"]


@pytest.mark.parametrize(
    ("description", "region", "logged", "quoted"),
    [
        # a row's own words, its words within its body regions, and phrases several rows share (three rows:
        # the rationale lists the rows and does not quote the description)
        ("accepted lumbar sprain/strain after J. Doe fell at Acme", "lumbar", "lumbar sprain; lumbar strain", True),
        ("J. Doe: mild disc degeneration at L4-5 (Acme MRI)", "lumbar", "disc degeneration", True),
        ("status post right shoulder surgery for J. Doe (rotator cuff protocol)", "shoulder", "rotator cuff", False),
    ],
)
def test_every_kind_of_row_phrase_survives_redaction_and_replays_the_same(
    engine: imr_policy.Engine, tmp_path: Path, description: str, region: str, logged: str, quoted: bool
) -> None:
    """The log keeps the table's phrases a description names (never the record's other words), whichever kind
    of phrase matched, so the redactor never has to keep a description; and the record replays as `same`:
    the hash is of the determination as the logged case words it (the rationale quotes the description)."""
    case = {
        "case_id": "tx-words",
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-15",
        "diagnoses": [{"description": description}],
        "requests": [
            {
                "id": "pt",
                "service": "physical_therapy",
                "body_region": region,
                "quantity": 9,
                "date_of_service": "2010-09-01",
            }
        ],
        "history": [{"service": "physical_therapy", "completed": 13, "functional_improvement": "unknown"}],
    }
    det = engine.evaluate(case)
    redactor = redactor_for(engine)
    record = audit.decision_record(case, det, redactor=redactor)
    assert "Doe" not in json.dumps(record) and "Acme" not in json.dumps(record)
    assert record["case"]["diagnoses"][0]["description"] == logged
    assert record["redaction"]["kept"] == []
    assert (f"'{description}'" in json.dumps(det.to_dict())) is quoted  # the rationale quotes one row's match
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert [r.status for r in audit.replay(audit.read_log(log), engine)] == ["same"]


def test_without_the_tables_the_matched_fields_are_kept(engine: imr_policy.Engine) -> None:
    """Fail safe for replay: a redactor that cannot check the rows keeps what they are matched by."""
    reads = audit.facts_read(engine.editions)
    assert "condition" in reads
    case = load_example("imr-2015-psych-example.yaml")
    redaction = audit.Redactor(reads).redact(case)
    assert any(p.endswith(".description") for p in redaction.kept)


# ---------------------------------------------------------------------------------------- the log under faults


def _entry(n: int) -> audit.LoggedDecision:
    record = {"decision_id": f"d{n}", "timestamp": "t", "case_id": f"c{n}", "policy_set": {"content_hash": "h"}}
    return audit.LoggedDecision.of({**record, "pad": "x" * 300})


def test_a_write_cut_short_by_a_full_disk_leaves_no_partial_record(tmp_path: Path) -> None:
    """The test seam of JsonLinesLog (`write=`): the disk takes half the line, then is full."""
    path = tmp_path / "log.jsonl"
    good = audit.JsonLinesLog(path)
    good.append(_entry(1))
    good.sync()
    good.close()
    calls: list[int] = []

    def full_disk(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data[: len(data) // 2])

    log = audit.JsonLinesLog(path, write=full_disk)
    with pytest.raises(OSError, match="No space left"):
        log.append(_entry(2))
    assert len(calls) == 2  # half the line was written before the disk was full
    log.close()
    assert path.read_bytes() == _entry(1).line + b"\n"


def test_a_failed_fsync_removes_what_it_did_not_make_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.jsonl"
    log = audit.JsonLinesLog(path)
    log.append(_entry(1))
    log.sync()
    log.append(_entry(2))
    log.append(_entry(3))

    def broken(_: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(audit.os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output"):
        log.sync()
    monkeypatch.undo()
    log.append(_entry(4))
    log.sync()
    log.close()
    assert [json.loads(line)["decision_id"] for line in path.read_text().splitlines()] == ["d1", "d4"]


def test_reopen_never_meets_a_closed_file(tmp_path: Path) -> None:
    """Writers on other threads while the log is reopened again and again: every record lands whole, once."""
    path = tmp_path / "log.jsonl"
    log = audit.JsonLinesLog(path)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for n in range(300):
                log.append(_entry(k * 1000 + n))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    rotated = []
    for n in range(20):
        moved = tmp_path / f"log.{n}.jsonl"
        path.rename(moved)
        rotated.append(moved)
        log.reopen()
    for t in threads:
        t.join()
    log.close()
    assert errors == []
    lines = [line for f in [*rotated, path] for line in f.read_text().splitlines()]
    ids = [json.loads(line)["decision_id"] for line in lines]
    assert sorted(ids) == sorted(f"d{k * 1000 + n}" for k in range(4) for n in range(300))


def test_logs_are_created_owner_only(tmp_path: Path) -> None:
    for name in ("log.jsonl", "log.sqlite"):
        audit.open_log(tmp_path / name).close()
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    state = tmp_path / "state"
    path = audit.default_log_path({"XDG_STATE_HOME": str(state)})
    assert path == state / "imr-policy" / "decisions.jsonl"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # a relative XDG_STATE_HOME is ignored, as the XDG specification says
    home = tmp_path / "home"
    assert audit.default_log_path({"XDG_STATE_HOME": "rel", "HOME": str(home)}) == (
        home / ".local" / "state" / "imr-policy" / "decisions.jsonl"
    )
