"""A jurisdiction is data: a profile file under policies/jurisdictions/ and the packs that name it. A third
one needs no code, and a case for a jurisdiction the policy set has no profile of is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import imr_policy
from imr_policy.cli.main import main
from imr_policy.loading.resources import policies_dir
from imr_policy.service import wire
from imr_policy.service.worker import Handler
from tests.conftest import load_example


def _nevada(tmp_path: Path) -> Path:
    """The shipped packs, plus a Nevada profile that adopts ODG (invented for this test: no law is cited)
    and the ODG packs marked as applying there."""
    packs = tmp_path / "packs"
    shutil.copytree(policies_dir(), packs, ignore=shutil.ignore_patterns("tests"))
    (packs / "jurisdictions" / "NV.yaml").write_text(
        "format: 1\n"
        "jurisdiction: NV\n"
        "title: A test jurisdiction that adopts ODG\n"
        "authority: the test's own premise, no law\n"
        "source: tests/unit/test_jurisdictions.py\n"
        "sequence:\n"
        "  - {tier: non_mtus, families: [ODG], role: decide, required: true, label: ODG}\n",
        encoding="utf-8",
    )
    for pack in (packs / "odg-mental-illness-stress").glob("*.yaml"):
        text = pack.read_text(encoding="utf-8")
        pack.write_text(text.replace("jurisdictions: [CA, TX]", "jurisdictions: [CA, TX, NV]"), encoding="utf-8")
    return packs


def _case(jurisdiction: str) -> dict[str, object]:
    case = load_example("imr-2015-psych-example.yaml")
    case["jurisdiction"] = jurisdiction
    return case


def test_a_third_jurisdiction_is_a_profile_file_not_code(tmp_path: Path) -> None:
    engine = imr_policy.load(_nevada(tmp_path), engine="reference")
    item = engine.evaluate(_case("NV")).item("cbt")
    texas = engine.evaluate(_case("TX")).item("cbt")
    # decided by ODG as Texas decides it: 16 + 6 = 22 > 20, progress not documented
    assert (item.determination, item.approved_quantity) == (texas.determination, texas.approved_quantity)
    assert [b.guideline for b in item.basis if b.role == "decisive"] == ["odg-mental-illness-stress"]
    assert "9792" not in item.rationale and "4610" not in item.rationale  # no California law


def test_a_jurisdiction_without_a_profile_is_refused_by_name() -> None:
    engine = imr_policy.load(engine="reference")
    with pytest.raises(imr_policy.CaseError) as info:
        engine.evaluate(_case("NV"))
    [d] = info.value.diagnostics
    assert (d.code, d.path) == ("case.unknown-jurisdiction", "$.jurisdiction")
    assert d.message == "jurisdiction `NV` has no profile in this policy set"
    assert d.hint is not None and "`CA`, `TX`" in d.hint


def test_the_cli_and_the_service_refuse_it_as_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nv.json"
    path.write_text(json.dumps(_case("NV"), default=str), encoding="utf-8")
    assert main(["evaluate", str(path), "--engine", "reference"]) == 1
    assert "error[case.unknown-jurisdiction]" in capsys.readouterr().err
    frame = Handler(imr_policy.load(engine="reference")).handle({"id": 1, "op": "evaluate"}, path.read_bytes())
    header, _ = wire.decode(frame[wire.PREFIX :])
    assert header["status"] == "invalid"
    assert [d["code"] for d in header["diagnostics"]] == ["case.unknown-jurisdiction"]


def test_a_lowercase_code_is_a_schema_error() -> None:
    with pytest.raises(imr_policy.CaseError) as info:
        imr_policy.validate_case(_case("ca"))
    assert [(d.code, d.path) for d in info.value.diagnostics] == [("case.pattern", "$.jurisdiction")]
