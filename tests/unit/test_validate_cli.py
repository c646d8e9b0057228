"""`imr-policy validate`: the shipped packs pass; broken files are reported with file:line:col, all at once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "validate", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_shipped_policies_are_valid() -> None:
    done = run("policies/")
    assert done.returncode == 0, done.stderr
    assert "0 errors" in done.stdout


def test_default_is_the_shipped_policies() -> None:
    done = run()
    assert done.returncode == 0, done.stderr


_CPMTG = ROOT / "policies/mtus-cpmtg/2009.yaml"
_PRIORITY = (
    "      - id: psychotherapy.initial-trial\n",
    "      - id: psychotherapy.initial-trial\n        priority: 1\n",
)


def _validate_edited(tmp_path: Path, *edits: tuple[str, str]) -> tuple[str, subprocess.CompletedProcess[str]]:
    """The CPMTG 2009 pack with each (old, new) text edit made once, validated from a copy: (its text, the run)."""
    text = _CPMTG.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    bad = tmp_path / "mtus-cpmtg" / "2009.yaml"
    bad.parent.mkdir()
    bad.write_text(text, encoding="utf-8")
    return text, run(str(bad))


def test_unknown_key_and_type_error_reported_together(tmp_path: Path) -> None:
    text, done = _validate_edited(tmp_path, ("    value: 10\n", '    value: "10"\n'), _PRIORITY)
    assert done.returncode == 1
    lines = text.splitlines()
    value_line = lines.index('    value: "10"') + 1
    priority_line = lines.index("        priority: 1") + 1
    assert (
        f"2009.yaml:{value_line}:12: error[policy.schema.type] expected a whole number, got the string `10`"
        in done.stderr
    )
    assert f"2009.yaml:{priority_line}:9: error[policy.schema.unknown-field] unknown field `priority`" in done.stderr
    assert "(at $.decisions[0].rules[0].priority)" in done.stderr  # format 2: the path as the file writes it
    limits_before = text[: text.index('    value: "10"')].split("\nlimits:\n")[1].count("  - id: ")
    assert f"(at $.limits[{limits_before - 1}].value)" in done.stderr
    assert "2 errors" in done.stdout


def test_json_output_for_tools(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("format: 1\n", encoding="utf-8")
    done = run(str(bad), "--format", "json")
    assert done.returncode == 1
    import json

    data = json.loads(done.stdout)
    assert data["ok"] is False
    assert {d["code"] for d in data["diagnostics"]} == {"policy.schema.missing-field"}


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert run(str(tmp_path / "nope")).returncode == 2


SIX = ROOT / "tests/invalid/policy/policy.schema.unknown-field--six-mistakes"


def test_six_mistakes_in_one_run_one_error_each_with_code_frames() -> None:
    """Issue 14.2: schema errors no longer stop the semantic checks, nor the checks across files."""
    done = run(str(SIX.relative_to(ROOT)))
    assert done.returncode == 1
    assert "6 errors" in done.stdout
    codes = re.findall(r"error\[([a-z.-]+)\]", done.stderr)
    assert sorted(codes) == sorted(
        [
            "policy.overlapping-editions",
            "policy.limit-outside-range",
            "policy.schema.unknown-field",
            "policy.unknown-fact",
            "policy.unknown-limit",
            "policy.schema.enum",
        ]
    )
    assert "missing required field" not in done.stderr
    lines = (SIX / "2016-01.yaml").read_text(encoding="utf-8").splitlines()
    n = next(i for i, line in enumerate(lines, 1) if "citaton:" in line and not line.startswith("#"))
    gutter = " " * len(str(n))
    frame = f"{gutter} |\n{n} |     citaton: psychotherapy-trial\n{gutter} |     ^^^^^^^\n"
    assert f"2016-01.yaml:{n}:5: error[policy.schema.unknown-field]" in done.stderr
    assert frame in done.stderr, done.stderr


def test_json_output_has_no_code_frames_and_the_same_fields(tmp_path: Path) -> None:
    import json

    data = json.loads(run(str(SIX.relative_to(ROOT)), "--format", "json").stdout)
    assert len(data["diagnostics"]) == 6
    for d in data["diagnostics"]:
        assert set(d) <= {"code", "severity", "message", "path", "file", "line", "column", "hint"}
        assert "^" not in d["message"] and "|" not in d["message"]


def test_case_diagnostics_get_no_code_frame(tmp_path: Path) -> None:
    """A case line may hold what a clinician wrote: its diagnostics never quote it."""
    case = tmp_path / "case.yaml"
    text = (ROOT / "examples/cases/acupuncture-low-back-2019.yaml").read_text(encoding="utf-8")
    case.write_text(text.replace("case_id:", "case_idd:", 1), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "imr_policy", "evaluate", str(case)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "error[case." in done.stderr
    assert " | " not in done.stderr and "^" not in done.stderr


def test_validate_on_a_case_file_says_it_is_a_case_file() -> None:
    """Issue 14.8: `validate CASE` gave a missing `format`, `guideline`, `edition`, ... for every field of a
    rule pack; it now says this is a case file, once, and quotes none of its lines."""
    done = run("examples/cases/texas-office-visits.yaml")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error[" in line]
    assert len(errors) == 1, done.stderr
    assert "error[policy.case-file] this is a case file, not a rule pack" in errors[0]
    assert "imr-policy evaluate FILE" in done.stderr
    assert " | " not in done.stderr and "missing required field" not in done.stderr


def test_an_unquoted_yes_gets_a_precise_hint() -> None:
    """Issue 14.8: `functional_improvement: yes` is the boolean true in YAML 1.1; the hint said "quote it", and
    the quoted "yes" was the next error. It now names the YAML reading and the values the field takes."""
    import pytest

    import imr_policy
    from imr_policy.model.errors import CaseError

    text = (ROOT / "examples/cases/imr-2015-psych-example.yaml").read_text(encoding="utf-8")
    assert "functional_improvement: not_documented" in text
    with pytest.raises(CaseError) as raised:
        imr_policy.load().evaluate(
            imr_policy.parse_case_text(
                text.replace("functional_improvement: not_documented", "functional_improvement: yes")
            )
        )
    (problem,) = [d for d in raised.value.diagnostics if d.path.endswith("functional_improvement")]
    assert problem.code == "case.type"
    assert problem.hint == (
        "YAML reads an unquoted `yes`, `on` or `true` as the boolean `true`; this field takes one of: documented, "
        "not_documented, unknown"
    )


def test_a_format_2_row_with_a_schema_error_does_not_hide_the_other_rows_problems(tmp_path: Path) -> None:
    typo = (
        "          - {fact: functional_improvement, op: eq, value: documented}",
        "          - {fact: functional_improvment, op: eq, value: documented}",
    )
    text, done = _validate_edited(tmp_path, _PRIORITY, typo)
    assert done.returncode == 1
    lines = text.splitlines()
    typo_line = next(i for i, line in enumerate(lines, 1) if "functional_improvment" in line)
    assert (
        "error[policy.schema.unknown-field] unknown field `priority` (at $.decisions[0].rules[0].priority)"
        in done.stderr
    )
    assert (
        f"2009.yaml:{typo_line}:20: error[policy.unknown-fact] `functional_improvment` is not a fact of the case "
        "contract (at $.decisions[0].rules[2].when[1].fact)"
    ) in done.stderr
    assert "2 errors" in done.stdout
