"""The renderer bugs of issue 14.3: each side's "used by" on its own, a removed exception in the old
column, "Changed thresholds" only for numbers that changed, a removed description said to be removed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ODG = ROOT / "tests/format1/policies/odg-mental-illness-stress/2015-03.yaml"  # format 1: edited as data


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("renderers")
    (root / "old").mkdir()
    (root / "new").mkdir()
    text = ODG.read_text(encoding="utf-8")
    (root / "old" / "2015-03.yaml").write_text(text, encoding="utf-8")
    cut = text.index("\nexceptions:")
    new = text[:cut] + "\n"  # the exception (and the invariants naming it) removed
    new = _replace(new, "    description: A 4 to 6 session trial.\n", "")  # a rule's description removed
    # a limit whose words change, not its number
    new = _replace(
        new,
        "    description: a 4 to 6 session trial\n",
        "    description: a trial of 4 to 6 sessions\n",
    )
    # a threshold that changes, and one of its two users stops using it
    new = _replace(new, "    value: 20\n    range: [13, 20]\n", "    value: 18\n    range: [13, 20]\n")
    new = _replace(new, "      ceiling: psychotherapy.max-visits\n", "")
    (root / "new" / "2015-03.yaml").write_text(new, encoding="utf-8")
    return root / "old", root / "new"


def diff(sides: tuple[Path, Path], fmt: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "imr_policy", "diff", str(sides[0]), str(sides[1]), "--format", fmt],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr
    return done.stdout


def test_text(sides: tuple[Path, Path]) -> None:
    out = diff(sides, "text")
    assert not re.search(r"-> *$", out, re.MULTILINE), "a value rendered as nothing"
    assert "description: A 4 to 6 session trial. -> (removed)" in out
    assert "value (unchanged): 6 (stated 4-6) sessions" in out
    assert "6 (stated 4-6) sessions -> 6 (stated 4-6) sessions" not in out
    assert "value: 20 (stated 13-20) visits -> 18 (stated 13-20) visits" in out
    # each side's users on its own line, not merged
    assert re.search(
        r"used by \(old\): rule psychotherapy.continued-with-progress, rule\s+"
        r"psychotherapy.continued-without-progress\n"
        r"\s+used by \(new\): rule psychotherapy.continued-with-progress\n",
        out,
    ), out


def test_markdown_lists_only_changed_numbers_as_thresholds(sides: tuple[Path, Path]) -> None:
    out = diff(sides, "markdown")
    table = out.split("### Changed thresholds", 1)[1].split("###", 1)[0]
    assert "`psychotherapy.max-visits`" in table
    assert "`psychotherapy.trial-visits`" not in table, "a limit whose number did not change"
    assert (
        "rule psychotherapy.continued-with-progress, rule psychotherapy.continued-without-progress → "
        "rule psychotherapy.continued-with-progress" in table
    )
    assert "limit `psychotherapy.trial-visits` changed" in out
    assert "description: A 4 to 6 session trial. → (removed)" in out


def test_html_puts_a_removed_exception_in_the_old_column(sides: tuple[Path, Path]) -> None:
    page = diff(sides, "html")
    block = page.split('data-entity="exception" data-id="psychotherapy.very-severe-symptomatology"', 1)[1]
    block = block.split("</table>", 1)[0]
    cells = re.findall(r'<td class="(old|new)">(.*?)</td>', block)
    assert cells
    assert all(text for side, text in cells if side == "old")
    assert all(not text for side, text in cells if side == "new")
    used = page.split('data-id="psychotherapy.max-visits"', 1)[1].split("</table>", 1)[0]
    row = re.search(r"<tr><th>used by</th><td class=\"old\">(.*?)</td><td class=\"new\">(.*?)</td></tr>", used)
    assert row is not None
    assert "continued-without-progress" in row.group(1) and "continued-without-progress" not in row.group(2)
