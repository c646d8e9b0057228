"""`imr-policy show SERVICE`: the packs' rules for one service as decision tables, over the shipped packs."""

from __future__ import annotations

import json
import subprocess
import sys

import imr_policy
from imr_policy import table
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
