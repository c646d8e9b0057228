"""`imr-policy diff`: a semantic diff of two policy sets, on temporary copies of the shipped packs.

Every test builds its sides in tmp_path from the shipped files (edited as YAML data, so that edits to
the shipped packs by other work do not break them), or from the frozen pair in tests/diff/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from imr_policy.compliance.diff import PolicySet, diff_editions, diff_policy_sets
from imr_policy.loading.validate import load_editions
from tests.conftest import ROOT

ODG = ROOT / "tests" / "format1" / "policies" / "odg-mental-illness-stress" / "2015-03.yaml"  # format 1: edited as data
FROZEN_OLD = "tests/diff/odg-2015-03.yaml"
FROZEN_NEW = "tests/diff/odg-2016-01.yaml"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", "diff", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit a rule file as data (comments are lost, which the diff must not care about)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def odg_dir(root: Path) -> Path:
    """A policy directory holding one copy of the shipped ODG 2015-03 edition, open-ended."""
    target = root / "odg-mental-illness-stress" / "2015-03.yaml"
    target.parent.mkdir(parents=True)
    shutil.copy(ODG, target)
    edit(target, lambda d: d["edition"]["effective"].update(to=None))
    return target


def item(data: dict[str, Any], key: str, ident: str) -> dict[str, Any]:
    found: dict[str, Any] = next(x for x in data[key] if x["id"] == ident)
    return found


def raise_max_visits(d: dict[str, Any]) -> None:
    """20 (13-20) -> 24 (13-24), cited to a new (fictitious) citation with its own provenance."""
    lim = item(d, "limits", "psychotherapy.max-visits")
    lim.update(value=24, range=[13, 24], citation="later-guidelines", provenance="V-2nd")
    d["citations"].append(
        {
            "id": "later-guidelines",
            "section": "Psychotherapy Guidelines, later wording (test)",
            "pages": "7",
            "quote": "a made-up quotation for a test",
            "provenance": "V-2nd",
            "source": "tests",
        }
    )


def test_identical_sides_report_nothing_and_exit_0(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "policies", copy)
    for old, new in (
        ("policies", str(copy)),
        ("odg-mental-illness-stress@2015-03", "policies/odg-mental-illness-stress/2015-03.yaml"),
    ):
        done = cli(old, new)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "No differences: the policy sets are equivalent" in done.stdout
        as_json = json.loads(cli(old, new, "--format", "json").stdout)
        assert as_json["equivalent"] is True
        assert as_json["counts"] == {"decision": 0, "basis": 0, "text": 0}
        assert all(e["changes"] == [] and e["relation"] == "same" for e in as_json["editions"])
        assert as_json["jurisdictions"] == []


def test_comments_and_key_order_are_not_changes(tmp_path: Path) -> None:
    old = odg_dir(tmp_path / "old")
    new = odg_dir(tmp_path / "new")
    edit(new, lambda d: d["citations"].reverse())
    done = cli(str(old.parent.parent), str(new.parent.parent))
    assert done.returncode == 0, done.stdout


def test_a_changed_threshold_names_old_and_new_value_and_both_citations(tmp_path: Path) -> None:
    old = odg_dir(tmp_path / "old")
    new = odg_dir(tmp_path / "new")
    edit(new, raise_max_visits)
    done = cli(str(old.parent.parent), str(new.parent.parent))
    assert done.returncode == 1, done.stderr
    text = done.stdout
    assert "limit `psychotherapy.max-visits` changed [affects decisions]" in text
    assert "value: 20 (stated 13-20) visits -> 24 (stated 13-24) visits" in text
    old_cite = next(
        c for c in yaml.safe_load(ODG.read_text(encoding="utf-8"))["citations"] if c["id"] == "psychotherapy-guidelines"
    )
    flat = " ".join(text.split())
    assert f"citation (old): {old_cite['section']} [{old_cite['provenance']}] (`psychotherapy-guidelines`)" in flat
    assert "citation (new): Psychotherapy Guidelines, later wording (test), p. 7 [V-2nd] (`later-guidelines`)" in flat
    assert "provenance: V-seed -> V-2nd" in text
    assert "rule psychotherapy.continued-with-progress" in flat  # used by

    doc = json.loads(cli(str(old.parent.parent), str(new.parent.parent), "--format", "json").stdout)
    assert doc["equivalent"] is False
    [pair] = [e for e in doc["editions"] if e["changes"]]
    limit = next(c for c in pair["changes"] if c["entity"] == "limit")
    fields = {f["field"]: (f["old"], f["new"]) for f in limit["fields"]}
    assert fields["value"] == (20, 24)
    assert fields["range"] == ([13, 20], [13, 24])
    assert limit["old_citation"]["id"] == "psychotherapy-guidelines"
    assert limit["old_citation"]["provenance"] == old_cite["provenance"]
    assert limit["new_citation"] == {
        "id": "later-guidelines",
        "section": "Psychotherapy Guidelines, later wording (test)",
        "pages": "7",
        "quote": "a made-up quotation for a test",
        "provenance": "V-2nd",
        "source": "tests",
    }
    assert "rule psychotherapy.continued-with-progress" in limit["used_by"]["new"]

    md = cli(str(old.parent.parent), str(new.parent.parent), "--format", "markdown").stdout
    row = next(line for line in md.splitlines() if line.startswith("| `psychotherapy.max-visits`"))
    assert "| 20 (stated 13-20) visits | 24 (stated 13-24) visits |" in row
    assert "`psychotherapy-guidelines`" in row and "`later-guidelines`" in row


def test_successive_editions_of_one_guideline(tmp_path: Path) -> None:
    """Adding an edition next to the old one: the new edition is compared with the one it succeeds."""
    old = odg_dir(tmp_path / "old")
    new = odg_dir(tmp_path / "new")
    edit(new, lambda d: d["edition"]["effective"].update(to="2015-12-31"))
    later = new.parent / "2016-01.yaml"
    shutil.copy(new, later)

    def successor(d: dict[str, Any]) -> None:
        d["edition"].update(id="2016-01", title="a later edition (test)")
        d["edition"]["effective"].update({"from": "2016-01-01", "to": None})
        raise_max_visits(d)

    edit(later, successor)
    doc = json.loads(cli(str(old.parent.parent), str(new.parent.parent), "--format", "json").stdout)
    relations = {
        (e["relation"], (e["old"] or {}).get("edition"), (e["new"] or {}).get("edition")) for e in doc["editions"]
    }
    assert relations == {
        ("same", "2015-03", "2015-03"),
        ("added", None, "2016-01"),
        ("successor", "2015-03", "2016-01"),
    }
    same = next(e for e in doc["editions"] if e["relation"] == "same")
    [header] = same["changes"]
    assert [(f["field"], f["old"], f["new"]) for f in header["fields"]] == [("effective_to", None, "2015-12-31")]
    succ = next(e for e in doc["editions"] if e["relation"] == "successor")
    changed = {(c["entity"], c["id"]) for c in succ["changes"]}
    assert ("limit", "psychotherapy.max-visits") in changed
    assert ("edition", "odg-mental-illness-stress@2016-01") in changed

    # the same two editions named as shipped-style edition files: paired whatever their ids
    text = cli(str(old), str(later)).stdout
    assert "odg-mental-illness-stress@2015-03 -> odg-mental-illness-stress@2016-01" in text
    assert "value: 20 (stated 13-20) visits -> 24 (stated 13-24) visits" in text


def _load(path: Path) -> PolicySet:
    result = load_editions([path], display_root=path.parent)
    assert result.ok, result.diagnostics
    return PolicySet(result.editions, result.profiles)


def test_renames_are_detected_by_content_and_followed_through_references(tmp_path: Path) -> None:
    old = odg_dir(tmp_path / "old")
    new = odg_dir(tmp_path / "new")

    def rename(d: dict[str, Any]) -> None:
        item(d, "rules", "psychotherapy.progress-unknown")["id"] = "psychotherapy.progress-not-stated"
        item(d, "limits", "psychotherapy.trial-visits")["id"] = "psychotherapy.first-visits"
        for r in d["rules"]:
            for c in r["when"]:
                if c.get("limit") == "psychotherapy.trial-visits":
                    c["limit"] = "psychotherapy.first-visits"
            if r["outcome"].get("up_to", {}).get("total") == "psychotherapy.trial-visits":
                r["outcome"]["up_to"]["total"] = "psychotherapy.first-visits"

    edit(new, rename)
    diff = diff_policy_sets(_load(old), _load(new))
    [pair] = diff.differing
    summary = {(c.entity, c.kind, c.old_id, c.new_id) for c in pair.changes}
    assert summary == {
        ("rule", "renamed", "psychotherapy.progress-unknown", "psychotherapy.progress-not-stated"),
        ("limit", "renamed", "psychotherapy.trial-visits", "psychotherapy.first-visits"),
    }
    # the rules that use the renamed limit are not reported as changed: the rename is reported once
    assert all(c.fields == () for c in pair.changes)


def test_conditions_outcomes_exceptions_order_and_silence(tmp_path: Path) -> None:
    old = odg_dir(tmp_path / "old")
    new = odg_dir(tmp_path / "new")

    def change(d: dict[str, Any]) -> None:
        trial = item(d, "rules", "psychotherapy.initial-trial")
        trial["when"][0]["op"] = "lte"
        without = item(d, "rules", "psychotherapy.continued-without-progress")
        without["outcome"]["reason"] = "reworded"
        exc = d["exceptions"][0]
        exc["when"] = [{"fact": "severity", "op": "in", "value": ["moderate", "severe"]}]
        d["rules"].reverse()
        d.setdefault("silent_on", []).append({"service": "acupuncture", "citation": "psychotherapy-guidelines"})

    edit(new, change)
    diff = diff_policy_sets(_load(old), _load(new))
    assert not diff.equivalent
    [pair] = diff.differing
    by_id = {(c.entity, c.id): c for c in pair.changes}
    trial = by_id[("rule", "psychotherapy.initial-trial")]
    [when] = trial.fields
    assert when.field == "when" and when.effect == "decision"
    assert [c.op for c in when.old] == ["lt"] and [c.op for c in when.new] == ["lte"]
    reason = by_id[("rule", "psychotherapy.continued-without-progress")]
    assert [(f.field, f.effect) for f in reason.fields] == [("outcome.reason", "basis")]
    exc = by_id[("exception", "psychotherapy.very-severe-symptomatology")]
    assert [f.field for f in exc.fields] == ["when"]
    assert by_id[("silence", "acupuncture")].kind == "added"
    header = by_id[("edition", "odg-mental-illness-stress@2015-03")]
    [order] = header.fields
    assert order.field == "rule_order" and order.old == tuple(reversed(order.new))
    assert diff.counts()["decision"] == 4  # condition, exception, order, silence


def test_edition_diff_of_an_edition_with_itself_is_empty() -> None:
    result = load_editions([ODG], display_root=ODG.parent)
    [edition] = result.editions
    assert diff_editions(edition, edition).changes == ()


def test_golden_text_and_markdown(golden: Callable[[str, str], None]) -> None:
    for fmt, name in (("text", "diff-odg.txt"), ("markdown", "diff-odg.md")):
        done = cli(FROZEN_OLD, FROZEN_NEW, "--format", fmt)
        assert done.returncode == 1, done.stderr
        golden(name, done.stdout)


def test_git_revisions_of_the_policies(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    pack = odg_dir(repo / "policies")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    edit(pack, raise_max_visits)
    git("commit", "-q", "-am", "two")

    done = cli("git:HEAD~1", "git:HEAD", "--repo", str(repo))
    assert done.returncode == 1, done.stderr
    assert "value: 20 (stated 13-20) visits -> 24 (stated 13-24) visits" in done.stdout
    assert "old: git:HEAD~1 (" in done.stdout
    assert cli("git:HEAD", "git:HEAD:policies/", "--repo", str(repo)).returncode == 0
    # a single file at a revision, against the working tree
    one = cli("git:HEAD~1:policies/odg-mental-illness-stress/2015-03.yaml", str(pack), "--repo", str(repo))
    assert one.returncode == 1 and "psychotherapy.max-visits" in one.stdout
    # the revision is run from inside the repository when --repo is not given
    assert cli("git:HEAD~1", "git:HEAD", cwd=repo).returncode == 1

    bad = cli("git:no-such-rev", "git:HEAD", "--repo", str(repo))
    assert bad.returncode == 2 and "`no-such-rev` is not a revision" in bad.stderr
    missing = cli("git:HEAD:nowhere", "git:HEAD", "--repo", str(repo))
    assert missing.returncode == 2 and "`nowhere` does not exist at `HEAD`" in missing.stderr
    outside = cli("git:HEAD", "git:HEAD", "--repo", str(tmp_path))
    assert outside.returncode == 2 and "is not inside a git repository" in outside.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    done = cli("no/such/path", "policies")
    assert done.returncode == 2
    assert "`no/such/path` is neither a rule file, a directory, an edition id" in done.stderr
    unknown = cli("odg-mental-illness-stress@1999-01", "policies")
    assert unknown.returncode == 2
    assert "no shipped edition `odg-mental-illness-stress@1999-01`" in unknown.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(ODG.read_text(encoding="utf-8").replace("citation: psychotherapy-trial", "citation: nope", 1))
    invalid = cli(str(broken), "policies")
    assert invalid.returncode == 2
    assert "error[policy.unknown-citation]" in invalid.stderr
    assert f"the rule files of `{broken}` are not valid; nothing was compared" in invalid.stderr
    assert cli("policies", "policies", "--impact", str(tmp_path / "none.jsonl")).returncode == 2


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_report_written_to_a_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    done = cli(FROZEN_OLD, FROZEN_NEW, "--format", fmt, "--out", str(out))
    assert done.returncode == 1 and done.stdout == ""
    assert "psychotherapy.max-visits" in out.read_text(encoding="utf-8")


def test_a_loosened_invariant_and_a_changed_condition_row_are_differences(tmp_path: Path) -> None:
    """Loosening what `verify` guarantees, or the codes that name a condition, is never "no differences"."""
    from imr_policy.compliance.diff import diff_editions
    from imr_policy.loading.validate import load_editions

    root = ROOT / "policies"
    old = next(e for e in load_editions([root]).editions if e.key == "odg-mental-illness-stress@2015-03")
    text = (root / "odg-mental-illness-stress" / "2015-03.yaml").read_text(encoding="utf-8")
    assert "    max: 20\n" in text
    (tmp_path / "2015-03.yaml").write_text(text.replace("    max: 20\n", "    max: 24\n", 1), encoding="utf-8")
    new = load_editions([tmp_path]).editions[0]
    [change] = diff_editions(old, new).changes
    assert (change.entity, change.kind, change.effect) == ("invariant", "changed", "basis")
    assert [(f.field, f.old, f.new) for f in change.fields] == [("max", 20, 24)]

    old_odg = next(e for e in load_editions([root]).editions if e.key == "odg-treatment@2007-05")
    odg_text = (root / "odg-treatment" / "2007-05.yaml").read_text(encoding="utf-8")
    moved = odg_text.replace('icd9: ["847.2", "846"]', 'icd9: ["847.2"]', 1)
    assert moved != odg_text
    (tmp_path / "2015-03.yaml").unlink()
    (tmp_path / "odg.yaml").write_text(moved, encoding="utf-8")
    new_odg = load_editions([tmp_path]).editions[0]
    [row] = diff_editions(old_odg, new_odg).changes
    assert (row.entity, row.id, row.effect) == ("condition", "lumbar-sprain", "decision")
    assert [(f.field, f.old, f.new) for f in row.fields] == [("icd9", ("847.2", "846"), ("847.2",))]


def test_a_changed_severity_scale_is_a_decision_change(tmp_path: Path) -> None:
    """Which severities an unstated severity is read as decides requests, so the diff names it."""
    from imr_policy.compliance.diff import diff_editions
    from imr_policy.loading.validate import load_editions

    root = ROOT / "policies"
    old = next(e for e in load_editions([root]).editions if e.key == "odg-treatment@2007-05")
    text = (root / "odg-treatment" / "2007-05.yaml").read_text(encoding="utf-8")
    widened = text.replace("    values: [mild, severe]\n", "    values: [mild, moderate, severe]\n", 1)
    assert widened != text
    (tmp_path / "odg.yaml").write_text(widened, encoding="utf-8")
    new = load_editions([tmp_path]).editions[0]
    [change] = diff_editions(old, new).changes
    assert (change.entity, change.effect) == ("edition", "decision")
    assert [(f.field, f.old, f.new) for f in change.fields] == [
        (
            "severity_scales",
            ((("chiropractic",), ("mild", "severe")),),
            ((("chiropractic",), ("mild", "moderate", "severe")),),
        )
    ]
