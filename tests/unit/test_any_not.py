"""`any:` and `not:` in a rule's conditions: read from a rule file, compiled for durable_rules with the
negations pushed down to the conditions, and evaluated by the reference evaluator with the same meaning
(a condition on an absent fact does not hold, so its `not` does)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import imr_policy
from imr_policy.authoring.lint import lint_paths
from imr_policy.engine.compile import DurableMatcher
from imr_policy.engine.reference import ReferenceMatcher, clause_holds
from imr_policy.loading.validate import load_editions
from imr_policy.model.values import AnyOf, Clause, Condition, NotOf, Outcome, Rule, leaves

_ROWS = ("lumbar-sprain", "lumbago", "meniscus-tear")

_LEAVES = st.one_of(
    st.builds(
        Condition,
        st.just("completed"),
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        st.integers(0, 8),
    ),
    st.builds(Condition, st.just("severity"), st.sampled_from(["eq", "ne"]), st.sampled_from(["mild", "severe"])),
    st.builds(
        Condition,
        st.just("severity"),
        st.sampled_from(["in", "not_in"]),
        st.just(("moderate", "severe")),
    ),
    st.builds(Condition, st.just("condition"), st.sampled_from(["eq", "ne"]), st.sampled_from(_ROWS)),
    st.builds(Condition, st.just("condition"), st.sampled_from(["present", "absent"])),
    st.builds(Condition, st.just("body_region"), st.just("contains_any"), st.just(("lumbar",))),
    st.builds(Condition, st.just("diagnosis_codes"), st.just("prefix_in"), st.just(("M54",))),
    st.builds(Condition, st.just("diagnosis_codes"), st.sampled_from(["present", "absent"])),
)
_CLAUSES: st.SearchStrategy[Clause] = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.builds(AnyOf, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(NotOf, inner),
    ),
    max_leaves=6,
)
_FACTS = st.fixed_dictionaries(
    {
        "service": st.just("physical_therapy"),
        "completed": st.integers(0, 8),
        "severity": st.sampled_from(["unspecified", "mild", "moderate", "severe"]),
        "condition": st.one_of(st.none(), st.sampled_from(_ROWS)),
        "body_region": st.one_of(st.none(), st.sampled_from(["lumbar", "knee"])),
        "diagnosis_codes": st.one_of(st.none(), st.sampled_from([("M54.5",), ("S83.2",), ("M54.16", "S83.2")])),
    }
)


@functools.cache
def _odg() -> Any:
    return next(e for e in imr_policy.load(engine="reference").editions if e.key == "odg-treatment@2007-05")


@pytest.fixture(scope="module")
def odg() -> Any:
    return _odg()


@settings(max_examples=150, deadline=None)
@given(whens=st.lists(st.lists(_CLAUSES, min_size=1, max_size=2).map(tuple), min_size=1, max_size=3), facts=_FACTS)
def test_durable_rules_and_the_reference_agree_on_any_and_not(
    whens: list[tuple[Clause, ...]], facts: dict[str, Any]
) -> None:
    odg = _odg()
    rules = tuple(
        Rule(f"r{i}", ("physical_therapy",), odg.rules[0].citation, when, Outcome("pend", "x"))
        for i, when in enumerate(whens)
    )
    edition = dataclasses.replace(odg, rules=rules, exceptions=(), hit_policies=(), invariants=())
    expected = tuple(f"rule:r{i}" for i, when in enumerate(whens) if all(clause_holds(c, facts, edition) for c in when))
    assert ReferenceMatcher((edition,)).match(edition, facts) == expected
    assert DurableMatcher((edition,)).match(edition, facts) == expected


def test_not_of_a_condition_on_an_absent_fact_holds(odg: Any) -> None:
    cond = Condition("condition", "eq", "lumbago")
    assert clause_holds(NotOf(cond), {"condition": None}, odg) is True
    assert clause_holds(NotOf(cond), {"condition": "lumbago"}, odg) is False
    assert clause_holds(NotOf(NotOf(cond)), {"condition": None}, odg) is False
    assert leaves((AnyOf((cond, NotOf(Condition("completed", "lt", 3)))),)) == (cond, Condition("completed", "lt", 3))


_PACK = """\
format: 1
guideline: {id: example-pt, title: Example physical therapy guideline, family: ODG, tier: non_mtus, jurisdictions: [TX]}
edition:
  id: "2010"
  title: Example physical therapy guideline, 2010
  effective: {from: 2010-01-01, to: null, selected_by: date_of_service, provenance: UNVERIFIED, source: tests}
hit_policies: {physical_therapy: first}
citations:
  - id: pt
    section: Physical therapy
    pages: null
    quote: "sprains: 10 visits; lumbago: 9 visits"
    provenance: UNVERIFIED
    source: tests
limits:
  - {id: visits, value: 10, unit: visits, citation: pt, provenance: UNVERIFIED, description: "10 visits over 8 weeks"}
conditions:
  - {id: sprain, title: Lumbar sprains and strains, words: [lumbar sprain]}
  - {id: lumbago, title: Lumbago, words: [lumbago]}
rules:
  - id: sprain-or-lumbago
    services: [physical_therapy]
    citation: pt
    when:
      - any:
          - {fact: condition, op: eq, value: sprain}
          - {fact: condition, op: eq, value: lumbago}
      - not: {fact: postsurgical, op: eq, value: true}
    outcome: {decision: certify, up_to: {total: visits}, reason: "for these conditions, 10 visits over 8 weeks"}
  - id: otherwise
    services: [physical_therapy]
    citation: pt
    when: []
    outcome: {decision: pend, reason: this guideline's other rows are not encoded}
"""


def _case(description: str, completed: int = 0, postsurgical: bool = False) -> dict[str, Any]:
    request: dict[str, Any] = {
        "id": "pt",
        "service": "physical_therapy",
        "body_region": "lumbar",
        "quantity": 6,
        "date_of_service": "2011-03-01",
    }
    if postsurgical:
        request["postsurgical"] = {"surgery_date": "2011-01-10", "procedure": "discectomy"}
    return {
        "case_id": "c",
        "jurisdiction": "TX",
        "date_of_injury": "2010-06-01",
        "diagnoses": [{"description": description}],
        "requests": [request],
        "history": [{"service": "physical_therapy", "completed": completed, "functional_improvement": "documented"}]
        if completed
        else [],
    }


@pytest.mark.parametrize("backend", ["durable", "reference"])
def test_a_rule_file_with_any_and_not_decides_through_the_engine(tmp_path: Path, backend: str) -> None:
    (tmp_path / "pack.yaml").write_text(_PACK, encoding="utf-8")
    engine = imr_policy.load(tmp_path, engine=backend)  # type: ignore[arg-type]
    for words, completed, decision, approved in (
        ("lumbar sprain", 0, "certify", 6),
        ("lumbago", 7, "modify", 3),
        ("cervicalgia", 0, "pend", 0),
    ):
        item = engine.evaluate(_case(words, completed)).items[0]
        assert (item.determination, item.approved_quantity) == (decision, approved), words
        if decision != "pend":
            assert [b.rule for b in item.basis if b.role == "decisive"] == ["sprain-or-lumbago"]
    # `not` of the post-surgical fact: a post-surgical request falls through to the pending rule
    assert engine.evaluate(_case("lumbar sprain", postsurgical=True)).items[0].determination == "pend"
    # why the rule did not apply, in words, for a condition that is neither row
    [entry] = [t for t in engine.evaluate(_case("cervicalgia")).items[0].trace if t.rule == "sprain-or-lumbago"]
    assert entry.why_not is not None and entry.why_not.startswith("none of these holds: ")


def test_nesting_and_alternatives_are_bounded(tmp_path: Path) -> None:
    deep = {"fact": "completed", "op": "lt", "value": 3}
    for _ in range(4):
        deep = {"not": deep}
    wide = [{"any": [{"fact": "completed", "op": "eq", "value": v} for v in range(5)]} for _ in range(2)]
    pack = yaml.safe_load(_PACK)
    pack["rules"][0]["when"] = [deep]
    pack["rules"].insert(1, {**pack["rules"][0], "id": "wide", "when": wide})
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    result = load_editions([path])
    found = {(d.code, d.path) for d in result.diagnostics}
    assert ("policy.engine-limit", "$.rules[0].when[0].not.not.not") in found
    assert ("policy.engine-limit", "$.rules[1].when") in found
    message = next(d.message for d in result.diagnostics if d.path == "$.rules[1].when")
    assert "25 alternatives" in message


def test_lint_reads_any_and_not(tmp_path: Path) -> None:
    # under `unique`, two rules that can hold together are an error: `any` of the same row overlaps it
    pack = yaml.safe_load(_PACK)
    pack["hit_policies"] = {"physical_therapy": "unique"}
    pack["rules"][1]["when"] = [{"fact": "condition", "op": "eq", "value": "lumbago"}]
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    _, diagnostics = lint_paths([path])
    codes = [d.code for d in diagnostics]
    assert "lint.unique-overlap" in codes
    # `not` of the row removes the overlap
    pack["rules"][1]["when"] = [
        {"fact": "condition", "op": "eq", "value": "lumbago"},
        {"not": {"fact": "postsurgical", "op": "eq", "value": False}},
    ]
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    assert "lint.unique-overlap" not in [d.code for d in lint_paths([path])[1]]
