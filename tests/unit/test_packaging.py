"""A wheel built from the repository carries the rule packs and schemas and decides with no checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = """
import json, sys, imr_policy
assert 'unpacked' in imr_policy.__file__, imr_policy.__file__
case = {"case_id": "w", "date_of_injury": "2012-05-17", "diagnoses": [],
        "requests": [{"id": "r", "service": "psychotherapy", "quantity": 3, "date_of_service": "2015-07-10"}]}
print(json.dumps(imr_policy.load().evaluate(case).to_dict()["items"][0]["determination"]))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [built] = out.glob("imr_policy-*.whl")
    return built


def test_wheel_contains_policies_schemas_and_type_marker(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "imr_policy/py.typed" in names
    for name in ("policy", "case", "decision"):
        assert f"imr_policy/_data/schemas/{name}.schema.json" in names
    shipped = sorted(n for n in names if n.startswith("imr_policy/_data/policies/") and n.endswith(".yaml"))
    in_repo = sorted(
        "imr_policy/_data/policies/" + p.relative_to(ROOT / "policies").as_posix()
        for p in (ROOT / "policies").rglob("*.yaml")
    )
    assert shipped == in_repo
    # the example cases ship too (issue 14.8), each with the schema header an editor follows
    examples = sorted(n for n in names if n.startswith("imr_policy/_data/examples/cases/") and n.endswith(".yaml"))
    assert examples == sorted(
        "imr_policy/_data/examples/cases/" + p.name for p in (ROOT / "examples" / "cases").glob("*.yaml")
    )
    for p in (ROOT / "examples" / "cases").glob("*.yaml"):
        assert p.read_text(encoding="utf-8").startswith(
            "# yaml-language-server: $schema=../../schemas/case.schema.json"
        )


def test_installed_wheel_decides_without_a_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '"certify"'


def test_a_wheel_user_can_follow_the_see_line(wheel: Path, tmp_path: Path) -> None:
    """Issue 14.8: `see: docs/diagnostics.md#...` is a repository path. Outside a checkout a diagnostic says
    `see: imr-policy diagnostic CODE`, and that verb prints the code's section from the copy in the wheel."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "imr_policy/_data/docs/diagnostics.md" in names
    target = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    bad = tmp_path / "bad.yaml"
    pack = (ROOT / "tests" / "invalid" / "policy" / "policy.unknown-limit.yaml").read_text(encoding="utf-8")
    bad.write_text(pack, encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imr_policy", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    checked = cli("validate", str(bad))
    assert checked.returncode == 1
    assert "  see: imr-policy diagnostic policy.unknown-limit" in checked.stderr + checked.stdout
    shown = cli("diagnostic", "policy.unknown-limit")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("## policy.unknown-limit\n")
    assert "**Fix:**" in shown.stdout
