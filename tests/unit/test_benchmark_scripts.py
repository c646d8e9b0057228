"""The benchmark scripts still run against the current code (their figures are not checked here:
speed and memory are measured by hand and recorded in benchmarks/README.md)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_bench_evaluate_quick_runs() -> None:
    done = run("benchmarks/bench_evaluate.py", "--quick", "--rounds", "1", "--latency-calls", "200")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "engine.evaluate(case dict), durable backend" in done.stdout


def test_memory_flat_runs_and_finds_no_mismatch() -> None:
    done = run("benchmarks/memory_flat.py", "--n", "3000", "--every", "1000")
    assert done.returncode == 0, done.stdout + done.stderr


def test_bench_impact_small_runs() -> None:
    done = run("benchmarks/bench_impact.py", "--sizes", "200", "--engines", "reference", "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr


def test_bench_http_quick_runs() -> None:
    done = run("benchmarks/bench_http.py", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr


def test_hostile_memory_quick_runs() -> None:
    done = run("benchmarks/hostile_memory.py", "--n", "200", "--every", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"python_objects_growth_after_warmup"' in done.stdout
