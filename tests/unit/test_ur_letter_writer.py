"""`imr-policy letter`: the UR determination letter, every required element filled or named missing.

The bundled 2015 example states no UR decision date, no request date and no reviewer, so those elements
must be reported missing (never filled by a guess); what the determination decided must be in it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imr_policy
from imr_policy.compliance import letter
from tests.conftest import EXAMPLES, ROOT, load_example

EXAMPLE = "imr-2015-psych-example.yaml"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


@pytest.fixture(scope="module")
def written(engine: imr_policy.Engine) -> letter.Letter:
    return letter.write(engine, load_example(EXAMPLE))


def test_every_element_of_the_pack_is_filled_or_missing_with_a_reason(
    written: letter.Letter, engine: imr_policy.Engine
) -> None:
    [procedure] = [p for p in engine.procedures if p.id == written.items[0].procedure]
    listed = [eid for eid, _ in procedure.letter]
    for item in written.items:
        assert [s.id for s in item.sections] == listed
        for s in item.sections:
            assert (s.text is None) is (s.missing is not None), s
            assert s.text is None or s.text.strip(), s


def test_the_example_lacks_what_the_case_does_not_state(written: letter.Letter) -> None:
    for item in written.items:
        assert set(item.missing) == {
            "decision_date",
            "rfa_date",
            "reviewer_name",
            "reviewer_specialty",
            "reviewer_phone",
            "imr_rights",
            "imr_form",
            "imr_deadline",
        }
    assert not written.complete


def test_the_letter_says_what_was_decided_and_on_which_guideline(written: letter.Letter) -> None:
    med, cbt = written.items
    text = {s.id: s.text for s in med.sections}
    assert text["decision"] == "Modified: 1 of 6 certified"
    assert "Chapter 15 Stress Related Conditions" in (text["criteria"] or "")
    assert text["treatment_requested"] == "6 medication management visits (monthly), date of service 2015-07-10"
    cbt_text = {s.id: s.text for s in cbt.sections}
    assert cbt_text["decision"] == "Not certified"
    assert "16 already completed" in (cbt_text["clinical_reasons"] or "")
    assert "MTUS:" in (cbt_text["clinical_reasons"] or "")


def test_stated_dates_fill_their_elements(engine: imr_policy.Engine) -> None:
    case = load_example(EXAMPLE)
    case["requests"][1]["request_date"] = "2015-06-20"
    case["utilization_review"][1]["decision_date"] = "2015-06-24"
    item = letter.write(engine, case).items[1]
    text = {s.id: s.text for s in item.sections}
    assert (text["rfa_date"], text["decision_date"]) == ("2015-06-20", "2015-06-24")
    assert "rfa_date" not in item.missing and "decision_date" not in item.missing


def test_a_certified_item_needs_no_elements(engine: imr_policy.Engine) -> None:
    written = letter.write(engine, load_example("certify-psychotherapy-initial-trial.yaml"))
    [item] = written.items
    assert (item.determination, item.sections, item.reason) == ("certify", (), "certified in full")
    assert written.complete


def test_cli_check_lists_the_missing_elements_and_exits_1() -> None:
    done = cli("letter", str(EXAMPLES / EXAMPLE), "--check", "--format", "json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["complete"] is False
    assert {(m["request"], m["element"]) for m in data["missing"]} >= {("cbt", "reviewer_name"), ("cbt", "rfa_date")}
    ok = cli("letter", str(EXAMPLES / "certify-psychotherapy-initial-trial.yaml"), "--check")
    assert ok.returncode == 0 and "letter complete" in ok.stdout


def test_cli_text_marks_every_missing_element() -> None:
    done = cli("letter", str(EXAMPLES / EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("MISSING:") == 16
    assert "Required elements missing: med-management:" in done.stdout


def test_an_invalid_case_is_refused_without_a_letter(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("case_id: x\njurisdiction: CA\n", encoding="utf-8")
    done = cli("letter", str(bad))
    assert done.returncode == 1
    assert "case.missing-field" in done.stderr and done.stdout == ""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed: the letter's HTML is not rendered")
    return found


def test_the_html_letter_renders_in_headless_chromium(tmp_path: Path, chromium: str) -> None:
    out = tmp_path / "letter.html"
    done = cli("letter", str(EXAMPLES / EXAMPLE), "--format", "html", "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert "@media print" in html and "<script" not in html
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    assert page.count('class="missing"') == 16
    assert 'data-missing="reviewer_name"' in page
    assert 'id="letter-status" data-status="incomplete"' in page
    assert "Modified: 1 of 6 certified" in page
