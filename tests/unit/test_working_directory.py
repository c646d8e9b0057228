"""Inside a checkout, every verb without a policy path reads the checkout's `policies/`, never the installed
copy, and says which policy set it read (issue 14.1). Real subprocesses in a temporary checkout."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imr_policy.loading.resources import checkout_policies
from tests.conftest import ROOT

CASE = ROOT / "examples/cases/acupuncture-low-back-2019.yaml"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "imr_policy", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packs in which one limit is set outside its stated range."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "policies", root / "policies")
    file = root / "policies/mtus-cpmtg/2009.yaml"
    text = file.read_text(encoding="utf-8")
    assert "    value: 10\n    range: [9, 10]\n" in text
    file.write_text(text.replace("    value: 10\n    range: [9, 10]\n", "    value: 20\n    range: [9, 10]\n", 1))
    (root / "notes" / "deeper").mkdir(parents=True)
    return root


def test_checkout_is_found_from_the_working_directory_or_a_parent(checkout: Path, tmp_path: Path) -> None:
    assert checkout_policies(checkout) == (checkout / "policies").resolve()
    assert checkout_policies(checkout / "notes" / "deeper") == (checkout / "policies").resolve()
    assert checkout_policies(checkout / "policies" / "mtus-cpmtg") == (checkout / "policies").resolve()
    # an empty policies/ directory is not a checkout
    (tmp_path / "policies" / "notes").mkdir(parents=True)
    (tmp_path / "policies" / "readme.yaml").write_text("a: 1\n")
    assert checkout_policies(tmp_path) is None


@pytest.mark.parametrize(
    "verb",
    [
        ("validate",),
        ("lint", "--no-notes"),
        ("test", "-q"),
        ("evaluate", str(CASE)),
        ("explain", str(CASE)),
        ("verify", "--examples", "2"),
        ("serve", "--port", "0"),  # refuses to serve the invalid packs (it read the installed ones)
    ],
    ids=lambda v: v[0],
)
def test_an_edit_in_the_checkout_is_seen_by_every_verb(checkout: Path, verb: tuple[str, ...]) -> None:
    done = run(checkout / "notes" / "deeper", *verb)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "error[policy.limit-outside-range] value `20` lies outside its stated range `9-10`" in out
    assert not re.search(r"(?<![0-9])0 errors", out)  # "580 errors" is not "0 errors"


@pytest.mark.parametrize("verb", [("validate",), ("lint", "--no-notes")], ids=lambda v: v[0])
def test_the_policy_set_read_is_named_with_its_content_hash(checkout: Path, verb: tuple[str, ...]) -> None:
    done = run(checkout, *verb)
    line = next(x for x in done.stdout.splitlines() if x.startswith("policy set: "))
    assert re.fullmatch(
        r"policy set: policies \(sha256:[0-9a-f]{64}; the checkout's packs, found from the working directory\)", line
    ), line
    shipped = run(ROOT, *verb)
    other = next(x for x in shipped.stdout.splitlines() if x.startswith("policy set: "))
    assert other.split("(")[1].split(";")[0] != line.split("(")[1].split(";")[0], "an edit must change the hash"


def test_json_says_which_policy_set(checkout: Path) -> None:
    import json

    data = json.loads(run(checkout, "validate", "--format", "json").stdout)
    assert data["ok"] is False
    assert data["policy_set"]["origin"] == "working directory"
    assert data["policy_set"]["paths"] == ["policies"]
    assert data["policy_set"]["content_hash"].startswith("sha256:")


def test_evaluate_names_the_set_it_decided_with(checkout: Path, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    shutil.copytree(checkout / "policies", fixed / "policies")
    file = fixed / "policies/mtus-cpmtg/2009.yaml"
    file.write_text(file.read_text(encoding="utf-8").replace("    value: 20\n", "    value: 10\n", 1))
    file.write_text(file.read_text(encoding="utf-8") + "# an author's comment\n")
    done = run(fixed, "evaluate", str(CASE), "--format", "json")
    assert done.returncode == 0, done.stderr
    import json

    decided = json.loads(done.stdout)["policy_set"]["content_hash"]
    assert f"policy set: policies ({decided}; the checkout's packs" in done.stderr
    shipped = json.loads(run(ROOT, "evaluate", str(CASE), "--format", "json").stdout)["policy_set"]["content_hash"]
    assert decided != shipped


def test_outside_a_checkout_the_installed_packs_are_read(tmp_path: Path) -> None:
    assert checkout_policies(tmp_path) is None, "the temporary directory must not lie inside a checkout"
    done = run(tmp_path, "validate")
    assert done.returncode == 0, done.stderr
    assert "the installed packs: no policies/ directory in the working directory or its parents" in done.stdout
    assert "0 errors" in done.stdout


def test_diff_reads_an_edition_id_from_the_checkout(tmp_path: Path) -> None:
    """`diff <guideline>@<edition> ...` named an edition of the installed packs even inside a checkout, so an
    author comparing their edited edition with the shipped file saw no difference."""
    edited = tmp_path / "edited"
    shutil.copytree(ROOT / "policies", edited / "policies")
    file = edited / "policies/mtus-cpmtg/2009.yaml"
    text = file.read_text(encoding="utf-8")
    assert "    value: 10\n    range: [9, 10]\n" in text
    file.write_text(text.replace("    value: 10\n    range: [9, 10]\n", "    value: 9\n    range: [9, 10]\n", 1))
    done = run(edited, "diff", str(ROOT / "policies/mtus-cpmtg/2009.yaml"), "mtus-cpmtg@2009")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "physical-medicine.myalgia-myositis" in done.stdout
    assert "value: 10 (stated 9-10) visits -> 9 (stated 9-10) visits" in done.stdout, done.stdout
    same = run(ROOT, "diff", str(ROOT / "policies/mtus-cpmtg/2009.yaml"), "mtus-cpmtg@2009")
    assert same.returncode == 0, same.stdout + same.stderr
