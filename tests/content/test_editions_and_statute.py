"""Edition boundaries (the day before and the day of each change) and the statutory visit caps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import imr_policy
from tests.conftest import ROOT
from tests.content.test_thresholds import ENGINE, case, decide


def in_force(item: imr_policy.ItemDetermination) -> set[str]:
    return {f"{s.guideline}@{s.edition}" for s in item.search}


@pytest.mark.parametrize(
    ("service", "jurisdiction", "before", "on", "old", "new"),
    [
        ("psychotherapy", "CA", "2009-07-17", "2009-07-18", None, "mtus-cpmtg@2009"),
        ("psychotherapy", "CA", "2017-11-30", "2017-12-01", "mtus-cpmtg@2009", "mtus-acoem@2017-12-01"),
        ("psychotherapy", "CA", "2019-04-17", "2019-04-18", "mtus-acoem@2017-12-01", "mtus-acoem@2019-04-18"),
        ("chiropractic", "CA", "2021-11-22", "2021-11-23", "mtus-acoem@2021-07-19", "mtus-acoem@2021-11-23"),
        ("acupuncture", "CA", "2017-11-30", "2017-12-01", None, "acoem-mtus-low-back@2017-12-01"),
        (
            "acupuncture",
            "CA",
            "2021-11-22",
            "2021-11-23",
            "acoem-mtus-low-back@2017-12-01",
            "acoem-mtus-low-back@2021-11-23",
        ),
        ("psychotherapy", "TX", "2007-04-30", "2007-05-01", None, "odg-mental-illness-stress@2007-05"),
        (
            "psychotherapy",
            "TX",
            "2015-02-28",
            "2015-03-01",
            "odg-mental-illness-stress@2007-05",
            "odg-mental-illness-stress@2015-03",
        ),
        (
            "psychotherapy",
            "TX",
            "2017-12-31",
            "2018-01-01",
            "odg-mental-illness-stress@2015-03",
            "odg-mental-illness-stress@2018-01",
        ),
        ("chiropractic", "TX", "2007-04-30", "2007-05-01", None, "odg-treatment@2007-05"),
        ("chiropractic", "TX", "2017-12-31", "2018-01-01", "odg-treatment@2007-05", None),
    ],
)
def test_edition_boundaries(
    service: str, jurisdiction: str, before: str, on: str, old: str | None, new: str | None
) -> None:
    kwargs = {"jurisdiction": jurisdiction, "body_region": "lumbar", "severity": "severe", "injury": "2006-01-02"}
    day_before = decide(case(service, completed=2, quantity=2, day=before, **kwargs))
    day_of = decide(case(service, completed=2, quantity=2, day=on, **kwargs))
    if old:
        assert old in in_force(day_before) and old not in in_force(day_of)
    if new:
        assert new in in_force(day_of) and new not in in_force(day_before)
    if old is None and new is not None and new.startswith(("mtus-cpmtg", "odg-")):
        assert day_before.determination == "pend"  # nothing in force that decides: never a guess
        assert "not decided" in day_before.rationale
    if new is None and old is not None and old.startswith(("mtus-cpmtg", "odg-treatment")):
        assert day_of.determination == "pend"


def test_california_after_2017_pends_for_psychotherapy_naming_the_acoem_based_mtus() -> None:
    item = decide(case("psychotherapy", completed=2, quantity=2, day="2018-03-01"))
    assert (item.determination, item.approved_quantity, item.missing_facts) == ("pend", 0, ())
    assert "no ACOEM session numbers are encoded" in item.rationale
    assert [(b.guideline, b.edition, b.role) for b in item.basis] == [("mtus-acoem", "2017-12-01", "decisive")]
    # the MTUS addresses psychotherapy: ODG is never consulted in its place
    assert {s.result for s in item.search if s.tier == "non_mtus"} <= {"not_consulted", "not_encoded"}


# --------------------------------------------------------------------------------- the statute


def test_statute_shows_in_the_basis_for_capped_services() -> None:
    item = decide(case("physical_therapy", completed=4, quantity=4, codes=("M79.1",)))
    statute = [b for b in item.basis if b.tier == "statute"]
    assert [(b.guideline, b.rule, b.provenance) for b in statute] == [("ca-labor-code-4604.5", "visit-cap", "V")]
    assert "Statute (outranks every guideline)" in item.rationale


def test_statute_does_not_touch_uncapped_services_or_texas() -> None:
    for data in (
        case("acupuncture", completed=0, quantity=4, body_region="cervical"),
        case("chiropractic", completed=0, quantity=4, jurisdiction="TX", severity="severe"),
    ):
        assert not [b for b in decide(data).basis if b.tier == "statute"]


@pytest.fixture(scope="module")
def generous_engine(tmp_path_factory: pytest.TempPathFactory) -> imr_policy.Engine:
    """The shipped packs with a CRPS guideline limit of 30, so the 24-visit cap can bind: no encoded guideline
    supports more than 24 visits of a capped service per injury, so only such a pack shows the cap at work."""
    root = tmp_path_factory.mktemp("policies")
    shutil.copytree(ROOT / "policies", root / "policies")
    for edition in ("2009", "2016"):  # both CPMTG editions: a case may leave open which of them governs
        pack = root / "policies" / "mtus-cpmtg" / f"{edition}.yaml"
        text = pack.read_text(encoding="utf-8")
        changed = text.replace(
            "  - id: physical-medicine.crps\n    value: 24\n", "  - id: physical-medicine.crps\n    value: 30\n"
        )
        assert changed != text
        pack.write_text(changed, encoding="utf-8")
    return imr_policy.load(root / "policies")


def _crps(**kwargs: object) -> dict[str, object]:
    return case("physical_therapy", completed=20, quantity=8, codes=("G90.50",), **kwargs)  # type: ignore[arg-type]


def test_cap_binds_above_24(generous_engine: imr_policy.Engine) -> None:
    item = generous_engine.evaluate(_crps()).items[0]
    assert (item.determination, item.approved_quantity) == ("modify", 4)
    [statute] = [b for b in item.basis if b.tier == "statute"]
    assert statute.role == "decisive"
    assert "20 counted toward the cap + 8 requested = 28, above the statutory maximum of 24 visits" in item.rationale
    assert "8 supported by the guidelines, 4 allowed by the statute" in item.rationale


def test_employer_authorization_lifts_the_cap(generous_engine: imr_policy.Engine) -> None:
    data = _crps()
    data["requests"][0]["employer_authorized_beyond_cap"] = True  # type: ignore[index]
    item = generous_engine.evaluate(data).items[0]
    assert (item.determination, item.approved_quantity) == ("certify", 8)
    assert not [b for b in item.basis if b.tier == "statute"]
    assert any(s.result == "not_applicable" and "authorized" in s.note for s in item.search)


def test_injuries_before_2004_are_not_capped(generous_engine: imr_policy.Engine) -> None:
    item = generous_engine.evaluate(_crps(injury="2003-12-31")).items[0]
    assert item.approved_quantity == 8
    edge = generous_engine.evaluate(_crps(injury="2004-01-01")).items[0]
    assert edge.approved_quantity == 4


def test_postsurgical_visits_are_not_counted_against_the_cap() -> None:
    base = case(
        "physical_therapy",
        completed=20,
        quantity=12,
        fi="not_documented",
        codes=("S83.241A",),
        day="2016-03-07",
        injury="2014-05-02",
    )
    base["requests"][0]["postsurgical"] = {"procedure": "Partial medial MENISCECTOMY", "surgery_date": "2016-02-22"}
    item = ENGINE.evaluate(base).items[0]
    assert (item.determination, item.approved_quantity) == ("certify", 12)
    assert "mtus-postsurgical" in {b.guideline for b in item.basis}
    # the same 12 visits without the surgery: the CPMTG has no rule for a meniscus tear -> pend
    base["requests"][0].pop("postsurgical")
    assert ENGINE.evaluate(base).items[0].determination == "pend"


@pytest.mark.parametrize(("surgery", "expected"), [("2015-09-07", "certify"), ("2015-09-06", "pend")])
def test_postsurgical_period_of_6_months(surgery: str, expected: str) -> None:
    data = case("physical_therapy", completed=0, quantity=12, fi=None, day="2016-03-07")
    data["requests"][0]["postsurgical"] = {"procedure": "meniscectomy", "surgery_date": surgery}
    assert ENGINE.evaluate(data).items[0].determination == expected


def test_postsurgical_visits_already_done_count_against_the_postsurgical_guideline() -> None:
    data = case("physical_therapy", completed=0, quantity=6, fi=None, day="2016-03-07")
    data["history"] = [
        {"service": "physical_therapy", "completed": 20, "functional_improvement": "documented"},
        {"service": "physical_therapy", "completed": 8, "functional_improvement": "documented", "postsurgical": True},
    ]
    data["requests"][0]["postsurgical"] = {"procedure": "meniscectomy", "surgery_date": "2016-01-04"}
    item = ENGINE.evaluate(data).items[0]
    assert (item.determination, item.approved_quantity) == ("modify", 4)
    assert "8 post-surgical completed + 6 requested = 14" in item.rationale


def test_other_procedures_pend() -> None:
    data = case("physical_therapy", completed=0, quantity=6, fi=None, day="2016-03-07")
    data["requests"][0]["postsurgical"] = {"procedure": "rotator cuff repair", "surgery_date": "2016-01-04"}
    item = ENGINE.evaluate(data).items[0]
    assert item.determination == "pend" and "only for meniscectomy" in item.rationale


def test_every_limit_and_citation_carries_provenance() -> None:
    for edition in ENGINE.editions:
        assert all(lim.provenance in ("V-seed", "V", "V-2nd", "UNVERIFIED") for lim in edition.limits)
        assert all(c.provenance in ("V-seed", "V", "V-2nd", "UNVERIFIED") for c in edition.citations)


def test_shipped_profiles_are_data() -> None:
    assert {p.jurisdiction for p in ENGINE.profiles} == {"CA", "TX"}
    assert (Path(ROOT) / "policies" / "jurisdictions" / "CA.yaml").exists()
