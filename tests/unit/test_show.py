"""`imr-policy show SERVICE`: the packs' rules for one service as decision tables, over the shipped packs."""

from __future__ import annotations

import json
import subprocess
import sys

import imr_policy
from imr_policy.explain import table
from tests.conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


def odg() -> imr_policy.Engine:
    return imr_policy.load()


def test_rows_are_the_rules_in_the_order_the_engine_tries_them() -> None:
    [edition] = [e for e in odg().editions if e.key == "odg-treatment@2007-05"]
    t = table.table(edition, "chiropractic")
    assert t is not None
    assert [r[0] for r in t.rows] == [r.id for r in edition.rules_for("chiropractic")]
    assert t.columns[:3] == ("body_region", "modality", "completed")
    trial = dict(zip(("rule", *t.columns), t.rows[2], strict=True))
    assert trial["completed"] == "< 6 (chiropractic.trial-visits)"
    assert trial["outcome"] == "certify up to 6 in all (chiropractic.trial-visits)"
    assert trial["severity"] == "-"
    assert t.severities == ("mild", "severe")
    assert table.table(edition, "psychotherapy") is None


def test_text_markdown_and_json() -> None:
    text = cli("show", "chiropractic", "--edition", "odg-treatment@2007-05")
    assert text.returncode == 0, text.stderr
    assert "hit policy first" in text.stdout and "an unstated severity is read as mild or severe" in text.stdout
    assert "chiropractic.severe-without-improvement" in text.stdout
    md = cli("show", "chiropractic", "--edition", "odg-treatment@2007-05", "--format", "markdown")
    assert "| rule | body_region | modality |" in md.stdout
    data = json.loads(cli("show", "physical_therapy", "--edition", "odg-treatment@2007-05", "--format", "json").stdout)
    [t] = data["tables"]
    assert {c["id"] for c in t["conditions"]} >= {"lumbar-sprain", "meniscus-tear"}
    assert t["columns"][0] == "rule"


def test_filters_and_refusals() -> None:
    dated = json.loads(
        cli("show", "psychotherapy", "--jurisdiction", "TX", "--date", "2016-01-05", "--format", "json").stdout
    )
    assert [t["edition"] for t in dated["tables"]] == ["odg-mental-illness-stress@2015-03"]
    unknown = cli("show", "chiropractc")
    assert unknown.returncode == 2 and "did you mean `chiropractic`" in unknown.stderr
    bad_date = cli("show", "chiropractic", "--date", "2016-13-01")
    assert bad_date.returncode == 2
    none = cli("show", "office_visit", "--edition", "odg-treatment@1999")
    assert none.returncode == 1 and "no edition selected" in none.stderr


def test_a_unique_hit_policy_is_enforced_at_run_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Under `unique`, a case two rules hold for is an engine error, never a decision (lint proves the
    rules exclusive; the engine refuses if they are not)."""
    import pytest

    text = (ROOT / "tests" / "invalid" / "lint" / "lint.unique-overlap.yaml").read_text(encoding="utf-8")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "2015.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "jurisdictions").mkdir()
    for name in ("CA.yaml", "TX.yaml"):
        (tmp_path / "jurisdictions" / name).write_text(
            (ROOT / "policies" / "jurisdictions" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    engine = imr_policy.load(tmp_path)
    [edition] = engine.editions
    assert edition.hit_policy("psychotherapy") == "unique"
    case = {
        "case_id": "u",
        "jurisdiction": "TX",
        "date_of_injury": "2015-04-01",
        "diagnoses": [],
        "requests": [{"id": "r", "service": "psychotherapy", "quantity": 2, "date_of_service": "2015-06-01"}],
        "history": [{"service": "psychotherapy", "completed": 2, "functional_improvement": "documented"}],
    }
    with pytest.raises(imr_policy.EngineError, match="hit policy for psychotherapy is `unique`"):
        engine.evaluate(case)
    # one rule only (completed 8: not the trial): decided
    case["history"][0]["completed"] = 8
    assert engine.evaluate(case).items[0].determination == "certify"
    t = table.table(edition, "psychotherapy")
    assert t is not None and t.hit_policy.startswith("unique")
