"""Heavy installs (issue 14.9): the core `evaluate` path imports neither Hypothesis nor tqdm, which are
extras (`verify`, `progress`); without them, the verbs that need them say which extra to install."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

CASE = str(ROOT / "examples/cases/imr-2015-psych-example.yaml")

PROBE = """
import sys
from imr_policy.cli.main import main
code = main({argv!r})
print("CODE", code)
print("LOADED", sorted(m for m in ("hypothesis", "tqdm", "dask", "distributed") if m in sys.modules))
"""

BLOCKED = """
import sys
for name in ("hypothesis", "tqdm"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
from imr_policy.cli.main import main
print("CODE", main({argv!r}))
"""


def _run(template: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", template.format(argv=argv)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def test_evaluate_imports_neither_hypothesis_nor_tqdm() -> None:
    done = _run(PROBE, ["evaluate", CASE, "--format", "json"])
    assert "CODE 0" in done.stdout, done.stderr
    assert "LOADED []" in done.stdout, done.stdout[-300:]
    import imr_policy.cli.main as cli_main

    assert "verify" in cli_main.COMMANDS  # every verb is registered, yet none of their extras is imported


def test_without_the_extras_the_core_runs_and_verify_names_its_extra() -> None:
    assert "CODE 0" in _run(BLOCKED, ["evaluate", CASE]).stdout
    verify = _run(BLOCKED, ["verify", "--examples", "1"])
    assert "CODE 2" in verify.stdout, verify.stdout + verify.stderr
    assert "`verify` needs the `verify` extra (hypothesis is missing): pip install 'imr-policy[verify]'" in (
        verify.stderr
    )
    corpus = ROOT / "examples" / "cases"
    batch = _run(BLOCKED, ["batch", str(corpus), "--out", os.devnull, "--workers", "1"])
    assert "CODE 0" in batch.stdout or "CODE 1" in batch.stdout, batch.stderr  # decided, with no progress bar
    assert "Traceback" not in batch.stderr
