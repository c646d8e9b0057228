"""`imr-policy diff` of UR procedural packs (issue 16): time limits, receipt rules, calendars and holidays are
compared part by part, with the `file:line` of each side, and two sides are never "equivalent" unless
something was compared.

Every side is a temporary copy of a shipped pack (`policies/ca-ur-procedure/`), edited as text so that
the lines the diff reports can be checked against the file itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from imr_policy.cli.diff_report import summary_line
from imr_policy.compliance.diff import PolicySet, diff_policy_sets
from tests.conftest import ROOT

PACKS = ROOT / "policies" / "ca-ur-procedure"
CA_2013 = PACKS / "2013-01-01.yaml"
CA_2020 = PACKS / "2020-01-01.yaml"
ODG = ROOT / "tests" / "format1" / "policies" / "odg-mental-illness-stress" / "2015-03.yaml"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "diff", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def pack(root: Path, source: Path = CA_2013) -> Path:
    """A copy of a shipped procedural pack under `root/ca-ur-procedure/`."""
    target = root / "ca-ur-procedure" / source.name
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    return target


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"`{old}` is not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the only line of `path` that contains `text`."""
    [found] = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line]
    return found


def changes(doc: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    [pair] = doc["procedures"]  # type: ignore[misc]
    return {(c["entity"], c["id"]): c for c in pair["changes"]}


def test_the_two_shipped_california_packs_differ() -> None:
    """The defect of issue 16: these two packs were "equivalent (0 edition pairs compared)"."""
    done = cli(str(CA_2013.relative_to(ROOT)), str(CA_2020.relative_to(ROOT)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "No differences" not in done.stdout and "equivalent" not in done.stdout
    assert "UR procedure `ca-ur-2013` (CA, 2013-01-01 to 2019-12-31) -> UR procedure `ca-ur-2020`" in done.stdout
    assert "effective from: 2013-01-01 -> 2020-01-01" in done.stdout
    assert "- holiday-year `2019` removed [affects decisions]" in done.stdout
    assert "+ holiday-year `2020` added [affects decisions]" in done.stdout
    assert "source: puni-pau -> lc-4600.4" in done.stdout  # the business weekdays' citation
    assert "in 1 of 1 procedural pack entries" in done.stdout.splitlines()[-1]
    doc = json.loads(cli(str(CA_2013), str(CA_2020), "--format", "json").stdout)
    assert doc["equivalent"] is False
    assert doc["compared"] == {"edition_pairs": 0, "procedure_pairs": 1, "jurisdiction_profiles": 0}
    year = changes(doc)[("holiday-year", "2020")]
    assert year["change"] == "added" and year["effect"] == "decision"
    year_line = line_of(CA_2020, '"2020":')
    assert year["new_at"] == f"{CA_2020}:{year_line}"
    assert "2020-11-27" in year["value"]["days"]  # type: ignore[index]


def test_a_changed_time_limit_names_both_values_and_both_lines(tmp_path: Path) -> None:
    old = pack(tmp_path / "old")
    new = pack(tmp_path / "new")
    replace(new, "    value: 72\n", "    value: 48\n")
    replace(new, "(i)(3), expedited review within 72 hours", "(i)(3), expedited review within 48 hours (test)")
    done = cli("old", "new", cwd=tmp_path)  # the files as the user named the sides
    assert done.returncode == 1, done.stderr
    assert "~ time-limit `expedited` changed [affects decisions]" in done.stdout
    assert "value: 72 -> 48" in done.stdout
    assert "expedited review within 48 hours (test)" in " ".join(done.stdout.split())
    line = line_of(old, "- id: expedited")
    assert line == line_of(new, "- id: expedited")
    assert (
        done.stdout.count(
            f"at: old/ca-ur-procedure/2013-01-01.yaml:{line} -> new/ca-ur-procedure/2013-01-01.yaml:{line}"
        )
        == 1
    )
    at_old, at_new = f"{old}:{line}", f"{new}:{line}"
    assert "time-limit `prospective-concurrent`" not in done.stdout  # what did not change is not listed

    doc = json.loads(cli(str(old.parent.parent), str(new.parent.parent), "--format", "json").stdout)
    [limit] = changes(doc).values()
    assert (limit["entity"], limit["change"], limit["effect"]) == ("time-limit", "changed", "decision")
    fields = {f["field"]: (f["old"], f["new"], f["effect"]) for f in limit["fields"]}  # type: ignore[attr-defined]
    assert fields["value"] == (72, 48, "decision")
    assert fields["rule"][2] == "basis"
    assert (limit["old_at"], limit["new_at"]) == (at_old, at_new)
    assert doc["counts"] == {"decision": 1, "basis": 0, "text": 0}


def test_a_holiday_added_to_the_rules_shows_in_every_year_it_falls_in(tmp_path: Path) -> None:
    old = pack(tmp_path / "old")
    new = pack(tmp_path / "new")
    christmas = (
        "        - {name: Christmas Day, status: holiday, month: 12, day: 25, sunday: next_monday, source: gov-6701}\n"
    )
    replace(
        new, christmas, christmas + "        - {name: Test Day, status: holiday, month: 8, day: 3, from_year: 2016}\n"
    )
    done = cli(str(old.parent.parent), str(new.parent.parent), "--format", "json")
    assert done.returncode == 1, done.stderr
    found = changes(json.loads(done.stdout))
    years = sorted(cid for entity, cid in found if entity == "holiday-year")
    assert years == ["2016", "2017", "2018", "2019"]  # from_year: 2016
    fields = {f["field"]: f for f in found[("holiday-year", "2016")]["fields"]}  # type: ignore[attr-defined]
    added = set(fields["days"]["new"]) - set(fields["days"]["old"])
    assert added == {"2016-08-03"} and fields["days"]["effect"] == "decision"
    text = cli(str(old.parent.parent), str(new.parent.parent)).stdout
    assert "~ holiday-year `2016` changed [affects decisions]" in text
    assert "+ 2016-08-03" in text and "+ 2016-08-03 Test Day" in text  # the days, then their names


def test_receipt_rules_cutoff_and_unknowns(tmp_path: Path) -> None:
    old = pack(tmp_path / "old")
    new = pack(tmp_path / "new")
    replace(new, 'after: "17:30"', 'after: "17:00"')
    replace(new, "mail: {presumed_received_after_days: 5,", "mail: {presumed_received_after_days: 6,")
    replace(new, "    cutoff_other_channels: the sources state the 5:30 pm cut-off for fax and e-mail only\n", "")
    replace(new, "time_zone: America/Los_Angeles", "time_zone: America/Chicago")
    done = cli("old", "new", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    text = done.stdout
    assert "~ receipt `cutoff` changed [affects decisions]" in text and "after: 17:30 -> 17:00" in text
    assert "presumed received after days: 5 -> 6" in text
    assert "- receipt `unknown.cutoff_other_channels` removed [affects decisions]" in text
    assert "time zone: America/Los_Angeles -> America/Chicago" in text
    assert f"at: old/ca-ur-procedure/2013-01-01.yaml:{line_of(old, 'cutoff_other_channels')}\n" in text
    assert text.splitlines()[-1].startswith("4 changes in 1 of 1 procedural pack entries: 4 affecting decisions")


def test_identical_packs_say_what_was_compared(tmp_path: Path) -> None:
    old = pack(tmp_path / "old", CA_2020)
    new = pack(tmp_path / "new", CA_2020)
    yaml_data = yaml.safe_load(new.read_text(encoding="utf-8"))  # comments and layout are not differences
    new.write_text(yaml.safe_dump(yaml_data, sort_keys=True, allow_unicode=True, width=200), encoding="utf-8")
    done = cli(str(old), str(new))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (
        "No differences: the policy sets are equivalent (1 procedural pack pair compared)."
    )
    doc = json.loads(cli(str(old), str(new), "--format", "json").stdout)
    assert doc["equivalent"] is True
    assert doc["compared"]["procedure_pairs"] == 1 and doc["procedures"][0]["changes"] == []


def test_clinical_and_procedural_packs_are_both_compared(tmp_path: Path) -> None:
    sides = []
    for name in ("old", "new"):
        root = tmp_path / name
        pack(root)
        edition = root / "odg-mental-illness-stress" / "2015-03.yaml"
        edition.parent.mkdir()
        shutil.copy(ODG, edition)
        sides.append((root, edition))
    (old, _), (new, new_edition) = sides
    replace(new / "ca-ur-procedure" / CA_2013.name, "    value: 30\n", "    value: 45\n")  # retrospective
    data = yaml.safe_load(new_edition.read_text(encoding="utf-8"))
    next(lim for lim in data["limits"] if lim["id"] == "psychotherapy.max-visits").update(value=24, range=[13, 24])
    new_edition.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    done = cli(str(old), str(new))
    assert done.returncode == 1, done.stderr
    assert "limit `psychotherapy.max-visits` changed [affects decisions]" in done.stdout
    assert "~ time-limit `retrospective` changed [affects decisions]" in done.stdout
    assert "value: 30 -> 45" in done.stdout
    assert "in 1 of 1 edition entries and 1 of 1 procedural pack entries" in done.stdout
    doc = json.loads(cli(str(old), str(new), "--format", "json").stdout)
    assert doc["compared"] == {"edition_pairs": 1, "procedure_pairs": 1, "jurisdiction_profiles": 0}
    assert [c["id"] for c in doc["editions"][0]["changes"]] == ["psychotherapy.max-visits"]
    assert list(changes(doc)) == [("time-limit", "retrospective")]
    md = cli(str(old), str(new), "--format", "markdown").stdout
    assert "## UR procedure `ca-ur-2013`" in md and "**time-limit `retrospective` changed**" in md
    html = cli(str(old), str(new), "--format", "html").stdout
    assert 'data-entity="time-limit" data-id="retrospective"' in html


def test_impact_says_what_it_does_with_procedural_packs(tmp_path: Path) -> None:
    only = cli(str(CA_2013), str(CA_2020), "--impact", str(ROOT / "examples" / "cases"))
    assert only.returncode == 2 and only.stdout == ""
    assert "these sides hold only UR procedural packs" in only.stderr
    assert "--impact is not supported for them" in only.stderr

    old = tmp_path / "old"
    shutil.copytree(ROOT / "policies", old)
    new = tmp_path / "new"
    shutil.copytree(ROOT / "policies", new)
    replace(new / "ca-ur-procedure" / CA_2020.name, "    value: 30\n", "    value: 45\n")
    corpus = tmp_path / "cases"
    corpus.mkdir()
    shutil.copy(ROOT / "examples" / "cases" / "acupuncture-low-back-2019.yaml", corpus)
    done = cli(str(old), str(new), "--impact", str(corpus), "--workers", "1", "--no-progress")
    assert done.returncode == 1, done.stderr
    flat = " ".join(done.stdout.split())
    assert "note: 1 change to UR procedural packs not replayed" in flat
    assert "whether each UR decision was timely is not compared" in flat


def test_nothing_compared_is_never_equivalent() -> None:
    diff = diff_policy_sets(PolicySet(()), PolicySet(()))
    assert diff.compared == 0 and not diff.equivalent
    assert summary_line(diff).startswith("Nothing was compared:")
    assert "equivalent (" not in summary_line(diff)


def test_the_report_orders_every_kind_of_entity_the_diff_names() -> None:
    """The report's order (cli/diff_report.ENTITY_ORDER) lists exactly the kinds `diff.Entity` names, so a kind
    added to one is never missing from the other."""
    from typing import get_args

    from imr_policy.cli.diff_report import ENTITY_ORDER
    from imr_policy.compliance.diff import Entity

    assert sorted(ENTITY_ORDER) == sorted(get_args(Entity))
    assert len(set(ENTITY_ORDER)) == len(ENTITY_ORDER)
