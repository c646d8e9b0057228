"""`imr-policy diff --format html`: one self-contained report, checked in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.unit.corpus_cases import generated_cases, write_jsonl
from tests.unit.test_diff import edit, raise_max_visits

# as the machine notes ask: no background networking, no first-run or component updates, a fresh profile
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium (.ci/run installs it); installed here if missing and possible, else the test skips."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get"):
        subprocess.run(
            "apt-get update -qq && apt-get install -y -qq chromium", shell=True, capture_output=True, check=False
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and `apt-get install chromium` failed: the HTML report is not rendered")
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html")
    old, new = root / "old", root / "new"
    shutil.copytree(ROOT / "policies", old)
    shutil.copytree(ROOT / "policies", new)
    edit(new / "odg-mental-illness-stress" / "2015-03.yaml", raise_max_visits)
    corpus = root / "cases.jsonl"
    write_jsonl(corpus, generated_cases(300))
    out = root / "report.html"
    done = subprocess.run(
        [
            sys.executable, "-m", "imr_policy.cli.main", "diff", str(old), str(new),
            "--impact", str(corpus), "--workers", "1", "--format", "html", "--out", str(out),
        ],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return out


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # nothing to fetch: no scripts, style sheets, images or fonts from anywhere
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html


def test_report_renders_in_headless_chromium(report: Path, chromium: str, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    # the diff: the changed threshold, old and new, with both citations
    assert 'id="diff-summary"' in page
    assert 'data-entity="limit" data-id="psychotherapy.max-visits"' in page
    assert "20 (stated 13-20) visits" in page and "24 (stated 13-24) visits" in page
    assert "(<code>psychotherapy-guidelines</code>)" in page and "(<code>later-guidelines</code>)" in page
    # the chart: an inline SVG whose bars carry the counts of the impact section
    assert re.search(r'<svg id="chart-kind"[^>]*>', page)
    bars = re.findall(r'<rect class="bar"[^>]*data-label="([^"]+)" data-count="(\d+)"', page)
    assert bars and all(int(n) > 0 for _, n in bars)
    changed = int(
        re.search(r'id="impact-summary">changed: [\d,]+ cases, ([\d,]+) items', page).group(1).replace(",", "")
    )  # type: ignore[union-attr]
    kind_chart = page.split('<svg id="chart-kind"', 1)[1].split("</svg>", 1)[0]
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', kind_chart)) == changed
    # example cases, as YAML
    assert '<pre class="case">case_id: gen-' in page

    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1600", f"--screenshot={shot}",
         report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]


def test_title_page_names_both_sides_with_their_hashes(report: Path) -> None:
    """Issue 14.4: the date, each side's content hash (as `imr_policy.load` computes it) and git revision."""
    import imr_policy

    page = report.read_text(encoding="utf-8")
    title = page.split('<header id="title">', 1)[1].split("</header>", 1)[0]
    assert re.search(r'<time id="prepared" datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', title)
    old, new = report.parent / "old", report.parent / "new"
    old_hash = imr_policy.load(old).policy_set.content_hash
    new_hash = imr_policy.load(new).policy_set.content_hash
    assert old_hash != new_hash
    assert f"content hash {old_hash}" in title and f"content hash {new_hash}" in title
    assert title.index(old_hash) < title.index(new_hash)
    assert title.count("git revision not in a git repository") == 2  # temporary copies, outside any repository


def test_summary_comes_first_and_prints(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    order = [page.index(f'<{tag} id="{name}"') for tag, name in (("header", "title"), ("section", "summary"),
             ("section", "diff"), ("section", "impact"))]  # fmt: skip
    assert order == sorted(order)
    summary = page.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert 'id="diff-summary"' in summary and 'id="impact-summary"' in summary
    assert re.search(r"approved visits: [\d,]+ gained, [\d,]+ lost \(net [+-][\d,]+\)", summary)
    assert 'id="summary-by-jurisdiction"' in summary
    assert "@media print" in page and "break-inside: avoid" in page


def test_first_screen_shows_the_summary_and_its_table(report: Path, chromium: str, tmp_path: Path) -> None:
    """Laid out by a real headless Chromium in a 1200x900 window: the summary and its first table end
    above the fold. A copy of the report gets a script that records the positions (the report has none)."""
    probe = tmp_path / "probe.html"
    script = (
        "<script>const box = (s) => document.querySelector(s).getBoundingClientRect().bottom;"
        "document.body.setAttribute('data-layout', JSON.stringify({summary: box('#summary'), "
        "table: box('#summary-by-jurisdiction'), height: window.innerHeight}));</script>"
    )
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
         "--virtual-time-budget=2000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r"data-layout=\"([^\"]+)\"", dom.stdout)
    assert found is not None, "the layout probe did not run"
    import html as html_module
    import json

    layout = json.loads(html_module.unescape(found.group(1)))
    assert layout["height"] > 0
    assert 0 < layout["table"] <= layout["summary"] <= layout["height"], layout
