"""`imr-policy batch`: every entry of a corpus gets a record, in order, bad ones reported and counted."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import imr_policy
from imr_policy.cli.main import main
from imr_policy.compliance import letter as letter_mod
from imr_policy.explain import ur_letter
from tests.conftest import EXAMPLES, ROOT
from tests.unit.corpus_cases import generated_cases


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "batch", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


# (line content, expected diagnostic code); None: a good case
BAD_LINES: list[tuple[bytes, str]] = [
    (b'{"case_id": "cut", "date_of_injury": "2012-05-17",', "case.syntax"),
    (b'{"case_id": "a", "case_id": "b"}', "case.duplicate-key"),
    (
        b'{"case_id": "m", "date_of_injury": "2012-05-17", "diagnoses": [], "requests": [{"id": "r", '
        b'"service": "massage", "quantity": 1, "date_of_service": "2015-07-10"}]}',
        "case.enum",
    ),
    (b'{"case_id": "\xff\xfe"}', "case.unreadable"),
    (b"[1, 2, 3]", "case.type"),
]


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict[str, Any] | str]]:
    """30 good cases with the bad lines and two blank lines in between; returns what each entry is."""
    good = list(generated_cases(30, seed=11))
    entries: list[dict[str, Any] | str] = []
    lines: list[bytes] = []
    bad = iter(BAD_LINES)
    for i, case in enumerate(good):
        lines.append(json.dumps(case).encode())
        entries.append(case)
        if i % 6 == 2:
            text, code = next(bad)
            lines.append(text)
            entries.append(code)
        if i in (4, 20):
            lines.append(b"   ")
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, entries


def _physical_lines(path: Path) -> Iterator[int]:
    for n, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if raw.strip():
            yield n


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_batch_completes_reports_every_bad_line_and_counts_every_case(
    corpus: tuple[Path, list[dict[str, Any] | str]], tmp_path: Path
) -> None:
    path, entries = corpus
    out = tmp_path / "decisions.jsonl"
    done = cli(str(path), "--out", str(out), "--workers", "2", "--chunk-size", "4")
    assert done.returncode == 1, done.stderr  # some cases were not decided
    records = _records(out)
    assert len(records) == len(entries) == 35
    assert [r["index"] for r in records] == list(range(len(entries)))
    lines = list(_physical_lines(path))
    assert [r["source"] for r in records] == [f"{path}:{n}" for n in lines]

    engine = imr_policy.load()
    for record, expected in zip(records, entries, strict=True):
        if isinstance(expected, str):
            assert record["status"] == "invalid"
            assert record["diagnostics"][0]["code"] == expected
            assert record["diagnostics"][0]["line"] == int(record["source"].rsplit(":", 1)[1])
            assert f"{record['source']}:" in done.stderr  # reported with its line
        else:
            assert record["status"] == "decided"
            assert record["case_id"] == expected["case_id"]
            assert record["determination"] == engine.evaluate(expected).to_dict()
    assert "35 cases: 30 decided, 5 invalid, 0 engine errors" in done.stderr


def test_every_case_decided_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in generated_cases(12)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = cli(str(path), "--out", str(out), "--workers", "1", "--engine", "reference")
    assert done.returncode == 0, done.stderr
    assert len(_records(out)) == 12
    assert "12 cases: 12 decided, 0 invalid, 0 engine errors" in done.stderr


def test_a_directory_of_case_files(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    for example in sorted(EXAMPLES.glob("*.yaml"))[:3]:
        (cases / example.name).write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    (cases / "broken.yaml").write_text("case_id: x\nrequests: [\n", encoding="utf-8")
    (cases / "notes.txt").write_text("not a case", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = cli(str(cases), "--out", str(out), "--workers", "1")
    records = _records(out)
    assert [Path(r["source"]).name for r in records] == sorted(
        [*(p.name for p in sorted(EXAMPLES.glob("*.yaml"))[:3]), "broken.yaml"]
    )
    broken = next(r for r in records if r["source"].endswith("broken.yaml"))
    assert broken["status"] == "invalid"
    assert broken["diagnostics"][0]["code"] == "case.syntax"
    assert broken["diagnostics"][0]["line"] is not None and broken["diagnostics"][0]["column"] is not None
    assert f"{cases / 'broken.yaml'}:" in done.stderr
    for r in records:
        if r["status"] == "decided":
            data = yaml.safe_load(Path(r["source"]).read_text(encoding="utf-8"))
            assert r["determination"] == imr_policy.load().evaluate(data).to_dict()


def test_progress_bar_shows_count_rate_and_eta(tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in generated_cases(20)), encoding="utf-8")
    done = cli(str(path), "--out", str(tmp_path / "out.jsonl"), "--workers", "1", "--progress")
    assert done.returncode == 0, done.stderr
    assert "20/20" in done.stderr and "cases/s" in done.stderr
    quiet = cli(str(path), "--out", str(tmp_path / "out2.jsonl"), "--workers", "1", "--no-progress")
    assert "20/20" not in quiet.stderr


def test_usage_errors(tmp_path: Path) -> None:
    assert cli(str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")).returncode == 2
    assert cli("examples/cases", "--out", str(tmp_path / "o"), "--workers", "0").returncode == 2
    bad_policies = tmp_path / "p.yaml"
    bad_policies.write_text("format: 1\n", encoding="utf-8")
    invalid = cli("examples/cases", "--out", str(tmp_path / "o"), "--policies", str(bad_policies))
    assert invalid.returncode == 1 and "no case was evaluated" in invalid.stderr


def test_batch_and_impact_on_a_dask_cluster(
    corpus: tuple[Path, list[dict[str, Any] | str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distributed = pytest.importorskip("distributed", reason="the `dask` extra is not installed")
    path, entries = corpus
    local = tmp_path / "local.jsonl"
    assert main(["batch", str(path), "--out", str(local), "--workers", "1"]) == 1
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None, protocol="tcp", host="127.0.0.1"
    ) as cluster:
        remote = tmp_path / "dask.jsonl"
        assert (
            main(["batch", str(path), "--out", str(remote), "--dask", cluster.scheduler_address, "--chunk-size", "5"])
            == 1
        )
        assert remote.read_bytes() == local.read_bytes()
        assert len(_records(remote)) == len(entries)
        capsys.readouterr()
        assert main(["diff", "policies", "policies", "--impact", str(path), "--dask", cluster.scheduler_address]) == 0
        report = capsys.readouterr().out
    assert f"{len(entries)} cases: 30 compared, 5 invalid, 0 engine errors" in report


def test_compliance_by_month_counts_timeliness_and_letters(tmp_path: Path) -> None:
    """Issue 16.4: per month of the UR decision, how many UR decisions were timely and how many of the letters
    written from the determinations have every required element; undated decisions fall under `unknown`."""
    corpus = tmp_path / "cases"
    corpus.mkdir()
    for name in (
        "ur-timeliness-friday-fax.yaml",
        "imr-2015-psych-example.yaml",
        "certify-psychotherapy-initial-trial.yaml",
    ):
        (corpus / name).write_text((EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    report = tmp_path / "compliance.json"
    code = main(
        ["batch", str(corpus), "--out", str(tmp_path / "out.jsonl"), "--workers", "1", "--compliance", str(report)]
    )
    assert code == 0
    months = json.loads(report.read_text(encoding="utf-8"))["by_month"]
    fax = yaml.safe_load((EXAMPLES / "ur-timeliness-friday-fax.yaml").read_text(encoding="utf-8"))
    [dated] = [ur for ur in fax["utilization_review"] if "decision_date" in ur]
    month = str(dated["decision_date"])[:7]
    assert months[month] == {"decisions": 1, "timeliness": {"timely": 1}, "letters": {"incomplete": 1}}
    # undated UR decisions (the fax case's other one, the 2015 example's two): receipt not stated, letters
    # lacking the reviewer
    assert months["unknown"] == {"decisions": 3, "timeliness": {"not_stated": 3}, "letters": {"incomplete": 3}}
    # the certified trial has no UR decision under dispute: it is not counted
    assert sum(m["decisions"] for m in months.values()) == 4


def test_compliance_by_organization_groups_by_the_ur_organization(tmp_path: Path) -> None:
    """Issue 16.4: the same counts per UR organization (`utilization_review[].reviewer.organization`); a case
    that names none falls under `not_stated`. A reviewer stated in full fills the letter's three reviewer
    elements."""
    corpus = tmp_path / "cases"
    corpus.mkdir()
    example = yaml.safe_load((EXAMPLES / "imr-2015-psych-example.yaml").read_text(encoding="utf-8"))
    (corpus / "unnamed.yaml").write_text(yaml.safe_dump(example), encoding="utf-8")
    named = copy.deepcopy(example)
    named["case_id"] = "named"
    for ur in named["utilization_review"]:
        ur["reviewer"] = {
            "name": "A. Reviewer",
            "specialty": "Psychiatry",
            "phone": "555-0100",
            "organization": "UR One",
        }
    (corpus / "named.yaml").write_text(yaml.safe_dump(named), encoding="utf-8")
    report = tmp_path / "compliance.json"
    code = main(
        ["batch", str(corpus), "--out", str(tmp_path / "out.jsonl"), "--workers", "1", "--compliance", str(report)]
    )
    assert code == 0
    by_org = json.loads(report.read_text(encoding="utf-8"))["by_organization"]
    assert set(by_org) == {"UR One", "not_stated"}
    assert by_org["UR One"]["decisions"] == by_org["not_stated"]["decisions"] == 2
    assert sum(by_org["UR One"]["letters"].values()) == 2
    engine = imr_policy.load()
    case = imr_policy.validate_case(named)
    checks = ur_letter.check(case, engine.evaluate(case), engine.procedures)
    for c in checks:
        present = {e.id: e.source for e in c.elements if e.present}
        assert (
            present["reviewer_name"]
            == f"utilization_review[{[u.request for u in case.utilization_review].index(c.request)}].reviewer.name"
        )
        assert {"reviewer_specialty", "reviewer_phone"} <= set(present)
    letter = imr_policy.write_letter(engine, case)
    text = letter_mod.render_text(letter)
    assert "A. Reviewer" in text and "Psychiatry" in text and "555-0100" in text
