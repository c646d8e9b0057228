"""`over:` exceptions: an exception to one rule (or to another exception) decides, with its own outcome,
where that rule would decide and its conditions hold, whatever the hit policy; exceptions of exceptions;
two that can hold together and disagree are refused before any case meets them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import imr_policy
from imr_policy.authoring.lint import lint_paths
from imr_policy.model.errors import EngineError

_PACK = """\
format: 2
guideline: {id: example-psych, title: Example psychotherapy guideline, family: ODG, tier: non_mtus, jurisdictions: [TX]}
edition:
  id: "2010"
  title: Example psychotherapy guideline, 2010
  effective: {from: 2010-01-01, to: null, selected_by: date_of_service, provenance: UNVERIFIED, source: tests}
citations:
  - {id: psych, section: Psychotherapy, pages: null, quote: "up to 10 visits", provenance: UNVERIFIED, source: tests}
limits:
  - {id: max, value: 10, unit: visits, citation: psych, provenance: UNVERIFIED, description: "up to 10 visits"}
  - {id: severe, value: 20, unit: visits, citation: psych, provenance: UNVERIFIED, description: "up to 20 visits"}
decisions:
  - services: [psychotherapy]
    hit_policy: unique
    rules:
      - id: within
        citation: psych
        when:
          - {fact: functional_improvement, op: in, value: [documented, none]}
        outcome: {decision: certify, up_to: {total: max}, reason: "up to 10 visits"}
      - id: without
        citation: psych
        when:
          - not: {fact: functional_improvement, op: in, value: [documented, none]}
        outcome: {decision: pend, missing: [functional_improvement], reason: "progress decides"}
exceptions:
  - id: severe
    over: within
    citation: psych
    when:
      - {fact: severity, op: eq, value: severe}
    outcome: {decision: certify, up_to: {total: severe}, reason: "for a severe condition, up to 20 visits"}
  - id: severe-but-stopped
    over: severe
    citation: psych
    when:
      - {fact: modality, op: eq, value: discontinued}
    outcome: {decision: non_certify, ceiling: max, reason: "the treating doctor stopped the treatment"}
"""


def _case(severity: str = "moderate", completed: int = 4, modality: str = "cbt") -> dict[str, Any]:
    return {
        "case_id": "c",
        "jurisdiction": "TX",
        "date_of_injury": "2010-03-01",
        "diagnoses": [{"description": "depression", "severity": severity}],
        "requests": [
            {
                "id": "p",
                "service": "psychotherapy",
                "modality": modality,
                "quantity": 10,
                "date_of_service": "2011-01-10",
            }
        ],
        "history": [{"service": "psychotherapy", "completed": completed, "functional_improvement": "documented"}],
    }


@pytest.fixture(params=["durable", "reference"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> imr_policy.Engine:
    (tmp_path / "pack.yaml").write_text(_PACK, encoding="utf-8")
    return imr_policy.load(tmp_path, engine=request.param)


def _decided(engine: imr_policy.Engine, **kw: Any) -> tuple[str, int, list[str]]:
    item = engine.evaluate(_case(**kw)).items[0]
    return item.determination, item.approved_quantity, [b.rule for b in item.basis if b.role == "decisive"]


def test_an_exception_decides_where_its_rule_would_and_its_own_exception_over_it(engine: imr_policy.Engine) -> None:
    assert _decided(engine) == ("modify", 6, ["within"])  # 4 + 10 > 10: the rule
    assert _decided(engine, severity="severe") == ("certify", 10, ["severe"])  # the exception: up to 20
    # the exception to the exception: both hold, and the more specific one decides, under `unique` too
    assert _decided(engine, severity="severe", modality="discontinued") == ("non_certify", 0, ["severe-but-stopped"])
    # an exception to the exception alone does not hold where its exception does not (severity moderate)
    assert _decided(engine, modality="discontinued") == ("modify", 6, ["within"])


def test_two_exceptions_to_one_rule_that_disagree_are_refused(tmp_path: Path) -> None:
    pack = yaml.safe_load(_PACK)
    pack["exceptions"][1]["over"] = "within"  # now both are exceptions to `within` and can hold together
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    _, found = lint_paths([path])
    assert [d.code for d in found if d.code == "lint.unique-overlap"]  # under `unique` they overlap
    # and the engine refuses the case both hold for: never a decision
    engine = imr_policy.load(path, engine="reference")
    with pytest.raises(EngineError, match="unique"):
        engine.evaluate(_case(severity="severe", modality="discontinued"))
    pack["decisions"][0]["hit_policy"] = "first"
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    _, found = lint_paths([path])
    [conflict] = [d for d in found if d.code == "lint.exception-conflict"]
    assert "`severe` and `severe-but-stopped` both override `within`" in conflict.message
    assert conflict.path == "$.exceptions[1].id"


def test_an_exception_to_a_rule_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    pack = yaml.safe_load(_PACK)
    pack["exceptions"][0]["over"] = "withn"
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    with pytest.raises(imr_policy.PolicyError) as err:
        imr_policy.load(path)
    codes = {(d.code, d.path) for d in err.value.diagnostics}
    assert ("policy.exception-unknown-rule", "$.exceptions[0].over") in codes
