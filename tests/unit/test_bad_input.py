"""Bad input is rejected with the field named and what is expected, and never decided."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import imr_policy
from tests.conftest import load_example

BASE = load_example("imr-2015-psych-example.yaml")


def mutate(change: Any) -> dict[str, Any]:
    case = copy.deepcopy(BASE)
    change(case)
    return case


BAD = {
    "unknown top-level field": (lambda c: c.update(claimant_name="J. Doe"), "case.unknown-field", "$.claimant_name"),
    "typo in a request field": (
        lambda c: c["requests"][1].update(quantitiy=6),
        "case.unknown-field",
        "$.requests[1].quantitiy",
    ),
    "quantity as a string": (lambda c: c["requests"][1].update(quantity="6"), "case.type", "$.requests[1].quantity"),
    "quantity as a float": (lambda c: c["requests"][1].update(quantity=6.0), "case.type", "$.requests[1].quantity"),
    "zero quantity": (lambda c: c["requests"][1].update(quantity=0), "case.range", "$.requests[1].quantity"),
    "negative quantity": (lambda c: c["requests"][0].update(quantity=-2), "case.range", "$.requests[0].quantity"),
    "not a date": (
        lambda c: c["requests"][1].update(date_of_service="2015-02-30"),
        "case.date",
        "$.requests[1].date_of_service",
    ),
    "date without zero padding": (lambda c: c.update(date_of_injury="2012-5-17"), "case.date", "$.date_of_injury"),
    "unknown service": (
        lambda c: c["requests"][1].update(service="psychotheraphy"),
        "case.enum",
        "$.requests[1].service",
    ),
    "UR naming no request": (
        lambda c: c["utilization_review"][1].update(request="cbt-2"),
        "case.unknown-request",
        "$.utilization_review[1].request",
    ),
    "duplicate request ids": (
        lambda c: c["requests"][1].update(id="med-management"),
        "case.duplicate-request-id",
        "$.requests[1].id",
    ),
    "modify without approved_quantity": (
        lambda c: c["utilization_review"][0].pop("approved_quantity"),
        "case.missing-field",
        "$.utilization_review[0]",
    ),
    "severity as a number": (lambda c: c["diagnoses"][0].update(severity=3), "case.type", "$.diagnoses[0].severity"),
    "no requests": (lambda c: c.update(requests=[]), "case.size", "$.requests"),
    "completed as a boolean": (lambda c: c["history"][0].update(completed=True), "case.type", "$.history[0].completed"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_api_rejects_with_field_and_code(name: str, engine: imr_policy.Engine) -> None:
    change, code, path = BAD[name]
    with pytest.raises(imr_policy.CaseError) as info:
        engine.evaluate(mutate(change))
    found = [(d.code, d.path) for d in info.value.diagnostics]
    assert (code, path) in found, found


def test_unknown_service_lists_the_known_ones(engine: imr_policy.Engine) -> None:
    with pytest.raises(imr_policy.CaseError) as info:
        engine.evaluate(mutate(lambda c: c["requests"][1].update(service="psychotheraphy")))
    [diag] = info.value.diagnostics
    assert "psychotherapy, medication_management, office_visit" in diag.message
    assert diag.hint == "did you mean `psychotherapy`?"


def test_every_problem_is_reported_at_once(engine: imr_policy.Engine) -> None:
    def many(c: dict[str, Any]) -> None:
        c["requests"][0]["quantity"] = "6"
        c["requests"][1]["service"] = "massage"
        c["history"][0]["functional_improvement"] = "yes"
        c["extra"] = 1

    with pytest.raises(imr_policy.CaseError) as info:
        engine.evaluate(mutate(many))
    assert len(info.value.diagnostics) == 4


def _cli(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "evaluate", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "name", ["quantity as a string", "unknown service", "UR naming no request", "duplicate request ids", "not a date"]
)
def test_cli_exit_1_with_location_and_no_determination(tmp_path: Path, name: str) -> None:
    change, code, path = BAD[name]
    done = _cli(tmp_path, yaml.safe_dump(mutate(change), sort_keys=False))
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"[{code}]" in done.stderr
    assert f"(at {path})" in done.stderr
    assert "case.yaml:" in done.stderr and "no determination was made" in done.stderr


def test_cli_rejects_text_that_is_not_yaml(tmp_path: Path) -> None:
    done = _cli(tmp_path, "case_id: x\nrequests: [ {id: a,\n")
    assert done.returncode == 1 and done.stdout == ""
    assert "[case.syntax]" in done.stderr
    assert "case.yaml:3:" in done.stderr


def test_cli_reports_duplicate_keys_with_line(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "examples/cases/imr-2015-psych-example.yaml").read_text()
    done = _cli(tmp_path, text + "case_id: again\n")
    assert done.returncode == 1 and done.stdout == ""
    assert "[case.duplicate-key]" in done.stderr
    assert f"case.yaml:{len(text.splitlines()) + 1}:1" in done.stderr


def test_cli_usage_error_exits_2() -> None:
    done = subprocess.run([sys.executable, "-m", "imr_policy.cli.main", "evaluate"], capture_output=True, check=False)
    assert done.returncode == 2


def test_code_frame_puts_the_caret_under_the_token() -> None:
    from imr_policy.model.diagnostics import code_frame

    assert code_frame("      - {fact: completd, op: lt}", 7, 16) == (
        "  |\n7 |       - {fact: completd, op: lt}\n  |                ^^^^^^^^"
    )
    assert code_frame('    reason: "a b"', 12, 13).endswith("\n   |             ^^^^^")
    long = "x" * 10_000 + " value: 1"
    frame = code_frame(long, 3, 10_002)
    assert len(frame) < 400 and "value: 1" in frame and frame.endswith(" ^^^^^")
