"""`imr-policy diff OLD NEW --impact`: which decisions change, counted, attributed, and reproducible."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import imr_policy
from imr_policy.evaluate import Engine
from tests.conftest import ROOT
from tests.unit.corpus_cases import generated_cases, write_jsonl
from tests.unit.test_diff import edit, raise_max_visits


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two copies of the shipped packs; the new one raises the ODG maximum from 20 (13-20) to 24 (13-24)."""
    root = tmp_path_factory.mktemp("impact")
    old, new = root / "old", root / "new"
    shutil.copytree(ROOT / "policies", old)
    shutil.copytree(ROOT / "policies", new)
    edit(new / "odg-mental-illness-stress" / "2015-03.yaml", raise_max_visits)
    return old, new


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("corpus") / "cases.jsonl"
    cases = list(generated_cases(400))
    write_jsonl(path, iter(cases))
    return path, cases


def _outcome(engine: Engine, case: dict[str, Any], request: str) -> tuple[str, int, str | None]:
    item = engine.evaluate(case).item(request)
    return item.determination, item.approved_quantity, item.imr_outcome


def _side(example: dict[str, Any], key: str) -> tuple[str, int, str | None]:
    side = example[key]
    return side["determination"], side["approved_quantity"], side["imr_outcome"]


def test_impact_lists_flipped_cases_that_reproduce_on_their_own(
    sides: tuple[Path, Path], corpus: tuple[Path, list[dict[str, Any]]]
) -> None:
    old, new = sides
    path, cases = corpus
    done = cli(
        "diff", str(old), str(new), "--impact", str(path), "--format", "json", "--workers", "1", "--examples", "4"
    )
    assert done.returncode == 1, done.stderr
    impact = json.loads(done.stdout)["impact"]
    assert impact["entries"] == impact["compared"] == len(cases)
    assert impact["invalid"] == impact["errors"] == 0

    # an independent recount, case by case, with the two policy sets loaded on their own
    old_engine, new_engine = imr_policy.load(old), imr_policy.load(new)
    changed_items = 0
    changed_cases = 0
    for case in cases:
        flips = [
            r["id"]
            for r in case["requests"]
            if _outcome(old_engine, case, r["id"]) != _outcome(new_engine, case, r["id"])
        ]
        changed_items += len(flips)
        changed_cases += bool(flips)
    assert changed_items > 10
    assert (impact["changed_items"], impact["changed_cases"]) == (changed_items, changed_cases)
    assert sum(s["items"] for s in impact["by_service"]) == changed_items
    assert sum(k["items"] for k in impact["by_kind"]) == changed_items
    assert {s["service"] for s in impact["by_service"]} == {"psychotherapy"}

    # attributed to the rule that decided, with what the diff says changed in it
    # most flips come from the raised limit; a pend whose readings of unstated functional improvement
    # now differ in their IMR outcome is attributed to the pend rule that the readings resolve
    cause, *others = impact["by_cause"]
    assert {c["label"] for c in others} <= {"odg-mental-illness-stress: psychotherapy.progress-unknown"}
    assert cause["label"] == "odg-mental-illness-stress: psychotherapy.continued-with-progress"
    assert any("limit `psychotherapy.max-visits`: value 20 -> 24" in note for note in cause["changes"])

    assert impact["examples"]
    for example in impact["examples"]:
        before = _outcome(old_engine, example["case"], example["request"])
        after = _outcome(new_engine, example["case"], example["request"])
        assert before == _side(example, "old")
        assert after == _side(example, "new")
        assert before != after
        assert example["new"]["decisive"] in (
            ["odg-mental-illness-stress@2015-03 psychotherapy.continued-with-progress"],
            ["odg-mental-illness-stress@2015-03 psychotherapy.progress-unknown"],  # a pend resolved by readings
        )
    kinds = {(k["old"], k["new"]) for k in impact["by_kind"]}
    assert ("non_certify", "modify") in kinds


def test_worker_processes_give_the_same_report(
    sides: tuple[Path, Path], corpus: tuple[Path, list[dict[str, Any]]]
) -> None:
    old, new = sides
    path, _ = corpus
    one = cli("diff", str(old), str(new), "--impact", str(path), "--format", "json", "--workers", "1")
    two = cli("diff", str(old), str(new), "--impact", str(path), "--format", "json", "--workers", "2")
    assert one.returncode == two.returncode == 1, two.stderr
    assert json.loads(one.stdout)["impact"] == json.loads(two.stdout)["impact"]


def test_identical_sides_change_no_decision(corpus: tuple[Path, list[dict[str, Any]]]) -> None:
    path, cases = corpus
    done = cli("diff", "policies", "policies", "--impact", str(path), "--workers", "1", "--format", "json")
    assert done.returncode == 0, done.stderr
    impact = json.loads(done.stdout)["impact"]
    assert impact["compared"] == len(cases)
    assert impact["changed_items"] == impact["basis_only_items"] == 0
    assert impact["examples"] == []


def test_generated_search_shows_shrunk_cases_that_reproduce(sides: tuple[Path, Path]) -> None:
    old, new = sides
    done = cli("diff", str(old), str(new), "--impact", "generated", "--generated-examples", "150", "--format", "json")
    assert done.returncode == 1, done.stderr
    impact = json.loads(done.stdout)["impact"]
    assert impact["mode"] == "generated" and impact["changed_items"] > 0
    assert any("thresholds" in n and "20" in n and "24" in n for n in impact["notes"])
    shrunk = [e for e in impact["examples"] if e["shrunk"]]
    assert shrunk
    old_engine, new_engine = imr_policy.load(old), imr_policy.load(new)
    for example in impact["examples"]:
        assert _outcome(old_engine, example["case"], example["request"]) == _side(example, "old")
        assert _outcome(new_engine, example["case"], example["request"]) == _side(example, "new")
    # shrinking gives small cases: one request, at most one history entry
    for example in shrunk:
        assert len(example["case"]["requests"]) == 1 and len(example["case"].get("history", [])) <= 1

    text = cli("diff", str(old), str(new), "--impact", "generated", "--generated-examples", "150").stdout
    assert "shrunk case:" in text and "case_id: shrunk-1" in text


def test_an_edition_id_stands_in_for_its_guideline(tmp_path: Path) -> None:
    """A single edition against another: evaluated in the shipped packs, with the same dates in force."""
    later = tmp_path / "later.yaml"
    shutil.copy(ROOT / "policies" / "odg-mental-illness-stress" / "2015-03.yaml", later)

    def successor(d: dict[str, Any]) -> None:
        d["edition"].update(id="2099-01")
        d["edition"]["effective"].update({"from": "2099-01-01", "to": None})
        raise_max_visits(d)

    edit(later, successor)
    done = cli(
        "diff", "odg-mental-illness-stress@2015-03", str(later), "--impact", "generated", "--generated-examples", "150",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    impact = json.loads(done.stdout)["impact"]
    notes = " ".join(impact["notes"])
    assert "as the only edition of `odg-mental-illness-stress`" in notes
    assert "odg-mental-illness-stress@2099-01" in notes
    assert impact["changed_items"] > 0
    assert impact["by_cause"][0]["label"].startswith("odg-mental-illness-stress: psychotherapy.continued-with-progress")


def test_impact_out_lists_every_changed_item_with_totals_that_add_up(
    sides: tuple[Path, Path], corpus: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Issue 14.3: the complete list of what flips (CSV and JSON Lines), and visits gained and lost by
    jurisdiction, service and month, checked against an independent recount."""
    import csv

    old, new = sides
    path, cases = corpus
    csv_out, jsonl_out = tmp_path / "changed.csv", tmp_path / "changed.jsonl"
    args = ("diff", str(old), str(new), "--impact", str(path), "--workers", "1", "--examples", "1")
    done = cli(*args, "--format", "json", "--impact-out", str(csv_out))
    assert done.returncode == 1, done.stderr
    impact = json.loads(done.stdout)["impact"]
    also = cli(*args, "--format", "text", "--impact-out", str(jsonl_out))
    assert also.returncode == 1, also.stderr

    old_engine, new_engine = imr_policy.load(old), imr_policy.load(new)
    expected: dict[tuple[str, str], tuple[Any, ...]] = {}
    for case in cases:
        for r in case["requests"]:
            before = _outcome(old_engine, case, r["id"])
            after = _outcome(new_engine, case, r["id"])
            if before != after:
                expected[(case["case_id"], r["id"])] = (*before, *after, case["jurisdiction"], r["date_of_service"])
    assert len(expected) == impact["changed_items"] > len(impact["examples"])

    with csv_out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    lines = [json.loads(line) for line in jsonl_out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(lines) == len(expected)
    for row, line in zip(rows, lines, strict=True):
        assert row["case_id"] == line["case_id"] and row["request"] == line["request"]
        old_det, old_n, old_imr, new_det, new_n, new_imr, jurisdiction, dos = expected[
            (line["case_id"], line["request"])
        ]
        assert (line["old_determination"], line["old_approved_quantity"], line["old_imr_outcome"]) == (
            old_det,
            old_n,
            old_imr,
        )
        assert (line["new_determination"], line["new_approved_quantity"], line["new_imr_outcome"]) == (
            new_det,
            new_n,
            new_imr,
        )
        assert (line["jurisdiction"], line["date_of_service"]) == (jurisdiction, dos)
        assert line["approved_change"] == new_n - old_n == int(row["approved_change"])
        assert line["cause"]

    gained = sum(max(0, v[4] - v[1]) for v in expected.values())
    lost = sum(max(0, v[1] - v[4]) for v in expected.values())
    assert gained > 0
    assert (impact["visits_gained"], impact["visits_lost"]) == (gained, lost)
    for key in ("by_jurisdiction", "by_service_visits", "by_month"):
        assert sum(b["items"] for b in impact[key]) == len(expected), key
        assert sum(b["visits_gained"] for b in impact[key]) == gained, key
        assert sum(b["visits_lost"] for b in impact[key]) == lost, key
    by_j = {b["jurisdiction"]: b["items"] for b in impact["by_jurisdiction"]}
    assert by_j == {j: sum(1 for v in expected.values() if v[6] == j) for j in {v[6] for v in expected.values()}}
    months = [b["month"] for b in impact["by_month"]]
    assert months == sorted(months)
    assert {m: sum(1 for v in expected.values() if v[7][:7] == m) for m in months} == {
        b["month"]: b["items"] for b in impact["by_month"]
    }
    assert f"{len(expected):,} changed items written to `{jsonl_out}`" in also.stderr
    assert f"approved visits: {gained:,} gained, {lost:,} lost" in also.stdout
    assert "--impact-out FILE` writes every one" in also.stdout


def test_impact_out_without_impact_is_a_usage_error(tmp_path: Path) -> None:
    done = cli("diff", "policies", "policies", "--impact-out", str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "--impact-out needs --impact" in done.stderr
