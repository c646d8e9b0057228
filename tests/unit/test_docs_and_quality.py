"""Docs cannot drift from the code, and the package stays lint-clean and strictly typed."""

from __future__ import annotations

import subprocess
import sys

from imr_policy.language.facts import FACTS
from tests.conftest import ROOT


def test_every_fact_is_documented_for_authors() -> None:
    text = (ROOT / "docs/policy-authoring.md").read_text(encoding="utf-8")
    missing = [name for name in FACTS if f"| `{name}` |" not in text]
    assert missing == []


def test_every_rule_file_declares_its_schema_for_editors() -> None:
    for path in (ROOT / "policies").rglob("*.yaml"):
        if "tests" in path.parts:
            continue
        first = path.read_text(encoding="utf-8").splitlines()[0]
        schema = "jurisdiction" if path.parent.name == "jurisdictions" else "policy"
        if path.parent.name.endswith("-ur-procedure"):
            schema = "ur-procedure"
        assert first == f"# yaml-language-server: $schema=../../schemas/{schema}.schema.json", path


def test_readme_quickstart_has_exactly_the_two_commands_ci_runs() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quickstart.*?```sh\n(.*?)```", readme, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert "imr-policy evaluate examples/cases/imr-2015-psych-example.yaml" in commands[0]
    assert commands[1] in (ROOT / ".ci/run").read_text(encoding="utf-8")


def test_ruff() -> None:
    targets = [d for d in ("imr_policy", "tests", "benchmarks") if (ROOT / d).is_dir()]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *targets],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_case_format_doc_names_every_field_of_the_case_schema() -> None:
    """docs/case-format.md explains the contract field by field; a field added to the schema must be added
    there (issue 14.8: the schemas cited a spec file the repository did not have)."""
    import json

    schema = json.loads((ROOT / "schemas" / "case.schema.json").read_text(encoding="utf-8"))
    doc = (ROOT / "docs" / "case-format.md").read_text(encoding="utf-8")
    defs = schema.get("$defs", {})

    def names(node: dict, depth: int = 0) -> set[str]:
        if depth > 8:
            return set()
        if "$ref" in node:
            node = defs.get(node["$ref"].split("/")[-1], {})
        if node.get("type") == "array" and "items" in node:
            return names(node["items"], depth + 1)
        out = set()
        for key, value in node.get("properties", {}).items():
            out.add(key)
            out |= names(value, depth + 1)
        return out

    import re

    missing = sorted(n for n in names(schema) if not re.search(r"[`.]" + re.escape(n) + r"[`.\[]", doc))
    assert missing == []
    for name in ("case.schema.json", "decision.schema.json"):
        text = (ROOT / "schemas" / name).read_text(encoding="utf-8")
        assert "docs/case-format.md" in text and "spec/case-format.md)" not in text.replace("docs/case-format.md)", "")


def test_the_complete_example_of_the_authoring_guide_is_a_valid_format_2_pack() -> None:
    import re

    from imr_policy.loading.validate import check_text

    text = (ROOT / "docs/policy-authoring.md").read_text(encoding="utf-8")
    block = re.search(r"## A complete example\n\n```yaml\n(.*?)```", text, re.S)
    assert block is not None
    edition, problems, _ = check_text(block.group(1), file="docs/policy-authoring.md")
    assert edition is not None and problems == [], [d.render() for d in problems]
    assert edition.format == 2 and edition.hit_policy("psychotherapy") == "first"
