"""Wrong words (issue 14.7): every pend read "pend (missing facts); not medically necessary" (a pend
decides nothing, and most wait for no fact), "4 office visit visits", "1 workers"."""

from __future__ import annotations

import pytest

import imr_policy
from imr_policy.cli import render
from imr_policy.explain.rationale import noun
from tests.conftest import load_example


@pytest.mark.parametrize(
    ("service", "quantity", "words"),
    [
        ("office_visit", 4, "4 office visits"),
        ("office_visit", 1, "1 office visit"),
        ("psychotherapy", 1, "1 psychotherapy session"),
        ("psychotherapy", 6, "6 psychotherapy sessions"),
        ("physical_therapy", 12, "12 physical therapy visits"),
        ("medication_management", 2, "2 medication management visits"),
    ],
)
def test_a_service_and_its_unit(service: str, quantity: int, words: str) -> None:
    assert noun(service, quantity) == words


def test_the_letter_says_office_visits_once(engine: imr_policy.Engine) -> None:
    text = render.determination_text(engine.evaluate(load_example("texas-office-visits.yaml")))
    assert "office visit visits" not in text
    assert "1. 4 office visits (request `visits`)" in text
    assert "Requested: 4 office visits (monthly)" in text


def test_a_pend_says_nothing_of_medical_necessity(engine: imr_policy.Engine) -> None:
    waiting = render.determination_text(engine.evaluate(load_example("pend-psychotherapy-improvement-unknown.yaml")))
    assert "   Determination: pend, not decided; waiting for facts the records do not state\n" in waiting
    assert "   Missing facts: history[0].functional_improvement" in waiting
    not_encoded = render.determination_text(engine.evaluate(load_example("pend-not-encoded-office-visit.yaml")))
    assert "   Determination: pend, not decided\n" in not_encoded
    for text in (waiting, not_encoded):
        assert "missing facts)" not in text
        assert "medically necessary" not in text.split("Decision rationale:")[0]
    decided = render.determination_text(engine.evaluate(load_example("imr-2015-psych-example.yaml")))
    assert "; not medically necessary" in decided or "; medically necessary" in decided


def test_counts_agree_with_their_nouns() -> None:
    assert [render.count(n, "worker") for n in (0, 1, 2)] == ["0 workers", "1 worker", "2 workers"]
