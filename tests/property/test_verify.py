"""`imr-policy verify`: the shipped packs keep their invariants, and a pack edited to break one fails
with a counterexample that reproduces the violation when evaluated on its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import imr_policy
from imr_policy.authoring.verify import verify
from tests.conftest import ROOT


def test_shipped_packs_keep_every_invariant() -> None:
    checks = list(verify(imr_policy.load(), examples=60))
    assert len(checks) >= 20
    assert [c for c in checks if not c.ok] == []


def _broken(tmp_path: Path, pack: str, old: str, new: str) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", root, ignore=shutil.ignore_patterns("tests"))
    path = root / pack
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {pack}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


BREAKAGES = {
    # a limit raised above the invariant's number
    "odg 2015 maximum 20 -> 24": (
        "odg-mental-illness-stress/2015-03.yaml",
        "    value: 20\n    range: [13, 20]\n",
        "    value: 24\n    range: [13, 24]\n",
        "odg-mental-illness-stress@2015-03",
        "psychotherapy.at-most-20-without-the-exception",
    ),
    # a trial made longer than the whole course
    "odg 2018 trial 6 -> 30": (
        "odg-mental-illness-stress/2018-01.yaml",
        "  - id: psychotherapy.trial-visits\n    value: 6\n",
        "  - id: psychotherapy.trial-visits\n    value: 30\n",
        "odg-mental-illness-stress@2018-01",
        "psychotherapy.at-most-20-without-the-exception",
    ),
    # the exception's ceiling raised beyond its invariant
    "odg 2015 severe exception 50 -> 60": (
        "odg-mental-illness-stress/2015-03.yaml",
        "  - id: psychotherapy.max-visits-severe\n    value: 50\n",
        "  - id: psychotherapy.max-visits-severe\n    value: 60\n",
        "odg-mental-illness-stress@2015-03",
        "psychotherapy.at-most-50",
    ),
    # a newer edition quietly more permissive than the one before
    "odg 2018 maximum 20 -> 22": (
        "odg-mental-illness-stress/2018-01.yaml",
        "    value: 20\n    range: [13, 20]\n",
        "    value: 22\n    range: [13, 22]\n",
        "odg-mental-illness-stress@2018-01",
        "not-more-permissive-than-2015-03",
    ),
    # the 2016 CPMTG (selected by the request date) more permissive than the 2009 one: the two cases differ
    # in their request date, which the search sequence reads (issue 14.5)
    "cpmtg 2016 psychotherapy maximum 10 -> 14": (
        "mtus-cpmtg/2016.yaml",
        "  - id: psychotherapy.max-visits\n    value: 10\n    range: [6, 10]\n",
        "  - id: psychotherapy.max-visits\n    value: 14\n    range: [6, 14]\n",
        "mtus-cpmtg@2016",
        "not-more-permissive-than-2009",
    ),
    # a guard removed: manipulation certified without functional improvement
    "cpmtg manipulation without improvement certifies": (
        "mtus-cpmtg/2009.yaml",
        "        outcome:\n          decision: non_certify\n          ceiling: manipulation.max-visits\n",
        "        outcome:\n          decision: certify\n",
        "mtus-cpmtg@2009",
        "manipulation.at-most-18",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_a_broken_pack_fails_with_a_counterexample_that_reproduces(tmp_path: Path, name: str) -> None:
    pack, old, new, edition, invariant = BREAKAGES[name]
    engine = imr_policy.load(_broken(tmp_path, pack, old, new))
    failures = [c for c in verify(engine, examples=300, only=[edition]) if not c.ok]
    hit = [c for c in failures if c.edition == edition and c.name == invariant]
    assert hit, [f"{c.edition} {c.name}" for c in failures]
    counterexample = hit[0].counterexample
    assert counterexample is not None
    # the printed case is small and valid, and reproduces the violation evaluated on its own
    text = yaml.safe_dump(counterexample, sort_keys=False)
    case = yaml.safe_load(text)
    assert len(case["requests"]) == 1
    if invariant.startswith("not-more-permissive"):
        # two cases, the same request dated into each edition: evaluated as `imr-policy evaluate` does, each
        # is decided by its own edition and the newer approves more (issue 14.5: they did not reproduce)
        assert hit[0].baseline is not None
        baseline = yaml.safe_load(yaml.safe_dump(hit[0].baseline, sort_keys=False))
        newer, older = engine.evaluate(case).items[0], engine.evaluate(baseline).items[0]
        assert "pend" not in (newer.determination, older.determination)
        assert newer.approved_quantity > older.approved_quantity, hit[0].detail
        assert f"approves {newer.approved_quantity} where" in hit[0].detail
        assert any(b.edition == edition.split("@")[1] and b.role == "decisive" for b in newer.basis)
        assert any(b.edition == invariant.rsplit("-than-", 1)[1] and b.role == "decisive" for b in older.basis)
        return
    item = engine.evaluate(case).items[0]
    completed = sum(h["completed"] for h in case.get("history", []) if h["service"] == case["requests"][0]["service"])
    limit = {"at-most-20": 20, "at-most-50": 50, "at-most-18": 18}[
        next(k for k in ("at-most-20", "at-most-50", "at-most-18") if k in invariant)
    ]
    assert completed + item.approved_quantity > limit
    assert any(b.guideline == edition.split("@")[0] and b.role == "decisive" for b in item.basis)


def test_cli_prints_the_counterexample_and_exits_1(tmp_path: Path) -> None:
    pack, old, new, _, invariant = BREAKAGES["odg 2015 maximum 20 -> 24"]
    root = _broken(tmp_path, pack, old, new)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imr_policy",
            "verify",
            "--policies",
            str(root),
            "--examples",
            "200",
            "--edition",
            "odg-mental-illness-stress@2015-03",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL  odg-mental-illness-stress@2015-03  {invariant}" in done.stdout
    block = done.stdout.split("counterexample (a case file; paste it into a test, or evaluate it):\n")[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("        "):
            break
        lines.append(line[8:])
    case_file = tmp_path / "counterexample.yaml"
    case_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    evaluated = subprocess.run(
        [sys.executable, "-m", "imr_policy", "evaluate", str(case_file), "--policies", str(root), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"approved_quantity"' in evaluated.stdout


def test_cli_passes_on_the_shipped_packs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "imr_policy", "verify", "--examples", "40"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout


def _printed_cases(stdout: str) -> list[tuple[str, str]]:
    """Every case the CLI printed: (the heading line above it, its YAML text)."""
    found: list[tuple[str, str]] = []
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if (
            line.startswith("      ")
            and line.rstrip().endswith(":")
            and ("counterexample" in line or "same request" in line)
        ):
            block = []
            for text in lines[i + 1 :]:
                if not text.startswith("        "):
                    break
                block.append(text[8:])
            found.append((line.strip(), "\n".join(block) + "\n"))
    return found


def _evaluate(case_text: str, root: Path, tmp_path: Path, name: str) -> dict:
    import json

    file = tmp_path / f"{name}.yaml"
    file.write_text(case_text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "imr_policy", "evaluate", str(file), "--policies", str(root), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["items"][0]


@pytest.mark.parametrize("name", ["odg 2018 maximum 20 -> 22", "cpmtg 2016 psychotherapy maximum 10 -> 14"])
def test_every_printed_comparison_reproduces_with_evaluate(tmp_path: Path, name: str) -> None:
    """Issue 14.5: `verify` printed a case for `not-more-permissive-than-...` that pended (or was decided by
    another guideline) when evaluated, because the check decided the edition alone, not through the
    jurisdiction's search sequence. Each printed case, given to `imr-policy evaluate`, now gives the
    approvals the failure states, decided by the edition it names."""
    pack, old, new, edition, invariant = BREAKAGES[name]
    root = _broken(tmp_path, pack, old, new)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imr_policy",
            "verify",
            "--policies",
            str(root),
            "--examples",
            "300",
            "--edition",
            edition,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    fail = next(line for line in done.stdout.splitlines() if line.startswith(f"FAIL  {edition}  {invariant}"))
    detail = done.stdout.split(fail + "\n", 1)[1].splitlines()[0].strip()
    printed = _printed_cases(done.stdout.split(fail, 1)[1].split("\nFAIL", 1)[0])
    assert len(printed) == 2, done.stdout
    newer = _evaluate(printed[0][1], root, tmp_path, "newer")
    older = _evaluate(printed[1][1], root, tmp_path, "older")
    older_id = invariant.rsplit("-than-", 1)[1]
    assert detail.startswith(
        f"edition `{edition.split('@')[1]}` approves {newer['approved_quantity']} where `{older_id}` approves "
        f"{older['approved_quantity']}"
    ), (detail, newer, older)
    assert newer["approved_quantity"] > older["approved_quantity"]
    assert "pend" not in (newer["determination"], older["determination"])
    assert any(b["edition"] == edition.split("@")[1] and b["role"] == "decisive" for b in newer["basis"])
    assert any(b["edition"] == older_id and b["role"] == "decisive" for b in older["basis"])


def test_progress_line_and_the_deprecated_positional_path(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imr_policy",
            "verify",
            str(ROOT / "policies"),
            "--examples",
            "2",
            "--edition",
            "odg-treatment@2007-05",
            "--progress",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "`verify " in done.stderr and "is deprecated; write `verify --policies " in done.stderr
    assert "verify: 0/4 checks done, 0 s; searching odg-treatment@2007-05  chiropractic.at-most-18" in done.stderr
    assert "verify: 3/4 checks done" in done.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "imr_policy", "verify", "--examples", "2", "--edition", "odg-treatment@2007-05"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.returncode == 0 and "checks done" not in quiet.stderr  # not a terminal: no progress line
