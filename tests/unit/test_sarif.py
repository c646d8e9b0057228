"""`validate --format sarif` and `lint --format sarif`: SARIF 2.1.0 that code scanning in CI can read.

Each run is the real CLI on real rule files; the SARIF is compared with the JSON format of the same run, so a
finding can be neither lost nor changed on the way, and checked against what the SARIF 2.1.0 standard requires
(OASIS, sections 3.13 to 3.33: the log, run, tool, rules, results, locations and regions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from imr_policy.cli.sarif import _semver
from tests.conftest import ROOT

SIX = ROOT / "tests/invalid/policy/policy.schema.unknown-field--six-mistakes"
LEVELS = {"none", "note", "warning", "error"}
# the properties SARIF 2.1.0 defines for these objects (the ones this tool may write are a subset)
RESULT_KEYS = {"ruleId", "ruleIndex", "level", "message", "locations", "partialFingerprints", "properties"}
RULE_KEYS = {"id", "name", "help", "properties", "shortDescription", "fullDescription", "helpUri"}


def cli(verb: str, *args: str, cwd: Path = ROOT) -> tuple[int, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", verb, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=_env(),
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def check_log(log: dict[str, Any], base: Path) -> dict[str, Any]:
    """The requirements of SARIF 2.1.0 this tool's logs must meet; returns the one run."""
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "imr-policy" and driver["version"]
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids)), "rule ids are unique"
    for rule in driver["rules"]:
        assert set(rule) <= RULE_KEYS
        assert rule["help"]["text"].startswith("see docs/diagnostics.md#")
    root_uri = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root_uri.startswith("file:///") and root_uri.endswith("/")
    assert run["columnKind"] == "unicodeCodePoints"
    for result in run["results"]:
        assert set(result) <= RESULT_KEYS
        assert result["level"] in LEVELS
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["message"]["text"]
        for location in result["locations"]:
            physical = location.get("physicalLocation")
            if physical is None:
                continue
            artifact = physical["artifactLocation"]
            assert _resolve(artifact, root_uri).is_file(), artifact
            region = physical.get("region")
            if region is not None:
                assert region["startLine"] >= 1 and region["startColumn"] >= 1
    return run


def _resolve(artifact: dict[str, str], root_uri: str) -> Path:
    if artifact.get("uriBaseId") == "%SRCROOT%":
        assert not urlparse(artifact["uri"]).scheme, "a relative reference"
        return Path(unquote(urlparse(root_uri).path)) / unquote(artifact["uri"])
    assert "uriBaseId" not in artifact
    return Path(unquote(urlparse(artifact["uri"]).path))


def same_findings(run: dict[str, Any], diagnostics: list[dict[str, Any]]) -> None:
    """One result per diagnostic of the JSON format, in the same order, saying the same."""
    assert len(run["results"]) == len(diagnostics)
    for result, d in zip(run["results"], diagnostics, strict=True):
        assert result["ruleId"] == d["code"]
        assert result["level"] == d["severity"]
        assert result["message"]["text"].startswith(d["message"])
        if d.get("hint"):
            assert result["properties"]["hint"] == d["hint"]
        (location,) = result["locations"]
        assert location["logicalLocations"][0]["fullyQualifiedName"] == d["path"]
        if "line" in d:
            region = location["physicalLocation"]["region"]
            assert (region["startLine"], region["startColumn"]) == (d["line"], d.get("column", 1))
            assert location["physicalLocation"]["artifactLocation"]["uri"] == d["file"]


def test_six_mistakes_are_six_results_with_their_lines() -> None:
    code, log = cli("validate", str(SIX.relative_to(ROOT)), "--format", "sarif")
    assert code == 1
    run = check_log(log, ROOT)
    assert run["invocations"] == [{"executionSuccessful": True, "exitCode": 1}]
    _, data = cli("validate", str(SIX.relative_to(ROOT)), "--format", "json")
    same_findings(run, data["diagnostics"])
    assert len(run["results"]) == 6
    assert {r["level"] for r in run["results"]} == {"error"}
    assert run["properties"]["policy_set"]["content_hash"] == data["policy_set"]["content_hash"]
    assert run["properties"]["files"] == data["files"]


def test_lint_of_the_shipped_packs_reports_its_notes_and_passes() -> None:
    code, log = cli("lint", "policies", "--format", "sarif")
    assert code == 0
    run = check_log(log, ROOT)
    _, data = cli("lint", "policies", "--format", "json")
    same_findings(run, data["diagnostics"])
    levels = {r["level"] for r in run["results"]}
    assert "error" not in levels
    assert "note" in levels, "lint's notes are results too, at level note"


def test_validate_of_the_shipped_packs_has_no_results() -> None:
    code, log = cli("validate", "policies", "--format", "sarif")
    assert code == 0
    run = check_log(log, ROOT)
    assert [r for r in run["results"] if r["level"] == "error"] == []
    assert run["invocations"][0]["exitCode"] == 0


def test_the_fingerprint_follows_a_finding_that_moves(tmp_path: Path) -> None:
    """A line added above a finding moves its region, not its fingerprint."""
    copy = tmp_path / "six"
    copy.mkdir()
    for file in SIX.glob("*.yaml"):
        (copy / file.name).write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    _, before = cli("validate", "six", "--format", "sarif", cwd=tmp_path)
    moved = copy / "2016-01.yaml"
    moved.write_text("# a comment added above everything\n" + moved.read_text(encoding="utf-8"), encoding="utf-8")
    _, after = cli("validate", "six", "--format", "sarif", cwd=tmp_path)

    def by_print(log: dict[str, Any]) -> dict[str, tuple[str, int]]:
        out = {}
        for r in log["runs"][0]["results"]:
            physical = r["locations"][0]["physicalLocation"]
            out[r["partialFingerprints"]["imrPolicyDiagnostic/v1"]] = (
                physical["artifactLocation"]["uri"],
                physical["region"]["startLine"],
            )
        return out

    old, new = by_print(before), by_print(after)
    assert old.keys() == new.keys() and len(old) == 6
    for key, (uri, line) in old.items():
        assert new[key] == (uri, line + 1 if uri.endswith("2016-01.yaml") else line)


def test_a_file_outside_the_working_directory_is_an_absolute_uri(tmp_path: Path) -> None:
    bad = tmp_path / "my pack" / "2009.yaml"
    bad.parent.mkdir()
    bad.write_text((SIX / "2016-01.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    code, log = cli("validate", str(bad), "--format", "sarif")
    assert code == 1
    run = check_log(log, ROOT)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {bad.as_uri()}, "a space is percent-encoded, and no base is claimed"


@pytest.mark.parametrize(
    ("version", "semantic"), [("0.1.0", True), ("1.2.3+local", True), ("0.0.0+checkout", True), ("1.2", False)]
)
def test_semantic_version_only_when_it_is_one(version: str, semantic: bool) -> None:
    assert _semver(version) is semantic
