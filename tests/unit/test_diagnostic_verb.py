"""`imr-policy diagnostic CODE`: every documented code, its section of docs/diagnostics.md, and the `see:`
line that leads to it (the docs path inside a checkout, the verb elsewhere)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imr_policy.cli.cmd_diagnostic import sections
from imr_policy.model.diagnostics import Diagnostic, Severity, see
from tests.conftest import ROOT
from tests.unit.test_invalid_fixtures import EXPECTED_CODES


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imr_policy.cli.main", *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def test_every_code_has_one_section_and_the_list_is_the_codes() -> None:
    documented = sections((ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8"))
    assert set(documented) == set(EXPECTED_CODES)
    out = cli("diagnostic", "--list")
    assert out.returncode == 0
    assert out.stdout.splitlines() == list(documented)


def test_a_section_ends_where_the_next_heading_starts() -> None:
    text = "# Diagnostics\n\n## a.one\n\nfirst\n\n## Prose\n\nnot a code\n\n## a.two\n\nsecond\n"
    assert sections(text) == {"a.one": "## a.one\n\nfirst\n", "a.two": "## a.two\n\nsecond\n"}


def test_the_verb_prints_the_section_and_refuses_an_unknown_code() -> None:
    out = cli("diagnostic", "policy.unused-limit")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("## policy.unused-limit\n")
    assert "**Fix:**" in out.stdout and "## " not in out.stdout[3:]
    # the code as a message prints it, in brackets, is accepted too
    assert cli("diagnostic", "[policy.unused-limit]").stdout == out.stdout
    wrong = cli("diagnostic", "policy.unused-limt")
    assert wrong.returncode == 2
    assert "`policy.unused-limt` is not a documented code; did you mean `policy.unused-limit`?" in wrong.stderr
    assert cli("diagnostic").returncode == 2


@pytest.mark.parametrize("inside", [True, False])
def test_the_see_line_is_the_docs_path_in_a_checkout_and_the_verb_elsewhere(
    inside: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT if inside else tmp_path)
    d = Diagnostic(code="policy.unknown-limit", message="m", file="f.yaml", severity=Severity.ERROR)
    want = "docs/diagnostics.md#policyunknown-limit" if inside else "imr-policy diagnostic policy.unknown-limit"
    assert see("policy.unknown-limit") == want
    assert d.render().endswith(f"\n  see: {want}")
