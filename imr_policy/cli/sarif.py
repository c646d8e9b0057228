"""SARIF 2.1.0 for `imr-policy validate --format sarif` and `lint --format sarif`.

SARIF (OASIS Static Analysis Results Interchange Format) is what CI systems read to show a checker's findings on
the lines they concern: GitHub code scanning, GitLab, Azure DevOps and editors' SARIF viewers. This module only
formats: the diagnostics are the ones the text and JSON formats print, in the same order, one result each.

- Each diagnostic code is a rule (`tool.driver.rules`), and each result names it by `ruleId` and `ruleIndex`.
- The level is the severity (`error`, `warning`, `note`).
- A file under the working directory is written relative to `%SRCROOT%` (the working directory, given in
  `originalUriBaseIds`), so a CI system that checks the repository out elsewhere still finds it; another file is
  written as an absolute `file:` URI.
- Lines and columns are 1-based and count characters (`columnKind: unicodeCodePoints`), as the text format's do.
- The JSON path of the offending value is the result's logical location, and a fingerprint of code, file and path
  (not the line, which moves with every edit above it) lets a CI system follow a finding across commits.

Rule files hold no patient data, and a case file given to `validate` is refused with one diagnostic whose message
quotes none of it, so nothing here needs redacting beyond what the diagnostics already do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from imr_policy.model.diagnostics import DOCS_URL, Diagnostic

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT = "imrPolicyDiagnostic/v1"


def sarif_log(
    diagnostics: Iterable[Diagnostic],
    *,
    tool_version: str,
    exit_code: int,
    properties: Mapping[str, object] | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """One SARIF log with one run: the tool, its rules (one per code used) and one result per diagnostic.

    `root` is the directory relative paths are written against (default: the working directory); `properties`
    go on the run (the policy set read and its content hash)."""
    base = (root or Path.cwd()).resolve()
    rules: dict[str, int] = {}
    results = [_result(d, rules, base) for d in diagnostics]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "imr-policy",
                "version": tool_version,
                "rules": [_rule(code) for code in rules],
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [{"executionSuccessful": True, "exitCode": exit_code}],
        "results": results,
    }
    if _semver(tool_version):
        run["tool"]["driver"]["semanticVersion"] = tool_version
    if properties:
        run["properties"] = dict(properties)
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rule(code: str) -> dict[str, Any]:
    anchor = code.replace(".", "")
    return {
        "id": code,
        "name": code,
        "help": {"text": f"see {DOCS_URL}#{anchor}", "markdown": f"see [`{code}`]({DOCS_URL}#{anchor})"},
        "properties": {"docs": f"{DOCS_URL}#{anchor}"},
    }


def _result(d: Diagnostic, rules: dict[str, int], base: Path) -> dict[str, Any]:
    index = rules.setdefault(d.code, len(rules))
    text = d.message if not d.hint else f"{d.message} (hint: {d.hint})"
    result: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": index,
        "level": d.severity.value,
        "message": {"text": text},
        "locations": [_location(d, base)],
        "partialFingerprints": {FINGERPRINT: _fingerprint(d)},
    }
    if d.hint:
        result["properties"] = {"hint": d.hint}
    return result


def _location(d: Diagnostic, base: Path) -> dict[str, Any]:
    location: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": d.path, "kind": "object"}]}
    if d.file is None:
        return location
    physical: dict[str, Any] = {"artifactLocation": _artifact(d.file, base)}
    if d.line is not None:
        physical["region"] = {"startLine": d.line, "startColumn": d.column or 1}
    location["physicalLocation"] = physical
    return location


def _artifact(file: str, base: Path) -> dict[str, str]:
    path = Path(file)
    absolute = path if path.is_absolute() else base / path
    try:
        relative = absolute.resolve().relative_to(base)
    except (ValueError, OSError):
        return {"uri": absolute.resolve().as_uri()}
    return {"uri": quote(PurePosixPath(*relative.parts).as_posix()), "uriBaseId": SRCROOT}


def _fingerprint(d: Diagnostic) -> str:
    return hashlib.sha256("\x1f".join((d.code, d.file or "", d.path)).encode()).hexdigest()


def _semver(version: str) -> bool:
    parts = version.split("+", 1)[0].split("-", 1)[0].split(".")
    return len(parts) == 3 and all(p.isdigit() for p in parts)
