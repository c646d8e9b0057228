"""The runtime: durable_rules agrees with the reference evaluator, is safe under threads, and fails closed."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Mapping
from typing import Any

import pytest

import imr_policy
from imr_policy.evaluate import Engine
from imr_policy.model.values import Edition


def psych_case(
    completed: int,
    quantity: int,
    fi: str | None,
    severity: str,
    jurisdiction: str,
    day: str,
    service: str = "psychotherapy",
) -> dict[str, Any]:
    case: dict[str, Any] = {
        "case_id": f"grid-{completed}-{quantity}-{fi}-{severity}-{jurisdiction}-{day}-{service}",
        "jurisdiction": jurisdiction,
        "date_of_injury": "2009-01-01",
        "diagnoses": [{"description": "Major depressive disorder", "severity": severity}],
        "requests": [{"id": "r", "service": service, "quantity": quantity, "date_of_service": day}],
        "utilization_review": [{"request": "r", "decision": "deny"}],
    }
    if fi is not None:
        case["history"] = [{"service": service, "completed": completed, "functional_improvement": fi}]
    return case


GRID = [
    psych_case(c, q, fi, sev, j, day, svc)
    for c, q in itertools.product(range(0, 24, 1), (1, 2, 4, 6, 10))
    for fi in (None, "documented", "not_documented", "unknown")
    if not (fi is None and c)
    for sev in ("moderate", "severe")
    for j, day in (("CA", "2015-07-10"), ("TX", "2015-07-10"), ("CA", "2012-01-01"))
    for svc in ("psychotherapy", "medication_management")
    if not (svc == "medication_management" and (sev == "severe" or c % 5))
]


def test_durable_and_reference_agree_on_every_grid_case(engine: Engine, reference_engine: Engine) -> None:
    assert engine.backend == "durable" and reference_engine.backend == "reference"
    assert len(GRID) > 1500
    for case in GRID:
        assert engine.evaluate(case).to_dict() == reference_engine.evaluate(case).to_dict(), case["case_id"]


def test_grid_invariants(engine: Engine) -> None:
    for case in GRID:
        item = engine.evaluate(case).items[0]
        quantity = case["requests"][0]["quantity"]
        assert 0 <= item.approved_quantity <= quantity
        assert item.medically_necessary is (item.determination == "certify")
        if item.determination == "pend":
            assert item.approved_quantity == 0
            # a pend carries an IMR outcome only when every reading of the unstated facts gives it
            assert item.imr_outcome is None or {r.imr_outcome for r in item.readings} == {item.imr_outcome}
        else:
            assert item.imr_outcome is not None


def test_threads_get_the_answers_of_isolated_runs(engine: Engine) -> None:
    cases = random.Random(7).sample(GRID, 400)
    expected = {c["case_id"]: engine.evaluate(c).to_dict() for c in cases}
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def worker(seed: int) -> None:
        order = cases[:]
        random.Random(seed).shuffle(order)
        barrier.wait()
        for case in order:
            got = engine.evaluate(case).to_dict()
            if got != expected[case["case_id"]]:
                failures.append(case["case_id"])

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_engines_loaded_side_by_side_answer_independently_under_threads(engine: Engine, tmp_path: Any) -> None:
    """What an embedder's reload does: a second Engine (a second durable_rules Host with rulesets of the
    same names) is loaded while the first one still answers; threads use both at once, interleaved."""
    import shutil

    from imr_policy.loading.resources import policies_dir

    packs = tmp_path / "packs"
    shutil.copytree(policies_dir(), packs, ignore=shutil.ignore_patterns("tests"))
    with (packs / "mtus-cpmtg" / "2009.yaml").open("a", encoding="utf-8") as fh:
        fh.write("# reloaded\n")
    other = imr_policy.load(packs)
    assert other.policy_set.content_hash != engine.policy_set.content_hash
    cases = random.Random(9).sample(GRID, 200)
    expected = {(id(e), c["case_id"]): e.evaluate(c).to_dict() for e in (engine, other) for c in cases}
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        order = [(rng.choice((engine, other)), c) for c in cases]
        barrier.wait()
        for e, case in order:
            if e.evaluate(case).to_dict() != expected[(id(e), case["case_id"])]:
                failures.append(case["case_id"])

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_state_never_leaks_between_consecutive_cases(engine: Engine) -> None:
    certify = psych_case(0, 3, None, "moderate", "CA", "2015-07-10")
    deny = psych_case(16, 6, "not_documented", "moderate", "CA", "2015-07-10")
    for _ in range(50):
        assert engine.evaluate(certify).items[0].determination == "certify"
        assert engine.evaluate(deny).items[0].determination == "non_certify"


class _LyingMatcher:
    name = "liar"

    def __init__(self, editions: tuple[Edition, ...]) -> None:
        self._editions = editions

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(f"rule:{r.id}" for r in edition.rules)  # claims every rule holds


def test_a_matcher_that_disagrees_with_the_reference_is_an_error_not_a_decision(engine: Engine) -> None:
    liar = Engine(engine.editions, engine.policy_set, _LyingMatcher(engine.editions), engine.profiles)
    with pytest.raises(imr_policy.EngineError, match="disagree"):
        liar.evaluate(psych_case(16, 6, "not_documented", "moderate", "CA", "2015-07-10"))


def test_the_reference_answers_an_engine_remembers_still_check_every_matcher_answer(engine: Engine) -> None:
    # the reference evaluator's answers are remembered across evaluations (Engine._fired): a matcher that
    # lies is caught however often the same facts come back, and an honest one sharing the editions is not
    case = psych_case(16, 6, "not_documented", "moderate", "CA", "2015-07-10")
    liar = Engine(engine.editions, engine.policy_set, _LyingMatcher(engine.editions), engine.profiles)
    for _ in range(3):
        with pytest.raises(imr_policy.EngineError, match="disagree"):
            liar.evaluate(case)
    assert engine.evaluate(case) == engine.evaluate(case)


def test_invalid_input_never_yields_a_determination(engine: Engine) -> None:
    case = psych_case(0, 3, None, "moderate", "CA", "2015-07-10")
    case["requests"][0]["quantity"] = "3"
    with pytest.raises(imr_policy.CaseError):
        engine.evaluate(case)


def test_date_objects_from_python_callers_are_accepted(engine: Engine) -> None:
    import datetime as dt

    case = psych_case(0, 3, None, "moderate", "CA", "2015-07-10")
    case["date_of_injury"] = dt.date(2009, 1, 1)
    case["requests"][0]["date_of_service"] = dt.date(2015, 7, 10)
    assert engine.evaluate(case).items[0].determination == "certify"


def test_public_api_is_small_and_pinned() -> None:
    assert sorted(imr_policy.__all__) == [
        "BasisEntry",
        "Case",
        "CaseError",
        "Determination",
        "Diagnostic",
        "Engine",
        "EngineError",
        "Explanation",
        "ImrPolicyError",
        "ItemDetermination",
        "Letter",
        "LoadResult",
        "PolicyError",
        "SearchStep",
        "Severity",
        "TraceEntry",
        "__version__",
        "case_diagnostics",
        "explain_case",
        "load",
        "load_editions",
        "parse_case_text",
        "validate_case",
        "write_letter",
    ]
    for name in imr_policy.__all__:
        assert hasattr(imr_policy, name)


def test_only_compile_imports_durable_rules() -> None:
    from pathlib import Path

    package = Path(imr_policy.__file__).parent
    importers = sorted(
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "import durable" in p.read_text(encoding="utf-8") or "from durable" in p.read_text(encoding="utf-8")
    )
    assert importers == ["engine/compile.py"]


def test_loading_invalid_policies_raises_with_every_diagnostic(tmp_path: Any) -> None:
    (tmp_path / "a.yaml").write_text("format: 2\nguideline: {}\n", encoding="utf-8")
    with pytest.raises(imr_policy.PolicyError) as info:
        imr_policy.load(tmp_path)
    assert len(info.value.diagnostics) >= 4


def test_each_item_reports_the_weakest_grade_it_rests_on(engine: Engine) -> None:
    from tests.conftest import load_example

    letter = engine.evaluate(load_example("imr-2015-psych-example.yaml"))
    assert [i.provenance for i in letter.items] == ["V-seed", "V-seed"]
    texas = engine.evaluate(load_example("texas-office-visits.yaml")).items[0]
    assert (texas.determination, texas.provenance) == ("modify", "V-2nd")


def test_a_provenance_floor_pends_decisions_resting_on_weaker_numbers(engine: Engine) -> None:
    from tests.conftest import load_example

    case = load_example("texas-office-visits.yaml")
    assert engine.evaluate(case, min_provenance="V-2nd").items[0].determination == "modify"
    floored = engine.evaluate(case, min_provenance="V-seed").items[0]
    assert (floored.determination, floored.approved_quantity, floored.imr_outcome) == ("pend", 0, None)
    assert "weaker than the provenance floor (V-seed)" in floored.rationale
    # a floor at or below what the decision rests on changes nothing
    letter = load_example("imr-2015-psych-example.yaml")
    assert engine.evaluate(letter, min_provenance="V-seed").to_dict() == engine.evaluate(letter).to_dict()


def test_an_unknown_provenance_grade_is_refused(engine: Engine) -> None:
    import pytest

    from tests.conftest import load_example

    with pytest.raises(ValueError, match="unknown provenance grade 'verified'"):
        engine.evaluate(load_example("texas-office-visits.yaml"), min_provenance="verified")  # type: ignore[arg-type]
