"""A pytest plugin: policy test files become pytest tests, one item per test, reported as `imr-policy test` does.

It is registered through the `pytest11` entry point, so it is loaded wherever imr-policy is installed,
but it collects nothing until a project names its test files with glob patterns (relative to the
rootdir), so unrelated YAML is never mistaken for policy tests:

    [tool.pytest.ini_options]
    testpaths = ["tests", "policies"]
    imr_policy_tests = ["policies/*/tests/*.yaml"]

`--imr-policy-engine reference` runs them with the pure-Python evaluator; `--imr-policy-policies DIR`
names the rule packs (default: two folders up from each tests/ folder, as `imr-policy test` does).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imr_policy.authoring.policytest import PolicyTest, Runner, TestFile, TestResult, home_guidelines, load_test_file
from imr_policy.cli.cmd_test import result_text

_RUNNER = pytest.StashKey[Runner]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "imr_policy_tests",
        type="linelist",
        default=[],
        help="glob patterns (relative to the rootdir) of imr-policy test files to collect, "
        "e.g. policies/*/tests/*.yaml",
    )
    group = parser.getgroup("imr-policy")
    group.addoption(
        "--imr-policy-engine",
        choices=("durable", "reference"),
        default="durable",
        help="the engine that runs policy tests (default: durable)",
    )
    group.addoption("--imr-policy-policies", type=Path, help="the rule packs policy tests run against")


def _runner(config: pytest.Config) -> Runner:
    if _RUNNER not in config.stash:
        config.stash[_RUNNER] = Runner(
            policies=config.getoption("--imr-policy-policies"),
            engine=config.getoption("--imr-policy-engine"),
            display_root=config.rootpath,
        )
    return config.stash[_RUNNER]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    patterns: list[str] = parent.config.getini("imr_policy_tests")
    if not patterns:
        return None
    try:
        relative = file_path.resolve().relative_to(parent.config.rootpath.resolve()).as_posix()
    except ValueError:
        return None
    if any(fnmatch.fnmatch(relative, p) for p in patterns):
        collector: PolicyTestFile = PolicyTestFile.from_parent(parent, path=file_path)
        return collector
    return None


class PolicyTestFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        runner = _runner(self.config)
        test_file, problems = load_test_file(self.path, display=runner.show(self.path))
        if test_file is None:
            yield BrokenFile.from_parent(self, name="file", problems="\n".join(d.render() for d in problems))
            return
        for test in test_file.tests:
            yield PolicyTestItem.from_parent(self, name=test.name, test=test, test_file=test_file)


class PolicyTestFailed(Exception):
    def __init__(self, result: TestResult) -> None:
        super().__init__(result.test.name)
        self.result = result


class PolicyTestItem(pytest.Item):
    def __init__(self, *, test: PolicyTest, test_file: TestFile, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test
        self.test_file = test_file

    def runtest(self) -> None:
        runner = _runner(self.config)
        root, loaded = runner.engine_for(self.test_file)
        if root is None or isinstance(loaded, tuple):
            problems = loaded if isinstance(loaded, tuple) else ()
            why = (
                "the rule packs it tests are not valid" if root is not None else "the rule packs it tests are not known"
            )
            raise PolicyTestFailed(TestResult(self.test, "error", error=why, diagnostics=problems))
        result = runner.run_test(
            self.test, self.test_file, loaded, home_guidelines(self.test_file, loaded.editions, root)
        )
        if not result.passed:
            raise PolicyTestFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PolicyTestFailed):
            return "\n".join(result_text(excinfo.value.result))
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.test.line - 1) if self.test.line else None, f"policy test {self.test.name}"


class BrokenFile(pytest.Item):
    """A test file that cannot be read, parsed or matched to its schema: one failing item with the problems."""

    def __init__(self, *, problems: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def runtest(self) -> None:
        raise PolicyTestFileInvalid(self.problems)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PolicyTestFileInvalid):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "policy test file"


class PolicyTestFileInvalid(Exception):
    pass
