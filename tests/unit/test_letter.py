"""The 2015 IMR letter (shared/reference/000_c8f1d8bd8066c207.txt), reproduced end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

import imr_policy
from imr_policy.loading.resources import schema
from tests.conftest import EXAMPLES, load_example

LETTER = "imr-2015-psych-example.yaml"


@pytest.fixture(scope="module")
def determination(engine: imr_policy.Engine) -> imr_policy.Determination:
    return engine.evaluate(load_example(LETTER))


def test_both_items_are_not_medically_necessary_and_upheld(determination: imr_policy.Determination) -> None:
    assert [(i.request, i.medically_necessary, i.imr_outcome) for i in determination.items] == [
        ("med-management", False, "upheld"),
        ("cbt", False, "upheld"),
    ]


def test_cbt_arithmetic_against_both_ceilings(determination: imr_policy.Determination) -> None:
    cbt = determination.item("cbt")
    assert cbt.determination == "non_certify"
    assert cbt.approved_quantity == 0
    assert cbt.rationale.count("16 completed + 6 requested = 22") == 2
    assert "above the MTUS maximum of 10 visits" in cbt.rationale
    assert "stated as 6-10" in cbt.rationale
    assert "above the ODG maximum of 20 visits" in cbt.rationale
    assert "stated as 13-20" in cbt.rationale
    assert "`psychotherapy.very-severe-symptomatology`" in cbt.rationale
    assert "does not apply: `severity` is `moderate`, not `severe`" in cbt.rationale
    assert "the UR decision is upheld" in cbt.rationale


def test_cbt_basis_is_mtus_decisive_with_odg_supporting(determination: imr_policy.Determination) -> None:
    basis = determination.item("cbt").basis
    assert [(b.guideline, b.tier, b.role, b.pages) for b in basis] == [
        ("mtus-cpmtg", "mtus", "decisive", "101-102; 23-24"),
        ("odg-mental-illness-stress", "non_mtus", "supporting", None),
    ]
    assert all(b.provenance == "V-seed" for b in basis)
    assert not any(b.exception for b in basis)


def test_medication_management_basis_is_acoem_chapter_15(determination: imr_policy.Determination) -> None:
    item = determination.item("med-management")
    assert (item.determination, item.approved_quantity) == ("modify", 1)
    [basis] = item.basis
    assert basis.guideline == "acoem-2nd-ed"
    assert basis.tier == "mtus"
    assert "Chapter 15 Stress Related Conditions" in basis.section
    assert basis.pages == "398B"
    assert "Chronic Pain Medical Treatment Guidelines (2009), 8 CCR 9792.24.2 does not address" in item.rationale
    search = {(s.guideline, s.result) for s in item.search}
    assert ("mtus-cpmtg", "not_addressed") in search
    assert ("acoem-2nd-ed", "decided") in search


def test_trace_lists_every_rule_considered_with_reasons(determination: imr_policy.Determination) -> None:
    trace = determination.item("cbt").trace
    mtus = [t for t in trace if t.guideline == "mtus-cpmtg"]
    assert [t.rule for t in mtus] == [
        "psychotherapy.initial-trial",
        "psychotherapy.functional-improvement-unknown",
        "psychotherapy.continued-with-improvement",
        "psychotherapy.continued-without-improvement",
    ]
    assert [t.applied for t in mtus] == [False, False, False, True]
    assert mtus[0].why_not == "`completed` is 16, not below 4 (`psychotherapy.trial-visits`)"
    assert mtus[-1].decided and mtus[-1].why_not is None


def test_output_validates_against_the_decision_schema(determination: imr_policy.Determination) -> None:
    validator = jsonschema.Draft202012Validator(schema("decision"))
    errors = [e.message for e in validator.iter_errors(determination.to_dict())]
    assert errors == []


def test_cli_text_reads_like_the_letter(golden) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "evaluate", str(EXAMPLES / LETTER)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("IMR ISSUES, DECISIONS AND RATIONALES")
    # the policy-set hash and version change with every edit of a pack; the golden file pins the rest
    lines = [line for line in done.stdout.splitlines() if not line.startswith("Policy set:")]
    golden("evaluate-letter.txt", "\n".join(lines) + "\n")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_cli_machine_formats_are_valid_determinations(fmt: str) -> None:
    import yaml

    done = subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "evaluate", str(EXAMPLES / LETTER), "--format", fmt],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout) if fmt == "json" else yaml.safe_load(done.stdout)
    jsonschema.Draft202012Validator(schema("decision")).validate(data)
    assert data["case_id"] == "imr-2015-psych-example"
    assert data["policy_set"]["content_hash"].startswith("sha256:")
