"""Shared fixtures. `pytest --update-golden` rewrites golden files; review the diff before committing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

import imr_policy

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases"
GOLDEN = Path(__file__).resolve().parent / "golden"


# Property tests: `ci` (default) is derandomized and bounded so CI is repeatable and quick;
# `long` (HYPOTHESIS_PROFILE=long) searches far more widely.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# The slow tier: real servers, subprocess CLIs under memory limits, headless Chromium, wheel builds,
# Hypothesis searches and the exhaustive counterfactual check. `python3 -m pytest -m "not slow"` is the
# quick loop for editing (4 of the 6.7 minutes measured on 2026-12-02); CI and the README run everything.
_SLOW_DIRS = ("tests/service/", "tests/property/")
_SLOW_FILES = (
    "tests/unit/test_benchmark_scripts.py",
    "tests/unit/test_hostile.py",
    "tests/unit/test_packaging.py",
    "tests/unit/test_diff_report_html.py",
)
_SLOW_TESTS = (
    "test_every_counterfactual_of_the_shipped_policy_tests_holds_when_decided_again",
    "test_the_html_letter_renders_in_headless_chromium",
)


# The fast tier (`-m fast`, issue 10): tests of pure code, run on every change. Every test outside the slow
# tier and outside these files, which run the CLI, git, the batch runner, or every policy test or fixture of
# the shipped packs. A fast test may not start a process: the fixture below fails it if it tries, so the tier
# stays fast as tests are added.
_NOT_FAST_FILES = (
    "tests/unit/test_policy_tests.py",
    "tests/unit/test_impact.py",
    "tests/unit/test_lint.py",
    "tests/unit/test_working_directory.py",
    "tests/unit/test_diff.py",
    "tests/unit/test_docs_and_quality.py",
    "tests/unit/test_worker_crash.py",
    "tests/unit/test_batch.py",
    "tests/unit/test_diff_procedure.py",
    "tests/unit/test_migrate.py",
    "tests/unit/test_validate_cli.py",
    "tests/unit/test_invalid_fixtures.py",
    "tests/unit/test_sarif.py",
    "tests/unit/test_engine.py",
    "tests/unit/test_bad_input.py",
    "tests/unit/test_timeliness.py",
    "tests/unit/test_show.py",
    "tests/unit/test_explain.py",
    "tests/unit/test_ur_letter_writer.py",
    "tests/unit/test_extras.py",
    "tests/unit/test_letter.py",
    "tests/unit/test_diagnostic_verb.py",
    "tests/unit/test_row_numbers.py",
    "tests/unit/test_diff_renderers.py",
    "tests/unit/test_architecture.py",  # runs lint-imports
)
_NOT_FAST_TESTS = ("test_the_compliance_diff_reports_the_reading_as_a_decision_change",)  # `imr-policy diff`
_NOT_FAST_DIRS = ("policies/",)  # the shipped packs' policy tests: `imr-policy test` runs them too


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: the slow tier (tests/conftest.py says which); deselect with -m 'not slow'"
    )
    config.addinivalue_line(
        "markers", "fast: the fast tier, pure code and no process started (tests/conftest.py); select with -m fast"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix() if str(item.fspath) else ""
        if where.startswith(_SLOW_DIRS) or where in _SLOW_FILES or item.name.split("[")[0] in _SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        elif not (
            where in _NOT_FAST_FILES or where.startswith(_NOT_FAST_DIRS) or item.name.split("[")[0] in _NOT_FAST_TESTS
        ):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test of the fast tier that starts a process fails, saying so (move it to `_NOT_FAST_FILES`)."""
    if request.node.get_closest_marker("fast") is None:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a fast-tier test started a process: list its file in tests/conftest.py _NOT_FAST_FILES")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files instead of comparing")


@pytest.fixture(scope="session")
def engine() -> imr_policy.Engine:
    return imr_policy.load()


@pytest.fixture(scope="session")
def reference_engine() -> imr_policy.Engine:
    return imr_policy.load(engine="reference")


def load_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Compare text with tests/golden/<name>, or rewrite it under --update-golden."""

    def check(name: str, actual: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"golden file {path} is missing; run pytest --update-golden and review it"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"output differs from {path}; if intended, run pytest --update-golden"

    return check
